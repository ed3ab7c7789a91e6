// tests/unit/store/account_suite.cpp: accounts, tokens, audit, settings, hooks of accounts and
// encryption at rest, as every backend must keep them.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/store/store_suite.h"

namespace anm::store::test {

crypto::KeyRing makeKeyRing(const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) text += crypto::KeyRing::newKeyLine(id) + "\n";
  return crypto::KeyRing::parse(text, "test keys");
}

AccountSuite::AccountSuite() : keys_(std::make_shared<crypto::KeyHolder>(makeKeyRing({"k1"}))) {}

// A backend's test program compiles this file before it instantiates AccountSuite, and only
// a backend with a commit listener instantiates CommitListenerSuite.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(AccountSuite);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CommitListenerSuite);

namespace {

AccountRecord makeAccount(const std::string& id, const std::string& name, Plan plan = Plan::kFree) {
  AccountRecord account;
  account.id = id;
  account.name = name;
  account.plan = plan;
  account.createdAtMs = 1700000000000;
  return account;
}

MemberRecord makeMember(const std::string& id, const std::string& accountId,
                        const std::string& name, bool owner = false) {
  MemberRecord member;
  member.id = id;
  member.accountId = accountId;
  member.name = name;
  member.owner = owner;
  member.createdAtMs = 1700000000001;
  return member;
}

TokenRecord makeToken(const std::string& id, const std::string& memberId,
                      const std::string& accountId, const std::string& hash) {
  TokenRecord token;
  token.id = id;
  token.memberId = memberId;
  token.accountId = accountId;
  token.name = "laptop";
  token.hash = hash;
  token.createdAtMs = 1700000000002;
  return token;
}

/// A named hook with every field of accounts set.
HookRecord makeNamedHook(const std::string& id, const std::string& accountId,
                         const std::string& name) {
  HookRecord hook = makeHook(id);
  hook.tokenHash = "";
  hook.accountId = accountId;
  hook.name = name;
  hook.signingSecret = "whsec_current";
  hook.previousSigningSecret = "whsec_previous";
  hook.previousValidUntilMs = 1700000086400;
  hook.standardWebhooks = true;
  hook.customResponse = CustomResponse{202, {{"X-A", "b"}, {"X-A", "c"}}, "accepted\n"};
  return hook;
}

/// Collects the store's log lines ("anm.store") while it lives.
class StoreLogCapture {
 public:
  StoreLogCapture() : channel_(new Lines) { Poco::Logger::get("anm.store").setChannel(channel_); }
  ~StoreLogCapture() { Poco::Logger::get("anm.store").setChannel(nullptr); }

  StoreLogCapture(const StoreLogCapture&) = delete;
  StoreLogCapture& operator=(const StoreLogCapture&) = delete;

  /// The lines logged at `priority` that contain `text`.
  size_t count(Poco::Message::Priority priority, const std::string& text) const {
    return channel_->count(priority, text);
  }

 private:
  class Lines : public Poco::Channel {
   public:
    void log(const Poco::Message& message) override {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.emplace_back(message.getPriority(), message.getText());
    }
    size_t count(Poco::Message::Priority priority, const std::string& text) const {
      std::lock_guard<std::mutex> lock(mutex_);
      return static_cast<size_t>(std::count_if(lines_.begin(), lines_.end(), [&](const auto& l) {
        return l.first == priority && l.second.find(text) != std::string::npos;
      }));
    }

   private:
    mutable std::mutex mutex_;
    std::vector<std::pair<Poco::Message::Priority, std::string>> lines_;
  };

  Poco::AutoPtr<Lines> channel_;
};

AuditRecord makeAudit(const std::string& accountId, const std::string& action, int64_t atMs) {
  AuditRecord entry;
  entry.atMs = atMs;
  entry.accountId = accountId;
  entry.actor = "member:mem_1";
  entry.action = action;
  entry.hookId = "hook-1";
  entry.eventId = 42;
  entry.detail = "last_event_id=7";
  entry.remote = "127.0.0.1";
  return entry;
}

void expectSameHook(const HookRecord& expected, const HookRecord& actual) {
  EXPECT_EQ(expected.id, actual.id);
  EXPECT_EQ(expected.provider, actual.provider);
  EXPECT_EQ(expected.secret, actual.secret);
  EXPECT_EQ(expected.toleranceS, actual.toleranceS);
  EXPECT_EQ(expected.options, actual.options);
  EXPECT_EQ(expected.tokenHash, actual.tokenHash);
  EXPECT_EQ(expected.createdAtMs, actual.createdAtMs);
  EXPECT_EQ(expected.accountId, actual.accountId);
  EXPECT_EQ(expected.name, actual.name);
  EXPECT_EQ(expected.signingSecret, actual.signingSecret);
  EXPECT_EQ(expected.previousSigningSecret, actual.previousSigningSecret);
  EXPECT_EQ(expected.previousValidUntilMs, actual.previousValidUntilMs);
  EXPECT_EQ(expected.standardWebhooks, actual.standardWebhooks);
  EXPECT_EQ(expected.customResponse, actual.customResponse);
  EXPECT_EQ(expected.expiresAtMs, actual.expiresAtMs);
}

int64_t recordsUnder(const std::vector<KeyUsage>& usage, const std::string& keyId) {
  for (const auto& entry : usage) {
    if (entry.keyId == keyId) return entry.records;
  }
  return 0;
}

int64_t allRecords(const std::vector<KeyUsage>& usage) {
  int64_t total = 0;
  for (const auto& entry : usage) total += entry.records;
  return total;
}

TEST_P(AccountSuite, AccountsRoundTripAndTheirNamesAreUnique) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha", Plan::kPro));
  store->createAccount(makeAccount("acc_2", "beta"));

