// core/edge/stream_hub.h: holds every open relay stream on one event loop thread.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <Poco/Net/StreamSocket.h>

#include "core/store/store.h"

namespace anm::edge {

/// Streams events to relays over Server-Sent Events. Each stream is a socket detached from
/// the HTTP server, so an open stream costs a few KiB and no thread. The hub reads backlogs
/// from the store itself, so a stream that attaches with an old Last-Event-ID, or that falls
/// behind, catches up in id order with no gap and no duplicate.
class StreamHub {
 public:
  struct Options {
    std::chrono::milliseconds heartbeat{15000};  ///< idle time before a keep-alive comment
    size_t maxQueuedBytes = 4u << 20;            ///< per stream; past it the stream is closed
    size_t backlogPage = 256;                    ///< events read from the store at a time
  };

  StreamHub(store::Store& store, Options options);
  ~StreamHub();  ///< stops and closes every stream

  void start();
  void stop();

  /// Takes over a socket whose HTTP response head has been sent (no keep-alive, no chunking:
  /// the stream ends when the connection closes). Sends every forwardable event of the hook
  /// with an id above lastEventId, then each new one.
  void attach(Poco::Net::StreamSocket socket, const std::string& hookId, int64_t lastEventId);

  /// Tells the hub that a forwardable event was durably stored. Cheap; never blocks on I/O.
  void publish(const store::EventRecord& event);

  size_t openStreams() const;
  size_t openStreams(const std::string& hookId) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::edge
