// core/store/sealing.cpp: envelope encryption of stored events and of single secret fields.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/sealing.h"

#include <Poco/Logger.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <mutex>
#include <unordered_set>

#include "core/store/field_codec.h"

namespace anm::store {
namespace {

// The AAD of each sealed piece names what it is and whose it is; a piece moved to another
// field, event or row then fails to open. The data key is per event, so the contents need not
// name the event id (unknown when they are sealed); the wrap does.
std::string contentAad(std::string_view hookId, std::string_view field) {
  std::string aad = "event|";
  aad.append(hookId);
  aad.push_back('|');
  aad.append(field);
  return aad;
}

std::string wrapAad(std::string_view hookId, int64_t eventId) {
  std::string aad = "event-key|";
  aad.append(hookId);
  aad.push_back('|');
  aad.append(std::to_string(eventId));
  return aad;
}

std::string fieldAad(std::string_view table, std::string_view rowId, std::string_view field) {
  std::string aad(table);
  aad.push_back('|');
  aad.append(rowId);
  aad.push_back('|');
  aad.append(field);
  return aad;
}

// A delivery's values name the delivery by its report time and its relay id, whose length
// comes first so that no relay id can pass for another delivery's id and field.
std::string deliveryAad(std::string_view hookId, int64_t eventId, const DeliveryRecord& delivery,
                        std::string_view field) {
  std::string aad = "delivery|";
  aad.append(hookId);
  aad.push_back('|');
  aad.append(std::to_string(eventId));
  aad.push_back('|');
  aad.append(std::to_string(delivery.reportedAtMs));
  aad.push_back('|');
  aad.append(std::to_string(delivery.relayId.size()));
  aad.push_back('|');
  aad.append(delivery.relayId);
  aad.push_back('|');
  aad.append(field);
  return aad;
}

// The AAD field names of a delivery's values: their column names in both backends.
constexpr std::string_view kResponseExcerptField = "response_excerpt";
constexpr std::string_view kLocationField = "location";

/// The data key as a Key for crypto::seal/open; the id only shows in messages.
crypto::Key dataKeyOf(std::string_view bytes) { return crypto::Key{"data", std::string(bytes)}; }

/// Zeroes a key copy when it goes, so that data keys do not linger in freed memory.
struct Wiped {
  std::string bytes;
  ~Wiped() {
    if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
  }
};

std::string eventLabel(const EventRecord& event, std::string_view keyId) {
  return "event " + std::to_string(event.id) +
         " key_id=" + (keyId.empty() ? std::string("(none)") : std::string(keyId));
}

// The AAD field names of the summary fields: their column names in both backends.
constexpr std::string_view kPathSuffixField = "path_suffix";
constexpr std::string_view kReasonMessageField = "reason_message";
constexpr std::string_view kEventTypeField = "event_type";
constexpr std::string_view kDeliveryIdField = "delivery_id";

SummaryFields sealSummary(const crypto::Key& dataKey, std::string_view hookId,
                          const SummaryFields& clear) {
  SummaryFields sealed;
  sealed.pathSuffix = crypto::seal(dataKey, clear.pathSuffix, contentAad(hookId, kPathSuffixField));
  sealed.reasonMessage =
      crypto::seal(dataKey, clear.reasonMessage, contentAad(hookId, kReasonMessageField));
  sealed.eventType = crypto::seal(dataKey, clear.eventType, contentAad(hookId, kEventTypeField));
  sealed.deliveryId = crypto::seal(dataKey, clear.deliveryId, contentAad(hookId, kDeliveryIdField));
  return sealed;
}

void openSummary(crypto::Opener& dataKey, const SummaryFields& sealed, EventRecord& event) {
  event.pathSuffix = dataKey.open(sealed.pathSuffix, contentAad(event.hookId, kPathSuffixField));
  event.reasonMessage =
      dataKey.open(sealed.reasonMessage, contentAad(event.hookId, kReasonMessageField));
  event.eventType = dataKey.open(sealed.eventType, contentAad(event.hookId, kEventTypeField));
  event.deliveryId = dataKey.open(sealed.deliveryId, contentAad(event.hookId, kDeliveryIdField));
}

void takeSummary(const SummaryFields& clear, EventRecord& event) {
  event.pathSuffix = clear.pathSuffix;
  event.reasonMessage = clear.reasonMessage;
  event.eventType = clear.eventType;
  event.deliveryId = clear.deliveryId;
}

void clearSealable(EventRecord& event) {
  event.rawQuery.clear();
  event.headers.clear();
  event.body.clear();
  event.pathSuffix.clear();
  event.reasonMessage.clear();
  event.eventType.clear();
  event.deliveryId.clear();
}

/// Opens the wrap of an event's data key; throws crypto::IntegrityError naming the event.
void unwrapDataKey(const crypto::KeyRing& ring, const WrappedKey& wrapped, std::string_view hookId,
                   int64_t eventId, Wiped& dataKey) {
  const crypto::Key* key = ring.find(wrapped.keyId);
  if (key == nullptr) {
    throw crypto::IntegrityError("event " + std::to_string(eventId) + " is under key " +
                                 wrapped.keyId + ", which the key ring does not hold");
  }
  try {
    dataKey.bytes = crypto::open(*key, wrapped.sealed, wrapAad(hookId, eventId));
  } catch (const crypto::IntegrityError&) {
    throw crypto::IntegrityError("the data key of event " + std::to_string(eventId) +
                                 " failed its integrity check under key " + wrapped.keyId);
  }
}

}  // namespace

SealedContents sealContents(const EventRecord& event) {
  SealedContents sealed;
  sealed.dataKey = crypto::randomBytes(crypto::kKeyBytes);
  const crypto::Key key = dataKeyOf(sealed.dataKey);
  sealed.query = crypto::seal(key, event.rawQuery, contentAad(event.hookId, "query"));
  sealed.headers =
      crypto::seal(key, encodeHeaders(event.headers), contentAad(event.hookId, "headers"));
  sealed.body = crypto::seal(key, event.body, contentAad(event.hookId, "body"));
  sealed.summary = sealSummary(
      key, event.hookId,
      SummaryFields{event.pathSuffix, event.reasonMessage, event.eventType, event.deliveryId});
  return sealed;
}

WrappedKey wrapDataKey(const crypto::KeyRing& ring, std::string_view dataKey,
                       std::string_view hookId, int64_t eventId) {
  const crypto::Key& active = ring.active();
  return WrappedKey{active.id, crypto::seal(active, dataKey, wrapAad(hookId, eventId))};
}

WrappedKey rewrapDataKey(const crypto::KeyRing& ring, const WrappedKey& old,
                         std::string_view hookId, int64_t eventId) {
  Wiped dataKey;
  unwrapDataKey(ring, old, hookId, eventId, dataKey);
  return wrapDataKey(ring, dataKey.bytes, hookId, eventId);
}

SummaryFields sealSummaryFields(const crypto::KeyRing& ring, const WrappedKey& wrapped,
                                std::string_view hookId, int64_t eventId,
                                const SummaryFields& clear) {
  Wiped dataKey;
  unwrapDataKey(ring, wrapped, hookId, eventId, dataKey);
  return sealSummary(dataKeyOf(dataKey.bytes), hookId, clear);
}

void openContents(const crypto::KeyRing& ring, const StoredContents& stored, EventRecord& event) {
  clearSealable(event);
  const WrappedKey& wrapped = stored.wrapped;
  try {
    // A row from before encryption at rest holds its contents in the clear.
    if (wrapped.keyId.empty()) {
      event.headers = decodeHeaders(stored.headers);
      event.rawQuery = stored.query;
      if (stored.body != nullptr) event.body = *stored.body;
      takeSummary(stored.summary, event);
      return;
    }

    const crypto::Key* key = ring.find(wrapped.keyId);
    if (key == nullptr) {
      event.integrityError = "could not open " + eventLabel(event, wrapped.keyId) +
                             ": the key ring does not hold that key";
      return;
    }

    // One context for the event's values: they are all under its data key.
    Wiped dataKey;
    dataKey.bytes = crypto::open(*key, wrapped.sealed, wrapAad(event.hookId, event.id));
    crypto::Opener data(dataKeyOf(dataKey.bytes));
    event.rawQuery = data.open(stored.query, contentAad(event.hookId, "query"));
    event.headers = decodeHeaders(data.open(stored.headers, contentAad(event.hookId, "headers")));
    if (stored.body != nullptr) {
      event.body = data.open(*stored.body, contentAad(event.hookId, "body"));
    }

    // A row sealed before schema 3 that no migration or rotation has reached yet.
    if (stored.sealVersion < kSealVersionSummary) {
      takeSummary(stored.summary, event);
    } else {
      openSummary(data, stored.summary, event);
    }
  } catch (const crypto::IntegrityError&) {
    event.integrityError = "could not open " + eventLabel(event, wrapped.keyId) +
                           ": the stored contents failed their "
                           "integrity check (changed bytes, another key or another record)";
  } catch (const StoreError&) {
    event.integrityError = "could not open " + eventLabel(event, wrapped.keyId) +
                           ": the stored header block is malformed";
  }

  // Never half an event: what opened is dropped along with what did not.
  if (!event.integrityError.empty()) clearSealable(event);
}

void SummarySealing::seal(int64_t eventId, const std::function<void()>& sealOne) {
  try {
    sealOne();
    ++sealed_;
  } catch (const crypto::IntegrityError& e) {
    if (failed_ == 0) {
      firstFailed_ = eventId;
      firstError_ = e.what();
    }
    ++failed_;
  }
}

void SummarySealing::report(const std::string& where) const {
  Poco::Logger& logger = Poco::Logger::get("anm.store");
  if (sealed_ > 0) {
    logger.information("sealed summary fields of stored events %s count=%z", where, sealed_);
  }
  if (failed_ > 0) {
    logger.error(
        "could not seal summary fields of stored events %s count=%z first_event_id=%?d "
        "error=\"%s\"",
        where, failed_, firstFailed_, firstError_);
  }
}

// ---- deliveries ----

namespace {

/// Logs a delivery whose values did not open once per event: a list polled every second would
/// otherwise repeat it. Bounded like the backends' own record of unreadable events; past the
/// bound, repeats are logged again.
void reportDeliveryIntegrity(int64_t eventId, const std::string& keyId, const std::string& error) {
  static std::mutex mutex;
  static std::unordered_set<int64_t> reported;
  constexpr size_t kMaxReports = 100000;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (reported.count(eventId) != 0) return;
    if (reported.size() < kMaxReports) reported.insert(eventId);
  }
  Poco::Logger::get("anm.store")
      .error("could not open delivery event_id=%?d key_id=%s error=\"%s\"", eventId,
             keyId.empty() ? std::string("(none)") : keyId, error);
}

StoredDeliveryText sealDeliveryWith(const crypto::Key& dataKey, std::string_view hookId,
                                    int64_t eventId, const DeliveryRecord& delivery) {
  StoredDeliveryText stored;
  stored.responseExcerpt =
      crypto::seal(dataKey, delivery.responseExcerpt,
                   deliveryAad(hookId, eventId, delivery, kResponseExcerptField));
  stored.location = crypto::seal(dataKey, delivery.location,
                                 deliveryAad(hookId, eventId, delivery, kLocationField));
  stored.sealed = true;
  return stored;
}

}  // namespace

