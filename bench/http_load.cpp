// bench/http_load.cpp: a load generator over raw keep-alive HTTP/1.1 connections to loopback.
// SPDX-License-Identifier: Apache-2.0
#include "http_load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

namespace anm::bench {

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

bool iequalsPrefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Connects a TCP socket to 127.0.0.1:port; the connect is blocking because loopback answers
// at once, the socket is non-blocking afterwards when asked.
int connectLoopback(uint16_t port, bool nonBlocking, std::string& error) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (nonBlocking) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

constexpr int kMaxConnectFailures = 100;

struct Connection {
  int fd = -1;
  int index = 0;
  uint16_t port = 0;
  bool busy = false;
  int64_t seq = 0;
  std::string out;
  size_t outOff = 0;
  std::string in;
  int64_t answeredInWindow = 0;
};

struct Shared {
  const LoadPlan* plan = nullptr;
  std::atomic<int64_t> nextSeq{0};
  std::atomic<int64_t> remaining{0};
  int64_t startNs = 0;
  int64_t windowStartNs = 0;
  int64_t sendEndNs = 0;
  std::mutex mutex;  // guards result
  LoadResult result;
  std::vector<int64_t> perConnection;
  int64_t firstSendNs = std::numeric_limits<int64_t>::max();
  int64_t lastSendNs = 0;
};

class Worker {
 public:
  Worker(Shared& shared, int id, int threads) : shared_(shared), plan_(*shared.plan) {
    for (int i = id; i < plan_.connections; i += threads) {
      Connection c;
      c.index = i;
      c.port = plan_.ports.empty() ? plan_.port
                                   : plan_.ports[static_cast<size_t>(i) % plan_.ports.size()];
      conns_.push_back(std::move(c));
    }
    if (plan_.ratePerSec > 0 && !conns_.empty()) {
      intervalNs_ = 1e9 * threads / plan_.ratePerSec;
      // Threads start their schedules staggered so that the sum is evenly spaced.
      nextDueNs_ = shared_.startNs + intervalNs_ * id / threads;
    }
  }

  void run() {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    for (auto& c : conns_) open(c);

    // Main loop: start requests while sending is allowed, then wait for socket events.
    std::vector<epoll_event> events(conns_.size() + 1);
    while (true) {
      int64_t now = nowNs();
      bool sending = now < shared_.sendEndNs && shared_.remaining.load() > 0 &&
                     connectFailures_ < kMaxConnectFailures;
      if (!sending && inFlight_ == 0) break;
      if (!sending && now > shared_.sendEndNs + plan_.drainTimeout.count()) {
        local_.unanswered += inFlight_;
        break;
      }
      if (sending) startDue(now);

      // Paced runs wake for the next due slot (millisecond granularity: a send is at most
      // about 1 ms late, and its real time is what onSent records).
      int timeoutMs = 50;
      if (sending && plan_.ratePerSec > 0 && hasIdle()) {
        double waitMs = (nextDueNs_ - static_cast<double>(nowNs())) / 1e6;
        timeoutMs = waitMs <= 0 ? 0 : std::min(50, static_cast<int>(waitMs) + 1);
      }
      int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeoutMs);
      for (int i = 0; i < n; ++i) {
        Connection& c = conns_[events[i].data.u32];
        if (events[i].events & EPOLLOUT) flush(c);
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) readFrom(c);
      }
    }

