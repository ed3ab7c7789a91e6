// core/edge/tls.cpp: the edge's TLS 1.3 server context and the handshake of each connection.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/tls.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SecureStreamSocketImpl.h>
#include <Poco/Timestamp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <ctime>
#include <string>

#include "core/edge/config.h"

namespace anm::edge {
namespace {

Poco::Logger& tlsLog() {
  static Poco::Logger& instance = Poco::Logger::get("anm.tls");
  return instance;
}

// OpenSSL's reason for the oldest error in this thread's queue, which names the cause (the
// later ones only say which call gave up); the queue is emptied.
std::string opensslReason() {
  const unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(first);
  if (reason != nullptr) return reason;
  char text[256];
  ERR_error_string_n(first, text, sizeof text);
  return text;
}

// What refusePlainHttp reads and drops after its answer, at most, before the close.
constexpr size_t kPlainDrainBytes = 1 << 20;
constexpr Poco::Timestamp::TimeDiff kPlainDrainMicroseconds = 500000;

// From this many days before its end on, each load of the certificate warns that it expires.
constexpr int kExpiryWarningDays = 14;

// "2026-01-31T12:00:00Z", or "unknown" when OpenSSL cannot read the time.
std::string utcText(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return "unknown";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// An expired certificate still serves, since an operator may be in the middle of renewing it,
// but every client that checks it refuses the edge meanwhile: said at error level. One close
// to its end gets a warning, each time it is loaded.
void logExpiry(SSL_CTX* ssl, const std::string& certFile) {
  const X509* cert = SSL_CTX_get0_certificate(ssl);
  if (cert == nullptr) return;
  const ASN1_TIME* notAfter = X509_get0_notAfter(cert);
  int days = 0;
  int seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, notAfter) != 1) return;
  if (days < 0 || seconds < 0) {
    tlsLog().error(
        "tls certificate expired cert=%s not_after=%s "
        "impact=\"clients that check certificates refuse this edge until it is renewed\"",
        certFile, utcText(notAfter));
    return;
  }
  if (days < kExpiryWarningDays) {
    tlsLog().warning("tls certificate expires soon cert=%s not_after=%s days_left=%d", certFile,
                     utcText(notAfter), days);
  }
}

// A key file with a passphrase must fail to load rather than make OpenSSL prompt on a terminal.
int refusePassphrase(char*, int, int, void*) { return 0; }

std::string peerOf(Poco::Net::StreamSocket& socket) {
  try {
    return socket.peerAddress().toString();
  } catch (const Poco::Exception&) {
    return "unknown";
  }
}

}  // namespace

Poco::Net::Context::Ptr serverTlsContext(const std::string& certFile, const std::string& keyFile) {
  Poco::Net::initializeSSL();

  // POCO loads nothing here: the files are loaded below so that a failure names the file.
  Poco::Net::Context::Params params;
  params.verificationMode = Poco::Net::Context::VERIFY_NONE;
  params.loadDefaultCAs = false;
  Poco::Net::Context::Ptr context;
  try {
    context = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
    context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_3);
  } catch (const Poco::Exception& e) {
    throw ConfigError("could not set up TLS: " + e.displayText());
  }
  SSL_CTX* ssl = context->sslContext();
  SSL_CTX_set_default_passwd_cb(ssl, &refusePassphrase);
  ERR_clear_error();

  if (SSL_CTX_use_certificate_chain_file(ssl, certFile.c_str()) != 1) {
    throw ConfigError("could not load tls.cert " + certFile + ": " + opensslReason());
  }
  if (SSL_CTX_use_PrivateKey_file(ssl, keyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL compares the key with the certificate while loading it.
    if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
      throw ConfigError("tls.key " + keyFile + " does not belong to tls.cert " + certFile + ": " +
                        opensslReason());
    }
    throw ConfigError("could not load tls.key " + keyFile + ": " + opensslReason());
  }
  if (SSL_CTX_check_private_key(ssl) != 1) {
    throw ConfigError("tls.key " + keyFile + " does not belong to tls.cert " + certFile + ": " +
                      opensslReason());
  }

  logExpiry(ssl, certFile);

  // Relays and senders make fresh connections; tickets would only be extra bytes after each
  // handshake, written when nobody reads them yet.
  SSL_CTX_set_num_tickets(ssl, 0);
  SSL_CTX_set_options(ssl, SSL_OP_NO_TICKET);
  return context;
}