  auto found = store->findAccount("acc_1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->name, "alpha");
  EXPECT_EQ(found->plan, Plan::kPro);
  EXPECT_FALSE(found->disabled);
  EXPECT_EQ(found->createdAtMs, 1700000000000);
  ASSERT_TRUE(store->findAccountByName("beta").has_value());
  EXPECT_EQ(store->findAccountByName("beta")->id, "acc_2");
  EXPECT_FALSE(store->findAccount("acc_9").has_value());
  EXPECT_FALSE(store->findAccountByName("gamma").has_value());

  // A taken name is a conflict, and the first account is unchanged.
  EXPECT_THROW(store->createAccount(makeAccount("acc_3", "alpha")), ConflictError);
  EXPECT_EQ(store->findAccountByName("alpha")->id, "acc_1");

  auto all = store->listAccounts();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, "acc_1");
  EXPECT_EQ(all[1].id, "acc_2");

  AccountRecord changed = *found;
  changed.plan = Plan::kFree;
  changed.disabled = true;
  EXPECT_TRUE(store->updateAccount(changed));
  EXPECT_EQ(store->findAccount("acc_1")->plan, Plan::kFree);
  EXPECT_TRUE(store->findAccount("acc_1")->disabled);
  EXPECT_EQ(store->findAccount("acc_1")->name, "alpha");
  EXPECT_FALSE(store->updateAccount(makeAccount("acc_9", "nobody")));
}

TEST_P(AccountSuite, MemberNamesAreUniqueWithinTheirAccountOnly) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  store->createAccount(makeAccount("acc_2", "beta"));
  store->createMember(makeMember("mem_1", "acc_1", "owner", true));
  store->createMember(makeMember("mem_2", "acc_1", "bob"));
  store->createMember(makeMember("mem_3", "acc_2", "owner", true));

  EXPECT_THROW(store->createMember(makeMember("mem_4", "acc_1", "bob")), ConflictError);

  auto members = store->listMembers("acc_1");
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0].id, "mem_1");
  EXPECT_TRUE(members[0].owner);
  EXPECT_EQ(members[1].name, "bob");
  EXPECT_FALSE(members[1].owner);
  EXPECT_EQ(store->listMembers("acc_2").size(), 1u);
  EXPECT_TRUE(store->listMembers("acc_9").empty());

  auto found = store->findMember("mem_3");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->accountId, "acc_2");
  EXPECT_EQ(found->createdAtMs, 1700000000001);
  EXPECT_FALSE(store->findMember("mem_9").has_value());
}

TEST_P(AccountSuite, TokensAreFoundByHashRevokedOnceAndListedWithRevokedOnes) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  store->createMember(makeMember("mem_1", "acc_1", "owner", true));
  const std::string hashA(64, 'a');
  const std::string hashB(64, 'b');
  store->createToken(makeToken("tok_1", "mem_1", "acc_1", hashA));
  store->createToken(makeToken("tok_2", "mem_1", "acc_1", hashB));

  auto byHash = store->findTokenByHash(hashB);
  ASSERT_TRUE(byHash.has_value());
  EXPECT_EQ(byHash->id, "tok_2");
  EXPECT_EQ(byHash->memberId, "mem_1");
  EXPECT_EQ(byHash->name, "laptop");
  EXPECT_EQ(byHash->revokedAtMs, 0);
  EXPECT_FALSE(store->findTokenByHash(std::string(64, 'c')).has_value());
  EXPECT_FALSE(store->findToken("tok_9").has_value());

  // last_used moves with each exchange.
  store->touchToken("tok_1", 1700000005000);
  EXPECT_EQ(store->findToken("tok_1")->lastUsedAtMs, 1700000005000);

  // Revoked once; the second revocation and an unknown token report false.
  EXPECT_TRUE(store->revokeToken("tok_1", 1700000010000));
  EXPECT_FALSE(store->revokeToken("tok_1", 1700000020000));
  EXPECT_FALSE(store->revokeToken("tok_9", 1700000020000));
  EXPECT_EQ(store->findToken("tok_1")->revokedAtMs, 1700000010000);
  EXPECT_EQ(store->findTokenByHash(hashA)->revokedAtMs, 1700000010000);

  auto tokens = store->listTokens("acc_1");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].id, "tok_1");
  EXPECT_EQ(tokens[1].id, "tok_2");

  // The revocation list holds tokens revoked at or after the time asked for.
  EXPECT_EQ(store->revokedTokensSince(1700000010000), std::vector<std::string>{"tok_1"});
  EXPECT_EQ(store->revokedTokensSince(0), std::vector<std::string>{"tok_1"});
  EXPECT_TRUE(store->revokedTokensSince(1700000010001).empty());
}

TEST_P(AccountSuite, AnEndedSessionIsKnownUntilItsTimeAndEndingItTwiceIsNoError) {
  auto store = open();
  const int64_t now = 1700000000000;
  EXPECT_FALSE(store->sessionEnded("jti-a", now));

  store->endSession("jti-a", now + 1000, now);
  store->endSession("jti-a", now + 1000, now + 10);
  store->endSession("jti-b", now + 5000, now);
  EXPECT_TRUE(store->sessionEnded("jti-a", now + 999));
  EXPECT_FALSE(store->sessionEnded("jti-a", now + 1000));
  EXPECT_TRUE(store->sessionEnded("jti-b", now + 1000));
  EXPECT_FALSE(store->sessionEnded("jti-c", now));

  // Ended after the first one's time, a new one takes its place; the others are kept.
  store->endSession("jti-c", now + 9000, now + 2000);
  EXPECT_TRUE(store->sessionEnded("jti-c", now + 2000));
  EXPECT_TRUE(store->sessionEnded("jti-b", now + 2000));
  EXPECT_FALSE(store->sessionEnded("jti-a", now + 2000));
  store->endSession("jti-a", now + 9000, now + 3000);
  EXPECT_TRUE(store->sessionEnded("jti-a", now + 3000));
}