    for (auto& c : conns_) closeConn(c);
    ::close(epoll_);
    merge();
  }

 private:
  bool hasIdle() const {
    for (const auto& c : conns_) {
      if (c.fd >= 0 && !c.busy) return true;
    }
    return false;
  }

  void open(Connection& c) {
    // A server that refuses connections ends the attempt instead of being retried forever.
    if (connectFailures_ >= kMaxConnectFailures) return;
    std::string error;
    c.fd = connectLoopback(c.port, true, error);
    c.busy = false;
    c.in.clear();
    if (c.fd < 0) {
      ++connectFailures_;
      noteError(error);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(&c - conns_.data());
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
  }

  void closeConn(Connection& c) {
    if (c.fd < 0) return;
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
  }

  void noteError(const std::string& error) {
    if (firstError_.empty()) firstError_ = error;
  }

  // Closed loop: every idle connection sends. Paced: one send per due slot, on any idle
  // connection; a slot with no idle connection waits for one and counts as late.
  void startDue(int64_t now) {
    if (plan_.ratePerSec <= 0) {
      for (auto& c : conns_) {
        if (c.fd < 0) open(c);
        if (c.fd >= 0 && !c.busy && !start(c)) return;
      }
      return;
    }
    while (nextDueNs_ <= now) {
      Connection* idle = nullptr;
      for (auto& c : conns_) {
        if (c.fd < 0) open(c);
        if (c.fd >= 0 && !c.busy) {
          idle = &c;
          break;
        }
      }
      if (idle == nullptr) return;
      if (now - nextDueNs_ > 2000000) ++local_.lateSends;
      if (!start(*idle)) return;
      nextDueNs_ += intervalNs_;
    }
  }

  bool start(Connection& c) {
    if (shared_.remaining.fetch_sub(1) <= 0) return false;
    c.seq = shared_.nextSeq.fetch_add(1);
    c.out = plan_.makeRequestTo ? plan_.makeRequestTo(c.seq, c.port) : plan_.makeRequest(c.seq);
    c.outOff = 0;
    c.busy = true;
    ++inFlight_;
    int64_t t = nowNs();
    if (plan_.onSent) plan_.onSent(c.seq, t);
    firstSend_ = std::min(firstSend_, t);
    lastSend_ = t;
    ++local_.sent;
    flush(c);
    return true;
  }

  void flush(Connection& c) {
    while (c.fd >= 0 && c.outOff < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.outOff, c.out.size() - c.outOff, MSG_NOSIGNAL);
      if (n > 0) {
        c.outOff += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        setWantWrite(c, true);
        return;
      }
      lost(c, std::string("send: ") + std::strerror(errno));
      return;
    }
    if (c.fd >= 0) setWantWrite(c, false);
  }

  void setWantWrite(Connection& c, bool on) {
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u32 = static_cast<uint32_t>(&c - conns_.data());
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  // The connection died: an outstanding request has an unknown fate and counts as failed.
  void lost(Connection& c, const std::string& why) {
    if (c.busy) {
      ++local_.failed;
      --inFlight_;
      noteError(why);
    }
    closeConn(c);
    c.busy = false;
  }

  void readFrom(Connection& c) {
    char buf[16384];
    while (c.fd >= 0) {
      ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      consume(c);
      lost(c,
           n == 0 ? "server closed the connection" : std::string("recv: ") + std::strerror(errno));
      return;
    }
    consume(c);
  }

  void consume(Connection& c) {
    while (c.fd >= 0 && !c.in.empty()) {
      ParsedResponse r;
      long used = parseResponse(c.in, r);
      if (used == 0) return;
      if (used < 0 || !c.busy) {
        lost(c, used < 0 ? "answer is not HTTP" : "answer without a request");
        return;
      }
      c.in.erase(0, static_cast<size_t>(used));
      c.busy = false;
      --inFlight_;
      int64_t t = nowNs();
      if (r.status >= 200 && r.status < 300) {
        ++local_.acked;
        if (t >= shared_.windowStartNs && t <= shared_.sendEndNs) {
          ++local_.ackedInWindow;
          ++local_.ackedInWindowByPort[c.port];
          ++c.answeredInWindow;
        }
      } else {
        ++local_.rejected;
        if (local_.rejected == 1) noteError("status " + std::to_string(r.status) + ": " + r.body);
      }
      ++local_.statuses[r.status];
      if (plan_.onResponse) plan_.onResponse(c.seq, r.status, r.body);
      if (r.close) {
        closeConn(c);
        return;
      }
      if (plan_.ratePerSec <= 0 && nowNs() < shared_.sendEndNs) start(c);
    }
  }

  void merge() {
    std::lock_guard<std::mutex> lock(shared_.mutex);
    LoadResult& r = shared_.result;
    r.sent += local_.sent;
    r.acked += local_.acked;
    r.rejected += local_.rejected;
    r.failed += local_.failed;
    r.unanswered += local_.unanswered;
    r.ackedInWindow += local_.ackedInWindow;
    r.lateSends += local_.lateSends;
    for (auto& [status, count] : local_.statuses) r.statuses[status] += count;
    for (auto& [port, count] : local_.ackedInWindowByPort) r.ackedInWindowByPort[port] += count;
    if (r.firstError.empty()) r.firstError = firstError_;
    for (auto& c : conns_) shared_.perConnection.push_back(c.answeredInWindow);
    shared_.firstSendNs = std::min(shared_.firstSendNs, firstSend_);
    shared_.lastSendNs = std::max(shared_.lastSendNs, lastSend_);
  }

  Shared& shared_;
  const LoadPlan& plan_;
  std::vector<Connection> conns_;
  int epoll_ = -1;
  int64_t inFlight_ = 0;
  double intervalNs_ = 0;
  double nextDueNs_ = 0;
  int64_t firstSend_ = std::numeric_limits<int64_t>::max();
  int64_t lastSend_ = 0;
  LoadResult local_;
  std::string firstError_;
  int connectFailures_ = 0;
};

}  // namespace

