// core/store/store.h: the event store interface shared by the embedded and the MySQL backends.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace anm::crypto {
class KeyHolder;
}

namespace anm::store {

/// One header field as it arrived: original spelling, value without surrounding whitespace.
struct Header {
  std::string name;
  std::string value;

  bool operator==(const Header& other) const { return name == other.name && value == other.value; }
};

/// The verdict on a request's signature. Numbers match ANM_VERDICT_* in the SDK.
enum class Verdict : int32_t { kValid = 1, kInvalid = 2, kUnsigned = 3 };

/// A hook's own answer to senders, replacing `{"ok":true,"id":N}` (the pro plan).
struct CustomResponse {
  int32_t status = 200;  ///< 200..299: a webhook is acknowledged only with a 2xx
  std::vector<Header> headers;
  std::string body;

  bool operator==(const CustomResponse& other) const {
    return status == other.status && headers == other.headers && body == other.body;
  }
};

/// A hook: the public ingest id with the provider settings it verifies senders with.
///
/// Anonymous hooks have no account, are read with their relay token and expire; named hooks
/// belong to an account, have a name unique within it and no relay token (their members use
/// their access tokens). Secrets (secret, signingSecret, previousSigningSecret) are encrypted
/// at rest by the backend; the record always carries them in the clear.
struct HookRecord {
  std::string id;           ///< at least 128 random bits, URL-safe
  std::string provider;     ///< plugin name, or "" for a hook that accepts everything
  std::string secret;       ///< signing secret bytes, may be empty
  int64_t toleranceS = -1;  ///< -1: the plugin's default; 0: no timestamp window
  std::vector<std::pair<std::string, std::string>> options;  ///< provider options, in order
  std::string tokenHash;  ///< hex SHA-256 of the relay token; "" for a named hook
  int64_t createdAtMs = 0;

