// core/store/sealing.h: how the store backends encrypt records at rest (envelope encryption).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "core/crypto/keys.h"
#include "core/store/store.h"

namespace anm::store {

/// An event's contents as stored. Each event gets its own random data key; the raw query, the
/// header block (field_codec encoding) and the body are each sealed under it with AAD naming
/// the hook and the field. The data key itself is sealed ("wrapped") under the ring's active
/// key once the event id is known, with AAD naming the hook and the event id, so that no
/// ciphertext can be moved to another record unnoticed, and rotating the key re-wraps 60 bytes
/// per event instead of rewriting bodies.
///
/// sealContents runs on the caller's thread before the event is queued; wrapDataKey on the
/// writer after the id is assigned.
struct SealedContents {
  std::string dataKey;  ///< kKeyBytes, in memory only until wrapped
  std::string query;    ///< sealed raw query
  std::string headers;  ///< sealed field_codec header block
  std::string body;     ///< sealed body
};

struct WrappedKey {
  std::string keyId;  ///< the ring key that wrapped it
  std::string sealed; ///< the sealed data key
};

/// Seals query, headers and body of `event` under a new data key.
SealedContents sealContents(const EventRecord& event);

/// Wraps `dataKey` under the ring's active key for (hookId, eventId).
WrappedKey wrapDataKey(const crypto::KeyRing& ring, std::string_view dataKey,
                       std::string_view hookId, int64_t eventId);

/// Re-wraps an event's data key under the active key (key rotation). Throws
/// crypto::IntegrityError when the old wrap does not open.
WrappedKey rewrapDataKey(const crypto::KeyRing& ring, const WrappedKey& old,
                         std::string_view hookId, int64_t eventId);

/// Fills event.rawQuery, headers and (when `body` is non-null) body from the stored form.
/// On a failed check, a key the ring lacks or a malformed header block, leaves them empty and
/// sets event.integrityError to a message naming the event and the key id, never the contents.
/// An empty wrapped.keyId means a row stored in the clear (a database from before encryption
/// at rest, or a store opened without keys): the stored form is then the plaintext itself.
void openContents(const crypto::KeyRing& ring, const WrappedKey& wrapped,
                  std::string_view sealedQuery, std::string_view sealedHeaders,
                  const std::string* sealedBody, EventRecord& event);

/// A single secret field of a row (a hook's secret, a setting's value): sealed under the active
/// key with AAD "<table>|<row id>|<field>". `what` names the field in messages.
WrappedKey sealField(const crypto::KeyRing& ring, std::string_view plaintext,
                     std::string_view table, std::string_view rowId, std::string_view field);

/// Throws crypto::IntegrityError naming table, row and field when it does not open. An empty
/// stored.keyId means a value stored in the clear, which is returned as it is.
std::string openField(const crypto::KeyRing& ring, const WrappedKey& stored,
                      std::string_view table, std::string_view rowId, std::string_view field);

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