long parseResponse(std::string_view buf, ParsedResponse& out) {
  size_t headEnd = buf.find("\r\n\r\n");
  if (headEnd == std::string_view::npos) return buf.size() > 65536 ? -1 : 0;
  std::string_view head = buf.substr(0, headEnd);
  if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return -1;
  out.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  out.close = head.substr(0, 8) == "HTTP/1.0";

  // Headers that decide where the body ends and whether the connection stays open.
  long contentLength = -1;
  bool chunked = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    size_t next = head.find("\r\n", pos + 2);
    std::string_view line =
        head.substr(pos + 2, (next == std::string_view::npos ? head.size() : next) - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view value = trim(line.substr(colon + 1));
      if (iequalsPrefix(line, "content-length:")) {
        contentLength = std::atol(std::string(value).c_str());
      } else if (iequalsPrefix(line, "transfer-encoding:")) {
        chunked = value.find("chunked") != std::string_view::npos;
      } else if (iequalsPrefix(line, "connection:")) {
        std::string v(value);
        std::transform(v.begin(), v.end(), v.begin(), ::tolower);
        if (v == "close") out.close = true;
        if (v == "keep-alive") out.close = false;
      }
    }
    pos = next;
  }
  size_t bodyStart = headEnd + 4;

  if (chunked) {
    std::string body;
    size_t at = bodyStart;
    while (true) {
      size_t lineEnd = buf.find("\r\n", at);
      if (lineEnd == std::string_view::npos) return 0;
      long size = std::strtol(std::string(buf.substr(at, lineEnd - at)).c_str(), nullptr, 16);
      if (size < 0) return -1;
      at = lineEnd + 2;
      if (size == 0) {
        // No trailers are expected; the last chunk is followed by one empty line.
        if (buf.size() < at + 2) return 0;
        out.body = std::move(body);
        return static_cast<long>(at + 2);
      }
      if (buf.size() < at + static_cast<size_t>(size) + 2) return 0;
      body.append(buf.substr(at, static_cast<size_t>(size)));
      at += static_cast<size_t>(size) + 2;
    }
  }
  if (contentLength < 0) {
    // No length and no chunking: only 1xx/204/304 have no body; others are not expected.
    if (out.status == 204 || out.status == 304) return static_cast<long>(bodyStart);
    return -1;
  }
  if (buf.size() < bodyStart + static_cast<size_t>(contentLength)) return 0;
  out.body = std::string(buf.substr(bodyStart, static_cast<size_t>(contentLength)));
  return static_cast<long>(bodyStart + static_cast<size_t>(contentLength));
}

LoadResult runLoad(const LoadPlan& plan) {
  Shared shared;
  shared.plan = &plan;
  shared.nextSeq = plan.firstSeq;
  shared.remaining =
      plan.maxRequests < 0 ? std::numeric_limits<int64_t>::max() / 2 : plan.maxRequests;
  shared.startNs = nowNs();
  shared.windowStartNs = shared.startNs + plan.warmup.count();
  shared.sendEndNs = shared.windowStartNs + plan.duration.count();

  // One worker per client thread, each with its share of the connections.
  int threads = std::max(1, std::min(plan.threads, plan.connections));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&shared, t, threads] { Worker(shared, t, threads).run(); });
  }
  for (auto& th : pool) th.join();
  int64_t endNs = nowNs();

  LoadResult r = std::move(shared.result);
  r.windowSeconds = (std::min(endNs, shared.sendEndNs) - shared.windowStartNs) / 1e9;
  if (shared.lastSendNs > shared.firstSendNs) {
    r.sendSeconds = (shared.lastSendNs - shared.firstSendNs) / 1e9;
  }
  if (!shared.perConnection.empty()) {
    auto [mn, mx] = std::minmax_element(shared.perConnection.begin(), shared.perConnection.end());
    r.minPerConnection = *mn;
    r.maxPerConnection = *mx;
  }
  return r;
}

SimpleResponse httpRequest(uint16_t port, const std::string& method, const std::string& target,
                           const std::string& body, const std::string& bearer,
                           std::chrono::milliseconds timeout) {
  SimpleResponse out;
  int fd = connectLoopback(port, false, out.error);
  if (fd < 0) return out;
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

  // The request as one write; the API answers are small.
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\n";
  if (!bearer.empty()) req += "Authorization: Bearer " + bearer + "\r\n";
  if (!body.empty() || method == "POST") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  size_t off = 0;
  while (off < req.size()) {
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      out.error = std::string("send: ") + std::strerror(errno);
      ::close(fd);
      return out;
    }
    off += static_cast<size_t>(n);
  }

  // Read until a whole answer has arrived or the server closed.
  std::string in;
  char buf[16384];
  while (true) {
    ParsedResponse r;
    long used = parseResponse(in, r);
    if (used > 0) {
      out.status = r.status;
      out.body = std::move(r.body);
      break;
    }
    if (used < 0) {
      out.error = "answer is not HTTP";
      break;
    }
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      out.error =
          n == 0 ? "server closed before answering" : std::string("recv: ") + std::strerror(errno);
      break;
    }
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace anm::bench
