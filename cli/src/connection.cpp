// cli/src/connection.cpp: socket I/O with deadlines, error words, TLS for https URLs.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/connection.h"

#include <Poco/Exception.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Timespan.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cli/src/tls_trust.h"

namespace anm::cli {

namespace {

// Blocking waits are cut into slices of this length so that the stop flag is noticed.
constexpr std::chrono::milliseconds kStopPollSlice{200};

Poco::Timespan remaining(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  if (left.count() <= 0) return Poco::Timespan(0);
  return Poco::Timespan(left.count());
}

// The phase of what `doing` names: "connecting", "sending" or "receiving".
NetPhase phaseOf(const char* doing) {
  if (std::strcmp(doing, "connecting") == 0) return NetPhase::kConnecting;
  if (std::strcmp(doing, "sending") == 0) return NetPhase::kSending;
  if (std::strcmp(doing, "receiving") == 0) return NetPhase::kReceiving;
  return NetPhase::kUnknown;
}

// Turns whatever Poco threw into one of the protocol's error words, with where it happened.
[[noreturn]] void rethrowAsNetError(const char* doing) {
  const NetPhase phase = phaseOf(doing);
  try {
    throw;
  } catch (const NetError& e) {
    if (e.phase() != NetPhase::kUnknown || e.kind() == NetErrorKind::kStopped) throw;
    throw NetError(e.kind(), e.what(), phase);
  } catch (const Poco::TimeoutException&) {
    throw NetError(NetErrorKind::kTimeout, std::string("timeout while ") + doing, phase);
  } catch (const Poco::Net::ConnectionRefusedException&) {
    throw NetError(NetErrorKind::kRefused, "connection refused", phase);
  } catch (const Poco::Net::ConnectionResetException&) {
    throw NetError(NetErrorKind::kReset, "connection reset", phase);
  } catch (const Poco::Net::ConnectionAbortedException&) {
    throw NetError(NetErrorKind::kReset, "connection reset", phase);
  } catch (const Poco::Net::HostNotFoundException& e) {
    throw NetError(NetErrorKind::kResolve, "could not resolve host " + e.message(), phase);
  } catch (const Poco::Net::NoAddressFoundException& e) {
    throw NetError(NetErrorKind::kResolve, "could not resolve host " + e.message(), phase);
  } catch (const Poco::IOException& e) {
    // EPIPE and ECONNRESET arrive as plain I/O errors from some paths.
    if (e.code() == EPIPE || e.code() == ECONNRESET) {
      throw NetError(NetErrorKind::kReset, "connection reset", phase);
    }
    throw NetError(NetErrorKind::kOther,
                   std::string("could not finish ") + doing + ": " + e.displayText(), phase);
  } catch (const Poco::Exception& e) {
    throw NetError(NetErrorKind::kOther,
                   std::string("could not finish ") + doing + ": " + e.displayText(), phase);
  }
}

// The error word for an errno from a plain socket call.
[[noreturn]] void throwErrno(int error, const char* doing) {
  const NetPhase phase = phaseOf(doing);
  switch (error) {
    case ECONNREFUSED:
      throw NetError(NetErrorKind::kRefused, "connection refused", phase);
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
      throw NetError(NetErrorKind::kReset, "connection reset", phase);
    case ETIMEDOUT:
    case EAGAIN:
      throw NetError(NetErrorKind::kTimeout, std::string("timeout while ") + doing, phase);
    default:
      throw NetError(NetErrorKind::kOther,
                     std::string("could not finish ") + doing + ": " + std::strerror(error), phase);
  }
}

// Milliseconds for poll(): rounded up so that a wait never ends just before the deadline.
int pollMillis(Clock::time_point deadline, bool sliced) {
  const auto left = deadline - Clock::now();
  auto millis = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  if (sliced) millis = std::min<int64_t>(millis, kStopPollSlice.count());
  return static_cast<int>(std::clamp<int64_t>(millis, 0, 1 << 30));
}

}  // namespace

const char* phaseName(NetPhase phase) {
  switch (phase) {
    case NetPhase::kConnecting:
      return "connecting";
    case NetPhase::kSending:
      return "sending";
    case NetPhase::kReceiving:
      return "receiving";
    case NetPhase::kUnknown:
      break;
  }
  return "unknown";
}

std::string NetError::word() const {
  switch (kind_) {
    case NetErrorKind::kTimeout:
      return "timeout";
    case NetErrorKind::kRefused:
      return "connection refused";
    case NetErrorKind::kReset:
      return "connection reset";
    case NetErrorKind::kClosed:
      return "connection closed";
    default:
      return what();
  }
}

Connection::Connection(const Url& url, Clock::time_point deadline, size_t bufferBytes)
    : buffer_(bufferBytes) {
  try {
    const Poco::Net::SocketAddress address(url.host, url.port);
    if (url.tls()) {
      auto secure = std::make_unique<Poco::Net::SecureStreamSocket>(clientTlsContext(url.host));
      secure->setPeerHostName(url.host);
      tls_ = true;
      socket_ = std::move(secure);
    } else {
      socket_ = std::make_unique<Poco::Net::StreamSocket>();
    }
    const Poco::Timespan left = remaining(deadline);
    if (left.totalMicroseconds() <= 0) throw Poco::TimeoutException();
    socket_->connect(address, left);
    socket_->setNoDelay(true);
  } catch (...) {
    // A refused certificate says why in words; the handshake's exception only says it failed.
    const std::string refusal = tls_ ? certificateRefusal(url.host) : std::string();
    if (!refusal.empty()) {
      throw NetError(NetErrorKind::kCertificate, refusal, NetPhase::kConnecting);
    }
    rethrowAsNetError("connecting");
  }
}

Connection::~Connection() {
  try {
    if (socket_) socket_->close();
  } catch (...) {
    // Closing a dead socket may throw; nothing useful can be done about it here.
  }
}

int Connection::nativeHandleForTest() const { return socket_->impl()->sockfd(); }

void Connection::setSendDeadline(Clock::time_point deadline) {
  const Poco::Timespan left = remaining(deadline);
  if (left.totalMicroseconds() <= 0) throw Poco::TimeoutException();
  // Resetting the timeout costs a system call; a drift of 50 ms is close enough.
  if (std::abs(left.totalMicroseconds() - sendTimeoutUs_) > 50000) {
    socket_->setSendTimeout(left);
    sendTimeoutUs_ = left.totalMicroseconds();
  }
}

void Connection::armQuickAck() {
  // Best effort: without it the peer is only slower, never wrong.
  const int on = 1;
  ::setsockopt(socket_->impl()->sockfd(), IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
}

void Connection::writeAll(std::string_view first, std::string_view second,
                          Clock::time_point deadline) {
  // TLS writes records, not bytes: one buffer for small messages, two records otherwise.
  if (tls_) {
    constexpr size_t kCopyLimit = 64 * 1024;
    if (first.size() + second.size() <= kCopyLimit) {
      std::string whole;
      whole.reserve(first.size() + second.size());
      whole.append(first).append(second);
      writeAll(whole.data(), whole.size(), deadline);
      return;
    }
    writeAll(first.data(), first.size(), deadline);
    writeAll(second.data(), second.size(), deadline);
    return;
  }

  // Plain TCP: one sendmsg with both pieces; a short write continues where it stopped.
  try {
    const int fd = socket_->impl()->sockfd();
    iovec parts[2] = {{const_cast<char*>(first.data()), first.size()},
                      {const_cast<char*>(second.data()), second.size()}};
    size_t index = parts[0].iov_len == 0 ? 1 : 0;
    while (index < 2) {
      setSendDeadline(deadline);
      msghdr message{};
      message.msg_iov = parts + index;
      message.msg_iovlen = 2 - index;
      const ssize_t sent = ::sendmsg(fd, &message, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        throwErrno(errno, "sending");
      }
      size_t done = static_cast<size_t>(sent);
      while (index < 2 && done >= parts[index].iov_len) {
        done -= parts[index].iov_len;
        ++index;
      }
      if (index < 2) {
        parts[index].iov_base = static_cast<char*>(parts[index].iov_base) + done;
        parts[index].iov_len -= done;
      }
    }
  } catch (...) {
    rethrowAsNetError("sending");
  }
}

void Connection::writeAll(const char* data, size_t size, Clock::time_point deadline) {
  try {
    while (size > 0) {
      setSendDeadline(deadline);
      const int chunk = static_cast<int>(std::min<size_t>(size, 1u << 20));
      const int sent = socket_->sendBytes(data, chunk);
      if (sent <= 0) throw NetError(NetErrorKind::kReset, "connection reset");
      data += sent;
      size -= static_cast<size_t>(sent);
    }
  } catch (...) {
    rethrowAsNetError("sending");
  }
}

bool Connection::fillPlain(Clock::time_point deadline) {
  const int fd = socket_->impl()->sockfd();
  for (;;) {
    if (stop_ != nullptr && stop_->load()) throw NetError(NetErrorKind::kStopped, "stopped");

    // Take what the kernel holds first: under load the next bytes are usually there already,
    // and a read that finds them costs one system call instead of a poll and a read.
    const ssize_t n = ::recv(fd, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
    if (n > 0) {
      end_ = static_cast<size_t>(n);
      received_ += static_cast<uint64_t>(n);
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throwErrno(errno, "receiving");

    // Nothing yet: wait until readable, the deadline, or the next look at the stop flag.
    if (Clock::now() >= deadline) {
      throw NetError(NetErrorKind::kTimeout, "timeout while receiving", NetPhase::kReceiving);
    }
    if (quickAck_) armQuickAck();
    pollfd watch{fd, POLLIN, 0};
    if (::poll(&watch, 1, pollMillis(deadline, stop_ != nullptr)) < 0 && errno != EINTR) {
      throwErrno(errno, "receiving");
    }
  }
}

bool Connection::fill(Clock::time_point deadline) {
  if (begin_ < end_) return true;
  begin_ = end_ = 0;
  if (!tls_) return fillPlain(deadline);
  try {
    if (quickAck_) armQuickAck();
    for (;;) {
      if (stop_ != nullptr && stop_->load()) throw NetError(NetErrorKind::kStopped, "stopped");

      // TLS may hold decrypted bytes that poll() cannot see.
      const bool pending = socket_->available() > 0;
      Poco::Timespan left = remaining(deadline);
      if (!pending && left.totalMicroseconds() <= 0) throw Poco::TimeoutException();
      if (stop_ != nullptr) {
        left = std::min(left, Poco::Timespan(kStopPollSlice.count() * 1000));
      }
      if (!pending &&
          !socket_->poll(left, Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR)) {
        continue;
      }
      // Plain TCP cannot block after poll() said readable; TLS can (a partial record).
      if (tls_) socket_->setReceiveTimeout(std::max(remaining(deadline), Poco::Timespan(0, 1000)));
      const int n = socket_->receiveBytes(buffer_.data(), static_cast<int>(buffer_.size()));
      if (n <= 0) return false;
      end_ = static_cast<size_t>(n);
      received_ += static_cast<uint64_t>(n);
      return true;
    }
  } catch (...) {
    rethrowAsNetError("receiving");
  }
}

size_t Connection::read(char* out, size_t cap, Clock::time_point deadline) {
  if (!fill(deadline)) return 0;
  const size_t n = std::min(cap, end_ - begin_);
  std::copy(buffer_.data() + begin_, buffer_.data() + begin_ + n, out);
  begin_ += n;
  return n;
}

bool Connection::readLine(std::string& line, size_t maxBytes, Clock::time_point deadline) {
  line.clear();
  bool any = false;
  for (;;) {
    if (!fill(deadline)) {
      if (!any) return false;
      throw NetError(NetErrorKind::kClosed, "connection closed inside a line",
                     NetPhase::kReceiving);
    }
    any = true;
    const char* start = buffer_.data() + begin_;
    const char* stop = buffer_.data() + end_;
    const char* lf = std::find(start, stop, '\n');
    line.append(start, lf);
    begin_ += static_cast<size_t>(lf - start);
    if (line.size() > maxBytes) {
      throw NetError(NetErrorKind::kProtocol, "line longer than " + std::to_string(maxBytes),
                     NetPhase::kReceiving);
    }
    if (lf != stop) {
      ++begin_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return true;
    }
  }
}

bool Connection::stale() {
  if (begin_ < end_) return true;

  // Plain TCP: one peek tells both a close (0) and unsolicited bytes (> 0).
  if (!tls_) {
    char probe = 0;
    const ssize_t n =
        ::recv(socket_->impl()->sockfd(), &probe, 1, MSG_PEEK | MSG_DONTWAIT | MSG_NOSIGNAL);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }
  try {
    if (socket_->available() > 0) return true;
    return socket_->poll(Poco::Timespan(0),
                         Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR);
  } catch (...) {
    return true;
  }
}

}  // namespace anm::cli
