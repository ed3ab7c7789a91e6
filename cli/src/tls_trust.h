// cli/src/tls_trust.h: which certificates the CLI trusts for https edges, and why it refused one.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/Context.h>

#include <stdexcept>
#include <string>

namespace anm::cli {

/// A --ca-file that cannot be used; the message names the file.
class TrustError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// From now on https edges are verified against exactly the CA certificates of this PEM file
/// instead of the system's store. Throws TrustError when the file is missing, unreadable or
/// holds no certificate. Call it before the first connection (contexts made earlier keep
/// what they trusted).
void trustCaFile(const std::string& path);

/// The TLS context for connections to the edge at `host` (a DNS name or an IP address):
/// TLS 1.2 or later; the certificate must chain to a trusted CA (system store or trustCaFile),
/// be within its validity dates and name `host`. A certificate that fails is never accepted.
/// One context per host, shared by every connection of the process. Also forgets this
/// thread's last refusal, so that certificateRefusal speaks of the connection about to open.
Poco::Net::Context::Ptr clientTlsContext(const std::string& host);

/// After a TLS connection to `host` failed on this thread: why its certificate was refused, as
/// a sentence for a person ("the edge's certificate is for localhost, not 10.0.0.1"), or ""
/// when the certificate was not the reason. Forgets the refusal.
std::string certificateRefusal(const std::string& host);

}  // namespace anm::cli
