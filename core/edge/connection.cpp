// core/edge/connection.cpp: the HTTP connection loop of the edge: framing, limits and fairness.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/connection.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/NetException.h>
#include <Poco/Timespan.h>
#include <Poco/Timestamp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/edge/api_support.h"
#include "core/edge/raw_head.h"
#include "core/edge/recording_socket.h"
#include "core/edge/tls.h"

namespace anm::edge {
namespace {

// After refusing a request the rest of it is read and dropped (at most this much, for at most
// half a second) so that the close does not reset the connection before the client has read
// the answer.
constexpr int kLingerBytes = 1 << 20;
constexpr long kLingerMicroseconds = 500000;

// POCO reports every malformed head as MessageException; its text tells the limits apart.
int statusForHeadError(const std::string& message) {
  if (message.find("URI") != std::string::npos) return 414;
  if (message.find("header fields") != std::string::npos ||
      message.find("too long") != std::string::npos) {
    return 431;
  }
  return 400;
}

// A receive timeout inside POCO's header stream surfaces as a parse error; the session keeps
// the network exception that caused it.
bool timedOut(const EdgeSession& session) {
  return dynamic_cast<const Poco::TimeoutException*>(session.networkException()) != nullptr;
}

// POCO splits the request line on runs of whitespace (RFC 9112 3 allows that), so a line with
// extra spaces is still this request's when its words are the parsed ones. The raw head is then
// handed on with the canonical line, which is what raw_head compares against.
std::string_view matchHead(std::string_view head, const Poco::Net::HTTPRequest& request,
                           std::string& storage) {
  const auto lineEnd = head.find('\n');
  if (lineEnd == std::string_view::npos) return head;
  std::string_view line = head.substr(0, lineEnd);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const std::string canonical =
      request.getMethod() + " " + request.getURI() + " " + request.getVersion();
  if (line == canonical) return head;

  std::vector<std::string_view> words;
  size_t pos = 0;
  while (pos < line.size()) {
    const auto start = line.find_first_not_of(" \t", pos);
    if (start == std::string_view::npos) break;
    const auto stop = std::min(line.find_first_of(" \t", start), line.size());
    words.push_back(line.substr(start, stop - start));
    pos = stop;
  }
  if (words.size() != 3 || words[0] != request.getMethod() || words[1] != request.getURI() ||
      words[2] != request.getVersion()) {
    return head;
  }
  storage = canonical;
  storage.append(head.substr(line.size()));
  return storage;
}

int64_t steadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

/// The request deadlines of one server's connections, watched by one thread. When a deadline
/// passes, the connection's socket gets a receive timeout of 1 ms: a sender that trickles
/// bytes then fails at its next pause, which the head and body readers already answer with
/// 408. A sender that stops completely is caught by the per-read timeout, which the
/// connection keeps at most as long as the deadline.
class RequestDeadlines {
 public:
  struct Ticket {
    int64_t atNs = 0;
    uint64_t id = 0;
  };

  explicit RequestDeadlines(std::chrono::milliseconds limit)
      : limit_(limit), thread_([this] { run(); }) {}

  ~RequestDeadlines() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  std::chrono::milliseconds limit() const { return limit_; }

  /// Starts the clock of one request on `socket`.
  Ticket arm(const Poco::Net::StreamSocket& socket) {
    std::unique_lock<std::mutex> lock(mutex_);
    const Ticket ticket{steadyNowNs() + limit_.count() * 1000000, ++nextId_};
    pending_.emplace(std::make_pair(ticket.atNs, ticket.id), socket);

    // The watcher sleeps until the earliest deadline; only a new earliest one must wake it.
    const bool earliest = pending_.begin()->first.second == ticket.id;
    lock.unlock();
    if (earliest) wake_.notify_one();
    return ticket;
  }

  /// Forgets the ticket; true when its deadline had passed.
  bool disarm(const Ticket& ticket) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_.erase(std::make_pair(ticket.atNs, ticket.id)) > 0) return false;
    return expired_.erase(ticket.id) > 0;
  }

  bool expired(const Ticket& ticket) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return expired_.count(ticket.id) > 0;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      if (pending_.empty()) {
        wake_.wait(lock);
        continue;
      }
      const auto first = pending_.begin();
      const int64_t waitNs = first->first.first - steadyNowNs();
      if (waitNs > 0) {
        wake_.wait_for(lock, std::chrono::nanoseconds(waitNs));
        continue;
      }

