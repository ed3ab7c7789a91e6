// cli/src/connection.h: one blocking TCP or TLS connection with deadlines and a read buffer.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/StreamSocket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cli/src/url.h"

namespace anm::cli {

using Clock = std::chrono::steady_clock;

/// Why a network operation failed. The names match the `error` words of docs/protocol.md.
enum class NetErrorKind {
  kTimeout,
  kRefused,
  kReset,
  kClosed,
  kResolve,
  kProtocol,
  kStopped,
  kOther,
  /// The edge's TLS certificate was refused; what() is the sentence saying why. Retrying
  /// does not help. (Appended.)
  kCertificate
};

/// Where a connection was when an operation on it failed, as a delivery report names it:
/// connecting (the TLS handshake included), sending the request, or receiving the answer.
enum class NetPhase { kUnknown, kConnecting, kSending, kReceiving };

/// "connecting", "sending", "receiving" or "unknown" (docs/protocol.md).
const char* phaseName(NetPhase phase);

class NetError : public std::runtime_error {
 public:
  NetError(NetErrorKind kind, const std::string& what, NetPhase phase = NetPhase::kUnknown)
      : std::runtime_error(what), kind_(kind), phase_(phase) {}
  NetErrorKind kind() const { return kind_; }

  /// Where it happened; the word below leaves that out ("timeout while sending" is "timeout").
  NetPhase phase() const { return phase_; }

  /// The short word reported to the edge and printed: "timeout", "connection refused", ...
  std::string word() const;

 private:
  NetErrorKind kind_;
  NetPhase phase_;
};

/// A client connection. Every read and write takes an absolute deadline; reads also watch an
/// optional stop flag so that a process waiting on a quiet stream can shut down promptly.
class Connection {
 public:
  /// Connects to url's host and port (TLS for https, verified as tls_trust.h says: against
  /// the system CAs or --ca-file, with the host's name). Throws NetError; kCertificate when
  /// the edge's certificate was refused.
  Connection(const Url& url, Clock::time_point deadline, size_t bufferBytes = 16 * 1024);
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Stops blocking reads soon after *flag turns true (they throw NetErrorKind::kStopped).
  void setStopFlag(const std::atomic<bool>* flag) { stop_ = flag; }

  void writeAll(const char* data, size_t size, Clock::time_point deadline);
  void writeAll(const std::string& data, Clock::time_point deadline) {
    writeAll(data.data(), data.size(), deadline);
  }

  /// Writes `first` then `second` as one gathered write (one segment train on the wire, so a
  /// peer never waits for the second half of a request), without copying either.
  void writeAll(std::string_view first, std::string_view second, Clock::time_point deadline);

  /// Acknowledges every received segment at once instead of delaying the ACK (TCP_QUICKACK,
  /// re-armed before each wait for data). A peer that writes a response in two pieces with
  /// Nagle's algorithm on otherwise waits for our delayed ACK, about 40 ms, before the second.
  void setQuickAck(bool on) { quickAck_ = on; }

  /// Up to `cap` bytes, at least one; 0 means the peer closed. Throws NetError.
  size_t read(char* out, size_t cap, Clock::time_point deadline);

  /// One line without its CR LF. Returns false on a clean close before any byte of the line.
  /// Throws NetError (kProtocol) for a line longer than maxBytes.
  bool readLine(std::string& line, size_t maxBytes, Clock::time_point deadline);

  /// True when the peer has closed or sent unsolicited bytes: the connection must not be
  /// reused for a new request.
  bool stale();

  /// Bytes received so far on this connection (to tell "closed before answering").
  uint64_t bytesReceived() const { return received_; }

  /// The socket's descriptor, for tests that inspect its options.
  int nativeHandleForTest() const;

 private:
  bool fill(Clock::time_point deadline);
  bool fillPlain(Clock::time_point deadline);
  void armQuickAck();
  void setSendDeadline(Clock::time_point deadline);

  std::unique_ptr<Poco::Net::StreamSocket> socket_;
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  uint64_t received_ = 0;
  const std::atomic<bool>* stop_ = nullptr;
  bool tls_ = false;
  bool quickAck_ = false;
  int64_t sendTimeoutUs_ = -1;  ///< last value given to the socket, to skip needless setsockopt
};

}  // namespace anm::cli
