// tests/unit/store/sealing_test.cpp: how an event's values are sealed and opened again.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/sealing.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "tests/unit/store/store_suite.h"

namespace anm::store::test {
namespace {

constexpr const char* kMarker = "MARKER-e2b7c4";

EventRecord markedEvent(int64_t id) {
  EventRecord event = makeEvent("hook-1", std::string("body ") + kMarker);
  event.id = id;
  event.rawQuery = std::string("q=") + kMarker;
  event.pathSuffix = std::string("/p/") + kMarker;
  event.reasonMessage = std::string("quoted ") + kMarker;
  event.eventType = std::string(kMarker) + ".created";
  event.deliveryId = std::string("msg_") + kMarker;
  return event;
}

/// What a backend stores for `event`, as openContents is given it back; the sealed body is
/// kept in `sealedBody`.
StoredContents storedFormOf(const crypto::KeyRing& ring, const EventRecord& event,
                            std::string& sealedBody) {
  const SealedContents sealed = sealContents(event);
  sealedBody = sealed.body;
  StoredContents stored;
  stored.wrapped = wrapDataKey(ring, sealed.dataKey, event.hookId, event.id);
  stored.sealVersion = kSealVersionSummary;
  stored.query = sealed.query;
  stored.headers = sealed.headers;
  stored.body = &sealedBody;
  stored.summary = sealed.summary;
  return stored;
}

/// The event's record as a backend reads its plain columns, before openContents.
EventRecord plainColumnsOf(const EventRecord& event) {
  EventRecord read;
  read.id = event.id;
  read.hookId = event.hookId;
  read.method = event.method;
  read.bodySize = static_cast<int64_t>(event.body.size());
  return read;
}

void expectNothingOpened(const EventRecord& event) {
  expectUnreadable(event, event.id);
  EXPECT_EQ(event.integrityError.find(kMarker), std::string::npos) << event.integrityError;
}

TEST(Sealing, SummaryFieldsAreSealedEachWithAFreshNonceAndOpenAgain) {
  const crypto::KeyRing ring = makeKeyRing({"k1"});
  const EventRecord event = markedEvent(7);
  const SealedContents first = sealContents(event);
  const SealedContents second = sealContents(event);

  for (const auto& [clear, sealed] : {std::pair{event.pathSuffix, first.summary.pathSuffix},
                                      std::pair{event.reasonMessage, first.summary.reasonMessage},
                                      std::pair{event.eventType, first.summary.eventType},
                                      std::pair{event.deliveryId, first.summary.deliveryId}}) {
    EXPECT_EQ(sealed.size(), clear.size() + crypto::kNonceBytes + crypto::kTagBytes);
    EXPECT_EQ(sealed.find(kMarker), std::string::npos);
  }
  EXPECT_NE(first.summary.eventType.substr(0, crypto::kNonceBytes),
            second.summary.eventType.substr(0, crypto::kNonceBytes));

  std::string sealedBody;
  const StoredContents stored = storedFormOf(ring, event, sealedBody);
  EventRecord read = plainColumnsOf(event);
  openContents(ring, stored, read);
  expectSameContents(event, read);
}

TEST(Sealing, SummaryFieldMovedToAnotherFieldOrEventFailsToOpen) {
  const crypto::KeyRing ring = makeKeyRing({"k1"});
  const EventRecord event = markedEvent(7);
  std::string body;
  const StoredContents stored = storedFormOf(ring, event, body);

  // The AAD names the field: an event type stored as the delivery id does not open.
  StoredContents swapped = stored;
  std::swap(swapped.summary.eventType, swapped.summary.deliveryId);
  EventRecord read = plainColumnsOf(event);
  openContents(ring, swapped, read);
  expectNothingOpened(read);

  // Each event has its own data key: another event's value does not open in this one.
  std::string otherBody;
  const StoredContents other = storedFormOf(ring, markedEvent(8), otherBody);
  StoredContents moved = stored;
  moved.summary.reasonMessage = other.summary.reasonMessage;
  read = plainColumnsOf(event);
  openContents(ring, moved, read);
  expectNothingOpened(read);

  // The same row under another event id does not open either: the wrap names the id.
  read = plainColumnsOf(event);
  read.id = 9;
  openContents(ring, stored, read);
  expectNothingOpened(read);
}

TEST(Sealing, RowSealedBeforeSchemaThreeReadsItsSummaryAsStoredUntilItIsSealed) {
  const crypto::KeyRing ring = makeKeyRing({"k1"});
  const EventRecord event = markedEvent(7);
  std::string body;
  StoredContents stored = storedFormOf(ring, event, body);
  stored.sealVersion = kSealVersionContents;
  stored.summary =
      SummaryFields{event.pathSuffix, event.reasonMessage, event.eventType, event.deliveryId};

  EventRecord read = plainColumnsOf(event);
  openContents(ring, stored, read);
  expectSameContents(event, read);

  // Sealed under the event's own data key, they open as if sealContents had sealed them.
  stored.summary = sealSummaryFields(ring, stored.wrapped, event.hookId, event.id, stored.summary);
  stored.sealVersion = kSealVersionSummary;
  EXPECT_EQ(stored.summary.eventType.find(kMarker), std::string::npos);
  read = plainColumnsOf(event);
  openContents(ring, stored, read);
  expectSameContents(event, read);

  // A wrap that does not open seals nothing.
  EXPECT_THROW(sealSummaryFields(makeKeyRing({"k1"}), stored.wrapped, event.hookId, event.id,
                                 stored.summary),
               crypto::IntegrityError);
  EXPECT_THROW(sealSummaryFields(makeKeyRing({"k2"}), stored.wrapped, event.hookId, event.id, {}),
               crypto::IntegrityError);
}

}  // namespace
}  // namespace anm::store::test