      // NOTE: the socket object keeps its descriptor alive until the connection disarms the
      // ticket, which it does before it closes or hands the socket over.
      const poco_socket_t fd = first->second.impl()->sockfd();
      if (fd != POCO_INVALID_SOCKET) {
        timeval shortWait{0, 1000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &shortWait, sizeof(shortWait));
      }
      expired_.insert(first->first.second);
      pending_.erase(first);
    }
  }

  const std::chrono::milliseconds limit_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::pair<int64_t, uint64_t>, Poco::Net::StreamSocket> pending_;
  std::set<uint64_t> expired_;
  uint64_t nextId_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

namespace {

/// The deadline of the request a connection is reading; released at the latest when the
/// request is done, and then the connection's own receive timeout comes back.
class DeadlineGuard {
 public:
  DeadlineGuard(RequestDeadlines& deadlines, Poco::Net::StreamSocket& socket,
                Poco::Timespan readTimeout)
      : deadlines_(deadlines),
        socket_(socket),
        readTimeout_(readTimeout),
        ticket_(deadlines.arm(socket)) {}

  ~DeadlineGuard() { release(); }

  DeadlineGuard(const DeadlineGuard&) = delete;
  DeadlineGuard& operator=(const DeadlineGuard&) = delete;

  void release() {
    if (!armed_) return;
    armed_ = false;
    expired_ = deadlines_.disarm(ticket_);
    if (!expired_) return;
    try {
      socket_.setReceiveTimeout(readTimeout_);
    } catch (const Poco::Exception&) {
      // The socket is gone; the connection ends anyway.
    }
  }

  bool expired() const { return expired_ || (armed_ && deadlines_.expired(ticket_)); }

  /// What a client whose head timed out is told.
  std::string headTimeoutError() const {
    if (!expired()) return errorJson("the request head stopped arriving");
    return errorJson("the request did not arrive within " +
                     std::to_string(deadlines_.limit().count()) + " ms");
  }

 private:
  RequestDeadlines& deadlines_;
  Poco::Net::StreamSocket& socket_;
  Poco::Timespan readTimeout_;
  RequestDeadlines::Ticket ticket_;
  bool armed_ = true;
  bool expired_ = false;
};

}  // namespace

bool ConnectionSet::othersWaiting() const {
  const Poco::Net::TCPServer* server = server_.load();
  return server != nullptr && server->queuedConnections() > 0 &&
         server->currentThreads() >= server->maxThreads();
}

void ConnectionSet::add(EdgeConnection* connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.insert(connection);
}

void ConnectionSet::remove(EdgeConnection* connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.erase(connection);
  busy_.erase(connection);
  if (connections_.empty()) emptied_.notify_all();
}

bool ConnectionSet::waitUntilEmpty(std::chrono::milliseconds within) {
  std::unique_lock<std::mutex> lock(mutex_);
  return emptied_.wait_for(lock, within, [this] { return connections_.empty(); });
}

size_t ConnectionSet::abortAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto* connection : connections_) connection->abort();
  return connections_.size();
}

void ConnectionSet::stopAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = true;
  for (auto* connection : connections_) {
    if (busy_.count(connection) == 0) connection->wake();
  }
}

bool ConnectionSet::markBusy(EdgeConnection* connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return false;
  busy_.insert(connection);
  return true;
}

void ConnectionSet::markIdle(EdgeConnection* connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  busy_.erase(connection);
}

EdgeConnection::EdgeConnection(const Poco::Net::StreamSocket& socket,
                               Poco::Net::HTTPServerParams::Ptr params, Router& router,
                               ConnectionSet& connections,
                               std::shared_ptr<RequestDeadlines> deadlines)
    : TCPServerConnection(socket),
      params_(params),
      router_(router),
      connections_(connections),
      deadlines_(std::move(deadlines)) {
  // Answers and stream heads are small writes that must not wait for the client's delayed
  // ACK; a stream keeps the setting when the hub takes its socket over.
  try {
    this->socket().setNoDelay(true);
  } catch (const Poco::Exception& e) {
    httpLog().warning("could not disable nagle error=\"%s\"", e.displayText());
  }
}

void EdgeConnection::wake() {
  try {
    socket().shutdownReceive();
  } catch (const Poco::Exception&) {
    // Already closed by the peer: nothing left to wake.
  }
}

void EdgeConnection::abort() {
  try {
    socket().shutdown();
  } catch (const Poco::Exception&) {
    // Already closed: the thread is on its way out.
  }
}

void EdgeConnection::run() {
  connections_.add(this);
  try {
    serve();
  } catch (const Poco::Exception& e) {
    if (httpLog().debug()) httpLog().debug("connection ended error=\"%s\"", e.displayText());
  } catch (const std::exception& e) {
    httpLog().error("connection failed error=\"%s\"", std::string(e.what()));
  }
  connections_.remove(this);
}