TEST_P(AccountSuite, NamedHooksRoundTripWithEveryFieldAndNamesAreUniquePerAccount) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  store->createAccount(makeAccount("acc_2", "beta"));
  HookRecord hook = makeNamedHook("hook-1", "acc_1", "payments");
  store->createHook(hook);

  ASSERT_TRUE(store->findHook("hook-1").has_value());
  expectSameHook(hook, *store->findHook("hook-1"));
  ASSERT_TRUE(store->findHookByName("acc_1", "payments").has_value());
  expectSameHook(hook, *store->findHookByName("acc_1", "payments"));
  EXPECT_FALSE(store->findHookByName("acc_2", "payments").has_value());
  EXPECT_FALSE(store->findHookByName("acc_1", "other").has_value());

  // The name is taken in acc_1 only; anonymous hooks have no name and never conflict.
  EXPECT_THROW(store->createHook(makeNamedHook("hook-2", "acc_1", "payments")), ConflictError);
  store->createHook(makeNamedHook("hook-3", "acc_2", "payments"));
  HookRecord anonymous = makeHook("anon-1");
  anonymous.expiresAtMs = 1700000003600;
  store->createHook(anonymous);
  store->createHook(makeHook("anon-2"));
  EXPECT_FALSE(store->findHook("hook-2").has_value());
  expectSameHook(anonymous, *store->findHook("anon-1"));
  EXPECT_FALSE(store->findHook("anon-1")->customResponse.has_value());

  HookRecord second = makeNamedHook("hook-4", "acc_1", "ci");
  second.createdAtMs = hook.createdAtMs + 1;
  second.customResponse.reset();
  store->createHook(second);
  auto listed = store->listHooks("acc_1");
  ASSERT_EQ(listed.size(), 2u);
  expectSameHook(hook, listed[0]);
  expectSameHook(second, listed[1]);
  EXPECT_EQ(store->listHooks("acc_2").size(), 1u);
  EXPECT_TRUE(store->listHooks("acc_9").empty());
}

TEST_P(AccountSuite, CreateHookWithinStopsAtThePlanLimitEvenWhenCreatesRace) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  store->createHookWithin(makeNamedHook("h1", "acc_1", "one"), 1);
  EXPECT_THROW(store->createHookWithin(makeNamedHook("h2", "acc_1", "two"), 1), LimitError);
  EXPECT_THROW(store->createHookWithin(makeNamedHook("h3", "acc_1", "one"), 5), ConflictError);
  EXPECT_FALSE(store->findHook("h2").has_value());

  // Anonymous hooks do not count against an account's named hooks.
  store->createHook(makeHook("anon"));
  EXPECT_EQ(store->listHooks("acc_1").size(), 1u);

  // No limit (the pro plan's) is the largest size_t.
  store->createAccount(makeAccount("acc_pro", "pro"));
  for (const char* name : {"first", "second"}) {
    EXPECT_NO_THROW(
        store->createHookWithin(makeNamedHook(std::string("pro-") + name, "acc_pro", name),
                                std::numeric_limits<size_t>::max()));
  }
  EXPECT_EQ(store->listHooks("acc_pro").size(), 2u);

  // Eight creates at once against a limit of 3 (one taken already): exactly two get through.
  std::atomic<int> created{0}, limited{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      try {
        store->createHookWithin(
            makeNamedHook("race-" + std::to_string(i), "acc_1", "race-" + std::to_string(i)), 3);
        ++created;
      } catch (const LimitError&) {
        ++limited;
      } catch (...) {
        ++other;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(created.load(), 2);
  EXPECT_EQ(limited.load(), 6);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(store->listHooks("acc_1").size(), 3u);
}

TEST_P(AccountSuite, UpdatedHookIsSeenAtOnceAndUnknownHookIsNotUpdated) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  HookRecord hook = makeNamedHook("hook-1", "acc_1", "payments");
  store->createHook(hook);
  ASSERT_TRUE(store->findHook("hook-1").has_value());  // now cached, where the backend caches

  HookRecord changed = hook;
  changed.provider = "";
  changed.secret = "new-secret";
  changed.toleranceS = 0;
  changed.options = {{"k", "v"}};
  changed.signingSecret = "whsec_rotated";
  changed.previousSigningSecret = hook.signingSecret;
  changed.previousValidUntilMs = 1800000000000;
  changed.standardWebhooks = false;
  changed.customResponse.reset();
  EXPECT_TRUE(store->updateHook(changed));
  expectSameHook(changed, *store->findHook("hook-1"));
  expectSameHook(changed, *store->findHookByName("acc_1", "payments"));

  // Account, name and relay token are not changed by an update.
  HookRecord moved = changed;
  moved.accountId = "acc_2";
  moved.name = "elsewhere";
  EXPECT_TRUE(store->updateHook(moved));
  EXPECT_EQ(store->findHook("hook-1")->accountId, "acc_1");
  EXPECT_EQ(store->findHook("hook-1")->name, "payments");

  EXPECT_FALSE(store->updateHook(makeNamedHook("hook-9", "acc_1", "x")));
  EXPECT_FALSE(store->findHook("hook-9").has_value());
}

