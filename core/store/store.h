// core/store/store.h: the event store interface shared by the embedded and the MySQL backends.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace anm::store {

/// One header field as it arrived: original spelling, value without surrounding whitespace.
struct Header {
  std::string name;
  std::string value;

  bool operator==(const Header& other) const {
    return name == other.name && value == other.value;
  }
};

/// The verdict on a request's signature. Numbers match ANM_VERDICT_* in the SDK.
enum class Verdict : int32_t { kValid = 1, kInvalid = 2, kUnsigned = 3 };

/// A hook: the public ingest id with the provider settings it verifies senders with.
struct HookRecord {
  std::string id;        ///< at least 128 random bits, URL-safe
  std::string provider;  ///< plugin name, or "" for a hook that accepts everything
  std::string secret;    ///< signing secret bytes, may be empty
  int64_t toleranceS = -1;  ///< -1: the plugin's default; 0: no timestamp window
  std::vector<std::pair<std::string, std::string>> options;  ///< provider options, in order
  std::string tokenHash;  ///< hex SHA-256 of the relay token that may read this hook
  int64_t createdAtMs = 0;
};

/// A stored webhook. The id is global and assigned in commit order: an event with a higher id
/// was committed after every event with a lower one, on every backend and across every edge
/// sharing one database. It is also the SSE event id, so a relay resumes by it.
struct EventRecord {
  int64_t id = 0;
  std::string hookId;
  int64_t receivedAtMs = 0;
  std::string method;
  std::string pathSuffix;  ///< "" or starting with '/'
  std::string rawQuery;    ///< without '?', exactly as sent
  std::vector<Header> headers;
  std::string body;        ///< raw bytes; empty when fetched without bodies
  int64_t bodySize = 0;    ///< always set, also when the body itself was not fetched
  Verdict verdict = Verdict::kUnsigned;
  int32_t reason = 0;      ///< ANM_REASON_* from the SDK
  std::string reasonMessage;
  std::string eventType;   ///< the provider's event type, if the request carries one
  std::string deliveryId;  ///< the provider's delivery id, if the request carries one
  int64_t replayOf = 0;    ///< id of the original event when this one is a replay, else 0
};

/// What a relay reports after forwarding an event to its local target.
struct DeliveryRecord {
  int64_t eventId = 0;
  std::string relayId;     ///< chosen by the relay, stable for one relay session
  int32_t status = 0;      ///< local HTTP status, 0 when no response came
  int64_t durationMs = 0;
  std::string error;       ///< "" on success; "timeout", "connection refused", ...
  int64_t reportedAtMs = 0;
};

/// What a notice listener hears of an event: enough to decide who must read it.
struct EventNotice {
  int64_t id = 0;
  std::string hookId;
  bool forwardable = true;  ///< false for an invalid signature that is not a replay
};

/// Thrown by a backend when the store cannot do what was asked (disk full, database gone).
/// Callers on the request path turn it into 503; nothing is acknowledged that was not stored.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The store. Every method is safe to call from many threads at once.
class Store {
 public:
  virtual ~Store() = default;

  /// Adds a hook. Throws StoreError if the id exists already.
  virtual void createHook(const HookRecord& hook) = 0;

  virtual std::optional<HookRecord> findHook(const std::string& hookId) = 0;

  /// Stores the event durably (committed and synced) and returns its new id. Concurrent callers
  /// may be committed together in one transaction; each returns only after its own event is
  /// on disk.
  /// Throws StoreError when the event was not stored (the hook does not exist, the disk
  /// failed); then no id exists for it. bodySize is taken from body.
  virtual int64_t appendEvent(EventRecord event) = 0;

  /// Events of a hook with id > afterId, oldest first, at most `limit`. Paging with the last id
  /// returned as the next afterId never skips an event, even one that committed late: an
  /// event is returned only once every event with a lower id is visible too. With
  /// forwardableOnly, events with Verdict::kInvalid are left out (they are never relayed),
  /// except replays (replayOf != 0), which docs/protocol.md streams as a deliberate act.
  virtual std::vector<EventRecord> listEvents(const std::string& hookId, int64_t afterId,
                                              size_t limit, bool withBodies,
                                              bool forwardableOnly) = 0;

  /// One event of a hook with its body, or nothing if the hook has no such event.
  virtual std::optional<EventRecord> getEvent(const std::string& hookId, int64_t eventId) = 0;

  /// Stores one delivery report. Throws StoreError if the event does not exist.
  virtual void addDelivery(const DeliveryRecord& delivery) = 0;

  /// Stores several delivery reports atomically: all of them or, on any error, none (the bulk
  /// report of docs/protocol.md). Throws StoreError if one names an event that does not exist.
  /// The default stores them one by one, which is not atomic; backends override it.
  virtual void addDeliveries(const std::vector<DeliveryRecord>& deliveries) {
    for (const auto& delivery : deliveries) addDelivery(delivery);
  }

  /// Deliveries of one event, in the order they were reported.
  virtual std::vector<DeliveryRecord> listDeliveries(int64_t eventId) = 0;

  /// Called with every event right after it was committed and made durable, in id order, once
  /// per event, on one thread of the store's own (the writer, or the thread that syncs the
  /// writer's commits), before appendEvent returns to the caller that stored it. The
  /// record is the one stored (id set, body included); it is valid only during the call. The
  /// listener must be quick and must not call the store's write methods or setCommitListener
  /// (both would wait on the thread running the listener); reads are fine. Exceptions it
  /// throws are logged and dropped. Pass an empty function to remove it. The default does
  /// nothing: a backend without a single writer has no commit order to report.
  virtual void setCommitListener(std::function<void(const EventRecord&)> listener) {
    (void)listener;
  }

  /// For backends shared by several processes (the MySQL store): called with every event, in
  /// id order and once each, as soon as listEvents can return it, whichever process stored it;
  /// events stored before the listener was set are not announced. The notice carries no
  /// contents: a listener that needs them reads them with listEvents. It runs on a thread of
  /// the store's own and may call the store's read methods. Such a backend never calls the
  /// commit listener, and a backend with a commit listener never calls this one, so a caller
  /// may set both. The default does nothing.
  virtual void setNoticeListener(std::function<void(const EventNotice&)> listener) {
    (void)listener;
  }
};

/// Opens the SQLite store in `path` (created with its schema when missing).
std::unique_ptr<Store> openSqliteStore(const std::string& path);

}  // namespace anm::store