void EdgeConnection::serve() {
  // TLS first, on this thread, so that a client stalling in the handshake holds no accepting
  // thread.
  if (socket().secure() && !startTls()) return;
  auto* recorder = dynamic_cast<HeadRecorder*>(socket().impl());
  EdgeSession session(socket(), params_);

  // POCO's session bounds only receives; a client that stops reading its answer must not keep
  // the thread either. No single read may outlast the whole request's deadline.
  socket().setReceiveTimeout(readTimeout());
  socket().setSendTimeout(params_->getTimeout());

  bool first = true;
  while (!connections_.stopping()) {
    if (!awaitRequest(session, first)) break;
    if (!session.hasMoreRequests()) break;
    first = false;
    if (!connections_.markBusy(this)) break;

    // The next head starts with whatever the session already holds unread (pipelining).
    if (recorder != nullptr) recorder->restart(static_cast<size_t>(session.pendingBytes()));
    session.beginRequest();
    const After after = serveOne(session, recorder);
    connections_.markIdle(this);

    // Only now, with the response object gone, has POCO written all of the answer out.
    if (after == After::kLingerAndClose) lingerClose();
    if (after != After::kNextRequest) break;
  }
}

bool EdgeConnection::startTls() {
  // A TLS client speaks first. Until its first bytes arrive the connection is idle like a
  // kept-alive one and gives its thread up to connections waiting for one: otherwise a few
  // dozen connections that send nothing would hold every thread for http.timeout_ms each.
  // The wait and the handshake together get one timeout from the accept on.
  const Poco::Timestamp accepted;
  const Poco::Timespan limit = params_->getTimeout();
  if (!awaitBytes(limit, true)) return false;
  if (refusePlainHttp(socket())) return false;

  // Known limit: a client that sends its hello a byte at a time still holds this thread until the
  // timeout, as a trickled request head does until http.request_timeout_ms: only a reader that
  // does not block a thread per connection would free it.
  return completeServerHandshake(socket(), limit - Poco::Timespan(accepted.elapsed()));
}

bool EdgeConnection::awaitRequest(EdgeSession& session, bool first) {
  if (session.pendingBytes() > 0) return true;

  // A fresh connection was opened to send a request, so it gets the request timeout; between
  // requests the keep-alive timeout applies.
  const Poco::Timespan limit = first ? params_->getTimeout() : params_->getKeepAliveTimeout();
  if (!awaitBytes(limit, first)) return false;
  return first || receiveHead(session);
}

bool EdgeConnection::awaitBytes(Poco::Timespan limit, bool logSlow) {
  // Short polls, so that a connection queued behind this idle one gets the thread within one.
  const Poco::Timestamp start;
  while (!connections_.stopping()) {
    if (readable(kIdlePollMicroseconds / 1000)) return true;
    if (start.isElapsed(limit.totalMicroseconds())) {
      if (logSlow) logSlowClient(start.elapsed() / 1000);
      return false;
    }
    if (connections_.othersWaiting()) {
      // Closing an idle connection loses nothing: the client opens a new one.
      if (httpLog().debug()) {
        httpLog().debug("idle connection closed for a waiting one peer=%s",
                        socket().peerAddress().toString());
      }
      return false;
    }
  }
  return false;
}

bool EdgeConnection::readable(int timeoutMs) {
  // OpenSSL may already hold decrypted bytes of the next request, which poll(2) cannot see.
  if (bufferedTlsBytes(socket()) > 0) return true;

  // One poll(2) call: POCO's Socket::poll makes, arms and closes an epoll set each time, which
  // is four system calls for every request on a keep-alive connection.
  pollfd entry{};
  entry.fd = socket().impl()->sockfd();
  entry.events = POLLIN;
  int ready = -1;
  if (entry.fd != POCO_INVALID_SOCKET) {
    do {
      ready = ::poll(&entry, 1, timeoutMs);
    } while (ready < 0 && errno == EINTR);
  }
  if (ready >= 0) return ready > 0;

  // A closed or unusable socket: POCO's poll turns that into the matching exception.
  return socket().poll(Poco::Timespan(0, 0),
                       Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR);
}

bool EdgeConnection::receiveHead(EdgeSession& session) {
  // Receiving now, rather than in the head parser, leaves the bytes buffered, so that
  // hasMoreRequests does not poll the socket a second time (it does for a connection's first
  // request whatever is buffered, hence only later requests come here). The recorder keeps the
  // tail of this receive (at most one session buffer), which restart() records as the head.
  try {
    return session.receivePending() > 0;
  } catch (const Poco::Exception& e) {
    // The peer reset the connection: nobody is left to answer.
    if (httpLog().debug()) httpLog().debug("connection ended error=\"%s\"", e.displayText());
    return false;
  }
}