TEST_P(AccountSuite, ExpiredAnonymousHooksGoWithTheirEventsAndDeliveries) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  const int64_t now = 1700000100000;
  HookRecord expired = makeHook("expired");
  expired.expiresAtMs = now - 1;
  HookRecord live = makeHook("live");
  live.expiresAtMs = now + 60000;
  HookRecord forever = makeHook("forever");  // expiresAtMs 0: never expires
  store->createHook(expired);
  store->createHook(live);
  store->createHook(forever);
  store->createHook(makeNamedHook("named", "acc_1", "payments"));

  const int64_t gone = store->appendEvent(makeEvent("expired"));
  store->addDelivery({gone, "relay", 200, 3, "", now});
  const int64_t kept = store->appendEvent(makeEvent("live"));
  ASSERT_TRUE(store->findHook("expired").has_value());

  EXPECT_EQ(store->deleteExpiredHooks(now), 1u);
  EXPECT_FALSE(store->findHook("expired").has_value());
  EXPECT_FALSE(store->getEvent("expired", gone).has_value());
  EXPECT_TRUE(store->listEvents("expired", 0, 10, true, false).empty());
  EXPECT_TRUE(store->listDeliveries(gone).empty());
  EXPECT_TRUE(store->findHook("live").has_value());
  EXPECT_TRUE(store->findHook("forever").has_value());
  EXPECT_TRUE(store->findHook("named").has_value());
  EXPECT_TRUE(store->getEvent("live", kept).has_value());
  EXPECT_EQ(store->deleteExpiredHooks(now), 0u);

  // Ids are never reused, also after the newest events went with their hook.
  const int64_t later = store->appendEvent(makeEvent("live"));
  EXPECT_GT(later, gone);
  EXPECT_GT(later, kept);
}

TEST_P(AccountSuite, ExtendHookMovesAnAnonymousExpiryForwardOnly) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  HookRecord hook = makeHook("anon");
  hook.expiresAtMs = 1000;
  store->createHook(hook);
  store->createHook(makeNamedHook("named", "acc_1", "payments"));
  ASSERT_EQ(store->findHook("anon")->expiresAtMs, 1000);

  store->extendHook("anon", 5000);
  EXPECT_EQ(store->findHook("anon")->expiresAtMs, 5000);
  store->extendHook("anon", 3000);
  EXPECT_EQ(store->findHook("anon")->expiresAtMs, 5000);

  // A named hook never expires, and an unknown one is no error.
  store->extendHook("named", 9000);
  EXPECT_EQ(store->findHook("named")->expiresAtMs, 0);
  EXPECT_NO_THROW(store->extendHook("unknown", 9000));
}

TEST_P(AccountSuite, RelayLeaseIsHeldByOneRelayUntilItEndsOrIsReleased) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  store->createHook(makeNamedHook("h", "acc_1", "payments"));

  EXPECT_TRUE(store->claimRelay("h", "relay-a", 1000, 31000));
  EXPECT_FALSE(store->claimRelay("h", "relay-b", 2000, 32000));

  // The holder renews, and takes its lease back after a reconnect.
  EXPECT_TRUE(store->claimRelay("h", "relay-a", 11000, 41000));
  EXPECT_FALSE(store->claimRelay("h", "relay-b", 40000, 70000));

  // Once the lease ended, another relay takes it.
  EXPECT_TRUE(store->claimRelay("h", "relay-b", 41001, 71001));
  EXPECT_FALSE(store->claimRelay("h", "relay-a", 42000, 72000));

  // Only the holder's release frees it.
  store->releaseRelay("h", "relay-a");
  EXPECT_FALSE(store->claimRelay("h", "relay-a", 43000, 73000));
  store->releaseRelay("h", "relay-b");
  EXPECT_TRUE(store->claimRelay("h", "relay-a", 43000, 73000));

  EXPECT_FALSE(store->claimRelay("unknown", "relay-a", 1000, 2000));
}

TEST_P(AccountSuite, ANewStreamOfTheSameRelayTakesTheLeaseFromItsOlderStream) {
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  store->createHook(makeNamedHook("h", "acc_1", "payments"));

  EXPECT_TRUE(store->takeOverRelay("h", "relay_a.one", "relay_a.", 1000, 31000));
  EXPECT_TRUE(store->claimRelay("h", "relay_a.one", 2000, 32000));  // its renewal

  // Another relay is refused while the lease runs.
  EXPECT_FALSE(store->takeOverRelay("h", "relay-b.one", "relay-b.", 3000, 33000));
  EXPECT_FALSE(store->claimRelay("h", "relay-b.one", 3000, 33000));

  // The same relay's new stream takes it; the older stream's renewal fails from then on.
  EXPECT_TRUE(store->takeOverRelay("h", "relay_a.two", "relay_a.", 4000, 34000));
  EXPECT_FALSE(store->claimRelay("h", "relay_a.one", 5000, 35000));
  EXPECT_TRUE(store->claimRelay("h", "relay_a.two", 5000, 35000));

  // Released by its holder only; a lapsed lease goes to anyone.
  store->releaseRelay("h", "relay_a.one");
  EXPECT_FALSE(store->takeOverRelay("h", "relay-b.one", "relay-b.", 6000, 36000));
  EXPECT_TRUE(store->takeOverRelay("h", "relay-b.one", "relay-b.", 35001, 65001));
  store->releaseRelay("h", "relay-b.one");
  EXPECT_TRUE(store->takeOverRelay("h", "relay_a.three", "relay_a.", 35002, 65002));
  EXPECT_FALSE(store->takeOverRelay("unknown", "relay_a.one", "relay_a.", 1000, 2000));
}

