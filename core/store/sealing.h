// core/store/sealing.h: how the store backends encrypt records at rest (envelope encryption).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/crypto/keys.h"
#include "core/store/store.h"

namespace anm::store {

/// The values of an event that lists show beside its contents. They come from the request (the
/// path suffix; the event type from the body, the delivery id from a header) or from a plugin
/// that may quote the request (the reason message), so they are sealed like the contents.
struct SummaryFields {
  std::string pathSuffix;
  std::string reasonMessage;
  std::string eventType;
  std::string deliveryId;
};

/// What a sealed event row holds sealed, stored beside its key id: rows sealed before schema 3
/// hold their summary fields in the clear until the schema 3 migration or a re-encryption seals
/// them, and must be read that way until then.
///
/// Known limit: rows an edge of an older build writes after the migration (a rolling upgrade of
/// edges sharing MySQL) keep their summary fields in the clear until `keys rotate` reaches
/// them; a sweep at each start would seal them without the operator.
inline constexpr int64_t kSealVersionContents = 1;  ///< query, headers and body
inline constexpr int64_t kSealVersionSummary = 2;   ///< the summary fields as well

/// An event's contents as stored. Each event gets its own random data key; the raw query, the
/// header block (field_codec encoding), the body and each summary field are sealed under it
/// with AAD naming the hook and the field. The data key itself is sealed ("wrapped") under the
/// ring's active key once the event id is known, with AAD naming the hook and the event id, so
/// that no ciphertext can be moved to another record unnoticed, and rotating the key re-wraps
/// 60 bytes per event instead of rewriting bodies.
///
/// sealContents runs on the caller's thread before the event is queued; wrapDataKey on the
/// writer after the id is assigned.
struct SealedContents {
  std::string dataKey;    ///< kKeyBytes, in memory only until wrapped
  std::string query;      ///< sealed raw query
  std::string headers;    ///< sealed field_codec header block
  std::string body;       ///< sealed body
  SummaryFields summary;  ///< each field sealed on its own
};

struct WrappedKey {
  std::string keyId;   ///< the ring key that wrapped it
  std::string sealed;  ///< the sealed data key
};

/// An event's values as a backend read them from its row, for openContents.
struct StoredContents {
  WrappedKey wrapped;  ///< keyId "" for a row stored in the clear
  int64_t sealVersion = kSealVersionSummary;
  std::string query;
  std::string headers;
  const std::string* body = nullptr;  ///< null when the body was not read
  SummaryFields summary;
};

/// Seals query, headers, body and summary fields of `event` under a new data key.
SealedContents sealContents(const EventRecord& event);

/// Wraps `dataKey` under the ring's active key for (hookId, eventId).
WrappedKey wrapDataKey(const crypto::KeyRing& ring, std::string_view dataKey,
                       std::string_view hookId, int64_t eventId);

/// Re-wraps an event's data key under the active key (key rotation). Throws
/// crypto::IntegrityError when the old wrap does not open.
WrappedKey rewrapDataKey(const crypto::KeyRing& ring, const WrappedKey& old,
                         std::string_view hookId, int64_t eventId);

/// Seals the summary fields of an event whose row holds them in the clear (kSealVersionContents)
/// under the event's own data key, as sealContents would have. Throws crypto::IntegrityError
/// when the wrap does not open (the ring lacks its key, or it was changed).
SummaryFields sealSummaryFields(const crypto::KeyRing& ring, const WrappedKey& wrapped,
                                std::string_view hookId, int64_t eventId,
                                const SummaryFields& clear);

/// What schema 3's row work sealed and what it could not, for one log line each.
class SummarySealing {
 public:
  /// Runs `sealOne` for event `eventId`. A crypto::IntegrityError (the wrap does not open) is
  /// counted, and the first one kept, instead of thrown: that event stays as it was.
  void seal(int64_t eventId, const std::function<void()>& sealOne);

  /// Logs the counts; `where` names the store ("path=..." or "database=...").
  void report(const std::string& where) const;

