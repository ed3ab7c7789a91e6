// core/edge/recording_socket.h: sockets that keep the raw bytes of each request head.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/ServerSocketImpl.h>
#include <Poco/Net/StreamSocketImpl.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace anm::edge {

/// The most head bytes one request may need: the request line POCO accepts (method 32, URI
/// 16 KiB, version 8) plus 100 fields of 256-byte names and 8 KiB values with their separators.
/// A head beyond this is refused by POCO anyway, so recording stops there.
inline constexpr size_t kMaxRecordedHeadBytes = (32 + 16384 + 8 + 4) + 100 * (256 + 8192 + 4) + 2;

/// Bytes of one receive the recorder keeps so that a next request already read into POCO's
/// session buffer (pipelining) can be found again: at least that buffer's size.
inline constexpr size_t kRecordedTailBytes = 8192;

/// A connected socket that copies what it receives until it has seen the empty line ending a
/// request head. POCO's header map groups repeated names, so the raw copy is how the edge
/// recovers the true arrival order of the fields. Used only by the connection's own thread.
///
/// Recording is continuous: the tail of the latest receive is kept, and restart() takes the
/// bytes the session has received but not consumed as the start of the next head. That is
/// exact because the body of every kept-alive request is read to its last byte first.
class RecordingSocketImpl : public Poco::Net::StreamSocketImpl {
 public:
  explicit RecordingSocketImpl(poco_socket_t sockfd);

  using Poco::Net::StreamSocketImpl::receiveBytes;
  int receiveBytes(void* buffer, int length, int flags = 0) override;

  /// The head of the current request up to and including its empty line, or "" when it was not
  /// seen whole (too long, or more of it was pending than the kept tail holds).
  std::string_view head() const;

  /// Starts the next request's head with the last `pending` bytes received, which the session
  /// holds unread (0 when the next request has not begun to arrive).
  void restart(size_t pending);

 private:
  void record(const char* data, size_t len);

  std::string bytes_;
  std::string tail_;
  size_t headEnd_ = std::string::npos;
  bool overflowed_ = false;
};

/// A listening socket whose accepted connections are RecordingSocketImpl.
class RecordingServerSocketImpl : public Poco::Net::ServerSocketImpl {
 public:
  Poco::Net::SocketImpl* acceptConnection(Poco::Net::SocketAddress& clientAddr) override;
};

/// A ServerSocket built on RecordingServerSocketImpl; bind and listen as usual.
class RecordingServerSocket : public Poco::Net::ServerSocket {
 public:
  RecordingServerSocket();
};

}  // namespace anm::edge