  std::string accountId;  ///< owner; "" for an anonymous hook
  std::string name;       ///< unique within the account; "" for an anonymous hook
  /// The hook's own secret ("whsec_" + base64 of 32 random bytes), used to verify Standard
  /// Webhooks senders when standardWebhooks is set and provider is "".
  std::string signingSecret;
  /// The secret before the last rotation, still accepted until previousValidUntilMs.
  std::string previousSigningSecret;
  int64_t previousValidUntilMs = 0;
  bool standardWebhooks = false;
  std::optional<CustomResponse> customResponse;
  /// An anonymous hook is gone (ingest answers 404) once this passes; 0 for a named hook.
  int64_t expiresAtMs = 0;
};

/// Plans decide what an account may do (docs/accounts.md).
enum class Plan : int32_t { kFree = 1, kPro = 2 };

struct AccountRecord {
  std::string id;    ///< random, URL-safe
  std::string name;  ///< unique; 1..64 of a-z 0-9 - _
  Plan plan = Plan::kFree;
  bool disabled = false;
  int64_t createdAtMs = 0;
};

/// A person (or machine) acting for an account. The first member of an account is its owner.
struct MemberRecord {
  std::string id;  ///< random, URL-safe
  std::string accountId;
  std::string name;  ///< unique within the account
  bool owner = false;
  int64_t createdAtMs = 0;
};

/// A personal access token. Only its hash is stored; the token itself is shown once.
struct TokenRecord {
  std::string id;  ///< random, URL-safe; also the `tid` claim of the JWTs issued from it
  std::string memberId;
  std::string accountId;
  std::string name;  ///< what the member called it ("laptop", "ci")
  std::string hash;  ///< hex SHA-256 of the token
  int64_t createdAtMs = 0;
  int64_t lastUsedAtMs = 0;  ///< last exchange for a JWT, 0 if never
  int64_t revokedAtMs = 0;   ///< 0 while the token is live
};

/// One entry of the append-only audit log.
struct AuditRecord {
  int64_t id = 0;  ///< assigned by the store, increasing
  int64_t atMs = 0;
  std::string accountId;  ///< whose data was touched; "" for anonymous hooks and edge-wide acts
  std::string actor;      ///< "member:<id>", "hook-token", "admin:<os user>"
  std::string action;     ///< "event.read", "token.create", ... (docs/accounts.md)
  std::string hookId;     ///< "" when no hook is involved
  int64_t eventId = 0;    ///< 0 when no event is involved
  std::string detail;     ///< short free text, never a secret or a body
  std::string remote;     ///< client address, or "local" for admin commands
};

/// How many stored records each encryption key protects (key rotation progress).
struct KeyUsage {
  std::string keyId;
  int64_t records = 0;
};

/// Records key rotation passed over because their stored bytes fail authentication under a key
/// the ring holds (changed behind the store's back, or corrupt): they stay under their old key.
struct ReencryptFailures {
  int64_t records = 0;                ///< how many, each counted once
  std::vector<std::string> examples;  ///< the first few: "event 42", "hook <id>", "setting <name>"
};

/// A stored webhook. The id is global and assigned in commit order: an event with a higher id
/// was committed after every event with a lower one, on every backend and across every edge
/// sharing one database. It is also the SSE event id, so a relay resumes by it.
struct EventRecord {
  int64_t id = 0;
  std::string hookId;
  int64_t receivedAtMs = 0;
  std::string method;
  std::string pathSuffix;  ///< "" or starting with '/'; encrypted at rest like the contents
  std::string rawQuery;    ///< without '?', exactly as sent
  std::vector<Header> headers;
  std::string body;      ///< raw bytes; empty when fetched without bodies
  int64_t bodySize = 0;  ///< always set, also when the body itself was not fetched
  Verdict verdict = Verdict::kUnsigned;
  int32_t reason = 0;  ///< ANM_REASON_* from the SDK
  /// The plugin's words on the verdict; it may quote the request, so it is encrypted at rest.
  std::string reasonMessage;
  /// The provider's event type and delivery id, when the request carries them (from the body
  /// or a header): request data, encrypted at rest like the contents.
  std::string eventType;
  std::string deliveryId;
  int64_t replayOf = 0;  ///< id of the original event when this one is a replay, else 0
  /// An edited replay: a replay whose method, path, query, headers or body were changed on
  /// purpose (docs/dashboard.md, "Replay"), so that the provider's signature no longer covers
  /// it. Since schema 4; kept in the clear like replayOf.
  bool modified = false;
  /// Set instead of the encrypted values (query, headers, body, path suffix, reason message,
  /// event type and delivery id left empty) when the stored ciphertext failed its integrity
  /// check or its key is not in the key ring: the event exists, but what it held cannot be
  /// returned. Never set by a caller.
  std::string integrityError;
};

/// Where a delivery was when its connection failed, as the relay saw it. Stored as these
/// numbers.
enum class DeliveryPhase : int32_t { kUnknown = 0, kConnecting = 1, kSending = 2, kReceiving = 3 };

/// The phase stored as `value`; kUnknown for a number this build does not know.
inline DeliveryPhase deliveryPhaseOf(int64_t value) {
  switch (value) {
    case static_cast<int32_t>(DeliveryPhase::kConnecting):
    case static_cast<int32_t>(DeliveryPhase::kSending):
    case static_cast<int32_t>(DeliveryPhase::kReceiving):
      return static_cast<DeliveryPhase>(value);
    default:
      return DeliveryPhase::kUnknown;
  }
}

/// Most bytes of the local server's answer a delivery keeps (responseExcerpt), and of a
/// redirect's Location.
inline constexpr size_t kMaxResponseExcerptBytes = 512;
inline constexpr size_t kMaxLocationBytes = 2048;

/// What a relay reports after forwarding an event to its local target.
struct DeliveryRecord {
  int64_t eventId = 0;
  std::string relayId;  ///< chosen by the relay, stable for one relay session
  int32_t status = 0;   ///< local HTTP status, 0 when no response came
  int64_t durationMs = 0;
  std::string error;  ///< "" on success; "timeout", "connection refused", ...
  int64_t reportedAtMs = 0;

