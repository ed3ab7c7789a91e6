// core/edge/connection.h: the HTTP connection loop of the edge, with its header-limit answers.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Exception.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>

#include <atomic>
#include <mutex>
#include <set>

#include "core/edge/handlers.h"

namespace anm::edge {

class EdgeConnection;

/// The open connections of one server, so that shutdown can wake the idle ones.
class ConnectionSet {
 public:
  void add(EdgeConnection* connection);
  void remove(EdgeConnection* connection);

  /// From now on connections finish the request they are in and close; idle ones close now.
  void stopAll();
  bool stopping() const { return stopping_.load(); }

  /// Under the set's lock: a connection changes between idle and busy only through this, so
  /// stopAll never shuts a connection down in the middle of a request.
  bool markBusy(EdgeConnection* connection);
  void markIdle(EdgeConnection* connection);

 private:
  mutable std::mutex mutex_;
  std::set<EdgeConnection*> connections_;
  std::set<EdgeConnection*> busy_;
  std::atomic<bool> stopping_{false};
};

/// Runs HTTP/1.1 requests on one connection, like POCO's HTTPServerConnection, with three
/// differences: the handler gets the raw request head and the arrival time, an oversized
/// header block is answered 431 instead of 400, and shutdown lets requests in flight finish.
class EdgeConnection : public Poco::Net::TCPServerConnection {
 public:
  EdgeConnection(const Poco::Net::StreamSocket& socket, Poco::Net::HTTPServerParams::Ptr params,
                 Router& router, ConnectionSet& connections);

  void run() override;

  /// Ends the wait for a next request (shutdown); a request in progress is not affected.
  void wake();

 private:
  void serve();
  void refuseHead(Poco::Net::HTTPServerSession& session, const Poco::Exception& error);

  Poco::Net::HTTPServerParams::Ptr params_;
  Router& router_;
  ConnectionSet& connections_;
};

class EdgeConnectionFactory : public Poco::Net::TCPServerConnectionFactory {
 public:
  EdgeConnectionFactory(Poco::Net::HTTPServerParams::Ptr params, Router& router,
                        ConnectionSet& connections);

  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override;

 private:
  Poco::Net::HTTPServerParams::Ptr params_;
  Router& router_;
  ConnectionSet& connections_;
};

}  // namespace anm::edge
