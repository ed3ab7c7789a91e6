// core/edge/stream_hub.cpp: the relay streams' event loop, backlog reader and live fan-out.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/stream_hub.h"

#include <Poco/Exception.h>
#include <Poco/Format.h>
#include <Poco/Logger.h>
#include <Poco/Net/SocketDefs.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/edge/event_json.h"

namespace anm::edge {

namespace {

using Clock = std::chrono::steady_clock;

/// A formatted SSE frame, shared by every stream it is queued on.
using Frame = std::shared_ptr<const std::string>;

// Bytes one stream may write in one round of the loop before the others get their turn.
constexpr size_t kFlushBudget = 1u << 20;

constexpr int kMaxEpollEvents = 256;

// Events in a stream's first backlog page, before their size is known.
constexpr size_t kFirstPage = 32;

// Reads of what a relay sends us (nothing, normally) are discarded in pieces of this size.
constexpr int kReadBufferSize = 256;

// The most bytes one write hands to OpenSSL on a TLS stream: one full record.
constexpr size_t kTlsWriteBytes = 16384;

// What a non-blocking TLS socket's sendBytes returns when OpenSSL must read before it can go
// on (Poco::Net::SecureStreamSocket::ERR_SSL_WANT_READ; this library does not link NetSSL).
constexpr int kTlsWantRead = -1;

// The epoll data of the wake-up eventfd; stream ids start at 1.
constexpr uint64_t kWakeToken = 0;

// How long a stream closed with a last frame may take to read it before it is closed anyway.
constexpr std::chrono::milliseconds kLastFrameWithin{1000};

const Frame& retryFrame() {
  static const Frame frame = std::make_shared<const std::string>("retry: 1000\n\n");
  return frame;
}

// The last frame of every stream when the edge stops: the relay reconnects at once, to
// whichever edge then answers, and resumes from its last event id.
const Frame& goodbyeFrame() {
  static const Frame frame = std::make_shared<const std::string>(
      "event: shutdown\ndata: {\"reason\":\"edge stopping\"}\n\n");
  return frame;
}

const Frame& keepAliveFrame() {
  static const Frame frame = std::make_shared<const std::string>(": keep-alive\n\n");
  return frame;
}

// The same rule as the store's forwardableOnly: invalid signatures are never relayed unless
// someone replayed the event on purpose.
bool isForwardable(const store::EventRecord& event) {
  return event.verdict != store::Verdict::kInvalid || event.replayOf != 0;
}

Poco::Logger& logger() {
  static Poco::Logger& instance = Poco::Logger::get("anm.sse");
  return instance;
}

}  // namespace

class StreamHub::Impl {
 public:
  Impl(store::Store& store, Options options) : store_(store), options_(options) {
    options_.backlogPage = std::max<size_t>(options_.backlogPage, 1);
    options_.heartbeat = std::max(options_.heartbeat, std::chrono::milliseconds(1));
    options_.storeRetry = std::max(options_.storeRetry, std::chrono::milliseconds(1));

    // The loop wakes at least this often to send heartbeats and find stalled streams; a
    // heartbeat goes out once a stream has been idle for heartbeat - tick, so never later
    // than the heartbeat option says.
    auto shortest = options_.heartbeat;
    if (options_.stallTimeout.count() > 0) shortest = std::min(shortest, options_.stallTimeout);
    tick_ = std::clamp(shortest / 8, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));