EdgeConnection::After EdgeConnection::serveOne(EdgeSession& session, HeadRecorder* recorder) {
  const Poco::Timestamp headStart;
  // From the first byte on, head and body together must arrive within the deadline.
  DeadlineGuard deadline(*deadlines_, socket(), readTimeout());
  Poco::Net::HTTPServerResponseImpl response(session);
  std::unique_ptr<Poco::Net::HTTPServerRequestImpl> request;
  try {
    request = std::make_unique<Poco::Net::HTTPServerRequestImpl>(response, session, params_);
  } catch (const Poco::Net::NoMessageException&) {
    if (timedOut(session)) logSlowClient(headStart.elapsed() / 1000);
    return After::kClose;
  } catch (const Poco::Net::MessageException& e) {
    // POCO's header stream turns a receive timeout into a malformed head; the session knows.
    if (timedOut(session)) {
      logSlowClient(headStart.elapsed() / 1000);
      refuse(session, 408, deadline.headTimeoutError());
      return After::kClose;
    }
    refuseHead(session, e, recorder);
    return After::kClose;
  } catch (const Poco::TimeoutException&) {
    logSlowClient(headStart.elapsed() / 1000);
    refuse(session, 408, deadline.headTimeoutError());
    return After::kClose;
  } catch (const Poco::Net::NetException&) {
    // Reading the request line through an istream reports a timeout as a stream error.
    if (timedOut(session)) {
      logSlowClient(headStart.elapsed() / 1000);
      refuse(session, 408, deadline.headTimeoutError());
    }
    return After::kClose;
  } catch (const Poco::SyntaxException&) {
    // The only number POCO parses while reading a request is its Content-Length.
    refuseMalformed(session, 400,
                    errorJson("content-length must be 1 to " +
                              std::to_string(kMaxContentLengthDigits) + " digits"));
    return After::kClose;
  }

  // The head is complete here: this is the moment the webhook arrived.
  RequestContext context;
  context.receivedAtMs = nowMs();
  context.receivedAt = std::chrono::steady_clock::now();
  std::string canonicalHead;
  if (recorder != nullptr) context.rawHead = matchHead(recorder->head(), *request, canonicalHead);

  // Framing is settled before any handler runs, so no route can read a body two ways.
  const FramingCheck framing = checkFraming(*request);
  if (framing.status != 0) {
    if (httpLog().debug()) {
      httpLog().debug("request framing refused status=%s error=\"%s\"",
                      std::to_string(framing.status), framing.error);
    }
    refuseMalformed(session, framing.status, errorJson(framing.error));
    return After::kClose;
  }

  // A method or target that could not be relayed byte for byte is refused whatever route it
  // names.
  const std::string lineProblem = requestLineRefusal(context.rawHead, request->getMethod(),
                                                     request->getURI(), request->getVersion());
  if (!lineProblem.empty()) {
    if (httpLog().debug()) httpLog().debug("request line refused error=\"%s\"", lineProblem);
    refuseMalformed(session, 400, errorJson(lineProblem));
    return After::kClose;
  }

  const std::string& server = params_->getSoftwareVersion();
  response.setDate(Poco::Timestamp());
  response.setVersion(request->getVersion());
  response.setKeepAlive(params_->getKeepAlive() && request->getKeepAlive() &&
                        session.canKeepAlive());
  if (!server.empty()) response.set("Server", server);
  setSafetyHeaders(response);

  // A request without a body has arrived whole; the deadline must not outlive the socket,
  // which a stream handler hands over to the hub.
  if (!announcesBody(*request)) deadline.release();

  std::unique_ptr<EdgeHandler> handler(router_.createRequestHandler(*request));
  handler->setContext(context);
  if (request->getExpectContinue() && handler->wantsBody(*request)) response.sendContinue();
  bool keepGoing = true;
  try {
    handler->handleRequest(*request, response);
  } catch (const std::exception& e) {
    // Handlers map expected failures themselves; this is a bug or a broken connection.
    httpLog().error("request failed method=%s uri=\"%s\" error=\"%s\"", request->getMethod(),
                    request->getURI(), std::string(e.what()));
    if (!response.sent()) {
      response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_INTERNAL_SERVER_ERROR);
      response.setKeepAlive(false);
      response.setContentType("application/json");
      response.sendBuffer("{\"error\":\"internal error\"}", 26);
    }
    keepGoing = false;
  }

  // A body the handler left unread would be taken for the next request, so the connection
  // closes; gracefully, so that the unread bytes do not reset it before the answer is read.
  const bool bodyConsumed = !announcesBody(*request) || session.bodyDone();
  session.setKeepAlive(params_->getKeepAlive() && response.getKeepAlive() &&
                       session.canKeepAlive() && bodyConsumed);
  const bool detached = session.socket().impl() != socket().impl();
  if (!bodyConsumed && !detached) return After::kLingerAndClose;
  return keepGoing && session.getKeepAlive() ? After::kNextRequest : After::kClose;
}