TEST_P(AccountSuite, AuditEntriesComeBackInOrderPerAccountAndAreNeverChanged) {
  auto store = open();
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(store->appendAudit(makeAudit("acc_1", "event.read", 1000 + i)));
    store->appendAudit(makeAudit("acc_2", "token.create", 2000 + i));
  }
  store->appendAudit(makeAudit("", "stream.open", 3000));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), ids.size());

  auto entries = store->listAudit("acc_1", 0, 100);
  ASSERT_EQ(entries.size(), 5u);
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].id, ids[i]);
    EXPECT_EQ(entries[i].atMs, 1000 + static_cast<int64_t>(i));
    EXPECT_EQ(entries[i].accountId, "acc_1");
    EXPECT_EQ(entries[i].actor, "member:mem_1");
    EXPECT_EQ(entries[i].action, "event.read");
    EXPECT_EQ(entries[i].hookId, "hook-1");
    EXPECT_EQ(entries[i].eventId, 42);
    EXPECT_EQ(entries[i].detail, "last_event_id=7");
    EXPECT_EQ(entries[i].remote, "127.0.0.1");
  }

  // Paging by id never skips or repeats an entry.
  auto page = store->listAudit("acc_1", ids[1], 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, ids[2]);
  EXPECT_EQ(page[1].id, ids[3]);
  EXPECT_EQ(store->listAudit("acc_1", ids[4], 10).size(), 0u);
  EXPECT_EQ(store->listAudit("", 0, 10).size(), 1u);
  EXPECT_TRUE(store->listAudit("acc_1", 0, 0).empty());

  // Entries survive a reopen, and where the backend enforces it, storage refuses changes.
  store.reset();
  if (GetParam().auditRefusesChanges) {
    EXPECT_TRUE(GetParam().auditRefusesChanges(dir_));
  }
  store = open();
  EXPECT_EQ(store->listAudit("acc_1", 0, 100).size(), 5u);
  EXPECT_EQ(store->listAudit("acc_1", 0, 100)[0].detail, "last_event_id=7");
}

TEST_P(AccountSuite, SettingPutIfAbsentAgreesOnOneValueAcrossFourThreads) {
  auto store = open();
  EXPECT_FALSE(store->getSetting("auth.jwt_key").has_value());

  std::vector<std::string> seen(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      seen[i] = store->putSettingIfAbsent("auth.jwt_key", "value-" + std::to_string(i));
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& value : seen) EXPECT_EQ(value, seen[0]);
  EXPECT_EQ(seen[0].rfind("value-", 0), 0u) << seen[0];
  EXPECT_EQ(store->getSetting("auth.jwt_key"), seen[0]);

  // A later put leaves it; setSetting replaces it; values may hold any byte.
  EXPECT_EQ(store->putSettingIfAbsent("auth.jwt_key", "late"), seen[0]);
  const std::string binary("\0\xff key", 6);
  store->setSetting("auth.jwt_key", binary);
  EXPECT_EQ(store->getSetting("auth.jwt_key"), binary);
  store->setSetting("encryption.active_key", "k1");
  store.reset();
  store = open();
  EXPECT_EQ(store->getSetting("auth.jwt_key"), binary);
  EXPECT_EQ(store->getSetting("encryption.active_key"), "k1");
}

TEST_P(AccountSuite, MarkerInContentsAndSecretsNeverReachesStorageInTheClear) {
  const std::string marker = "MARKER-7c1f0e9a-plaintext";
  EventRecord event = makeEvent("hook-1", "{\"note\":\"" + marker + "\"}");
  event.headers.push_back({"X-Note", "before " + marker + " after"});
  event.rawQuery = "q=" + marker;
  event.pathSuffix = "/path/" + marker;
  event.reasonMessage = "signature header \"" + marker + "\" is malformed";
  event.eventType = marker + ".created";
  event.deliveryId = "msg_" + marker;
  HookRecord hook = makeHook("hook-1");
  hook.secret = "secret-" + marker;
  hook.signingSecret = "whsec_" + marker;
  hook.previousSigningSecret = "whsec_prev_" + marker;
  int64_t id = 0;
  std::vector<DeliveryRecord> deliveries;
  {
    auto store = open();
    store->createHook(hook);
    id = store->appendEvent(event);
    store->setSetting("auth.jwt_key", marker);
    ASSERT_GT(id, 0);

    // A local server's answer that echoes the request, reported alone and in bulk.
    deliveries = {makeDelivery(id, "relay-1", 1700000000900, marker),
                  makeDelivery(id, "relay-2", 1700000000901, marker)};
    store->addDelivery(deliveries[0]);
    store->addDeliveries({deliveries[1]});
  }

  const std::string raw = GetParam().rawBytes(dir_);
  ASSERT_FALSE(raw.empty());
  EXPECT_EQ(raw.find(marker), std::string::npos) << "the marker is stored in the clear";
  EXPECT_EQ(raw.find("MARKER-7c1f0e9a"), std::string::npos);

  // What is not secret stays readable by a list, and everything reads back whole.
  auto store = open();
  auto read = store->getEvent("hook-1", id);
  ASSERT_TRUE(read.has_value());
  event.id = id;
  expectSameContents(event, *read);
  auto listed = store->listEvents("hook-1", 0, 10, false, false);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].rawQuery, event.rawQuery);
  EXPECT_EQ(listed[0].headers, event.headers);
  EXPECT_EQ(listed[0].body, "");
  EXPECT_EQ(listed[0].pathSuffix, event.pathSuffix);
  EXPECT_EQ(listed[0].reasonMessage, event.reasonMessage);
  EXPECT_EQ(listed[0].eventType, event.eventType);
  EXPECT_EQ(listed[0].deliveryId, event.deliveryId);
  expectSameHook(hook, *store->findHook("hook-1"));
  EXPECT_EQ(store->getSetting("auth.jwt_key"), marker);
  auto reported = store->listDeliveries(id);
  ASSERT_EQ(reported.size(), 2u);
  expectSameDelivery(deliveries[0], reported[0]);
  expectSameDelivery(deliveries[1], reported[1]);
}