  // Since schema 4 (docs/diagnosis.md, "What a relay reports"); reports stored before, and
  // relays that do not report them, leave the defaults.
  DeliveryPhase phase = DeliveryPhase::kUnknown;  ///< where a connection error happened
  int64_t timeoutMs = 0;                          ///< the relay's limit per delivery; 0 unknown
  bool targetHttps = false;                       ///< the local target's URL is https
  int64_t startedAtMs = 0;  ///< the relay's wall clock when the delivery began; 0 unknown
  /// The first bytes (at most kMaxResponseExcerptBytes) of the local server's answer body, and
  /// the Location of a 3xx answer. They come from the developer's server and may echo the
  /// request, so the backend seals them under the event's data key, as the event's contents.
  /// (The empty initialisers let reports written as {event, relay, status, ...} leave them out.)
  std::string responseExcerpt{};
  std::string location{};
  /// Set instead of responseExcerpt and location (both left empty) when their stored
  /// ciphertext failed its integrity check or the event's key is not in the key ring; the
  /// other fields are as reported. Never set by a caller.
  std::string integrityError{};
};

/// What happened to one hook in one slice of time (Store::activity).
struct ActivityBucket {
  int64_t atMs = 0;   ///< the bucket's start
  int64_t valid = 0;  ///< events received, by verdict
  int64_t invalid = 0;
  int64_t unsigned_ = 0;
  int64_t delivered = 0;  ///< delivery reports with a 2xx status
  int64_t failed = 0;     ///< delivery reports with any other status, or none
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

/// A create that names something that exists already (an account, member or hook name). It is
/// a StoreError so that callers unaware of it still refuse the request.
class ConflictError : public StoreError {
 public:
  using StoreError::StoreError;
};

/// A create refused because the account is at its plan's limit (createHookWithin).
class LimitError : public StoreError {
 public:
  using StoreError::StoreError;
};

/// The store. Every method is safe to call from many threads at once.
class Store {
 public:
  virtual ~Store() = default;

  /// Adds a hook. Throws StoreError if the id exists already, ConflictError if the account has
  /// a hook of that name.
  virtual void createHook(const HookRecord& hook) = 0;

  /// Finds a hook by id, also an expired anonymous one (callers check expiresAtMs). A backend
  /// shared by several edges may answer from a cache up to kHookCacheMs old.
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

  /// Stores one delivery report. Throws StoreError if the event does not exist. A sealed
  /// event's report has its responseExcerpt and location sealed under the event's data key;
  /// when that key does not open (the ring lacks it), the two are dropped, with a warning, and
  /// the rest is stored. integrityError is ignored.
  virtual void addDelivery(const DeliveryRecord& delivery) = 0;

  /// Stores several delivery reports atomically: all of them or, on any error, none (the bulk
  /// report of docs/protocol.md). Throws StoreError if one names an event that does not exist.
  /// The default stores them one by one, which is not atomic; backends override it.
  virtual void addDeliveries(const std::vector<DeliveryRecord>& deliveries) {
    for (const auto& delivery : deliveries) addDelivery(delivery);
  }

  /// Deliveries of one event, in the order they were reported. One whose sealed
  /// responseExcerpt and location do not open comes with integrityError set instead of them.
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

  // --- Hooks of accounts (since schema 2). The defaults throw: a backend overrides them all.

  /// Adds a named hook only if its account then has at most `maxNamedHooks` named hooks, as one
  /// atomic step, so that two edges creating at once cannot pass a plan's limit together.
  /// Throws LimitError when the account is at the limit, ConflictError for a taken name.
  virtual void createHookWithin(const HookRecord& hook, size_t maxNamedHooks) {
    (void)hook, (void)maxNamedHooks;
    throw StoreError("accounts are not supported by this store");
  }

  /// Replaces a hook's changeable settings: secret, provider, toleranceS, options,
  /// signingSecret, previousSigningSecret, previousValidUntilMs, standardWebhooks,
  /// customResponse and expiresAtMs. Returns false when the hook does not exist.
  virtual bool updateHook(const HookRecord& hook) {
    (void)hook;
    throw StoreError("accounts are not supported by this store");
  }