void EdgeConnection::lingerClose() {
  try {
    socket().shutdownSend();
    socket().setReceiveTimeout(Poco::Timespan(0, kLingerMicroseconds));
    char buffer[8192];
    int drained = 0;
    while (drained < kLingerBytes) {
      const int n = socket().receiveBytes(buffer, sizeof(buffer));
      if (n <= 0) break;
      drained += n;
    }
  } catch (const Poco::Exception& e) {
    // The client is gone, or is still sending after the linger: nothing more to do.
    if (httpLog().debug()) httpLog().debug("linger ended error=\"%s\"", e.displayText());
  }
}

Poco::Timespan EdgeConnection::readTimeout() const {
  const Poco::Timespan whole(deadlines_->limit().count() * 1000);
  return std::min(params_->getTimeout(), whole);
}

void EdgeConnection::logSlowClient(int64_t waitedMs) {
  std::string peer;
  try {
    peer = socket().peerAddress().toString();
  } catch (const Poco::Exception&) {
    peer = "unknown";
  }
  httpLog().information("client too slow, connection closed peer=%s waited_ms=%s", peer,
                        std::to_string(waitedMs));
}

void EdgeConnection::refuseHead(EdgeSession& session, const Poco::Exception& error,
                                HeadRecorder* recorder) {
  // POCO reports a bare CR or a forbidden byte inside a field as an over-long field; the
  // recorded bytes tell which field it was, so the sender learns what to fix.
  if (recorder != nullptr) {
    const std::string fieldProblem = headFieldRefusal(recorder->head());
    if (!fieldProblem.empty()) {
      refuseMalformed(session, 400, errorJson(fieldProblem));
      return;
    }
  }

  const int status = statusForHeadError(error.message());
  if (httpLog().debug()) {
    httpLog().debug("request head refused status=%s error=\"%s\"", std::to_string(status),
                    error.message());
  }
  const std::string body =
      status == 431   ? "{\"error\":\"request header fields too large (at most 100 fields, "
                        "names of 256 bytes, values of 8192 bytes)\"}"
      : status == 414 ? "{\"error\":\"request target too long\"}"
                      : "{\"error\":\"malformed request head\"}";
  refuseMalformed(session, status, body);
}

void EdgeConnection::refuseMalformed(EdgeSession& session, int status, const std::string& body) {
  router_.countMalformed();
  refuse(session, status, body);
}

void EdgeConnection::refuse(EdgeSession& session, int status, const std::string& body) {
  session.setKeepAlive(false);
  try {
    // Written straight to the socket: without a parsed request POCO's response object would
    // not send the body.
    Poco::Net::HTTPResponse response(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    response.setVersion(Poco::Net::HTTPMessage::HTTP_1_1);
    response.setKeepAlive(false);
    response.setContentType("application/json");
    response.setContentLength(static_cast<std::streamsize>(body.size()));
    response.setDate(Poco::Timestamp());
    const std::string& server = params_->getSoftwareVersion();
    if (!server.empty()) response.set("Server", server);
    setSafetyHeaders(response);
    std::ostringstream head;
    response.write(head);
    const std::string bytes = head.str() + body;
    socket().sendBytes(bytes.data(), static_cast<int>(bytes.size()));
  } catch (const Poco::Exception& e) {
    // The client is gone; there is nobody left to answer.
    if (httpLog().debug()) httpLog().debug("could not answer error=\"%s\"", e.displayText());
    return;
  }

  // Drain what the client is still sending so that it reads the answer, not a reset.
  lingerClose();
}

EdgeConnectionFactory::EdgeConnectionFactory(Poco::Net::HTTPServerParams::Ptr params,
                                             Router& router, ConnectionSet& connections,
                                             std::chrono::milliseconds requestTimeout)
    : params_(params),
      router_(router),
      connections_(connections),
      deadlines_(std::make_shared<RequestDeadlines>(requestTimeout)) {}

Poco::Net::TCPServerConnection* EdgeConnectionFactory::createConnection(
    const Poco::Net::StreamSocket& socket) {
  return new EdgeConnection(socket, params_, router_, connections_, deadlines_);
}

}  // namespace anm::edge
