// tests/unit/store/store_suite.h: the backend-independent Store test suite and its fixtures.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/crypto/keys.h"
#include "core/store/sealing.h"
#include "core/store/store.h"

namespace anm::store::test {

/// A fresh directory, removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  /// Runs `cleanup` when the directory goes away, before its files are removed (last added runs
  /// first), so that resources a backend keeps for the directory (a database, a proxy) are
  /// released even when the test failed. Exceptions it throws are dropped.
  void onRemove(std::function<void()> cleanup) { cleanups_.push_back(std::move(cleanup)); }

 private:
  std::string path_;
  std::vector<std::function<void()>> cleanups_;
};

/// Opens the backend's store kept in (or named by) the directory. Opening twice with one
/// directory must reach the same data.
using StoreFactory = std::function<std::unique_ptr<Store>(TempDir&)>;

/// Which listener a backend tells about newly stored events (it never calls the other one).
enum class Announcement {
  kCommitListener,  ///< setCommitListener: the single writer hands over each committed record
  kNoticeListener,  ///< setNoticeListener: a follower of a shared database announces each id
};

/// What the suite needs from a backend. Every member is required unless it says otherwise: each
/// case runs for every backend.
struct StoreBackend {
  std::string name;
  StoreFactory open;

  /// The newest schema version the backend knows.
  int64_t schemaVersion = 0;

  /// Records in the store of `dir` (created and closed before) that schema `version` has been
  /// applied, as a newer build would.
  std::function<void(TempDir& dir, int64_t version)> markSchemaVersion;

  /// Makes every later write of the backend's storage fail until the returned function runs.
  std::function<std::function<void()>(TempDir& dir)> failWrites;

  /// How the backend announces events; the announcement case checks the promise through it.
  Announcement announces = Announcement::kCommitListener;

  /// Optional. Runs before each case and may skip or fail it (GTEST_SKIP, GTEST_FAIL) when what
  /// the backend needs, such as a database server, is not there.
  std::function<void()> requireAvailable;

  // --- Encryption at rest and accounts (AccountSuite, account_suite.cpp). The members below
  // are required for AccountSuite unless they say otherwise; StoreSuite does not use them.

  /// Opens the store of `dir` like `open`, but with contents encrypted at rest under `keys`
  /// (new records under the ring's active key). Opening `dir` again, with or without the same
  /// holder, reaches the same data; a holder whose ring was replaced is used as it is now.
  std::function<std::unique_ptr<Store>(TempDir& dir, std::shared_ptr<crypto::KeyHolder> keys)>
      openWithKeys;

  /// Every byte the backend keeps for the store of `dir`, concatenated in any order, as raw
  /// bytes (never hex or escaped): for SQLite the database file with its -wal and -shm files; for
  /// a server, every row of every table of the store's database as stored. Called after every
  /// store of `dir` was closed. The marker case searches it for plaintext that must not be there.
  std::function<std::string(TempDir& dir)> rawBytes;

  /// Flips one byte of the ciphertext event `eventId` stores in `column` (one of
  /// kSealedEventColumns), past its 12-byte nonce, directly in storage, as someone with write
  /// access to the database could, bypassing the Store. A store of `dir` may be open while it
  /// runs; the next read of that event must see the change.
  std::function<void(TempDir& dir, int64_t eventId, const std::string& column)>
      corruptEventCiphertext;

  /// Like corruptEventCiphertext, for the event's wrapped data key: the contents stay intact,
  /// but the key that opens them no longer opens under the ring.
  std::function<void(TempDir& dir, int64_t eventId)> corruptEventWrappedKey;
  /// Flips one byte of the ciphertext that the first delivery reported for `eventId` stores in
  /// `column` (one of kSealedDeliveryColumns), past its 12-byte nonce, directly in storage, as
  /// corruptEventCiphertext does for an event.
  std::function<void(TempDir& dir, int64_t eventId, const std::string& column)>
      corruptDeliveryCiphertext;

  /// Makes the store of `dir` (closed before) look as a build of schema 3 left it: what steps 4
  /// and later added dropped, and the steps unrecorded, so that the next open migrates again.
  std::function<void(TempDir& dir)> revertToSchema3;

