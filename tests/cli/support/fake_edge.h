// tests/cli/support/fake_edge.h: an in-process edge speaking docs/protocol.md for CLI tests.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/HTTPServer.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace anm::cli::test {

struct FakeEvent {
  int64_t id = 0;  ///< assigned by addEvent
  std::string method = "POST";
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string eventType;
  int64_t replayOf = 0;
  /// Set: the edge cannot open the stored contents; listed with "integrity_error".
  std::string integrityError;
  bool modified = false;  ///< an edited replay
};

struct ReportedDelivery {
  int64_t event = 0;
  std::string relay;
  int status = 0;
  int64_t durationMs = 0;
  std::string error;
  // The facts of docs/protocol.md; a report without them leaves these.
  std::string phase = "unknown";
  int64_t timeoutMs = 0;
  bool targetHttps = false;
  int64_t startedAtMs = 0;
  std::string responseExcerpt{};
  std::string location{};
};

class FakeEdge {
 public:
  static constexpr const char* kHookId = "hk_test42";
  static constexpr const char* kToken = "tok-7f3a9c";
  /// The one personal access token the fake accepts at /api/v1/auth/token.
  static constexpr const char* kPat =
      "anm_pat_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst";
  static constexpr const char* kSigningSecret = "whsec_ZmFrZS1zaWduaW5nLXNlY3JldC1mb3ItdGVzdHM=";

  /// Listens on 127.0.0.1:`port` (0: any free port).
  explicit FakeEdge(bool chunkedStream = false, uint16_t port = 0);
  ~FakeEdge();

  std::string url() const;

  /// Stores an event (next id) and streams it to connected relays. Returns its id.
  int64_t addEvent(FakeEvent event);

  /// Appends raw bytes to the stream (for frames the edge would never build itself), sent to
  /// relays whose Last-Event-ID is below `id`.
  void addRawFrame(int64_t id, std::string frame);

  /// Ends every open stream (the relay sees the connection close).
  void dropStreams();

  std::vector<std::string> streamLastEventIds() const;  ///< one per stream request, "" if none
  std::vector<ReportedDelivery> deliveries() const;
  std::vector<std::string> createBodies() const;    ///< bodies of POST /api/v1/hooks
  std::vector<std::string> authorizations() const;  ///< Authorization of every API request
  std::vector<FakeEvent> events() const;
  /// Bodies of POST .../replay, in order ("" for a replay without edits).
  std::vector<std::string> replayBodies() const;

  /// Adds a delivery report to event `event`, as if a relay had sent it.
  void addDelivery(ReportedDelivery delivery);

  // ---- accounts (spec: JWT exchange, named hooks, live-relay rule) --------------------------

  /// Lifetime of the JWTs the fake issues (expires_in); 900 unless set.
  void setJwtTtlSeconds(int64_t seconds);
  /// Every JWT issued so far stops working (401 on account routes, 404 on hook routes).
  void expireJwts();
  /// The next `count` JWTs are refused from the moment they are issued (as if revoked at once).
  void setDeadJwts(int count);
  /// The PAT is refused from now on (401 at /auth/token, as for a revoked token).
  void revokePat();
  /// Streams answer 409 with this message (the free plan's one live relay); "" ends that.
  void setStreamConflict(std::string message);
  /// The next `count` stream requests answer 404 unknown hook, as to a JWT that expired.
  void setStreamRefusals(int count);
  /// The hook is named `name` and belongs to the account, as if an earlier run created it.
  void addNamedHook(const std::string& name);

  uint64_t exchanges() const;                     ///< POSTs to /api/v1/auth/token
  std::vector<std::string> issuedJwts() const;    ///< in issue order
  std::vector<std::string> relayHeaders() const;  ///< X-Anonymily-Relay of each stream request
  std::vector<std::string> paths() const;         ///< method and target of every request
  std::string hookName() const;                   ///< "" while the hook is anonymous

  /// Polls `condition` until it holds or the time is up (waits only; asserts nothing).
  static bool waitUntil(const std::function<bool()>& condition,
                        std::chrono::milliseconds timeout = std::chrono::seconds(15));

  class Handler;

 private:
  friend class Handler;
  struct Frame {
    int64_t id;
    std::string text;
  };

  std::string envelope(const FakeEvent& event) const;
  std::string summary(const FakeEvent& event, bool detail) const;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool chunked_;
  bool stopping_ = false;
  int generation_ = 0;
  int64_t nextId_ = 1;
  std::vector<FakeEvent> events_;
  std::vector<Frame> frames_;
  std::vector<std::string> lastEventIds_;
  std::vector<ReportedDelivery> deliveries_;
  std::vector<std::string> createBodies_;
  std::vector<std::string> replayBodies_;
  std::vector<std::string> authorizations_;
  int64_t jwtTtlS_ = 900;
  bool patRevoked_ = false;
  std::vector<std::string> jwts_;  ///< issued
  std::vector<std::string> deadJwts_;
  int deadOnIssue_ = 0;
  size_t firstValidJwt_ = 0;  ///< jwts_ before this index were expired by expireJwts()
  uint64_t exchanges_ = 0;
  std::string conflict_;
  int streamRefusals_ = 0;
  std::string hookName_;
  std::vector<std::string> relayHeaders_;
  std::vector<std::string> paths_;

  /// Whether `authorization` carries a JWT that still works. Takes mutex_ itself.
  bool validJwt(const std::string& authorization) const;
  uint16_t port_ = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace anm::cli::test
