// core/edge/connection.h: the HTTP connection loop of the edge: framing, limits and fairness.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Exception.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Timespan.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>

#include "core/edge/body_reader.h"
#include "core/edge/handlers.h"

namespace anm::edge {

class EdgeConnection;
class HeadRecorder;
class RequestDeadlines;

/// The default of http.request_timeout_ms: how long a request's head and body may take to
/// arrive in all.
inline constexpr std::chrono::milliseconds kDefaultRequestTimeout{60000};

/// The open connections of one server, so that shutdown can wake the idle ones.
class ConnectionSet {
 public:
  void add(EdgeConnection* connection);
  void remove(EdgeConnection* connection);

  /// From now on connections finish the request they are in and close; idle ones close now.
  void stopAll();

  /// Waits until every connection has ended or `within` has passed; true when none is left.
  bool waitUntilEmpty(std::chrono::milliseconds within);

  /// Shuts the sockets of the connections still open down, so that their requests fail at
  /// their next read or write and their threads end; returns how many there were.
  size_t abortAll();
  bool stopping() const { return stopping_.load(); }

  /// Under the set's lock: a connection changes between idle and busy only through this, so
  /// stopAll never shuts a connection down in the middle of a request.
  bool markBusy(EdgeConnection* connection);
  void markIdle(EdgeConnection* connection);

  /// The server whose pool the connections run on, set before it starts and cleared after it
  /// stopped; null means nobody can be waiting.
  void setServer(const Poco::Net::TCPServer* server) { server_ = server; }

  /// True when accepted connections wait in the queue because every pool thread is taken:
  /// then an idle kept-alive connection should give its thread up.
  bool othersWaiting() const;

 private:
  std::atomic<const Poco::Net::TCPServer*> server_{nullptr};
  mutable std::mutex mutex_;
  std::condition_variable emptied_;  ///< notified when the last connection is removed
  std::set<EdgeConnection*> connections_;
  std::set<EdgeConnection*> busy_;
  std::atomic<bool> stopping_{false};
};

/// How long an idle connection waits at a time before it looks whether others need its thread.
inline constexpr long kIdlePollMicroseconds = 100000;

/// Runs HTTP/1.1 requests on one connection, like POCO's HTTPServerConnection, with these
/// differences: the handler gets the raw request head and the arrival time; an oversized
/// header block is answered 431 instead of 400; the version and the body framing are checked
/// before any handler runs (body_reader.h); every read and write while a request is in flight
/// is bounded by the server's timeout (408 when a request stalls), and the head and body
/// together by the request deadline (408 when a sender trickles); an idle connection, also a
/// TLS one that has not begun its handshake, gives its thread up as soon as accepted
/// connections wait for one; and shutdown lets requests in flight finish.
class EdgeConnection : public Poco::Net::TCPServerConnection {
 public:
  EdgeConnection(const Poco::Net::StreamSocket& socket, Poco::Net::HTTPServerParams::Ptr params,
                 Router& router, ConnectionSet& connections,
                 std::shared_ptr<RequestDeadlines> deadlines);

  void run() override;

  /// Ends the wait for a next request (shutdown); a request in progress is not affected.
  void wake();

  /// Shuts the socket down both ways: a request in progress fails at its next read or write.
  void abort();

 private:
  void serve();

  /// Waits for the client's first bytes as awaitBytes does, then runs the TLS handshake within
  /// what is left of the server's timeout. False when the connection should close.
  bool startTls();

  /// Waits for the first byte of the next request in short polls. False when the connection
  /// should close instead: idle too long, others wait for the thread, or shutdown.
  bool awaitRequest(EdgeSession& session, bool first);

  /// Polls in short steps until the socket has bytes (or an end) to read: true. False when
  /// `limit` passed (logged as a slow client with `logSlow`), accepted connections wait for
  /// this thread, or the server stops.
  bool awaitBytes(Poco::Timespan limit, bool logSlow);

  /// Whether the socket has bytes (or an end) to read within `timeoutMs`.
  bool readable(int timeoutMs);

  /// Receives the start of the next request into the session; false when the peer is gone.
  bool receiveHead(EdgeSession& session);

  /// What the connection does once a request is done.
  enum class After { kNextRequest, kClose, kLingerAndClose };

  /// Serves one request.
  After serveOne(EdgeSession& session, HeadRecorder* recorder);

  void refuseHead(EdgeSession& session, const Poco::Exception& error, HeadRecorder* recorder);

  /// Answers with `status` and a JSON body written straight to the socket, then closes
  /// gracefully (the rest of what the client sends is read and dropped for a moment).
  void refuse(EdgeSession& session, int status, const std::string& body);

  /// The same for a request whose HTTP message is malformed, counted as such in the metrics.
  void refuseMalformed(EdgeSession& session, int status, const std::string& body);

  /// Stops sending and reads what the client still sends, for a moment, before the close.
  void lingerClose();

  /// Logs a client that stopped sending in the middle of a request.
  void logSlowClient(int64_t waitedMs);

  /// The limit on each read: the server's timeout, or the request deadline when shorter.
  Poco::Timespan readTimeout() const;

  Poco::Net::HTTPServerParams::Ptr params_;
  Router& router_;
  ConnectionSet& connections_;
  std::shared_ptr<RequestDeadlines> deadlines_;
};

/// Makes the connections of one server. `requestTimeout` bounds the whole arrival of each
/// request's head and body (http.request_timeout_ms).
class EdgeConnectionFactory : public Poco::Net::TCPServerConnectionFactory {
 public:
  EdgeConnectionFactory(Poco::Net::HTTPServerParams::Ptr params, Router& router,
                        ConnectionSet& connections,
                        std::chrono::milliseconds requestTimeout = kDefaultRequestTimeout);

  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override;

 private:
  Poco::Net::HTTPServerParams::Ptr params_;
  Router& router_;
  ConnectionSet& connections_;
  std::shared_ptr<RequestDeadlines> deadlines_;
};

}  // namespace anm::edge
