// core/edge/connection.cpp: the HTTP connection loop of the edge, with its header-limit answers.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/connection.h"

#include <Poco/Logger.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/NetException.h>
#include <Poco/Timespan.h>
#include <Poco/Timestamp.h>

#include <memory>
#include <sstream>
#include <string>

#include "core/edge/recording_socket.h"

namespace anm::edge {
namespace {

// After refusing a head the rest of it is read and dropped (at most this much, for at most
// half a second) so that the close does not reset the connection before the client has read
// the answer.
constexpr int kLingerBytes = 1 << 20;
constexpr long kLingerMicroseconds = 500000;

Poco::Logger& httpLog() { return Poco::Logger::get("anm.http"); }

// POCO reports every malformed head as MessageException; its text tells the limits apart.
int statusForHeadError(const std::string& message) {
  if (message.find("URI") != std::string::npos) return 414;
  if (message.find("header fields") != std::string::npos ||
      message.find("too long") != std::string::npos) {
    return 431;
  }
  return 400;
}

}  // namespace

void ConnectionSet::add(EdgeConnection* connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.insert(connection);
}

void ConnectionSet::remove(EdgeConnection* connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.erase(connection);
  busy_.erase(connection);
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
                               ConnectionSet& connections)
    : TCPServerConnection(socket), params_(params), router_(router), connections_(connections) {
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
  auto* recorder = dynamic_cast<RecordingSocketImpl*>(socket().impl());
  Poco::Net::HTTPServerSession session(socket(), params_);
  const std::string server = params_->getSoftwareVersion();

  while (!connections_.stopping() && session.hasMoreRequests()) {
    if (!connections_.markBusy(this)) break;
    bool keepGoing = true;
    try {
      Poco::Net::HTTPServerResponseImpl response(session);
      Poco::Net::HTTPServerRequestImpl request(response, session, params_);

      // The head is complete here: this is the moment the webhook arrived.
      RequestContext context;
      context.receivedAtMs = nowMs();
      if (recorder != nullptr) context.rawHead = recorder->head();

      response.setDate(Poco::Timestamp());
      response.setVersion(request.getVersion());
      response.setKeepAlive(params_->getKeepAlive() && request.getKeepAlive() &&
                            session.canKeepAlive());
      if (!server.empty()) response.set("Server", server);

      std::unique_ptr<EdgeHandler> handler(router_.createRequestHandler(request));
      handler->setContext(context);
      if (request.getExpectContinue() && handler->wantsBody(request)) response.sendContinue();
      try {
        handler->handleRequest(request, response);
      } catch (const std::exception& e) {
        // Handlers map expected failures themselves; this is a bug or a broken connection.
        httpLog().error("request failed method=%s uri=\"%s\" error=\"%s\"", request.getMethod(),
                        request.getURI(), std::string(e.what()));
        if (!response.sent()) {
          response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_INTERNAL_SERVER_ERROR);
          response.setKeepAlive(false);
          response.setContentType("application/json");
          response.sendBuffer("{\"error\":\"internal error\"}", 26);
        }
        keepGoing = false;
      }
      session.setKeepAlive(params_->getKeepAlive() && response.getKeepAlive() &&
                           session.canKeepAlive());
      keepGoing = keepGoing && session.getKeepAlive();
    } catch (const Poco::Net::NoMessageException&) {
      keepGoing = false;
    } catch (const Poco::Net::MessageException& e) {
      refuseHead(session, e);
      keepGoing = false;
    }
    connections_.markIdle(this);
    if (!keepGoing) break;

    // The next request on this connection is recorded from its first byte.
    if (recorder != nullptr) recorder->restart();
  }
}

void EdgeConnection::refuseHead(Poco::Net::HTTPServerSession& session,
                                const Poco::Exception& error) {
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
  try {
    // Written straight to the socket: without a parsed request POCO's response object would
    // not send the body.
    Poco::Net::HTTPResponse response(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    response.setVersion(Poco::Net::HTTPMessage::HTTP_1_1);
    response.setKeepAlive(false);
    response.setContentType("application/json");
    response.setContentLength(static_cast<std::streamsize>(body.size()));
    response.setDate(Poco::Timestamp());
    std::ostringstream head;
    response.write(head);
    const std::string bytes = head.str() + body;
    socket().sendBytes(bytes.data(), static_cast<int>(bytes.size()));
    session.setKeepAlive(false);

    // Drain what the client is still sending so that it reads the answer, not a reset.
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
    // The client is gone; there is nobody left to answer.
    if (httpLog().debug()) httpLog().debug("could not answer error=\"%s\"", e.displayText());
  }
}

EdgeConnectionFactory::EdgeConnectionFactory(Poco::Net::HTTPServerParams::Ptr params,
                                             Router& router, ConnectionSet& connections)
    : params_(params), router_(router), connections_(connections) {}

Poco::Net::TCPServerConnection* EdgeConnectionFactory::createConnection(
    const Poco::Net::StreamSocket& socket) {
  return new EdgeConnection(socket, params_, router_, connections_);
}

}  // namespace anm::edge