/// One event's data key as a DeliverySealer opened it, or why it could not.
struct DeliverySealer::EventKey {
  int64_t eventId = 0;
  std::string keyId;                       ///< "" for an event stored in the clear
  Wiped dataKey;                           ///< empty in the clear and when failure is set
  std::string failure;                     ///< why the wrap did not open
  bool warned = false;                     ///< a dropped seal was logged for this event
  std::unique_ptr<crypto::Opener> opener;  ///< made at the first open
};

DeliverySealer::DeliverySealer(const crypto::KeyRing* ring) : ring_(ring) {}

DeliverySealer::~DeliverySealer() = default;

DeliverySealer::EventKey& DeliverySealer::keyOf(const DeliveryEvent& event) {
  // Rows come grouped by event, so the one looked for is nearly always the last one made.
  for (auto it = keys_.rbegin(); it != keys_.rend(); ++it) {
    if ((*it)->eventId == event.id) return **it;
  }
  auto key = std::make_unique<EventKey>();
  key->eventId = event.id;
  key->keyId = event.wrapped.keyId;
  if (!key->keyId.empty()) {
    const crypto::Key* wrapping = ring_ != nullptr ? ring_->find(key->keyId) : nullptr;
    if (wrapping == nullptr) {
      key->failure = "the key ring does not hold that key";
    } else {
      try {
        key->dataKey.bytes =
            crypto::open(*wrapping, event.wrapped.sealed, wrapAad(event.hookId, event.id));
      } catch (const crypto::IntegrityError&) {
        key->failure = "the event's data key failed its integrity check";
      }
    }
  }
  keys_.push_back(std::move(key));
  return *keys_.back();
}

