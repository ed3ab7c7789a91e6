// core/edge/recording_socket.h: sockets that keep the raw bytes of each request head.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/AutoPtr.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/SecureStreamSocketImpl.h>
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

/// Copies what a connection receives until it has seen the empty line ending a request head.
/// POCO's header map groups repeated names, so the raw copy is how the edge recovers the true
/// arrival order of the fields. Both accepted socket kinds (plain and TLS, where the copy is of
/// the decrypted bytes) are one of these: `dynamic_cast<HeadRecorder*>(socket.impl())` finds
/// it. Used only by the connection's own thread.
///
/// Recording is continuous: the tail of the latest receive is kept, and restart() takes the
/// bytes the session has received but not consumed as the start of the next head. That is
/// exact because the body of every kept-alive request is read to its last byte first.
class HeadRecorder {
 public:
  virtual ~HeadRecorder() = default;

  /// The head of the current request up to and including its empty line, or "" when it was not
  /// seen whole (too long, or more of it was pending than the kept tail holds).
  std::string_view head() const;

  /// Starts the next request's head with the last `pending` bytes received, which the session
  /// holds unread (0 when the next request has not begun to arrive).
  void restart(size_t pending);

 protected:
  /// Takes the bytes of one receive (peeks excluded).
  void received(const char* data, size_t len);

 private:
  void record(const char* data, size_t len);

  std::string bytes_;
  std::string tail_;
  size_t headEnd_ = std::string::npos;
  bool overflowed_ = false;
};

/// A plain TCP connection that records its request heads.
class RecordingSocketImpl : public Poco::Net::StreamSocketImpl, public HeadRecorder {
 public:
  explicit RecordingSocketImpl(poco_socket_t sockfd);

  using Poco::Net::StreamSocketImpl::receiveBytes;
  int receiveBytes(void* buffer, int length, int flags = 0) override;
};

/// A TLS connection that records the decrypted bytes of its request heads. The handshake is
/// not done on construction: it happens on the connection's own thread (tls.h), so a client
/// that never finishes it holds no accepting thread.
class RecordingSecureSocketImpl : public Poco::Net::SecureStreamSocketImpl, public HeadRecorder {
 public:
  /// Takes over the accepted descriptor and prepares the server side of the handshake.
  RecordingSecureSocketImpl(poco_socket_t sockfd, Poco::Net::Context::Ptr context);

  using Poco::Net::SecureStreamSocketImpl::receiveBytes;
  int receiveBytes(void* buffer, int length, int flags = 0) override;

  /// NOTE: POCO 1.11 keeps the blocking flag of the wrapped plain socket apart and consults it
  /// while retrying SSL reads and writes; both must agree, or a non-blocking stream socket of
  /// the hub would wait inside OpenSSL.
  void setBlocking(bool flag) override;

 private:
  RecordingSecureSocketImpl(Poco::AutoPtr<Poco::Net::StreamSocketImpl> plain,
                            Poco::Net::Context::Ptr context);

  Poco::Net::StreamSocketImpl* plain_;  ///< owned by the base through its reference count
};

/// A listening socket whose accepted connections record their heads: RecordingSocketImpl, or
/// RecordingSecureSocketImpl when a TLS context is given.
class RecordingServerSocketImpl : public Poco::Net::ServerSocketImpl {
 public:
  explicit RecordingServerSocketImpl(Poco::Net::Context::Ptr tls = nullptr);

  Poco::Net::SocketImpl* acceptConnection(Poco::Net::SocketAddress& clientAddr) override;

  bool secure() const override { return !tls_.isNull(); }

 private:
  Poco::Net::Context::Ptr tls_;
};

/// A ServerSocket built on RecordingServerSocketImpl; bind and listen as usual.
class RecordingServerSocket : public Poco::Net::ServerSocket {
 public:
  RecordingServerSocket();

  /// Every accepted connection speaks TLS with `tls` (null: plain TCP).
  explicit RecordingServerSocket(Poco::Net::Context::Ptr tls);
};

}  // namespace anm::edge
