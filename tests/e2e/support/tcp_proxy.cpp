// tests/e2e/support/tcp_proxy.cpp: a TCP proxy between relay and edge that can cut the line.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/support/tcp_proxy.h"

#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Timespan.h>

namespace anm::e2e {

namespace {

// How often blocked loops look at the stop flag.
const Poco::Timespan kPollSlice(0, 50000);

// Bytes copied per read; small enough to keep SSE frames flowing promptly.
constexpr int kCopyBytes = 16384;

bool sendAllBytes(Poco::Net::StreamSocket& to, const char* buffer, int n) {
  int sent = 0;
  while (sent < n) {
    int m = to.sendBytes(buffer + sent, n - sent);
    if (m <= 0) return false;
    sent += m;
  }
  return true;
}

std::string lowerAscii(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

bool copyOnce(Poco::Net::StreamSocket& from, Poco::Net::StreamSocket& to) {
  char buffer[kCopyBytes];
  int n = from.receiveBytes(buffer, kCopyBytes);
  if (n <= 0) return false;
  return sendAllBytes(to, buffer, n);
}

}  // namespace

TcpProxy::TcpProxy(uint16_t upstreamPort)
    : upstreamPort_(upstreamPort), listener_(Poco::Net::SocketAddress("127.0.0.1", 0), 64) {
  port_ = listener_.address().port();
  acceptor_ = std::thread([this] { acceptLoop(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::unique_ptr<Link>> links;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    links.swap(links_);
  }
  for (auto& link : links) {
    cut(*link);
    if (link->pump.joinable()) link->pump.join();
  }
  listener_.close();
}

void TcpProxy::cut(Link& link) {
  // shutdown() wakes the pump thread's select at once and the pump then ends.
  for (auto* socket : {&link.client, &link.upstream}) {
    try {
      socket->shutdown();
    } catch (...) {
      // The other side may have closed first.
    }
  }
}

void TcpProxy::cutWhenClientSends(const std::string& pattern, bool deliverFirst) {
  std::lock_guard<std::mutex> lock(mutex_);
  trap_ = lowerAscii(pattern);
  trapDelivers_ = deliverFirst;
}

bool TcpProxy::forwardFromClient(Link& link) {
  char buffer[kCopyBytes];
  int n = link.client.receiveBytes(buffer, kCopyBytes);
  if (n <= 0) return false;

  // The trap looks at each read as a whole; the protocols it is aimed at send a short
  // command in one segment on loopback.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!trap_.empty() &&
        lowerAscii(std::string(buffer, static_cast<size_t>(n))).find(trap_) != std::string::npos) {
      trap_.clear();
      ++trapsSprung_;
      if (trapDelivers_) sendAllBytes(link.upstream, buffer, n);
      return false;
    }
  }
  return sendAllBytes(link.upstream, buffer, n);
}

void TcpProxy::setDown(bool down) {
  down_ = down;
  if (!down) return;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& link : links_) cut(*link);
}

size_t TcpProxy::openConnections() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t open = 0;
  for (const auto& link : links_) open += link->done ? 0 : 1;
  return open;
}

void TcpProxy::acceptLoop() {
  while (!stop_) {
    if (!listener_.poll(kPollSlice, Poco::Net::Socket::SELECT_READ)) continue;
    Poco::Net::StreamSocket client;
    try {
      client = listener_.acceptConnection();
    } catch (const Poco::Exception&) {
      continue;
    }

    // While down, a new connection is accepted and closed straight away: the peer sees a
    // refusal after connecting, as behind a broken NAT.
    if (down_) {
      ++refused_;
      client.close();
      continue;
    }

    auto link = std::make_unique<Link>();
    link->client = client;
    try {
      link->upstream.connect(Poco::Net::SocketAddress("127.0.0.1", upstreamPort_),
                             Poco::Timespan(5, 0));
    } catch (const Poco::Exception&) {
      client.close();
      continue;
    }
    link->client.setNoDelay(true);
    link->upstream.setNoDelay(true);
    ++accepted_;
    std::lock_guard<std::mutex> lock(mutex_);
    Link* raw = link.get();
    link->pump = std::thread([this, raw] { pump(*raw); });
    links_.push_back(std::move(link));
  }
}

void TcpProxy::pump(Link& link) {
  try {
    while (!stop_) {
      Poco::Net::Socket::SocketList readable{link.client, link.upstream};
      Poco::Net::Socket::SocketList writable;
      Poco::Net::Socket::SocketList failed{link.client, link.upstream};
      if (Poco::Net::Socket::select(readable, writable, failed, kPollSlice) == 0) continue;
      if (!failed.empty()) break;
      bool open = true;
      for (auto& socket : readable) {
        if (socket == link.client) {
          open = open && forwardFromClient(link);
        } else {
          open = open && copyOnce(link.upstream, link.client);
        }
      }
      if (!open) break;
    }
  } catch (const Poco::Exception&) {
    // Reset by either side: the link is over.
  }

  // Shutting both directions makes either side see what the other side saw. The descriptors
  // stay open until the proxy is destroyed, so a concurrent cut() never hits a reused one.
  cut(link);
  link.done = true;
}

}  // namespace anm::e2e