StoredDeliveryText DeliverySealer::seal(const DeliveryRecord& delivery,
                                        const DeliveryEvent& event) {
  EventKey& key = keyOf(event);
  if (key.keyId.empty()) {
    return StoredDeliveryText{delivery.responseExcerpt, delivery.location, false};
  }
  // Known limit: reports stored without their values are not counted in /metrics; the store
  // has no way to the edge's counters yet, so only this warning tells.
  if (!key.failure.empty()) {
    if (!key.warned && (!delivery.responseExcerpt.empty() || !delivery.location.empty())) {
      key.warned = true;
      Poco::Logger::get("anm.store")
          .warning(
              "could not seal delivery values, stored the report without them event_id=%?d "
              "key_id=%s error=\"%s\"",
              event.id, key.keyId, key.failure);
    }
    return StoredDeliveryText{};
  }
  return sealDeliveryWith(dataKeyOf(key.dataKey.bytes), event.hookId, event.id, delivery);
}

void DeliverySealer::open(DeliveryRecord& delivery, const DeliveryEvent& event,
                          const StoredDeliveryText& stored) {
  delivery.responseExcerpt.clear();
  delivery.location.clear();
  if (!stored.sealed) {
    delivery.responseExcerpt = stored.responseExcerpt;
    delivery.location = stored.location;
    return;
  }

  EventKey& key = keyOf(event);
  std::string why = key.failure;
  if (key.keyId.empty()) why = "its event is stored in the clear";
  if (why.empty()) {
    try {
      if (!key.opener) key.opener = std::make_unique<crypto::Opener>(dataKeyOf(key.dataKey.bytes));
      delivery.responseExcerpt =
          key.opener->open(stored.responseExcerpt,
                           deliveryAad(event.hookId, event.id, delivery, kResponseExcerptField));
      delivery.location = key.opener->open(
          stored.location, deliveryAad(event.hookId, event.id, delivery, kLocationField));
      return;
    } catch (const crypto::IntegrityError&) {
      why =
          "its response excerpt and location failed their integrity check (changed bytes, "
          "another key or another record)";
    }
  }

  // Never half a delivery's values: what opened goes along with what did not.
  delivery.responseExcerpt.clear();
  delivery.location.clear();
  delivery.integrityError = "could not open the delivery of event " + std::to_string(event.id) +
                            " reported_at_ms=" + std::to_string(delivery.reportedAtMs) +
                            " key_id=" + (key.keyId.empty() ? std::string("(none)") : key.keyId) +
                            ": " + why;
  reportDeliveryIntegrity(event.id, key.keyId, delivery.integrityError);
}

