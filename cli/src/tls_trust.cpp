// cli/src/tls_trust.cpp: which certificates the CLI trusts for https edges, and why it refused one.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/tls_trust.h"

#include <Poco/Net/IPAddress.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLManager.h>
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

namespace anm::cli {

namespace {

/// What OpenSSL found wrong with the certificate of the handshake running on this thread.
struct Refusal {
  int error = X509_V_OK;
  std::string names;      ///< the names the edge's certificate is for
  std::string notBefore;  ///< validity of the certificate that failed
  std::string notAfter;
};

thread_local Refusal tRefusal;

std::mutex gMutex;
std::string gCaFile;
std::map<std::string, Poco::Net::Context::Ptr> gContexts;

std::string formatTime(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return "an unknown date";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts);
  return text;
}

// The DNS names and IP addresses of the subjectAltName, else the common name.
std::string certificateNames(X509* cert) {
  if (cert == nullptr) return "another name";
  std::string names;
  auto add = [&names](const std::string& name) {
    if (!names.empty()) names += ", ";
    names += name;
  };
  auto* alt =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (alt != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(alt); ++i) {
      const GENERAL_NAME* entry = sk_GENERAL_NAME_value(alt, i);
      if (entry->type == GEN_DNS) {
        const ASN1_STRING* dns = entry->d.dNSName;
        add(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                        static_cast<size_t>(ASN1_STRING_length(dns))));
      } else if (entry->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* ip = entry->d.iPAddress;
        const int family = ASN1_STRING_length(ip) == 16 ? AF_INET6 : AF_INET;
        char text[INET6_ADDRSTRLEN] = {};
        if (inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text) != nullptr) add(text);
      }
    }
    GENERAL_NAMES_free(alt);
  }
  if (!names.empty()) return names;
  char common[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, common,
                                sizeof common) > 0) {
    return common;
  }
  return "another name";
}

// Replaces POCO's callback, which would ask an InvalidCertificateHandler: a failure is noted
// for certificateRefusal and always ends the handshake.
int verifyPeer(int ok, X509_STORE_CTX* store) {
  if (ok == 1) return 1;
  if (tRefusal.error != X509_V_OK) return 0;
  tRefusal.error = X509_STORE_CTX_get_error(store);
  tRefusal.names = certificateNames(X509_STORE_CTX_get0_cert(store));
  X509* failed = X509_STORE_CTX_get_current_cert(store);
  if (failed == nullptr) failed = X509_STORE_CTX_get0_cert(store);
  if (failed != nullptr) {
    tRefusal.notBefore = formatTime(X509_get0_notBefore(failed));
    tRefusal.notAfter = formatTime(X509_get0_notAfter(failed));
  }
  return 0;
}

bool isIpAddress(const std::string& host) {
  Poco::Net::IPAddress address;
  return Poco::Net::IPAddress::tryParse(host, address);
}

Poco::Net::Context::Ptr makeContext(const std::string& host, const std::string& caFile) {
  Poco::Net::Context::Params params;
  params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
  params.loadDefaultCAs = caFile.empty();
  params.caLocation = caFile;
  Poco::Net::Context::Ptr context =
      new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
  context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);

  // OpenSSL checks the name during the handshake, for IP addresses and loopback names too;
  // POCO's own later check would skip loopback hosts and resolve names through DNS.
  context->enableExtendedCertificateVerification(false);
  SSL_CTX* ssl = context->sslContext();
  SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, &verifyPeer);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (isIpAddress(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  }
  return context;
}

}  // namespace

void trustCaFile(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    throw TrustError("could not read --ca-file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    throw TrustError("could not read --ca-file " + path + ": not a regular file");
  }
  BIO* file = BIO_new_file(path.c_str(), "r");
  if (file == nullptr) {
    const int error = errno;
    ERR_clear_error();
    throw TrustError("could not read --ca-file " + path + ": " + std::strerror(error));
  }

  // Every PEM certificate of the file counts; anything else in it is not a CA.
  int certificates = 0;
  while (X509* cert = PEM_read_bio_X509(file, nullptr, nullptr, nullptr)) {
    X509_free(cert);
    ++certificates;
  }
  BIO_free(file);
  ERR_clear_error();
  if (certificates == 0) {
    throw TrustError("could not use --ca-file " + path + ": it holds no PEM certificate");
  }

  std::lock_guard<std::mutex> lock(gMutex);
  gCaFile = path;
  gContexts.clear();
}

Poco::Net::Context::Ptr clientTlsContext(const std::string& host) {
  tRefusal = Refusal{};
  std::lock_guard<std::mutex> lock(gMutex);
  auto it = gContexts.find(host);
  if (it != gContexts.end()) return it->second;

  // Once: OpenSSL's set-up, and a handler that refuses, should anything ask POCO's manager
  // about a bad certificate (nothing in the CLI does; this keeps "never accept" true).
  static std::once_flag once;
  std::call_once(once, [] { Poco::Net::initializeSSL(); });
  Poco::Net::Context::Ptr context = makeContext(host, gCaFile);
  static std::once_flag handler;
  std::call_once(handler, [&context] {
    Poco::Net::SSLManager::instance().initializeClient(
        nullptr, new Poco::Net::RejectCertificateHandler(false), context);
  });
  gContexts.emplace(host, context);
  return context;
}

std::string certificateRefusal(const std::string& host) {
  const Refusal refusal = tRefusal;
  tRefusal = Refusal{};
  switch (refusal.error) {
    case X509_V_OK:
      return "";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return "the edge's certificate is for " + refusal.names + ", not " + host;
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "the edge's certificate expired on " + refusal.notAfter;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "the edge's certificate is not valid before " + refusal.notBefore;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return "the edge's certificate is not trusted (self-signed or unknown issuer); pass "
             "--ca-file with its CA, or fix the server's certificate";
    default:
      return std::string("the edge's certificate was refused: ") +
             X509_verify_cert_error_string(refusal.error);
  }
}

}  // namespace anm::cli