  /// An account's hooks, oldest first.
  virtual std::vector<HookRecord> listHooks(const std::string& accountId) {
    (void)accountId;
    throw StoreError("accounts are not supported by this store");
  }

  virtual std::optional<HookRecord> findHookByName(const std::string& accountId,
                                                   const std::string& name) {
    (void)accountId, (void)name;
    throw StoreError("accounts are not supported by this store");
  }

  /// Deletes anonymous hooks whose expiresAtMs is in (0, nowMs), with their events and
  /// deliveries; returns how many hooks went. Ingest to them answers 404 from then on.
  virtual size_t deleteExpiredHooks(int64_t nowMs) {
    (void)nowMs;
    throw StoreError("accounts are not supported by this store");
  }

  /// Moves an anonymous hook's expiresAtMs forward to `expiresAtMs` (never back).
  virtual void extendHook(const std::string& hookId, int64_t expiresAtMs) {
    (void)hookId, (void)expiresAtMs;
    throw StoreError("accounts are not supported by this store");
  }

  /// The one-live-relay rule: takes or renews the hook's relay lease for `relayId` until
  /// `untilMs`. Succeeds when no lease is held, the held one ended before `nowMs`, or it is
  /// `relayId`'s own (a relay reconnecting takes its lease back). Atomic across edges.
  virtual bool claimRelay(const std::string& hookId, const std::string& relayId, int64_t nowMs,
                          int64_t untilMs) {
    (void)hookId, (void)relayId, (void)nowMs, (void)untilMs;
    throw StoreError("accounts are not supported by this store");
  }

  /// Gives the lease up if `relayId` holds it.
  virtual void releaseRelay(const std::string& hookId, const std::string& relayId) {
    (void)hookId, (void)relayId;
    throw StoreError("accounts are not supported by this store");
  }

  /// claimRelay for `holder` that also takes the lease from a holder whose text starts with
  /// `relayPrefix` (not empty). The edge names each stream's holder "<relay's prefix><nonce>",
  /// at most 64 bytes, so that a relay that connects again takes the lease from its own older
  /// stream, whose renewals (claimRelay with its holder) then fail; any other relay is still
  /// refused while the lease runs. Atomic across edges. (Appended.)
  virtual bool takeOverRelay(const std::string& hookId, const std::string& holder,
                             const std::string& relayPrefix, int64_t nowMs, int64_t untilMs) {
    (void)hookId, (void)holder, (void)relayPrefix, (void)nowMs, (void)untilMs;
    throw StoreError("accounts are not supported by this store");
  }

  // --- Accounts, members, tokens.

  /// Throws ConflictError for a taken name.
  virtual void createAccount(const AccountRecord& account) {
    (void)account;
    throw StoreError("accounts are not supported by this store");
  }
  virtual std::optional<AccountRecord> findAccount(const std::string& accountId) {
    (void)accountId;
    throw StoreError("accounts are not supported by this store");
  }
  virtual std::optional<AccountRecord> findAccountByName(const std::string& name) {
    (void)name;
    throw StoreError("accounts are not supported by this store");
  }
  /// Every account, oldest first.
  virtual std::vector<AccountRecord> listAccounts() {
    throw StoreError("accounts are not supported by this store");
  }
  /// Replaces plan and disabled; returns false when the account does not exist.
  virtual bool updateAccount(const AccountRecord& account) {
    (void)account;
    throw StoreError("accounts are not supported by this store");
  }

  /// Throws ConflictError for a name taken within the account.
  virtual void createMember(const MemberRecord& member) {
    (void)member;
    throw StoreError("accounts are not supported by this store");
  }
  virtual std::optional<MemberRecord> findMember(const std::string& memberId) {
    (void)memberId;
    throw StoreError("accounts are not supported by this store");
  }
  /// An account's members, oldest (the owner) first.
  virtual std::vector<MemberRecord> listMembers(const std::string& accountId) {
    (void)accountId;
    throw StoreError("accounts are not supported by this store");
  }