  /// Optional. Tries to UPDATE and then to DELETE a row of the audit log directly in storage
  /// (the log holds at least one entry); returns true when the backend refused both and the
  /// row is unchanged. Null when the backend does not enforce append-only in storage: the
  /// append-only case then skips that part.
  std::function<bool(TempDir& dir)> auditRefusesChanges;
};

/// The columns of an event that hold ciphertext when the store has a key ring, named as both
/// backends name them.
inline const std::vector<std::string> kSealedEventColumns = {
    "raw_query", "headers", "body", "path_suffix", "reason_message", "event_type", "delivery_id"};

/// The columns of a delivery that hold ciphertext when its event is sealed.
inline const std::vector<std::string> kSealedDeliveryColumns = {"response_excerpt", "location"};

inline std::ostream& operator<<(std::ostream& out, const StoreBackend& backend) {
  return out << backend.name;
}

class StoreSuite : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    if (GetParam().requireAvailable) GetParam().requireAvailable();
  }

  std::unique_ptr<Store> open() { return GetParam().open(dir_); }

  TempDir dir_;
};

/// Names instantiations by backend: StoreSuite/Sqlite.CreateHookTwiceThrows/sqlite.
struct BackendName {
  std::string operator()(const ::testing::TestParamInfo<StoreBackend>& info) const {
    return info.param.name;
  }
};

/// The backend-independent cases of accounts, tokens, audit, settings, hooks of accounts and
/// encryption at rest. A backend instantiates it like StoreSuite:
/// INSTANTIATE_TEST_SUITE_P(MySql, AccountSuite, ::testing::Values(backend), BackendName()).
/// open() opens with keys(), a ring of one key "k1", through StoreBackend::openWithKeys.
class AccountSuite : public StoreSuite {
 protected:
  std::unique_ptr<Store> open() { return GetParam().openWithKeys(dir_, keys_); }

  crypto::KeyHolder& keys() { return *keys_; }
  std::shared_ptr<crypto::KeyHolder> keysPtr() { return keys_; }

  std::shared_ptr<crypto::KeyHolder> keys_;

 public:
  AccountSuite();
};

/// The AccountSuite cases that hold only for a backend whose single writer hands each
/// committed record to its commit listener (Announcement::kCommitListener); a backend that
/// announces by notice does not instantiate it, so its run has no case that does not apply.
class CommitListenerSuite : public AccountSuite {};

/// A key ring of fresh random keys with these ids; the last one is active.
crypto::KeyRing makeKeyRing(const std::vector<std::string>& ids);

/// A hook with every field set, so that round trips check them all.
HookRecord makeHook(const std::string& id);

/// An event of `hookId` with every field set and a short body.
EventRecord makeEvent(const std::string& hookId, const std::string& body = "{\"ok\":true}");

/// A delivery report of `eventId` with every fact set, its answer excerpt holding `marker`.
DeliveryRecord makeDelivery(int64_t eventId, const std::string& relayId, int64_t reportedAtMs,
                            const std::string& marker = "excerpt");

/// Expects `actual` to hold every field `expected` was stored with, none failing to open.
void expectSameDelivery(const DeliveryRecord& expected, const DeliveryRecord& actual);

/// Stores events, one of them an edited replay, and deliveries with every fact through
/// addDelivery and addDeliveries, and expects every read (listDeliveries, listDeliveriesOf,
/// getEvent, listEvents, listEventsBefore) to give back each field as it was. `store` is open
/// and empty.
void expectDeliveryFactsAndModifiedRoundTrip(Store& store);

/// Expects `actual` to hold what `expected` was stored with, none of it failing to open.
void expectSameContents(const EventRecord& expected, const EventRecord& actual);

/// Expects event `id` reported as not opening, with none of its sealed values.
void expectUnreadable(const EventRecord& event, int64_t id);

/// Summary fields with `marker` in each, as a test stores them in the clear behind a store.
SummaryFields markedSummary(const std::string& marker);

/// Expects `event` to have opened with the summary fields of markedSummary(marker).
void expectMarkedSummary(const EventRecord& event, const std::string& marker);

}  // namespace anm::store::test