TEST_P(AccountSuite, FlippedByteInEachSealedColumnIsAnIntegrityErrorAndNeverData) {
  auto store = open();
  store->createHook(makeHook("h"));

  // Per sealed column an intact event, one changed in that column, and another intact one.
  struct Case {
    std::string column;
    EventRecord before, changed, after;
  };
  std::vector<Case> cases;
  for (const auto& column : kSealedEventColumns) {
    Case c{column, makeEvent("h", "before " + column), makeEvent("h", "changed " + column),
           makeEvent("h", "after " + column)};
    c.changed.reasonMessage = "message of " + column;
    for (EventRecord* event : {&c.before, &c.changed, &c.after}) {
      event->id = store->appendEvent(*event);
    }
    cases.push_back(std::move(c));
  }
  for (const auto& c : cases) GetParam().corruptEventCiphertext(dir_, c.changed.id, c.column);

  auto withBodies = store->listEvents("h", 0, 100, true, false);
  auto withoutBodies = store->listEvents("h", 0, 100, false, false);
  ASSERT_EQ(withBodies.size(), 3 * cases.size());
  ASSERT_EQ(withoutBodies.size(), 3 * cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE("column " + c.column);

    // The event exists and is reported, with nothing of what it held.
    auto bad = store->getEvent("h", c.changed.id);
    ASSERT_TRUE(bad.has_value()) << "the event exists and must be reported, not hidden";
    expectUnreadable(*bad, c.changed.id);
    EXPECT_NE(bad->integrityError.find("k1"), std::string::npos) << bad->integrityError;
    EXPECT_EQ(bad->integrityError.find(c.changed.body), std::string::npos);
    EXPECT_EQ(bad->integrityError.find(c.changed.reasonMessage), std::string::npos);
    EXPECT_EQ(bad->method, "POST");
    EXPECT_EQ(bad->bodySize, static_cast<int64_t>(c.changed.body.size()));

    // Lists hold every event, the others whole. Without bodies, a changed body is not read.
    ASSERT_EQ(withBodies[3 * i + 1].id, c.changed.id);
    expectSameContents(c.before, withBodies[3 * i]);
    expectUnreadable(withBodies[3 * i + 1], c.changed.id);
    expectSameContents(c.after, withBodies[3 * i + 2]);
    EXPECT_EQ(withoutBodies[3 * i].eventType, c.before.eventType);
    EXPECT_EQ(withoutBodies[3 * i + 2].deliveryId, c.after.deliveryId);
    if (c.column == "body") {
      EXPECT_EQ(withoutBodies[3 * i + 1].integrityError, "");
      EXPECT_EQ(withoutBodies[3 * i + 1].eventType, c.changed.eventType);
    } else {
      expectUnreadable(withoutBodies[3 * i + 1], c.changed.id);
    }
  }
}

TEST_P(AccountSuite, AnEventThatFailsItsIntegrityCheckIsLoggedOnceAsAnError) {
  auto store = open();
  store->createHook(makeHook("h"));
  const int64_t good = store->appendEvent(makeEvent("h", "readable"));
  const int64_t bad = store->appendEvent(makeEvent("h", "changed behind the store's back"));
  GetParam().corruptEventCiphertext(dir_, bad, "body");

  StoreLogCapture log;
  const std::string line = "could not open event event_id=" + std::to_string(bad) + " key_id=k1";
  ASSERT_TRUE(store->getEvent("h", bad).has_value());
  EXPECT_EQ(log.count(Poco::Message::PRIO_ERROR, line), 1u);

  // A list polled again and again does not repeat it, and a readable event logs nothing.
  for (int i = 0; i < 3; ++i) store->listEvents("h", 0, 10, true, false);
  ASSERT_TRUE(store->getEvent("h", good).has_value());
  EXPECT_EQ(log.count(Poco::Message::PRIO_ERROR, line), 1u);
  EXPECT_EQ(log.count(Poco::Message::PRIO_ERROR, "event_id=" + std::to_string(good)), 0u);
}

TEST_P(AccountSuite, DeliveryFactsRoundTripWithTheirValuesSealed) {
  auto store = open();
  expectDeliveryFactsAndModifiedRoundTrip(*store);
}

TEST_P(AccountSuite, FlippedByteInASealedDeliveryValueIsAnIntegrityErrorAndNeverData) {
  const std::string marker = "MARKER-0d5e71";
  auto store = open();
  store->createHook(makeHook("h"));
  for (const auto& column : kSealedDeliveryColumns) {
    SCOPED_TRACE("column " + column);
    const int64_t id = store->appendEvent(makeEvent("h"));
    const int64_t other = store->appendEvent(makeEvent("h"));
    const DeliveryRecord changed = makeDelivery(id, "relay-a", 2000, marker);
    const DeliveryRecord intact = makeDelivery(id, "relay-a", 2001, "intact");
    const DeliveryRecord elsewhere = makeDelivery(other, "relay-a", 2002, "elsewhere");
    store->addDeliveries({changed, intact, elsewhere});
    GetParam().corruptDeliveryCiphertext(dir_, id, column);

    const auto ofBoth = store->listDeliveriesOf({id, other});
    for (const auto& listed : {store->listDeliveries(id), ofBoth}) {
      ASSERT_GE(listed.size(), 2u);

      // Reported, without either value; what the relay told in the clear is still there.
      const DeliveryRecord& bad = listed[0];
      EXPECT_NE(bad.integrityError.find(std::to_string(id)), std::string::npos)
          << bad.integrityError;
      EXPECT_NE(bad.integrityError.find("k1"), std::string::npos) << bad.integrityError;
      EXPECT_EQ(bad.integrityError.find(marker), std::string::npos) << bad.integrityError;
      EXPECT_EQ(bad.responseExcerpt, "");
      EXPECT_EQ(bad.location, "");
      EXPECT_EQ(bad.relayId, changed.relayId);
      EXPECT_EQ(bad.status, changed.status);
      EXPECT_EQ(bad.reportedAtMs, changed.reportedAtMs);
      EXPECT_EQ(bad.phase, changed.phase);
      EXPECT_EQ(bad.timeoutMs, changed.timeoutMs);
      expectSameDelivery(intact, listed[1]);
    }
    ASSERT_EQ(ofBoth.size(), 3u);
    expectSameDelivery(elsewhere, ofBoth[2]);

    // The event itself still opens.
    EXPECT_EQ(store->getEvent("h", id)->integrityError, "");
  }
}