 private:
  size_t sealed_ = 0;
  size_t failed_ = 0;
  int64_t firstFailed_ = 0;
  std::string firstError_;
};

/// Fills event.rawQuery, headers, body (when stored.body is set) and the summary fields from
/// the stored form. On a failed check, a key the ring lacks or a malformed header block, leaves
/// all of them empty and sets event.integrityError to a message naming the event and the key
/// id, never the contents. An empty wrapped.keyId means a row stored in the clear (a database
/// from before encryption at rest, or a store opened without keys): the stored form is then the
/// plaintext itself.
void openContents(const crypto::KeyRing& ring, const StoredContents& stored, EventRecord& event);

/// The values of a delivery report that came from the developer's local server (the start of
/// its answer and a redirect's Location), as a backend stores them: sealed under the event's
/// data key, or in the clear for an event stored in the clear.
struct StoredDeliveryText {
  std::string responseExcerpt;
  std::string location;
  bool sealed = false;
};

/// The event of a delivery, as a backend reads it beside the delivery: its hook (named in the
/// AAD) and the wrap of its data key (keyId "" for an event stored in the clear).
struct DeliveryEvent {
  int64_t id = 0;
  std::string hookId;
  WrappedKey wrapped;
};

/// Seals and opens deliveries' responseExcerpt and location under their events' own data keys,
/// with AAD "delivery|<hook id>|<event id>|<reported_at_ms>|<relay id length>|<relay id>|
/// <field>" (the length first, so that no relay id can pass for another's and a field): a value
/// moved to another field, delivery or event fails to open. Values sealed under a data key need
/// no work when the key ring rotates: only the data key's wrap changes.
///
/// Each event's data key is unwrapped once however many of its deliveries pass through, so a
/// backend uses one DeliverySealer per report batch or per read. Not for concurrent use.
class DeliverySealer {
 public:
  /// `ring` null: a store without keys, whose events are all in the clear.
  explicit DeliverySealer(const crypto::KeyRing* ring);
  ~DeliverySealer();
  DeliverySealer(const DeliverySealer&) = delete;
  DeliverySealer& operator=(const DeliverySealer&) = delete;

  /// What to store for `delivery` of `event`. When the event's data key does not open (the ring
  /// lacks its key, or the wrap was changed), the two values are dropped with a warning, and
  /// the rest of the report is stored without them (in the clear, empty). Never throws
  /// crypto::IntegrityError.
  StoredDeliveryText seal(const DeliveryRecord& delivery, const DeliveryEvent& event);

  /// Fills delivery.responseExcerpt and location from what was stored. When they do not open,
  /// leaves both empty and sets delivery.integrityError to a message naming the event, the
  /// report time and the key id, never the contents (logged once per event at error level).
  void open(DeliveryRecord& delivery, const DeliveryEvent& event, const StoredDeliveryText& stored);

 private:
  struct EventKey;
  EventKey& keyOf(const DeliveryEvent& event);

  const crypto::KeyRing* ring_;
  std::vector<std::unique_ptr<EventKey>> keys_;  ///< one per event met, few per batch or read
};

/// The events `deliveries` report on, each once, ascending: what a backend reads the keys of.
std::vector<int64_t> eventIdsOf(const std::vector<DeliveryRecord>& deliveries);

/// The delivery values sealed under `dataKey`, a data key in memory: re-encryption seals an
/// event stored in the clear under a new data key, and its deliveries with it.
StoredDeliveryText sealDeliveryText(std::string_view dataKey, std::string_view hookId,
                                    int64_t eventId, const DeliveryRecord& delivery);

/// A single secret field of a row (a hook's secret, a setting's value): sealed under the active
/// key with AAD "<table>|<row id>|<field>". `what` names the field in messages.
WrappedKey sealField(const crypto::KeyRing& ring, std::string_view plaintext,
                     std::string_view table, std::string_view rowId, std::string_view field);

/// Throws crypto::IntegrityError naming table, row and field when it does not open. An empty
/// stored.keyId means a value stored in the clear, which is returned as it is.
std::string openField(const crypto::KeyRing& ring, const WrappedKey& stored, std::string_view table,
                      std::string_view rowId, std::string_view field);

/// What key rotation passed over because it fails authentication (Store::reencryptFailures):
/// each record counted once, the first few named. Not thread-safe: the backend guards it.
struct ReencryptFailureLog {
  static constexpr size_t kExamples = 5;
  /// Names remembered to count each record once; past it, a record met again counts again.
  static constexpr size_t kMaxRemembered = 100000;

  ReencryptFailures failures;
  std::unordered_set<std::string> seen;

  void note(std::string record) {
    if (seen.count(record) != 0) return;
    ++failures.records;
    if (failures.examples.size() < kExamples) failures.examples.push_back(record);
    if (seen.size() < kMaxRemembered) seen.insert(std::move(record));
  }
};

}  // namespace anm::store
