// core/store/sealing.cpp: envelope encryption of stored events and of single secret fields.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/sealing.h"

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

}  // namespace

SealedContents sealContents(const EventRecord& event) {
  SealedContents sealed;
  sealed.dataKey = crypto::randomBytes(crypto::kKeyBytes);
  const crypto::Key key = dataKeyOf(sealed.dataKey);
  sealed.query = crypto::seal(key, event.rawQuery, contentAad(event.hookId, "query"));
  sealed.headers =
      crypto::seal(key, encodeHeaders(event.headers), contentAad(event.hookId, "headers"));
  sealed.body = crypto::seal(key, event.body, contentAad(event.hookId, "body"));
  return sealed;
}

WrappedKey wrapDataKey(const crypto::KeyRing& ring, std::string_view dataKey,
                       std::string_view hookId, int64_t eventId) {
  const crypto::Key& active = ring.active();
  return WrappedKey{active.id, crypto::seal(active, dataKey, wrapAad(hookId, eventId))};
}

WrappedKey rewrapDataKey(const crypto::KeyRing& ring, const WrappedKey& old,
                         std::string_view hookId, int64_t eventId) {
  const crypto::Key* key = ring.find(old.keyId);
  if (key == nullptr) {
    throw crypto::IntegrityError("event " + std::to_string(eventId) + " is under key " + old.keyId +
                                 ", which the key ring does not hold");
  }
  Wiped dataKey;
  try {
    dataKey.bytes = crypto::open(*key, old.sealed, wrapAad(hookId, eventId));
  } catch (const crypto::IntegrityError&) {
    throw crypto::IntegrityError("the data key of event " + std::to_string(eventId) +
                                 " failed its integrity check under key " + old.keyId);
  }
  return wrapDataKey(ring, dataKey.bytes, hookId, eventId);
}

void openContents(const crypto::KeyRing& ring, const WrappedKey& wrapped,
                  std::string_view sealedQuery, std::string_view sealedHeaders,
                  const std::string* sealedBody, EventRecord& event) {
  event.rawQuery.clear();
  event.headers.clear();
  event.body.clear();
  const std::string label = eventLabel(event, wrapped.keyId);
  try {
    // A row from before encryption at rest holds its contents in the clear.
    if (wrapped.keyId.empty()) {
      event.headers = decodeHeaders(sealedHeaders);
      event.rawQuery = std::string(sealedQuery);
      if (sealedBody != nullptr) event.body = *sealedBody;
      return;
    }

    const crypto::Key* key = ring.find(wrapped.keyId);
    if (key == nullptr) {
      event.integrityError = "could not open " + label + ": the key ring does not hold that key";
      return;
    }
    Wiped dataKey;
    dataKey.bytes = crypto::open(*key, wrapped.sealed, wrapAad(event.hookId, event.id));
    const crypto::Key data = dataKeyOf(dataKey.bytes);
    event.rawQuery = crypto::open(data, sealedQuery, contentAad(event.hookId, "query"));
    event.headers =
        decodeHeaders(crypto::open(data, sealedHeaders, contentAad(event.hookId, "headers")));
    if (sealedBody != nullptr) {
      event.body = crypto::open(data, *sealedBody, contentAad(event.hookId, "body"));
    }
  } catch (const crypto::IntegrityError&) {
    event.integrityError = "could not open " + label +
                           ": the stored contents failed their "
                           "integrity check (changed bytes, another key or another record)";
  } catch (const StoreError&) {
    event.integrityError = "could not open " + label + ": the stored header block is malformed";
  }

  // Never half an event: what opened is dropped along with what did not.
  if (!event.integrityError.empty()) {
    event.rawQuery.clear();
    event.headers.clear();
    event.body.clear();
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
