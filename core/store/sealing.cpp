// core/store/sealing.cpp: envelope encryption of stored events and of single secret fields.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/sealing.h"

#include <Poco/Logger.h>
#include <openssl/crypto.h>

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
