// core/edge/service_notify.cpp: the sd_notify(3) datagram protocol, without libsystemd.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/service_notify.h"

#include <Poco/Logger.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace anm::edge {
namespace {

Poco::Logger& notifyLog() { return Poco::Logger::get("anm.edge"); }

// A positive decimal number that is the whole of `text`, or 0.
unsigned long long parseUnsigned(const char* text) {
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0') return 0;
  return value;
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path != nullptr) socketPath_ = path;

  // The watchdog is meant for the process whose pid the manager gives, when it gives one.
  const unsigned long long usec = parseUnsigned(std::getenv("WATCHDOG_USEC"));
  const unsigned long long pid = parseUnsigned(std::getenv("WATCHDOG_PID"));
  const bool forUs = pid == 0 || pid == static_cast<unsigned long long>(::getpid());
  if (usec > 0 && forUs) {
    watchdog_ = std::chrono::milliseconds(std::max<unsigned long long>(usec / 2000, 1));
  }
}

bool ServiceNotifier::notify(std::string_view state) {
  if (socketPath_.empty()) return false;

  // Only absolute paths and abstract names (a leading '@', sent as a NUL) are valid.
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const bool abstract = socketPath_[0] == '@';
  if ((!abstract && socketPath_[0] != '/') || socketPath_.size() >= sizeof(address.sun_path)) {
    if (!warned_) {
      notifyLog().warning("could not notify the service manager reason=bad_socket_path path=%s",
                          socketPath_);
      warned_ = true;
    }
    return false;
  }
  std::memcpy(address.sun_path, socketPath_.data(), socketPath_.size());
  if (abstract) address.sun_path[0] = '\0';
  const socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socketPath_.size());

  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address), length);
  const int error = errno;
  ::close(fd);
  if (sent == static_cast<ssize_t>(state.size())) return true;

  if (!warned_) {
    notifyLog().warning("could not notify the service manager path=%s reason=\"%s\"", socketPath_,
                        std::string(std::strerror(error)));
    warned_ = true;
  }
  return false;
}

std::string monotonicUsecField() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  return "MONOTONIC_USEC=" + std::to_string(usec);
}

}  // namespace anm::edge
