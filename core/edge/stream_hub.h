// core/edge/stream_hub.h: holds every open relay stream on one event loop thread.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/StreamSocket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/store/store.h"

namespace anm::edge {

/// Streams events to relays over Server-Sent Events. Each stream is a socket detached from
/// the HTTP server, so an open stream costs a few KiB and no thread. The hub reads backlogs
/// from the store itself, so a stream that attaches with an old Last-Event-ID, or that falls
/// behind, catches up in id order with no gap and no duplicate.
///
/// Threads: one event loop thread does every socket write and read; one worker thread reads
/// backlogs from the store. attach, publish, notify and openStreams may be called from any
/// thread.
class StreamHub {
 public:
  struct Options {
    std::chrono::milliseconds heartbeat{15000};  ///< idle time before a keep-alive comment
    /// Bytes waiting to be written to one stream. A live event that would take a non-empty
    /// queue past it closes the stream (the relay reconnects with Last-Event-ID and misses
    /// nothing); one frame is always accepted into an empty queue, so events larger than the
    /// limit still get through. Backlog pages fill at most half of it, so that a stream that
    /// has just caught up has room for a burst of live events.
    size_t maxQueuedBytes = 4u << 20;
    /// Most events read from the store at a time (at least 1). A stream's first page holds at
    /// most 32 events, since their sizes are not known yet; later pages are sized to fit the
    /// room left in its queue.
    size_t backlogPage = 256;
    /// A stream with bytes waiting that could write none of them for this long is closed, so
    /// that a relay that stopped reading in the middle of a backlog does not hold its queue
    /// forever. Zero turns the check off. Kept last so that initialisers of the fields above
    /// still compile.
    std::chrono::milliseconds stallTimeout{60000};
    /// How long a stream whose backlog could not be read (the store was unreachable) waits
    /// before the read is tried again. The stream stays open meanwhile and keeps getting
    /// heartbeats; its queue is empty, so stallTimeout does not end it. (Appended.)
    std::chrono::milliseconds storeRetry{1000};
    /// A hub for dashboards rather than relays: every event, whatever its verdict, goes out as
    /// a summary frame (event_json.h summaryFrame) without contents, and backlogs are read
    /// without bodies. (Appended.)
    bool summaries = false;
  };

  StreamHub(store::Store& store, Options options);
  ~StreamHub();  ///< stops and closes every stream

  StreamHub(const StreamHub&) = delete;
  StreamHub& operator=(const StreamHub&) = delete;

  /// Starts the event loop and the backlog reader. Streams attached before start() wait.
  void start();

  /// Closes every stream and joins the threads. Idempotent; attach closes its socket after it.
  void stop();

  /// Ends every stream the way an edge that stops should: each gets what is queued for it,
  /// then a last `event: shutdown` frame that tells its relay to reconnect at once (to this
  /// edge once it is back, or another behind the same address), then its connection closes.
  /// From the call on no stream is attached and no event queued; events stored meanwhile are
  /// read by the relays after they reconnect. Waits up to `within` for the streams to close and
  /// returns how many are still open; stop() closes those. (Since 0.3.)
  size_t drain(std::chrono::milliseconds within);

  /// Takes over a socket whose HTTP response head has been sent (no keep-alive, no chunking:
  /// the stream ends when the connection closes). Sends "retry: 1000", then every forwardable
  /// event of the hook with an id above lastEventId, then each new one. Returns at once: the
  /// backlog is read on the hub's worker thread. Turns Nagle's algorithm off on the socket
  /// (TCP_NODELAY), so that a small frame goes out without waiting for an ACK.
  void attach(Poco::Net::StreamSocket socket, const std::string& hookId, int64_t lastEventId);

  /// What a stream was opened for, kept with it for the edge's upkeep of hooks (leases,
  /// expiry, revocations). (Since 0.2; appended.)
  struct StreamTags {
    std::string relayId;    ///< the relay's id (X-Anonymily-Relay), or one the edge chose
    std::string tokenId;    ///< the PAT whose access token opened it; "" for a relay token
    std::string accountId;  ///< the hook's account; "" for an anonymous hook
    bool leased = false;    ///< holds the hook's relay lease (the one-live-relay rule)
    /// This stream's own name in the hook's relay lease (newLeaseHolder), "" for an anonymous
    /// hook. Set for every named hook, so that a stream opened under the pro plan can take
    /// the lease after a move to free. (Since 0.3.)
    std::string leaseHolder;
    int64_t openedAtMs = 0;  ///< wall clock, for "connected since" (Since 0.3.)
    /// Opened by the account's owner, or with a relay token; false for another member, whose
    /// streams end when the account moves to a plan without a team. (Since 0.3.)
    bool owner = true;
  };

