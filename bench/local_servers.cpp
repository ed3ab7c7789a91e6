// bench/local_servers.cpp: the HTTP servers the bench runs itself: the ceiling and the target.
// SPDX-License-Identifier: Apache-2.0
#include "local_servers.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>

#include <functional>
#include <string>
#include <utility>

#include "http_load.h"
#include "webhook_bodies.h"

namespace anm::bench {

namespace {

Poco::Net::HTTPServerParams* makeParams(const ServerSettings& s) {
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(s.maxThreads);
  params->setMaxQueued(s.maxQueued);
  params->setKeepAlive(s.keepAlive);
  params->setKeepAliveTimeout(Poco::Timespan(s.keepAliveTimeoutS, 0));
  return params;
}

std::string readBody(Poco::Net::HTTPServerRequest& req) {
  std::string body;
  if (req.getContentLength() > 0) body.reserve(static_cast<size_t>(req.getContentLength()));
  Poco::StreamCopier::copyToString(req.stream(), body);
  return body;
}

class CeilingHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit CeilingHandler(std::atomic<int64_t>& counter) : counter_(counter) {}

  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    std::string body = readBody(req);

    // An answer of the same shape and size as the edge's acknowledgement.
    std::string answer = "{\"ok\":true,\"id\":" + std::to_string(++counter_) + "}";
    resp.setContentType("application/json");
    resp.sendBuffer(answer.data(), answer.size());
  }

 private:
  std::atomic<int64_t>& counter_;
};

class CeilingFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new CeilingHandler(counter_);
  }

 private:
  std::atomic<int64_t> counter_{0};
};

}  // namespace

struct CeilingServer::Impl {
  Poco::Net::ServerSocket socket;
  std::unique_ptr<Poco::Net::HTTPServer> server;
};

CeilingServer::CeilingServer(const ServerSettings& settings) : impl_(new Impl) {
  impl_->socket.bind(Poco::Net::SocketAddress("127.0.0.1", 0), true);
  impl_->socket.listen(256);
  // HTTPServer takes ownership of the factory and the parameters.
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(new CeilingFactory, impl_->socket,
                                                          makeParams(settings));
  impl_->server->start();
}

CeilingServer::~CeilingServer() { impl_->server->stopAll(true); }

uint16_t CeilingServer::port() const { return impl_->socket.address().port(); }

struct TargetServer::Impl {
  int64_t firstSeq = 0;
  std::vector<std::atomic<int64_t>> arrivals;
  std::atomic<int64_t> total{0};
  std::atomic<int64_t> unique{0};
  std::atomic<int64_t> duplicates{0};
  std::atomic<int64_t> corrupted{0};
  std::atomic<int64_t> last{0};
  Poco::Net::ServerSocket socket;
  std::unique_ptr<Poco::Net::HTTPServer> server;

  void record(const std::string& body) {
    int64_t t = nowNs();
    ++total;
    last = t;

    // Only a body identical to the one sent for its number counts as delivered.
    auto seq = parseSeq(body);
    if (!seq || *seq < firstSeq || *seq >= firstSeq + static_cast<int64_t>(arrivals.size()) ||
        body != makeBody(*seq)) {
      ++corrupted;
      return;
    }
    int64_t expected = 0;
    if (arrivals[static_cast<size_t>(*seq - firstSeq)].compare_exchange_strong(expected, t)) {
      ++unique;
    } else {
      ++duplicates;
    }
  }
};

namespace {

using BodySink = std::function<void(const std::string&)>;

class TargetHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit TargetHandler(const BodySink& sink) : sink_(sink) {}

  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    sink_(readBody(req));
    resp.setContentType("text/plain");
    resp.sendBuffer("ok", 2);
  }

 private:
  const BodySink& sink_;
};

class TargetFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit TargetFactory(BodySink sink) : sink_(std::move(sink)) {}

  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new TargetHandler(sink_);
  }

 private:
  BodySink sink_;
};

}  // namespace

TargetServer::TargetServer(int64_t firstSeq, size_t capacity, int maxThreads) : impl_(new Impl) {
  impl_->firstSeq = firstSeq;
  impl_->arrivals = std::vector<std::atomic<int64_t>>(capacity);
  impl_->socket.bind(Poco::Net::SocketAddress("127.0.0.1", 0), true);
  impl_->socket.listen(256);
  ServerSettings settings;
  settings.maxThreads = maxThreads;
  // HTTPServer takes ownership of the factory and the parameters.
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(
      new TargetFactory([impl = impl_.get()](const std::string& body) { impl->record(body); }),
      impl_->socket, makeParams(settings));
  impl_->server->start();
}

TargetServer::~TargetServer() { impl_->server->stopAll(true); }

uint16_t TargetServer::port() const { return impl_->socket.address().port(); }

int64_t TargetServer::receivedAt(int64_t seq) const {
  if (seq < impl_->firstSeq ||
      seq >= impl_->firstSeq + static_cast<int64_t>(impl_->arrivals.size())) {
    return 0;
  }
  return impl_->arrivals[static_cast<size_t>(seq - impl_->firstSeq)].load();
}

int64_t TargetServer::total() const { return impl_->total; }
int64_t TargetServer::unique() const { return impl_->unique; }
int64_t TargetServer::duplicates() const { return impl_->duplicates; }
int64_t TargetServer::corrupted() const { return impl_->corrupted; }
int64_t TargetServer::lastArrivalNs() const { return impl_->last; }

}  // namespace anm::bench