TEST_P(AccountSuite, ReportOfAnEventWhoseKeyTheRingLacksIsStoredWithoutItsValues) {
  const std::string marker = "MARKER-6a2b90";
  int64_t id = 0;
  {
    auto store = open();
    store->createHook(makeHook("h"));
    id = store->appendEvent(makeEvent("h"));
  }

  // The values cannot be sealed under the event's key: the rest of the report is kept.
  auto store =
      GetParam().openWithKeys(dir_, std::make_shared<crypto::KeyHolder>(makeKeyRing({"k2"})));
  const DeliveryRecord report = makeDelivery(id, "relay", 3000, marker);
  store->addDelivery(report);
  auto listed = store->listDeliveries(id);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].integrityError, "");
  EXPECT_EQ(listed[0].responseExcerpt, "");
  EXPECT_EQ(listed[0].location, "");
  EXPECT_EQ(listed[0].status, report.status);
  EXPECT_EQ(listed[0].phase, report.phase);
  EXPECT_EQ(listed[0].startedAtMs, report.startedAtMs);
  store.reset();
  EXPECT_EQ(GetParam().rawBytes(dir_).find(marker), std::string::npos);
}

TEST_P(AccountSuite, RowsOfSchemaThreeReadAfterTheMigrationAndTakeNewFacts) {
  int64_t id = 0;
  int64_t replay = 0;
  const EventRecord original = makeEvent("h", "stored by schema 3");
  {
    auto store = open();
    store->createHook(makeHook("h"));
    id = store->appendEvent(original);
    EventRecord copy = original;
    copy.replayOf = id;
    replay = store->appendEvent(copy);
    store->addDelivery({id, "relay-a", 200, 3, "", 1000});
    store->addDelivery({replay, "relay-a", 0, 30000, "timeout", 1001});
  }
  GetParam().revertToSchema3(dir_);

  auto store = open();
  auto event = store->getEvent("h", replay);
  ASSERT_TRUE(event.has_value());
  expectSameContents(original, *event);
  EXPECT_EQ(event->replayOf, id);
  EXPECT_FALSE(event->modified);
  EXPECT_FALSE(store->listEvents("h", 0, 10, false, false)[0].modified);

  // What a schema 3 relay could not report reads as unknown.
  auto old = store->listDeliveriesOf({id, replay});
  ASSERT_EQ(old.size(), 2u);
  expectSameDelivery(DeliveryRecord{id, "relay-a", 200, 3, "", 1000}, old[0]);
  expectSameDelivery(DeliveryRecord{replay, "relay-a", 0, 30000, "timeout", 1001}, old[1]);

  // Events stored before take reports with every fact, sealed.
  const DeliveryRecord fresh = makeDelivery(id, "relay-b", 2000);
  store->addDelivery(fresh);
  auto now = store->listDeliveries(id);
  ASSERT_EQ(now.size(), 2u);
  expectSameDelivery(fresh, now[1]);
}

TEST_P(AccountSuite, ReencryptionSealsTheDeliveryValuesOfAnEventStoredInTheClear) {
  const std::string marker = "MARKER-5f0c2d";
  int64_t id = 0;
  DeliveryRecord before;
  {
    auto store = GetParam().open(dir_);
    store->createHook(makeHook("h"));
    id = store->appendEvent(makeEvent("h"));
    before = makeDelivery(id, "relay", 4000, marker);
    store->addDelivery(before);
  }
  ASSERT_NE(GetParam().rawBytes(dir_).find(marker), std::string::npos)
      << "the scan cannot see the marker";

  {
    auto store = open();
    expectSameDelivery(before, store->listDeliveries(id).at(0));
    for (int batches = 0; store->reencryptBatch(10) > 0; ++batches) {
      ASSERT_LT(batches, 10) << "reencryptBatch does not come to an end";
    }
    expectSameDelivery(before, store->listDeliveries(id).at(0));

    // A report after the event was sealed is sealed under the same key.
    const DeliveryRecord after = makeDelivery(id, "relay", 4001, marker);
    store->addDelivery(after);
    expectSameDelivery(after, store->listDeliveries(id).at(1));
  }
  EXPECT_EQ(GetParam().rawBytes(dir_).find(marker), std::string::npos)
      << "a delivery value is left in the clear";
}

TEST_P(AccountSuite, EventsUnderAKeyTheRingLacksReportIntegrityErrors) {
  int64_t id = 0;
  {
    auto store = open();
    store->createHook(makeHook("h"));
    id = store->appendEvent(makeEvent("h"));
  }

  // Same key id, other key material: the edge started with a wrong key file.
  auto other = std::make_shared<crypto::KeyHolder>(makeKeyRing({"k1"}));
  auto store = GetParam().openWithKeys(dir_, other);
  auto event = store->getEvent("h", id);
  ASSERT_TRUE(event.has_value());
  EXPECT_NE(event->integrityError, "");
  EXPECT_EQ(event->body, "");

  // A ring without the key at all.
  store.reset();
  store = GetParam().openWithKeys(dir_, std::make_shared<crypto::KeyHolder>(makeKeyRing({"k2"})));
  event = store->getEvent("h", id);
  ASSERT_TRUE(event.has_value());
  EXPECT_NE(event->integrityError.find("k1"), std::string::npos) << event->integrityError;
  EXPECT_THROW(store->findHook("h"), StoreError);
}