  virtual void createToken(const TokenRecord& token) {
    (void)token;
    throw StoreError("accounts are not supported by this store");
  }
  /// The token whose hash is `hash`, revoked or not.
  virtual std::optional<TokenRecord> findTokenByHash(const std::string& hash) {
    (void)hash;
    throw StoreError("accounts are not supported by this store");
  }
  virtual std::optional<TokenRecord> findToken(const std::string& tokenId) {
    (void)tokenId;
    throw StoreError("accounts are not supported by this store");
  }
  /// An account's tokens, oldest first, revoked ones included.
  virtual std::vector<TokenRecord> listTokens(const std::string& accountId) {
    (void)accountId;
    throw StoreError("accounts are not supported by this store");
  }
  /// Marks a live token revoked at `nowMs`; false when it does not exist or was revoked before.
  virtual bool revokeToken(const std::string& tokenId, int64_t nowMs) {
    (void)tokenId, (void)nowMs;
    throw StoreError("accounts are not supported by this store");
  }
  /// Ids of the tokens revoked at or after `sinceMs`, so that every edge can close the streams
  /// opened with them.
  virtual std::vector<std::string> revokedTokensSince(int64_t sinceMs) {
    (void)sinceMs;
    throw StoreError("accounts are not supported by this store");
  }
  virtual void touchToken(const std::string& tokenId, int64_t nowMs) {
    (void)tokenId, (void)nowMs;
    throw StoreError("accounts are not supported by this store");
  }

  /// Ends the access token whose `jti` claim is `sessionId` before its time (a sign-out): from
  /// now on sessionEnded is true for it, for every edge of the store, until `untilMs` (past
  /// its expiry, when the token is refused anyway); then its record may be dropped or reused.
  /// Ending one twice is no error. (Appended.)
  virtual void endSession(const std::string& sessionId, int64_t untilMs, int64_t nowMs) {
    (void)sessionId, (void)untilMs, (void)nowMs;
    throw StoreError("accounts are not supported by this store");
  }
  /// Whether the access token with this `jti` was ended and `nowMs` is before its untilMs.
  /// (Appended.)
  virtual bool sessionEnded(const std::string& sessionId, int64_t nowMs) {
    (void)sessionId, (void)nowMs;
    throw StoreError("accounts are not supported by this store");
  }

  // --- Audit log: appended to, read, never changed.

  /// Stores the entry durably before returning (a read that could not be audited is refused);
  /// returns its id.
  virtual int64_t appendAudit(const AuditRecord& entry) {
    (void)entry;
    throw StoreError("the audit log is not supported by this store");
  }
  /// Entries of an account with id > afterId, oldest first, at most `limit`.
  virtual std::vector<AuditRecord> listAudit(const std::string& accountId, int64_t afterId,
                                             size_t limit) {
    (void)accountId, (void)afterId, (void)limit;
    throw StoreError("the audit log is not supported by this store");
  }

  // --- Edge-wide settings (the JWT signing key, the active encryption key id). Values are
  // encrypted at rest.

  virtual std::optional<std::string> getSetting(const std::string& name) {
    (void)name;
    throw StoreError("settings are not supported by this store");
  }
  /// Stores `value` unless the setting exists; returns the value stored now, so that edges
  /// starting together agree on one.
  virtual std::string putSettingIfAbsent(const std::string& name, const std::string& value) {
    (void)name, (void)value;
    throw StoreError("settings are not supported by this store");
  }
  virtual void setSetting(const std::string& name, const std::string& value) {
    (void)name, (void)value;
    throw StoreError("settings are not supported by this store");
  }

  // --- Key rotation.

  /// Re-encrypts up to `limit` records (events' wrapped keys, hooks' secrets, settings) that
  /// are not under the key ring's active key; returns how many it did (0: none are left).
  /// Safe while edges run: each record is rewritten in one statement.
  virtual size_t reencryptBatch(size_t limit) {
    (void)limit;
    throw StoreError("key rotation is not supported by this store");
  }
  /// Records per key id, for `anonymily-edge admin keys status`.
  virtual std::vector<KeyUsage> keyUsage() {
    throw StoreError("key rotation is not supported by this store");
  }

  // --- Reads for the dashboard. (Since 0.3.)

