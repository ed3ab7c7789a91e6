// core/edge/recording_socket.cpp: sockets that keep the raw bytes of each request head.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/recording_socket.h"

#include <Poco/AutoPtr.h>
#include <Poco/Net/SocketAddress.h>
#include <sys/socket.h>

#include <cstring>

namespace anm::edge {

void HeadRecorder::received(const char* data, size_t len) {
  const size_t keep = len < kRecordedTailBytes ? len : kRecordedTailBytes;
  tail_.assign(data + len - keep, keep);
  record(data, len);
}

void HeadRecorder::record(const char* data, size_t len) {
  if (headEnd_ != std::string::npos || overflowed_) return;

  // Keep only what can still belong to the head, so a huge head never grows the copy.
  const size_t room = kMaxRecordedHeadBytes - bytes_.size();
  const size_t take = len < room ? len : room;
  const size_t searchFrom = bytes_.size() < 3 ? 0 : bytes_.size() - 3;
  bytes_.append(data, take);

  // The head ends at the first empty line; bare LF line ends are accepted as POCO does.
  for (size_t i = searchFrom; i < bytes_.size(); ++i) {
    if (bytes_[i] != '\n' || i == 0) continue;
    if (bytes_[i - 1] == '\n' || (bytes_[i - 1] == '\r' && i >= 2 && bytes_[i - 2] == '\n')) {
      headEnd_ = i + 1;
      bytes_.resize(headEnd_);
      return;
    }
  }
  if (bytes_.size() >= kMaxRecordedHeadBytes) {
    overflowed_ = true;
    bytes_.clear();
    bytes_.shrink_to_fit();
  }
}

std::string_view HeadRecorder::head() const {
  if (headEnd_ == std::string::npos) return {};
  return std::string_view(bytes_).substr(0, headEnd_);
}

void HeadRecorder::restart(size_t pending) {
  bytes_.clear();
  headEnd_ = std::string::npos;
  overflowed_ = false;

  // Unread bytes are always the end of the latest receive; more than its kept tail cannot be
  // placed, so this head is given up (the fields then come in POCO's order).
  if (pending > tail_.size()) {
    overflowed_ = true;
    return;
  }
  if (pending > 0) record(tail_.data() + tail_.size() - pending, pending);
}

RecordingSocketImpl::RecordingSocketImpl(poco_socket_t sockfd) : StreamSocketImpl(sockfd) {}

int RecordingSocketImpl::receiveBytes(void* buffer, int length, int flags) {
  const int received = StreamSocketImpl::receiveBytes(buffer, length, flags);
  if (received > 0 && (flags & MSG_PEEK) == 0) {
    HeadRecorder::received(static_cast<const char*>(buffer), static_cast<size_t>(received));
  }
  return received;
}

namespace {

// The plain socket a TLS connection wraps. NOTE: SecureStreamSocketImpl takes a reference of
// its own, so the one of this AutoPtr is released when the constructor below is done.
Poco::AutoPtr<Poco::Net::StreamSocketImpl> plainSocket(poco_socket_t sockfd) {
  return Poco::AutoPtr<Poco::Net::StreamSocketImpl>(new Poco::Net::StreamSocketImpl(sockfd));
}

}  // namespace

RecordingSecureSocketImpl::RecordingSecureSocketImpl(poco_socket_t sockfd,
                                                     Poco::Net::Context::Ptr context)
    : RecordingSecureSocketImpl(plainSocket(sockfd), std::move(context)) {}

RecordingSecureSocketImpl::RecordingSecureSocketImpl(
    Poco::AutoPtr<Poco::Net::StreamSocketImpl> plain, Poco::Net::Context::Ptr context)
    : SecureStreamSocketImpl(plain.get(), std::move(context)), plain_(plain.get()) {
  // Only prepares the server side of the handshake; the bytes are exchanged later.
  acceptSSL();
}

int RecordingSecureSocketImpl::receiveBytes(void* buffer, int length, int flags) {
  const int received = SecureStreamSocketImpl::receiveBytes(buffer, length, flags);
  if (received > 0 && (flags & MSG_PEEK) == 0) {
    HeadRecorder::received(static_cast<const char*>(buffer), static_cast<size_t>(received));
  }
  return received;
}

void RecordingSecureSocketImpl::setBlocking(bool flag) {
  plain_->setBlocking(flag);
  SecureStreamSocketImpl::setBlocking(flag);
}

RecordingServerSocketImpl::RecordingServerSocketImpl(Poco::Net::Context::Ptr tls)
    : tls_(std::move(tls)) {}

Poco::Net::SocketImpl* RecordingServerSocketImpl::acceptConnection(
    Poco::Net::SocketAddress& clientAddr) {
  // Mirrors SocketImpl::acceptConnection, which is the only way to choose the accepted
  // socket's class.
  sockaddr_storage address;
  poco_socket_t fd;
  socklen_t len;
  do {
    len = sizeof(address);
    fd = ::accept(sockfd(), reinterpret_cast<sockaddr*>(&address), &len);
  } while (fd == POCO_INVALID_SOCKET && lastError() == POCO_EINTR);
  if (fd == POCO_INVALID_SOCKET) {
    error();
    return nullptr;
  }
  clientAddr = Poco::Net::SocketAddress(reinterpret_cast<const sockaddr*>(&address), len);
  if (tls_.isNull()) return new RecordingSocketImpl(fd);

  // Should OpenSSL fail to set the connection up, the half-built socket closes the descriptor.
  return new RecordingSecureSocketImpl(fd, tls_);
}

// NOTE: ServerSocket takes ownership of the impl through its reference count.
RecordingServerSocket::RecordingServerSocket()
    : ServerSocket(new RecordingServerSocketImpl, true) {}

RecordingServerSocket::RecordingServerSocket(Poco::Net::Context::Ptr tls)
    : ServerSocket(new RecordingServerSocketImpl(std::move(tls)), true) {}

}  // namespace anm::edge