std::vector<int64_t> eventIdsOf(const std::vector<DeliveryRecord>& deliveries) {
  std::vector<int64_t> ids;
  ids.reserve(deliveries.size());
  for (const auto& delivery : deliveries) ids.push_back(delivery.eventId);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

StoredDeliveryText sealDeliveryText(std::string_view dataKey, std::string_view hookId,
                                    int64_t eventId, const DeliveryRecord& delivery) {
  return sealDeliveryWith(dataKeyOf(dataKey), hookId, eventId, delivery);
}

WrappedKey sealField(const crypto::KeyRing& ring, std::string_view plaintext,
                     std::string_view table, std::string_view rowId, std::string_view field) {
  const crypto::Key& active = ring.active();
  return WrappedKey{active.id, crypto::seal(active, plaintext, fieldAad(table, rowId, field))};
}

std::string openField(const crypto::KeyRing& ring, const WrappedKey& stored, std::string_view table,
                      std::string_view rowId, std::string_view field) {
  // A value from before encryption at rest is stored in the clear.
  if (stored.keyId.empty()) return stored.sealed;

  const std::string where =
      std::string(table) + " " + std::string(rowId) + " field " + std::string(field);
  const crypto::Key* key = ring.find(stored.keyId);
  if (key == nullptr) {
    throw crypto::IntegrityError("could not open " + where + ": it is under key " + stored.keyId +
                                 ", which the key ring does not hold");
  }
  try {
    return crypto::open(*key, stored.sealed, fieldAad(table, rowId, field));
  } catch (const crypto::IntegrityError&) {
    throw crypto::IntegrityError("could not open " + where + " under key " + stored.keyId +
                                 ": it failed its integrity check");
  }
}

}  // namespace anm::store