bool completeServerHandshake(Poco::Net::StreamSocket& socket, Poco::Timespan timeout) {
  auto* secure = dynamic_cast<Poco::Net::SecureStreamSocketImpl*>(socket.impl());
  if (secure == nullptr) return true;

  // Non-blocking steps, each followed by a wait for what OpenSSL asked for, bounded by what
  // is left of the timeout: a blocking handshake would grant every slow read a full timeout.
  const Poco::Timestamp start;
  bool done = false;
  try {
    socket.setBlocking(false);
    for (;;) {
      const int rc = secure->completeHandshake();
      if (rc == 1) {
        done = true;
        break;
      }
      if (rc == 0) {
        if (tlsLog().debug())
          tlsLog().debug("tls handshake ended by client peer=%s", peerOf(socket));
        break;
      }
      const Poco::Timespan left = timeout - Poco::Timespan(start.elapsed());
      if (left.totalMicroseconds() <= 0) {
        tlsLog().information(
            "client too slow for the tls handshake, connection closed "
            "peer=%s waited_ms=%s",
            peerOf(socket), std::to_string(start.elapsed() / 1000));
        break;
      }
      pollfd entry{};
      entry.fd = secure->sockfd();
      entry.events = rc == Poco::Net::SecureStreamSocket::ERR_SSL_WANT_WRITE ? POLLOUT : POLLIN;
      const int waitMs = static_cast<int>((left.totalMicroseconds() + 999) / 1000);
      if (::poll(&entry, 1, waitMs) < 0 && errno != EINTR) break;
    }
  } catch (const Poco::Exception& e) {
    // Old protocols, scanners and plain HTTP on the TLS port all end here; not the edge's fault.
    if (tlsLog().debug()) {
      tlsLog().debug("tls handshake failed peer=%s error=\"%s\"", peerOf(socket), e.displayText());
    }
    ERR_clear_error();
  }
  if (!done) return false;

  // HTTP on the connection's thread reads and writes blocking, with the server's timeouts.
  try {
    socket.setBlocking(true);
  } catch (const Poco::Exception&) {
    return false;
  }
  return true;
}

bool refusePlainHttp(Poco::Net::StreamSocket& socket) {
  // A TLS record starts with its content type (0x14 to 0x18), an HTTP request with its method
  // in capitals. Peeking leaves the bytes to the handshake when they are TLS.
  const int fd = socket.impl()->sockfd();
  char first = 0;
  ssize_t peeked = -1;
  do {
    peeked = ::recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (peeked < 0 && errno == EINTR);
  if (peeked != 1 || first < 'A' || first > 'Z') return false;

  // Written on the descriptor itself: OpenSSL has not touched the connection yet.
  const std::string body =
      "{\"error\":\"this port of the edge speaks TLS only: use https://, not http://\"}";
  const std::string answer =
      "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  if (tlsLog().debug()) {
    tlsLog().debug("plain http on the tls port refused peer=%s", peerOf(socket));
  }
  if (::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) return true;

  // Reads and drops the rest of the request for a moment, so that the close does not reset the
  // connection before the client has read the answer.
  ::shutdown(fd, SHUT_WR);
  const Poco::Timestamp start;
  char drained[4096];
  size_t total = 0;
  while (total < kPlainDrainBytes && !start.isElapsed(kPlainDrainMicroseconds)) {
    pollfd entry{};
    entry.fd = fd;
    entry.events = POLLIN;
    const int waitMs = static_cast<int>((kPlainDrainMicroseconds - start.elapsed()) / 1000) + 1;
    if (::poll(&entry, 1, waitMs) <= 0) break;
    const ssize_t n = ::recv(fd, drained, sizeof drained, MSG_DONTWAIT);
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  return true;
}

int bufferedTlsBytes(Poco::Net::StreamSocket& socket) {
  if (!socket.secure()) return 0;
  try {
    return socket.available();
  } catch (const Poco::Exception&) {
    return 0;
  }
}

}  // namespace anm::edge