TEST_P(AccountSuite, ReencryptBatchMovesEveryRecordToTheNewKeyAndAllReadsBack) {
  const std::string k1 = crypto::KeyRing::newKeyLine("k1");
  const std::string k2 = crypto::KeyRing::newKeyLine("k2");
  keys().replace(crypto::KeyRing::parse(k1, "test keys"));

  std::vector<EventRecord> events;
  HookRecord named = makeNamedHook("hook-1", "acc_1", "payments");
  HookRecord anonymous = makeHook("anon");
  auto store = open();
  store->createAccount(makeAccount("acc_1", "alpha"));
  store->createHook(named);
  store->createHook(anonymous);
  std::vector<DeliveryRecord> deliveries;
  for (int i = 0; i < 7; ++i) {
    EventRecord event = makeEvent(i % 2 == 0 ? "hook-1" : "anon", "body " + std::to_string(i));
    event.id = store->appendEvent(event);
    events.push_back(event);
    deliveries.push_back(makeDelivery(event.id, "relay", 5000 + i, "answer " + std::to_string(i)));
    store->addDelivery(deliveries.back());
  }
  store->setSetting("auth.jwt_key", "jwt-secret");
  store->setSetting("encryption.active_key", "k1");

  // 7 events, 2 hooks and 2 settings, all under k1.
  auto usage = store->keyUsage();
  EXPECT_EQ(recordsUnder(usage, "k1"), 11);
  EXPECT_EQ(allRecords(usage), 11);

  // Rotation: k2 joins the ring and becomes active while the store runs; new records go
  // under it at once, old ones move in batches.
  keys().replace(crypto::KeyRing::parse(k1 + "\n" + k2, "test keys"));
  EventRecord fresh = makeEvent("anon", "after rotation");
  fresh.id = store->appendEvent(fresh);
  events.push_back(fresh);
  EXPECT_EQ(recordsUnder(store->keyUsage(), "k2"), 1);

  size_t total = 0;
  int batches = 0;
  for (size_t done = store->reencryptBatch(3); done > 0; done = store->reencryptBatch(3)) {
    EXPECT_LE(done, 3u);
    total += done;
    ASSERT_LT(++batches, 20) << "reencryptBatch does not come to an end";
  }
  EXPECT_EQ(total, 11u);
  usage = store->keyUsage();
  EXPECT_EQ(recordsUnder(usage, "k1"), 0);
  EXPECT_EQ(recordsUnder(usage, "k2"), 12);
  EXPECT_EQ(allRecords(usage), 12);
  EXPECT_EQ(store->reencryptBatch(100), 0u);

  // Everything opens with k2 alone: k1 can be retired.
  store.reset();
  keys().replace(crypto::KeyRing::parse(k2, "test keys"));
  store = open();
  for (const auto& event : events) {
    auto read = store->getEvent(event.hookId, event.id);
    ASSERT_TRUE(read.has_value()) << event.id;
    expectSameContents(event, *read);
  }
  expectSameHook(named, *store->findHook("hook-1"));
  expectSameHook(anonymous, *store->findHook("anon"));
  EXPECT_EQ(store->getSetting("auth.jwt_key"), "jwt-secret");
  EXPECT_EQ(store->getSetting("encryption.active_key"), "k1");

  // The deliveries' values are under the events' data keys, which rotation did not change.
  for (const auto& delivery : deliveries) {
    auto read = store->listDeliveries(delivery.eventId);
    ASSERT_EQ(read.size(), 1u) << delivery.eventId;
    expectSameDelivery(delivery, read[0]);
  }
}

TEST_P(AccountSuite, RotationPassesOverAWrappedKeyThatFailsAuthenticationAndCountsIt) {
  const std::string k1 = crypto::KeyRing::newKeyLine("k1");
  const std::string k2 = crypto::KeyRing::newKeyLine("k2");
  keys().replace(crypto::KeyRing::parse(k1, "test keys"));
  auto store = open();
  store->createHook(makeHook("h"));
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(store->appendEvent(makeEvent("h")));
  GetParam().corruptEventWrappedKey(dir_, ids[1]);

  // The records after the bad one move on; the bad one stays under k1, named once however
  // often the loop runs over it.
  keys().replace(crypto::KeyRing::parse(k1 + "\n" + k2, "test keys"));
  for (int pass = 0; pass < 2; ++pass) {
    int batches = 0;
    for (size_t done = store->reencryptBatch(2); done > 0; done = store->reencryptBatch(2)) {
      ASSERT_LT(++batches, 20) << "reencryptBatch does not come to an end";
    }
  }
  const auto usage = store->keyUsage();
  EXPECT_EQ(recordsUnder(usage, "k1"), 1);
  EXPECT_EQ(recordsUnder(usage, "k2"), 5);  // four events and the hook
  const ReencryptFailures failures = store->reencryptFailures();
  EXPECT_EQ(failures.records, 1);
  EXPECT_EQ(failures.examples, (std::vector<std::string>{"event " + std::to_string(ids[1])}));

  // A record under a key the ring lacks is not a failed authentication: the key may come back.
  store.reset();
  keys().replace(crypto::KeyRing::parse(k2, "test keys"));
  store = open();
  while (store->reencryptBatch(10) > 0) {
  }
  EXPECT_EQ(store->reencryptFailures().records, 0);
}

TEST_P(CommitListenerSuite, CommitListenerHearsTheEventInTheClear) {
  ASSERT_EQ(GetParam().announces, Announcement::kCommitListener)
      << "instantiated for a backend that announces by notice";
  auto store = open();
  store->createHook(makeHook("h"));
  EventRecord heard;
  store->setCommitListener([&](const EventRecord& event) { heard = event; });
  EventRecord event = makeEvent("h", "listened body");
  event.id = store->appendEvent(event);
  store->setCommitListener({});
  EXPECT_EQ(heard.id, event.id);
  expectSameContents(event, heard);
}

}  // namespace
}  // namespace anm::store::test