    epollFd_ = epoll_create1(EPOLL_CLOEXEC);
    wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epollFd_ < 0 || wakeFd_ < 0) {
      closeFds();
      throw Poco::SystemException("could not create the stream hub's event loop");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeToken;
    if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, wakeFd_, &ev) != 0) {
      closeFds();
      throw Poco::SystemException("could not watch the stream hub's wake-up descriptor");
    }
  }

  ~Impl() {
    stop();
    closeFds();
  }

  void start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stopped_) return;
    started_ = true;
    loop_ = std::thread([this] { runLoop(); });
    worker_ = std::thread([this] { runWorker(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    wake();
    workerCv_.notify_all();
    if (loop_.joinable()) loop_.join();
    if (worker_.joinable()) worker_.join();

    // Both threads are gone: whatever is left is closed here.
    std::vector<std::shared_ptr<Stream>> remaining;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& entry : streams_) remaining.push_back(std::move(entry.second));
      stats_.closed += remaining.size();
      streams_.clear();
      hooks_.clear();
      dirty_.clear();
      catchUps_.clear();
      retries_.clear();
    }
    for (auto& stream : remaining) {
      releaseSocket(*stream);
      tellClosed(*stream);
    }
    // Relays and dashboards each have a hub; the line says which one stopped.
    logger().information(Poco::format("stream hub stopped streams=%s closed=%z",
                                      std::string(options_.summaries ? "dashboards" : "relays"),
                                      remaining.size()));
  }

  size_t drain(std::chrono::milliseconds within) {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopped_ || !started_) return streams_.size();
    draining_ = true;
    for (auto& [id, stream] : streams_) {
      if (stream->closing || stream->finishing) continue;
      stream->finishing = true;
      enqueueLocked(*stream, goodbyeFrame());
      markDirtyLocked(*stream);
    }
    drainedCv_.wait_for(lock, within, [this] { return streams_.empty(); });
    return streams_.size();
  }

  void attach(Poco::Net::StreamSocket socket, const std::string& hookId, int64_t lastEventId,
              StreamTags tags) {
    auto stream = std::make_shared<Stream>();
    stream->socket = std::move(socket);
    stream->hookId = hookId;
    stream->cursor = std::max<int64_t>(lastEventId, 0);
    stream->tags = std::move(tags);

    // The loop only ever writes without blocking; a socket that cannot be switched is refused.
    try {
      stream->socket.setBlocking(false);
      stream->fd = stream->socket.impl()->sockfd();
    } catch (const Poco::Exception& e) {
      logger().warning(
          Poco::format("could not attach stream hook=%s error=\"%s\"", hookId, e.displayText()));
      releaseSocket(*stream);
      return;
    }

    // Frames are small and written whole: Nagle would hold one back until the previous one is
    // acknowledged, which delayed ACKs stretch to tens of milliseconds. Without it the stream
    // still works, only later, so a failure is logged and the stream kept.
    try {
      stream->socket.setNoDelay(true);
    } catch (const Poco::Exception& e) {
      logger().warning(Poco::format("could not disable nagle on stream hook=%s error=\"%s\"",
                                    hookId, e.displayText()));
    }

    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || draining_) {
      releaseSocket(*stream);
      return;
    }
    stream->id = nextId_++;

    // Registering before the backlog read starts is what makes the hand-over safe: every
    // event published from now on moves the hook's lastPublished, and every event published
    // before was committed before the read.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = stream->id;
    if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, stream->fd, &ev) != 0) {
      logger().warning(Poco::format("could not attach stream hook=%s error=epoll", hookId));
      releaseSocket(*stream);
      return;
    }
    streams_.emplace(stream->id, stream);
    hooks_[hookId].streams.push_back(stream);
    ++stats_.attached;

    enqueueLocked(*stream, retryFrame());
    markDirtyLocked(*stream);
    scheduleCatchUpLocked(*stream);
    if (logger().debug()) {
      logger().debug(Poco::format("stream attached hook=%s stream=%Lu last_event_id=%Ld", hookId,
                                  static_cast<Poco::UInt64>(stream->id),
                                  static_cast<Poco::Int64>(stream->cursor)));
    }
  }

  void publish(const store::EventRecord& event) {
    if (!options_.summaries && !isForwardable(event)) return;

    // Publishes are serialised so that lastPublished moves in call order even while a frame
    // is being formatted outside the hub's lock.
    std::lock_guard<std::mutex> publishLock(publishMu_);
    Frame frame;
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopped_) return;
      auto it = hooks_.find(event.hookId);
      if (it == hooks_.end()) return;
      if (!frame && wantsFrameLocked(it->second, event)) {
        // Format once, without the lock, then look again: streams may have come or gone.
        lock.unlock();
        frame = std::make_shared<const std::string>(formatFrame(event));
        continue;
      }
      distributeLocked(it->second, event.hookId, event.id, frame);
      return;
    }
  }

  void notify(const store::EventNotice& notice) {
    if (!notice.forwardable && !options_.summaries) return;

    // Without a frame every stream that should get the event reads it from the store; the
    // publish lock keeps lastPublished moving in call order alongside publish().
    std::lock_guard<std::mutex> publishLock(publishMu_);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    ++stats_.notices;
    auto it = hooks_.find(notice.hookId);
    if (it == hooks_.end()) return;
    distributeLocked(it->second, notice.hookId, notice.id, nullptr);
  }

  size_t openStreams() const {
    std::lock_guard<std::mutex> lock(mu_);
    return streams_.size();
  }

  size_t openStreams(const std::string& hookId) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = hooks_.find(hookId);
    return it == hooks_.end() ? 0 : it->second.streams.size();
  }

  void postFrame(const std::string& hookId, std::string text) {
    const Frame frame = std::make_shared<const std::string>(std::move(text));
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || draining_) return;
    auto it = hooks_.find(hookId);
    if (it == hooks_.end()) return;
    for (const auto& stream : it->second.streams) {
      if (stream->closing || stream->finishing) continue;
      enqueueLocked(*stream, frame);
      markDirtyLocked(*stream);
    }
  }

  size_t closeStreamsOfToken(const std::string& tokenId) {
    if (tokenId.empty()) return 0;
    std::lock_guard<std::mutex> lock(mu_);
    size_t count = 0;
    for (auto& entry : streams_) {
      Stream& stream = *entry.second;
      if (stream.closing || stream.tags.tokenId != tokenId) continue;
      requestCloseLocked(stream);
      ++count;
    }
    return count;
  }

  size_t closeStreams(const std::vector<uint64_t>& ids, const std::string& lastFrame) {
    const Frame frame =
        lastFrame.empty() ? nullptr : std::make_shared<const std::string>(lastFrame);
    std::lock_guard<std::mutex> lock(mu_);
    size_t count = 0;
    for (const uint64_t id : ids) {
      const auto stream = findLocked(id);
      if (!stream || stream->closing) continue;
      ++count;
      if (!frame || stream->finishing) {
        requestCloseLocked(*stream);
        continue;
      }

      // Nothing more goes out but the rest of a frame begun (SSE must not be cut mid-frame)
      // and the last frame; a relay that does not read them is closed all the same.
      while (stream->queue.size() > (stream->frontOffset > 0 ? 1u : 0u)) {
        stream->queue.pop_back();
      }
      stream->queuedBytes =
          stream->queue.empty() ? 0 : stream->queue.front()->size() - stream->frontOffset;
      enqueueLocked(*stream, frame);
      stream->finishing = true;
      stream->finishBy = Clock::now() + kLastFrameWithin;
      markDirtyLocked(*stream);
    }
    return count;
  }

  bool setLeased(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto stream = findLocked(id);
    if (!stream || stream->closing) return false;
    stream->tags.leased = true;
    return true;
  }

  std::vector<OpenStream> openStreamList() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<OpenStream> out;
    out.reserve(streams_.size());
    for (const auto& entry : streams_) {
      if (entry.second->closing) continue;
      out.push_back(OpenStream{entry.second->hookId, entry.second->tags, entry.first});
    }
    return out;
  }

  void setCloseListener(std::function<void(const OpenStream&)> listener) {
    std::lock_guard<std::mutex> lock(listenerMu_);
    closeListener_ = std::move(listener);
  }

  Stats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    Stats copy = stats_;
    copy.liveStreams = 0;
    for (const auto& entry : streams_) {
      if (entry.second->live && !entry.second->closing) ++copy.liveStreams;
    }
    return copy;
  }

 private:
  struct Stream {
    uint64_t id = 0;
    Poco::Net::StreamSocket socket;
    int fd = -1;
    std::string hookId;
    StreamTags tags;  ///< set at attach; only `leased` changes later (setLeased, under mu_)
    /// Every forwardable event of the hook with an id up to here is queued or sent.
    int64_t cursor = 0;
    bool live = false;           ///< takes published events; else it reads from the store
    bool catchUpQueued = false;  ///< waiting in the worker's queue
    bool catchUpPaused = false;  ///< waiting for its queue to drain below a quarter of the limit
    bool closing = false;        ///< the loop closes it at its next round
    bool finishing = false;      ///< takes nothing more; closes once its queue is written
    /// With a last frame (closeStreams): closed by the tick past this even if not written.
    std::optional<Clock::time_point> finishBy;
    bool dirtyQueued = false;  ///< in dirty_
    bool outArmed = false;     ///< EPOLLOUT is watched; touched by the loop thread only
    std::deque<Frame> queue;
    size_t frontOffset = 0;  ///< bytes of queue.front() already written
    size_t queuedBytes = 0;
    size_t frameEstimate = 0;  ///< mean size of the backlog frames read so far
    Clock::time_point lastQueued;
    Clock::time_point lastProgress;
  };

  struct Hook {
    /// The highest forwardable event id published while this entry existed.
    int64_t lastPublished = 0;
    std::vector<std::shared_ptr<Stream>> streams;
  };

  // --- publish ---

  std::string formatFrame(const store::EventRecord& event) const {
    return options_.summaries ? summaryFrame(event) : sseFrame(event);
  }

  bool wantsFrameLocked(const Hook& hook, const store::EventRecord& event) const {
    for (const auto& stream : hook.streams) {
      if (stream->live && !stream->closing && !stream->finishing && event.id > stream->cursor &&
          stream->cursor >= hook.lastPublished && event.id > hook.lastPublished) {
        return true;
      }
    }
    return false;
  }

  // Hands event `id` of `hookId` to the hook's live streams: queued as `frame` where that keeps
  // id order, or, for the others and whenever there is no frame, read from the store.
  void distributeLocked(Hook& hook, const std::string& hookId, int64_t id, const Frame& frame) {
    const int64_t previous = hook.lastPublished;
    const bool inOrder = id > previous;
    if (!inOrder) {
      ++stats_.outOfOrder;
      logger().warning(Poco::format("event published out of order hook=%s event_id=%Ld after=%Ld",
                                    hookId, static_cast<Poco::Int64>(id),
                                    static_cast<Poco::Int64>(previous)));
    }
    hook.lastPublished = std::max(previous, id);

    for (const auto& stream : hook.streams) {
      if (!stream->live || stream->closing || stream->finishing || id <= stream->cursor) continue;

      // Publishes come in id order, so no forwardable event lies between `previous` and this
      // one: a stream that has everything up to `previous` can take it directly. Any other
      // stream goes back to the store, which has the events in order.
      if (!inOrder || stream->cursor < previous || !frame) {
        stream->live = false;
        scheduleCatchUpLocked(*stream);
        continue;
      }

      // A relay too slow to keep up is let go; it reconnects and reads from the store.
      if (stream->queuedBytes > 0 &&
          stream->queuedBytes + frame->size() > options_.maxQueuedBytes) {
        logger().information(Poco::format("closing slow stream hook=%s stream=%Lu queued_bytes=%z",
                                          stream->hookId, static_cast<Poco::UInt64>(stream->id),
                                          stream->queuedBytes));
        ++stats_.closedQueueLimit;
        requestCloseLocked(*stream);
        continue;
      }
      enqueueLocked(*stream, frame);
      stream->cursor = id;
      ++stats_.liveFrames;
      markDirtyLocked(*stream);
    }
  }

  // --- shared helpers, called with mu_ held ---

  void enqueueLocked(Stream& stream, const Frame& frame) {
    const auto now = Clock::now();
    if (stream.queue.empty()) stream.lastProgress = now;
    stream.queue.push_back(frame);
    stream.queuedBytes += frame->size();
    stream.lastQueued = now;
  }

  void markDirtyLocked(Stream& stream) {
    if (stream.dirtyQueued) return;
    stream.dirtyQueued = true;
    const bool wasEmpty = dirty_.empty();
    dirty_.push_back(stream.id);
    if (wasEmpty) wake();
  }

  void requestCloseLocked(Stream& stream) {
    stream.closing = true;
    markDirtyLocked(stream);
  }

  void scheduleCatchUpLocked(Stream& stream) {
    stream.catchUpPaused = false;
    if (stream.catchUpQueued) return;
    stream.catchUpQueued = true;
    catchUps_.push_back(stream.id);
    workerCv_.notify_one();
  }

  // Resumes a backlog that waited for room, once half of what it may fill has drained.
  void resumeCatchUpLocked(Stream& stream) {
    if (stream.live || !stream.catchUpPaused || stream.closing || stream.finishing) return;
    if (stream.queuedBytes >= backlogFill() / 2) return;
    scheduleCatchUpLocked(stream);
  }

  std::shared_ptr<Stream> findLocked(uint64_t id) const {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second;
  }

  void wake() {
    const uint64_t one = 1;
    // A full counter still wakes the loop, so a failed write loses nothing.
    [[maybe_unused]] ssize_t rc = ::write(wakeFd_, &one, sizeof(one));
  }

  // --- the worker: backlog pages from the store ---

  // Backlog fills at most half the queue, so that a stream that goes live with a full backlog
  // queue still has room for a burst of live events before the limit closes it.
  size_t backlogFill() const { return std::max<size_t>(options_.maxQueuedBytes / 2, 1); }

  size_t pageSizeLocked(const Stream& stream) const {
    // Sizes are unknown before the first page, so it is kept small in case bodies are large.
    if (stream.frameEstimate == 0) return std::min(options_.backlogPage, kFirstPage);
    const size_t room = backlogFill() > stream.queuedBytes ? backlogFill() - stream.queuedBytes : 0;
    return std::clamp<size_t>(room / stream.frameEstimate, 1, options_.backlogPage);
  }

  void runWorker() {
    for (;;) {
      std::shared_ptr<Stream> stream;
      std::string hookId;
      int64_t from = 0;
      size_t limit = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (!waitForCatchUpLocked(lock)) return;
        const uint64_t id = catchUps_.front();
        catchUps_.pop_front();
        stream = findLocked(id);
        if (!stream) continue;
        stream->catchUpQueued = false;
        if (stream->closing || stream->finishing || stream->live) continue;
        hookId = stream->hookId;
        from = stream->cursor;
        limit = pageSizeLocked(*stream);
      }
      catchUpPage(stream, hookId, from, limit);
    }
  }

  // Waits until a stream needs a page read, moving streams whose retry delay is over into the
  // queue; false once the hub stops. Retries are due in the order they were made, since they
  // all wait the same delay.
  bool waitForCatchUpLocked(std::unique_lock<std::mutex>& lock) {
    for (;;) {
      if (stopped_) return false;
      const auto now = Clock::now();
      while (!retries_.empty() && retries_.front().first <= now) {
        auto stream = findLocked(retries_.front().second);
        retries_.pop_front();
        if (stream && !stream->closing && !stream->live) scheduleCatchUpLocked(*stream);
      }
      if (!catchUps_.empty()) return true;
      if (retries_.empty()) {
        workerCv_.wait(lock);
      } else {
        workerCv_.wait_until(lock, retries_.front().first);
      }
    }
  }

  void catchUpPage(const std::shared_ptr<Stream>& stream, const std::string& hookId, int64_t from,
                   size_t limit) {
    // Read and format without the lock: this is the slow part.
    std::vector<std::pair<int64_t, Frame>> frames;
    size_t read = 0;
    try {
      // A summaries hub reads every event, without bodies; a relays hub the forwardable ones.
      const bool relays = !options_.summaries;
      auto events = store_.listEvents(hookId, from, limit, relays, relays);
      read = events.size();
      frames.reserve(events.size());
      for (const auto& event : events) {
        if (event.id <= from || (relays && !isForwardable(event))) continue;
        frames.emplace_back(event.id, std::make_shared<const std::string>(formatFrame(event)));
      }
    } catch (const std::exception& e) {
      onBacklogReadFailed(stream, hookId, from, e.what());
      return;
    }

    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.backlogReads;
    if (storeFailing_) {
      storeFailing_ = false;
      logger().information(Poco::format("backlog reads work again failed_reads=%Lu",
                                        static_cast<Poco::UInt64>(failedInStreak_)));
      failedInStreak_ = 0;
    }
    if (!findLocked(stream->id) || stream->closing || stream->finishing || stream->live) return;

    // The next page is sized from this one so that it fits the room left in the queue.
    if (!frames.empty()) {
      size_t bytes = 0;
      for (const auto& entry : frames) bytes += entry.second->size();
      stream->frameEstimate = std::max<size_t>(bytes / frames.size(), 1);
    }

    // Queue the page while there is room; what does not fit is read again later.
    bool cut = false;
    bool queued = false;
    for (const auto& [id, frame] : frames) {
      if (id <= stream->cursor) continue;
      if (stream->queuedBytes > 0 && stream->queuedBytes + frame->size() > backlogFill()) {
        cut = true;
        break;
      }
      enqueueLocked(*stream, frame);
      stream->cursor = id;
      queued = true;
    }
    if (queued) markDirtyLocked(*stream);

    // Decide what comes next: more backlog now, more once the queue drains, or live.
    if (cut) {
      stream->catchUpPaused = true;
      markDirtyLocked(*stream);
      return;
    }
    if (read < limit) {
      const Hook& hook = hooks_[stream->hookId];
      if (stream->cursor >= hook.lastPublished) {
        // Every event published so far is queued; later ones come through publish().
        stream->live = true;
        return;
      }
      // Events were published after the read began: read again.
      scheduleCatchUpLocked(*stream);
      return;
    }
    if (stream->queuedBytes < backlogFill() / 2) {
      scheduleCatchUpLocked(*stream);
      return;
    }
    stream->catchUpPaused = true;
    markDirtyLocked(*stream);
  }

  // A store that cannot be read is usually back within seconds (a failover, a restart), and
  // closing would only make every relay reconnect into the same failure. The stream stays open
  // with its cursor where it was, keeps its heartbeats, and reads again after storeRetry; since
  // nothing is queued, the stall check leaves it alone. One warning per outage, not per read.
  void onBacklogReadFailed(const std::shared_ptr<Stream>& stream, const std::string& hookId,
                           int64_t from, const std::string& error) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.backlogReadErrors;
    ++failedInStreak_;
    if (!storeFailing_) {
      storeFailing_ = true;
      logger().warning(
          Poco::format("could not read backlog, retrying hook=%s after=%Ld retry_ms=%Ld "
                       "error=\"%s\"",
                       hookId, static_cast<Poco::Int64>(from),
                       static_cast<Poco::Int64>(options_.storeRetry.count()), error));
    }
    if (!findLocked(stream->id) || stream->closing || stream->live) return;
    retries_.emplace_back(Clock::now() + options_.storeRetry, stream->id);
  }

  // --- the event loop: every socket write, read and close happens here ---

  void runLoop() {
    epoll_event events[kMaxEpollEvents];
    auto nextTick = Clock::now() + tick_;
    for (;;) {
      int timeout = static_cast<int>(tick_.count());
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopped_) return;
        if (!dirty_.empty()) timeout = 0;
      }
      const int n = epoll_wait(epollFd_, events, kMaxEpollEvents, timeout);

      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == kWakeToken) {
          uint64_t count = 0;
          [[maybe_unused]] ssize_t rc = ::read(wakeFd_, &count, sizeof(count));
          continue;
        }
        onSocketEvent(events[i].data.u64, events[i].events);
      }

      serviceDirty();

      const auto now = Clock::now();
      if (now >= nextTick) {
        onTick(now);
        nextTick = now + tick_;
      }
    }
  }

  void onSocketEvent(uint64_t id, uint32_t flags) {
    std::shared_ptr<Stream> stream;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stream = findLocked(id);
    }
    if (!stream) return;

    // The relay went away (or half-closed: an SSE client has nothing more to say).
    if (flags & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
      closeStream(*stream, "peer closed");
      return;
    }
    if ((flags & EPOLLIN) && !drainInput(*stream)) return;
    if (flags & EPOLLOUT) flush(*stream);
  }

  // Discards what the relay sent; returns false when the stream was closed.
  bool drainInput(Stream& stream) {
    char buffer[kReadBufferSize];
    for (int round = 0; round < 16; ++round) {
      int n = 0;
      try {
        n = stream.socket.receiveBytes(buffer, sizeof(buffer));
      } catch (const Poco::Exception& e) {
        if (e.code() == POCO_EAGAIN || e.code() == POCO_EWOULDBLOCK) break;
        closeStream(stream, "read error");
        return false;
      }
      if (n == 0) {
        closeStream(stream, "peer closed");
        return false;
      }
      // Below zero: nothing more for now. On TLS that is OpenSSL's want-read (a partial
      // record), or want-write (a reply it must send, which the next write sends first).
      if (n < 0) break;
    }

    // TLS may have needed this read to go on writing.
    flush(stream);
    return true;
  }

  void serviceDirty() {
    std::vector<std::shared_ptr<Stream>> work;
    {
      std::lock_guard<std::mutex> lock(mu_);
      work.reserve(dirty_.size());
      for (uint64_t id : dirty_) {
        auto stream = findLocked(id);
        if (!stream) continue;
        stream->dirtyQueued = false;
        work.push_back(std::move(stream));
      }
      dirty_.clear();
    }
    for (auto& stream : work) flush(*stream);
  }

  void flush(Stream& stream) {
    size_t budget = kFlushBudget;
    for (;;) {
      Frame frame;
      size_t offset = 0;
      bool closing = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        closing = stream.closing;
        if (!closing && stream.queue.empty()) resumeCatchUpLocked(stream);
        if (!closing && !stream.queue.empty()) {
          frame = stream.queue.front();
          offset = stream.frontOffset;
        }
      }
      if (closing) {
        closeStream(stream, "closed by hub");
        return;
      }
      if (!frame && stream.finishing) {
        closeStream(stream, "edge stopping");
        return;
      }
      if (!frame) break;

      // Frames are immutable and held by our copy of the pointer, so the write needs no lock.
      // NOTE: OpenSSL takes a write it could not finish only when retried with the same bytes
      // and length; both hold because the offset moves only after a write that went out. At
      // most one record goes per TLS write, so progress (and the stall check) stays per record.
      const bool tls = stream.socket.secure();
      const size_t cap = tls ? kTlsWriteBytes : static_cast<size_t>(INT_MAX);
      const size_t left = std::min<size_t>(frame->size() - offset, cap);
      int n = 0;
      try {
        n = stream.socket.sendBytes(frame->data() + offset, static_cast<int>(left), MSG_NOSIGNAL);
      } catch (const Poco::Exception& e) {
        // NOTE: POCO 1.11 throws IOException carrying EAGAIN when a non-blocking socket is
        // full (it returns -1 only sometimes); that is a wait, not an error.
        if (e.code() != POCO_EAGAIN && e.code() != POCO_EWOULDBLOCK) {
          closeStream(stream, "write error");
          return;
        }
        n = 0;
      }
      if (n <= 0) {
        // OpenSSL wanting to read first waits for the relay's bytes (EPOLLIN is always
        // watched, and its handler flushes again); watching EPOLLOUT then would only spin.
        const bool wantsRead = tls && n == kTlsWantRead;
        watchWritable(stream, !wantsRead);
        return;
      }

      {
        std::lock_guard<std::mutex> lock(mu_);
        stream.frontOffset += static_cast<size_t>(n);
        stream.queuedBytes -= static_cast<size_t>(n);
        stream.lastProgress = Clock::now();
        if (stream.frontOffset == frame->size()) {
          stream.queue.pop_front();
          stream.frontOffset = 0;
        }
        resumeCatchUpLocked(stream);
      }

      // A fast reader with a long queue must not keep the loop from the other streams.
      budget -= std::min(budget, static_cast<size_t>(n));
      if (budget == 0) {
        std::lock_guard<std::mutex> lock(mu_);
        markDirtyLocked(stream);
        return;
      }
    }
    watchWritable(stream, false);
  }

  void watchWritable(Stream& stream, bool on) {
    if (stream.outArmed == on) return;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u);
    ev.data.u64 = stream.id;
    if (epoll_ctl(epollFd_, EPOLL_CTL_MOD, stream.fd, &ev) == 0) stream.outArmed = on;
  }

  void onTick(Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto idleLimit = options_.heartbeat > tick_ ? options_.heartbeat - tick_ : tick_;
    for (auto& [id, stream] : streams_) {
      if (stream->closing) continue;
      if (stream->finishBy && now >= *stream->finishBy) {
        requestCloseLocked(*stream);
        continue;
      }
      if (stream->queue.empty() && !stream->finishing) {
        if (now - stream->lastQueued >= idleLimit) {
          enqueueLocked(*stream, keepAliveFrame());
          ++stats_.heartbeats;
          markDirtyLocked(*stream);
        }
        continue;
      }
      if (options_.stallTimeout.count() > 0 &&
          now - stream->lastProgress >= options_.stallTimeout) {
        logger().information(
            Poco::format("closing stalled stream hook=%s stream=%Lu queued_bytes=%z",
                         stream->hookId, static_cast<Poco::UInt64>(id), stream->queuedBytes));
        ++stats_.closedStalled;
        requestCloseLocked(*stream);
      }
    }
  }

  void closeStream(Stream& stream, const char* why) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = streams_.find(stream.id);
      if (it == streams_.end()) return;
      stream.closing = true;
      streams_.erase(it);
      ++stats_.closed;
      auto hookIt = hooks_.find(stream.hookId);
      if (hookIt != hooks_.end()) {
        auto& list = hookIt->second.streams;
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [&](const auto& s) { return s.get() == &stream; }),
                   list.end());
        if (list.empty()) hooks_.erase(hookIt);
      }
      if (streams_.empty()) drainedCv_.notify_all();
    }
    epoll_ctl(epollFd_, EPOLL_CTL_DEL, stream.fd, nullptr);
    releaseSocket(stream);
    if (logger().debug()) {
      logger().debug(Poco::format("stream closed hook=%s stream=%Lu reason=\"%s\"", stream.hookId,
                                  static_cast<Poco::UInt64>(stream.id), std::string(why)));
    }
    tellClosed(stream);
  }

  // The listener learns of every close once: closeStream returns early for a stream already
  // gone, and stop() only sees streams that were still registered.
  void tellClosed(const Stream& stream) {
    std::lock_guard<std::mutex> lock(listenerMu_);
    if (!closeListener_) return;
    try {
      closeListener_(OpenStream{stream.hookId, stream.tags, stream.id});
    } catch (const std::exception& e) {
      logger().warning(Poco::format("stream close listener failed hook=%s error=\"%s\"",
                                    stream.hookId, std::string(e.what())));
    }
  }

  static void releaseSocket(Stream& stream) {
    try {
      stream.socket.close();
    } catch (const Poco::Exception&) {
      // Closing a socket the peer already reset can fail; it is gone either way.
    }
  }

  void closeFds() {
    if (wakeFd_ >= 0) ::close(wakeFd_);
    if (epollFd_ >= 0) ::close(epollFd_);
    wakeFd_ = -1;
    epollFd_ = -1;
  }

  store::Store& store_;
  Options options_;
  std::chrono::milliseconds tick_{1000};
  int epollFd_ = -1;
  int wakeFd_ = -1;

  mutable std::mutex mu_;
  std::mutex publishMu_;
  std::mutex listenerMu_;  ///< held while the close listener runs or is replaced
  std::function<void(const OpenStream&)> closeListener_;
  std::condition_variable workerCv_;
  std::condition_variable drainedCv_;  ///< notified when the last stream closes
  std::unordered_map<uint64_t, std::shared_ptr<Stream>> streams_;
  std::unordered_map<std::string, Hook> hooks_;
  std::vector<uint64_t> dirty_;    ///< streams the loop must write to or close
  std::deque<uint64_t> catchUps_;  ///< streams the worker must read a backlog page for
  /// Streams whose last backlog read failed, with the time of their next try, oldest first.
  std::deque<std::pair<Clock::time_point, uint64_t>> retries_;
  bool storeFailing_ = false;    ///< the last backlog read failed; warned once
  uint64_t failedInStreak_ = 0;  ///< failed reads since the last one that worked
  uint64_t nextId_ = 1;
  Stats stats_;
  bool started_ = false;
  bool stopped_ = false;
  bool draining_ = false;  ///< drain() began: no new streams, no new frames
  std::thread loop_;
  std::thread worker_;
};