  /// An open stream as openStreamList() and the close listener see it.
  struct OpenStream {
    std::string hookId;
    StreamTags tags;
    uint64_t id = 0;  ///< the hub's own id of the stream, for closeStreams (Since 0.3.)
  };

  /// attach() with the stream's tags. (Since 0.2.)
  void attach(Poco::Net::StreamSocket socket, const std::string& hookId, int64_t lastEventId,
              StreamTags tags);

  /// Closes every open stream opened with `tokenId` (a revoked token); returns how many. The
  /// sockets close on the loop thread within a moment. (Since 0.2.)
  size_t closeStreamsOfToken(const std::string& tokenId);

  /// Closes the open streams with these ids (OpenStream::id); returns how many were open. Ids
  /// of streams gone already are passed over. The sockets close on the loop thread within a
  /// moment. With `lastFrame` (a whole SSE frame), what each stream had queued and not begun to
  /// write is dropped, the frame is written last, and the stream closes once it went out, or
  /// after at most about a second more for a relay that does not read. (Since 0.3.)
  size_t closeStreams(const std::vector<uint64_t>& ids, const std::string& lastFrame = "");

  /// Marks an open stream as holding its hook's relay lease (StreamTags::leased), for a stream
  /// that took the lease after it opened; false when it is gone. (Since 0.3.)
  bool setLeased(uint64_t id);

  /// The streams open now, in no particular order. (Since 0.2.)
  std::vector<OpenStream> openStreamList() const;

  /// Called once for every stream that closes, whatever the reason (stop() included), after its
  /// socket was closed. It runs on the hub's loop thread (or the one calling stop()) and must
  /// be quick: no store calls, no calls into the hub. Replacing or clearing it waits for a call
  /// in progress to end, so that the old listener is not used after setCloseListener returns.
  /// (Since 0.2.)
  void setCloseListener(std::function<void(const OpenStream&)> listener);

  /// Tells the hub that an event was durably stored; events that are not forwardable (invalid
  /// signature and not a replay) are ignored. Live streams get the event without a store read,
  /// so the calls must come in id order, once for every committed event: call it from
  /// store::Store::setCommitListener. Formats the event once if a stream of its hook is live;
  /// never waits on a socket. An event that arrives out of order is logged as a warning and
  /// the hook's live streams that have not passed its id read it from the store; streams that
  /// already sent a later event cannot take it in order and miss it, hence the contract.
  void publish(const store::EventRecord& event);

  /// Tells the hub that an event can now be read from the store, without its contents: the
  /// way a store shared by several edges announces events (store::Store::setNoticeListener).
  /// Like publish(), the calls must come in id order, once per event, and notices that are not
  /// forwardable are ignored; out-of-order notices are counted and logged the same way. Each
  /// live stream of the hook that has not passed the id goes back to the store and reads the
  /// event there with listEvents, on the hub's worker thread, so a burst of notices costs one
  /// read per stream rather than one per notice. Never waits on a socket or the store.
  void notify(const store::EventNotice& notice);

  /// Queues `frame` (a complete SSE frame without an id) on every open stream of the hook,
  /// after what is queued there already: news about events, such as a delivery report, that
  /// moves no stream's position. Never waits on a socket. (Since 0.3.)
  void postFrame(const std::string& hookId, std::string frame);

  size_t openStreams() const;
  size_t openStreams(const std::string& hookId) const;

  /// Counters since construction, for metrics and tests. (Since 0.1; appended.)
  struct Stats {
    uint64_t attached = 0;          ///< streams taken over
    uint64_t closed = 0;            ///< streams closed for any reason, stop() included
    uint64_t closedQueueLimit = 0;  ///< closed because a live event did not fit the queue
    uint64_t closedStalled = 0;     ///< closed after stallTimeout without progress
    /// Closed because the backlog could not be read. Failed reads are now retried after
    /// Options::storeRetry (counted in backlogReadErrors), so this stays 0; kept for readers.
    uint64_t closedStoreError = 0;
    uint64_t backlogReads = 0;       ///< pages read from the store
    uint64_t liveFrames = 0;         ///< frames queued by publish() without a store read
    uint64_t heartbeats = 0;         ///< keep-alive comments queued
    uint64_t outOfOrder = 0;         ///< publish() calls that broke id order
    size_t liveStreams = 0;          ///< open streams past their backlog, taking publishes
    uint64_t backlogReadErrors = 0;  ///< backlog reads that failed and were retried later
    uint64_t notices = 0;            ///< forwardable notify() calls taken
  };
  Stats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::edge