  /// Events of a hook with id < beforeId (every one when beforeId is 0), newest first, at most
  /// `limit`: a list that pages back from the newest. It returns only events listEvents would
  /// return too, so a page never holds an id a later page of listEvents could still precede.
  virtual std::vector<EventRecord> listEventsBefore(const std::string& hookId, int64_t beforeId,
                                                    size_t limit, bool withBodies) {
    (void)hookId, (void)beforeId, (void)limit, (void)withBodies;
    throw StoreError("listing newest first is not supported by this store");
  }

  /// The deliveries of several events, grouped by event in ascending id and in the order each
  /// event's were reported: the reads of listDeliveries in one round trip per few hundred
  /// events. The default asks for each event alone.
  virtual std::vector<DeliveryRecord> listDeliveriesOf(const std::vector<int64_t>& eventIds) {
    std::vector<int64_t> ids = eventIds;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<DeliveryRecord> out;
    for (int64_t id : ids) {
      auto deliveries = listDeliveries(id);
      out.insert(out.end(), deliveries.begin(), deliveries.end());
    }
    return out;
  }

  /// The ids of the hook's events that replay `eventId` (edited or not), oldest first, at
  /// most `limit`.
  virtual std::vector<int64_t> listReplayIds(const std::string& hookId, int64_t eventId,
                                             size_t limit) {
    (void)hookId, (void)eventId, (void)limit;
    throw StoreError("listing the replays of an event is not supported by this store");
  }

  /// How many events the hook has (replays and invalid ones included).
  virtual int64_t countEvents(const std::string& hookId) {
    (void)hookId;
    throw StoreError("counting events is not supported by this store");
  }

  /// Events received and deliveries reported for the hook in `buckets` consecutive buckets of
  /// `bucketMs` from `fromMs`, oldest first, every bucket present (zeros where nothing
  /// happened).
  virtual std::vector<ActivityBucket> activity(const std::string& hookId, int64_t fromMs,
                                               int64_t bucketMs, size_t buckets) {
    (void)hookId, (void)fromMs, (void)bucketMs, (void)buckets;
    throw StoreError("activity is not supported by this store");
  }

  /// What reencryptBatch passed over since this store was opened because it fails
  /// authentication (a record under a key the ring lacks is not counted: adding the key fixes
  /// it). A caller that loops reencryptBatch until 0 meets each such record once. The default
  /// reports none. (Appended.)
  virtual ReencryptFailures reencryptFailures() { return {}; }
};

/// How stale a shared backend's cached hook may be: a change made on one edge (a rotated secret,
/// an expiry) reaches every other edge within this.
inline constexpr int64_t kHookCacheMs = 1000;

/// Most event ids one listDeliveriesOf statement names; longer lists take several.
inline constexpr size_t kDeliveryBatchIds = 500;

/// How far before an activity window the events whose delivery reports it counts may have been
/// received: reports come within seconds of an event, or after a relay caught up on a backlog.
inline constexpr int64_t kActivityReportLookbackMs = 24 * 3600 * 1000;

/// `buckets` zeroed buckets of `bucketMs` from `fromMs`; none when `bucketMs` is not positive.
std::vector<ActivityBucket> emptyActivity(int64_t fromMs, int64_t bucketMs, size_t buckets);

/// Adds `count` events of the verdict stored as `verdict` to bucket `index`, if it exists.
void countVerdict(std::vector<ActivityBucket>& buckets, int64_t index, int64_t verdict,
                  int64_t count);

/// Adds `count` delivery reports, delivered (2xx) or failed, to bucket `index`, if it exists.
void countDeliveries(std::vector<ActivityBucket>& buckets, int64_t index, bool delivered,
                     int64_t count);

/// Opens the SQLite store in `path` (created with its schema when missing). With `keys`,
/// contents are encrypted at rest under the ring's active key (core/store/sealing.h); without,
/// the store refuses to open a database holding encrypted records.
std::unique_ptr<Store> openSqliteStore(const std::string& path,
                                       std::shared_ptr<crypto::KeyHolder> keys = nullptr);

}  // namespace anm::store