StreamHub::StreamHub(store::Store& store, Options options)
    : impl_(std::make_unique<Impl>(store, options)) {}

StreamHub::~StreamHub() = default;

void StreamHub::start() { impl_->start(); }

void StreamHub::stop() { impl_->stop(); }

size_t StreamHub::drain(std::chrono::milliseconds within) { return impl_->drain(within); }

void StreamHub::attach(Poco::Net::StreamSocket socket, const std::string& hookId,
                       int64_t lastEventId) {
  impl_->attach(std::move(socket), hookId, lastEventId, StreamTags());
}

void StreamHub::attach(Poco::Net::StreamSocket socket, const std::string& hookId,
                       int64_t lastEventId, StreamTags tags) {
  impl_->attach(std::move(socket), hookId, lastEventId, std::move(tags));
}

size_t StreamHub::closeStreamsOfToken(const std::string& tokenId) {
  return impl_->closeStreamsOfToken(tokenId);
}

size_t StreamHub::closeStreams(const std::vector<uint64_t>& ids, const std::string& lastFrame) {
  return impl_->closeStreams(ids, lastFrame);
}

bool StreamHub::setLeased(uint64_t id) { return impl_->setLeased(id); }

std::vector<StreamHub::OpenStream> StreamHub::openStreamList() const {
  return impl_->openStreamList();
}

void StreamHub::setCloseListener(std::function<void(const OpenStream&)> listener) {
  impl_->setCloseListener(std::move(listener));
}

void StreamHub::publish(const store::EventRecord& event) { impl_->publish(event); }

void StreamHub::notify(const store::EventNotice& notice) { impl_->notify(notice); }

void StreamHub::postFrame(const std::string& hookId, std::string frame) {
  impl_->postFrame(hookId, std::move(frame));
}

size_t StreamHub::openStreams() const { return impl_->openStreams(); }

size_t StreamHub::openStreams(const std::string& hookId) const {
  return impl_->openStreams(hookId);
}

StreamHub::Stats StreamHub::stats() const { return impl_->stats(); }

}  // namespace anm::edge
