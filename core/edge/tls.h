// core/edge/tls.h: the edge's TLS 1.3 server context and the handshake of each connection.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/Context.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>

#include <string>

namespace anm::edge {

/// The one TLS context of an edge: the certificate chain of `certFile` and the private key of
/// `keyFile` (both PEM; the key unencrypted, since nobody is there to type a passphrase), TLS
/// 1.3 only (a client offering at most 1.2 gets the protocol_version alert), no client
/// certificates, no session tickets. Throws ConfigError naming the file and OpenSSL's reason
/// when a file cannot be loaded or the key does not belong to the certificate. An expired
/// certificate is logged at error level and still used; one that expires within 14 days is
/// logged as a warning.
Poco::Net::Context::Ptr serverTlsContext(const std::string& certFile, const std::string& keyFile);

/// Runs the server side of the TLS handshake of an accepted connection, on the calling thread,
/// within `timeout` in all however slowly the client sends (each wait is bounded by what is
/// left). True when the connection is ready for HTTP, or is not a TLS connection. False when
/// the client failed the handshake (an old protocol, garbage, a close) or was too slow; the
/// caller then closes the connection. Logged at debug, a slow client at information.
bool completeServerHandshake(Poco::Net::StreamSocket& socket, Poco::Timespan timeout);

/// For a TLS connection whose first bytes have arrived and whose handshake has not begun: when
/// they are a plain HTTP request line rather than a TLS record, answers 400 in plain HTTP with
/// `{"error":...}` saying to use https, so that a client with an http:// URL learns what went
/// wrong instead of seeing a reset, and returns true; the caller then closes the connection.
/// False when the bytes may be TLS (or nothing is there).
bool refusePlainHttp(Poco::Net::StreamSocket& socket);

/// Decrypted bytes OpenSSL holds for `socket` that poll(2) on its descriptor cannot see; 0 for
/// a plain socket.
int bufferedTlsBytes(Poco::Net::StreamSocket& socket);

}  // namespace anm::edge
