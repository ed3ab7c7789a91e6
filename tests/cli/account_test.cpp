// tests/cli/account_test.cpp: `anonymily login`, the member commands, `relay --hook NAME` and
// the relay's answers to the edge's live-relay rule and unreadable events, against the fake edge.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/src/config_store.h"
#include "support/cli_process.h"
#include "support/fake_edge.h"
#include "support/raw_target.h"
#include "support/temp_dir.h"

namespace anm::cli::test {
namespace {

using namespace std::chrono_literals;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void writeFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

bool exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

unsigned modeOf(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return 0;
  return info.st_mode & 0777;
}

size_t countOf(const std::vector<std::string>& items, const std::string& prefix) {
  return static_cast<size_t>(std::count_if(
      items.begin(), items.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; }));
}

class AccountTest : public ::testing::Test {
 protected:
  std::map<std::string, std::string> env() const {
    return {{"XDG_CONFIG_HOME", config_.path()}, {"ANONYMILY_EDGE", ""}};
  }

  // The credentials file of `edge` as reached with `scheme`; the legacy name with "".
  std::string credentialsFile(const FakeEdge& edge, const std::string& scheme = "http") const {
    return config_.path() + "/anonymily/credentials/" + (scheme.empty() ? "" : scheme + "_") +
           "127.0.0.1_" + portOf(edge) + ".pat";
  }

  static std::string portOf(const FakeEdge& edge) {
    const std::string url = edge.url();
    return url.substr(url.rfind(':') + 1);
  }

  std::string patFile() const {
    const std::string path = config_.path() + "/pat.txt";
    writeFile(path, std::string(FakeEdge::kPat) + "\n");
    return path;
  }

  void login(FakeEdge& edge) {
    const CliResult result =
        runCli({"login", "--edge", edge.url(), "--token-file", patFile()}, env());
    ASSERT_EQ(result.exitCode, 0) << result.err;
  }

  std::unique_ptr<CliProcess> startNamedRelay(std::vector<std::string> extra) {
    std::vector<std::string> args = {"relay",       "--edge", edge_.url(),  "--to",
                                     target_.url(), "--hook", "stripe-dev", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<CliProcess>(args, env());
  }

  TempDir config_;
  FakeEdge edge_;
  RawTarget target_;
};

TEST_F(AccountTest, LoginChecksTheTokenFileAndSavesItPrivatelyPerEdge) {
  const CliResult result =
      runCli({"login", "--edge", edge_.url(), "--token-file", patFile()}, env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out, "signed in to " + edge_.url() + " as alice (account acme, plan free)\n");
  EXPECT_EQ(edge_.exchanges(), 1u);

  // The PAT, readable by its owner only, in a private directory named after the edge.
  EXPECT_EQ(readFile(credentialsFile(edge_)), std::string(FakeEdge::kPat) + "\n");
  EXPECT_EQ(modeOf(credentialsFile(edge_)), 0600u);
  EXPECT_EQ(modeOf(config_.path() + "/anonymily/credentials"), 0700u);
}

TEST_F(AccountTest, LoginReadsThePipedTokenFromStdin) {
  const CliResult result =
      runCli({"login", "--edge", edge_.url()}, env(), std::string(FakeEdge::kPat) + "\n");
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(readFile(credentialsFile(edge_)), std::string(FakeEdge::kPat) + "\n");

  // Nothing of the token is echoed.
  EXPECT_EQ(result.out.find(FakeEdge::kPat), std::string::npos);
  EXPECT_EQ(result.err.find(FakeEdge::kPat), std::string::npos);
}

TEST_F(AccountTest, LoginRefusesATokenOnTheCommandLineAndSaysWhy) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"login", "--edge", edge_.url(), "--token", FakeEdge::kPat},
        std::vector<std::string>{"login", "--edge", edge_.url(),
                                 std::string("--token=") + FakeEdge::kPat}}) {
    const CliResult result = runCli(args, env());
    EXPECT_EQ(result.exitCode, 2);
    EXPECT_NE(result.err.find("login does not take --token"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("--token-file"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("history"), std::string::npos) << result.err;
  }
  EXPECT_EQ(edge_.exchanges(), 0u);
  EXPECT_FALSE(exists(credentialsFile(edge_)));
}

TEST_F(AccountTest, RefusedOrMalformedTokenSavesNothing) {
  edge_.revokePat();
  const CliResult refused =
      runCli({"login", "--edge", edge_.url(), "--token-file", patFile()}, env());
  EXPECT_EQ(refused.exitCode, 1);
  EXPECT_NE(refused.err.find("the edge refused the token: invalid or revoked token"),
            std::string::npos)
      << refused.err;

  // A relay token pasted by mistake is named as such and never sent.
  const CliResult notPat =
      runCli({"login", "--edge", edge_.url()}, env(), std::string("0123abcd\n"));
  EXPECT_EQ(notPat.exitCode, 1);
  EXPECT_NE(notPat.err.find("not a personal access token"), std::string::npos) << notPat.err;
  EXPECT_EQ(edge_.exchanges(), 1u);
  EXPECT_FALSE(exists(credentialsFile(edge_)));
}

TEST_F(AccountTest, MemberCommandsUseTheCredentialsOfTheirEdgeOnly) {
  FakeEdge other;
  ASSERT_NO_FATAL_FAILURE(login(edge_));

  // The other edge has no login: the exact sentence, and no request at all.
  const CliResult signedOut = runCli({"account", "--edge", other.url()}, env());
  EXPECT_EQ(signedOut.exitCode, 1);
  EXPECT_EQ(signedOut.err, "anonymily: error: not signed in to " + other.url() +
                               ": run 'anonymily login --edge " + other.url() + "'\n");
  EXPECT_TRUE(other.paths().empty());

  // The signed-in edge answers, with a JWT and never the PAT as the bearer.
  const CliResult account = runCli({"account", "--edge", edge_.url()}, env());
  ASSERT_EQ(account.exitCode, 0) << account.err;
  EXPECT_NE(account.out.find("acme (acc_fake)"), std::string::npos) << account.out;
  EXPECT_NE(account.out.find("plan      free"), std::string::npos) << account.out;
  EXPECT_NE(account.out.find("named hooks 1"), std::string::npos) << account.out;
  for (const std::string& authorization : edge_.authorizations()) {
    EXPECT_EQ(authorization.find(FakeEdge::kPat), std::string::npos);
  }

  // logout forgets that edge's login only.
  ASSERT_NO_FATAL_FAILURE(login(other));
  const CliResult logout = runCli({"logout", "--edge", edge_.url()}, env());
  EXPECT_EQ(logout.exitCode, 0);
  EXPECT_EQ(logout.out, "signed out of " + edge_.url() + "\n");
  EXPECT_FALSE(exists(credentialsFile(edge_)));
  EXPECT_TRUE(exists(credentialsFile(other)));
  EXPECT_EQ(runCli({"account", "--edge", edge_.url()}, env()).exitCode, 1);
  EXPECT_EQ(runCli({"account", "--edge", other.url()}, env()).exitCode, 0);
}

TEST_F(AccountTest, AnHttpsLoginIsNeverSentOverPlainHttpToTheSameHostAndPort) {
  // As an https login of this version and of an earlier one (unkeyed by scheme) left them.
  ::mkdir((config_.path() + "/anonymily").c_str(), 0700);
  ::mkdir((config_.path() + "/anonymily/credentials").c_str(), 0700);
  writeFile(credentialsFile(edge_, "https"), std::string(FakeEdge::kPat) + "\n");
  writeFile(credentialsFile(edge_, ""), std::string(FakeEdge::kPat) + "\n");

  // Plain http on that port (another listener may be there): nothing goes out, and the
  // message says why the login does not count here.
  const std::string plain = edge_.url();
  const std::string secure = "https://127.0.0.1:" + portOf(edge_);
  const CliResult result = runCli({"account", "--edge", plain}, env());
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err, "anonymily: error: not signed in to " + plain + ": the login saved for " +
                            secure + " is used only over https, never sent over plain http; use " +
                            "--edge " + secure + ", or run 'anonymily login --edge " + plain +
                            "'\n");
  EXPECT_EQ(edge_.exchanges(), 0u);
  EXPECT_TRUE(edge_.paths().empty());

  // A login over plain http is one of its own, and leaves the https one alone.
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  EXPECT_TRUE(exists(credentialsFile(edge_, "http")));
  EXPECT_TRUE(exists(credentialsFile(edge_, "https")));
  EXPECT_EQ(runCli({"account", "--edge", plain}, env()).exitCode, 0);
}

TEST_F(AccountTest, APatIsNeverSentOverPlainHttpOffThisMachine) {
  // 0.0.0.0 is no loopback address, though Linux delivers a connection to it locally: a token
  // sent there would reach the fake edge.
  const std::string offLoopback = "http://0.0.0.0:" + portOf(edge_);
  const CliResult login =
      runCli({"login", "--edge", offLoopback, "--token-file", patFile()}, env());
  EXPECT_EQ(login.exitCode, 1);
  EXPECT_NE(login.err.find("will not send your personal access token to " + offLoopback +
                           " in clear text"),
            std::string::npos)
      << login.err;
  EXPECT_NE(login.err.find("use an https:// URL for --edge"), std::string::npos) << login.err;
  EXPECT_NE(login.err.find("put it behind TLS"), std::string::npos) << login.err;

  // Nor a saved one, however it got there.
  ::mkdir((config_.path() + "/anonymily").c_str(), 0700);
  ::mkdir((config_.path() + "/anonymily/credentials").c_str(), 0700);
  writeFile(config_.path() + "/anonymily/credentials/http_0.0.0.0_" + portOf(edge_) + ".pat",
            std::string(FakeEdge::kPat) + "\n");
  const CliResult account = runCli({"account", "--edge", offLoopback}, env());
  EXPECT_EQ(account.exitCode, 1);
  EXPECT_NE(account.err.find("will not send your personal access token"), std::string::npos)
      << account.err;
  EXPECT_EQ(edge_.exchanges(), 0u);
  EXPECT_TRUE(edge_.paths().empty());
}

TEST_F(AccountTest, TokensAndAuditCommandsShowWhatTheEdgeAnswers) {
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  const CliResult list = runCli({"tokens", "list", "--edge", edge_.url()}, env());
  ASSERT_EQ(list.exitCode, 0) << list.err;
  EXPECT_EQ(list.out.rfind("ID", 0), 0u) << list.out;
  EXPECT_NE(list.out.find("tok_fake"), std::string::npos) << list.out;

  // The new token alone on stdout, so that it can be redirected into a file.
  const CliResult created =
      runCli({"tokens", "create", "--name", "laptop", "--edge", edge_.url()}, env());
  ASSERT_EQ(created.exitCode, 0) << created.err;
  EXPECT_EQ(created.out, "anm_pat_new\n");

  EXPECT_EQ(runCli({"tokens", "revoke", "tok_fake", "--edge", edge_.url()}, env()).out,
            "revoked tok_fake\n");
  const CliResult unknown = runCli({"tokens", "revoke", "tok_nope", "--edge", edge_.url()}, env());
  EXPECT_EQ(unknown.exitCode, 1);
  EXPECT_NE(unknown.err.find("not found"), std::string::npos) << unknown.err;

  const CliResult audit = runCli({"audit", "--edge", edge_.url()}, env());
  ASSERT_EQ(audit.exitCode, 0) << audit.err;
  EXPECT_NE(audit.out.find("event.read"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("member:mem_fake"), std::string::npos) << audit.out;
}

TEST_F(AccountTest, A401GetsOneRenewalAndTheRetrySucceeds) {
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  const uint64_t before = edge_.exchanges();
  edge_.setDeadJwts(1);
  const CliResult result = runCli({"tokens", "list", "--edge", edge_.url()}, env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(edge_.exchanges() - before, 2u);
  EXPECT_NE(result.out.find("tok_fake"), std::string::npos);
}

TEST_F(AccountTest, A401AfterTheRenewalEndsWithTheSignInAgainMessage) {
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  const uint64_t before = edge_.exchanges();
  edge_.setDeadJwts(100);
  const CliResult result = runCli({"tokens", "list", "--edge", edge_.url()}, env());
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err,
            "anonymily: error: your access token was revoked or expired; run 'anonymily login' "
            "again\n");
  // One renewal, not a loop.
  EXPECT_EQ(edge_.exchanges() - before, 2u);

  // A PAT revoked since the login gets the same sentence at the exchange.
  edge_.revokePat();
  const CliResult revoked = runCli({"account", "--edge", edge_.url()}, env());
  EXPECT_EQ(revoked.exitCode, 1);
  EXPECT_NE(revoked.err.find("run 'anonymily login' again"), std::string::npos) << revoked.err;
}

TEST_F(AccountTest, RelayHookNameCreatesTheHookOnceThenReusesIt) {
  ASSERT_NO_FATAL_FAILURE(login(edge_));

  // First run: no hook of that name, so it is created with the given verification.
  auto first = startNamedRelay({"--provider", "stripe", "--secret", "whsec_abc"});
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.streamLastEventIds().size() == 1; }))
      << first->err();
  ASSERT_EQ(edge_.createBodies().size(), 1u);
  const std::string createBody = edge_.createBodies()[0];
  EXPECT_NE(createBody.find("\"name\":\"stripe-dev\""), std::string::npos) << createBody;
  EXPECT_NE(createBody.find("\"provider\":\"stripe\""), std::string::npos) << createBody;
  EXPECT_NE(first->err().find(std::string("signing secret ") + FakeEdge::kSigningSecret),
            std::string::npos)
      << first->err();
  EXPECT_NE(first->err().find(std::string("hook ") + FakeEdge::kHookId), std::string::npos);

  FakeEvent event;
  event.body = "first";
  edge_.addEvent(event);
  ASSERT_TRUE(target_.waitForRequests(1, 15s)) << first->err();
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.deliveries().size() == 1; }));
  first->interrupt();
  EXPECT_EQ(first->wait(), 0) << first->err();

  // Meanwhile another webhook arrives; the second run finds the hook and resumes after event 1.
  event.body = "second";
  edge_.addEvent(event);
  auto second = startNamedRelay({});
  ASSERT_TRUE(target_.waitForRequests(2, 15s)) << second->err();
  EXPECT_EQ(target_.requests().at(1).body, "second");
  EXPECT_EQ(edge_.createBodies().size(), 1u);
  EXPECT_EQ(second->err().find("signing secret"), std::string::npos) << second->err();
  EXPECT_NE(second->err().find(std::string("hook ") + FakeEdge::kHookId), std::string::npos);
  ASSERT_GE(edge_.streamLastEventIds().size(), 2u);
  EXPECT_EQ(edge_.streamLastEventIds()[1], "1");
  second->interrupt();
  EXPECT_EQ(second->wait(), 0) << second->err();

  // Each stream named its relay, and the two runs were two relays.
  const std::vector<std::string> relays = edge_.relayHeaders();
  ASSERT_EQ(relays.size(), 2u);
  for (const std::string& relay : relays) EXPECT_EQ(relay.size(), 16u) << relay;
  EXPECT_NE(relays[0], relays[1]);
}

TEST_F(AccountTest, RelayHookNameWithoutALoginSaysHowToSignIn) {
  const CliResult result = runCli(
      {"relay", "--edge", edge_.url(), "--to", target_.url(), "--hook", "stripe-dev"}, env());
  EXPECT_EQ(result.exitCode, 2);
  EXPECT_NE(result.err.find("run 'anonymily login --edge " + edge_.url() + "'"), std::string::npos)
      << result.err;
  EXPECT_TRUE(edge_.paths().empty());
}

TEST_F(AccountTest, LiveRelayRefusalEndsTheRelayWithTheEdgesMessage) {
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  edge_.addNamedHook("stripe-dev");
  const std::string message =
      "the free plan allows one live relay per hook and relay 0011223344556677 is connected; "
      "stop it, or move the account to pro for a team";
  edge_.setStreamConflict(message);
  auto relay = startNamedRelay({});
  EXPECT_EQ(relay->wait(), 1);
  EXPECT_NE(relay->err().find("anonymily: error: " + message), std::string::npos) << relay->err();
  EXPECT_EQ(edge_.streamLastEventIds().size(), 1u);
}

TEST_F(AccountTest, StreamReplacedByAnotherEndsTheRelayInsteadOfReconnecting) {
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  edge_.addNamedHook("stripe-dev");
  const std::string message =
      "another stream took this hook's live relay: the free plan allows one live relay per hook; "
      "stop the other relay, or move the account to pro for a team";
  edge_.addRawFrame(1, "event: replaced\ndata: {\"error\":\"" + message +
                           "\",\"plan\":\"free\"}\n\n");
  edge_.addEvent(FakeEvent{});
  auto relay = startNamedRelay({});

  // Taking the hook back would only end the other stream in turn: the relay stops, says why,
  // and forwards nothing sent after the frame.
  const bool ended = FakeEdge::waitUntil(
      [&] { return relay->err().find("anonymily: error: ") != std::string::npos; });
  if (!ended) relay->interrupt();
  EXPECT_EQ(relay->wait(), 1) << relay->err();
  EXPECT_NE(relay->err().find("anonymily: error: " + message), std::string::npos) << relay->err();
  EXPECT_EQ(edge_.streamLastEventIds().size(), 1u);
  EXPECT_TRUE(target_.requests().empty());
}

TEST_F(AccountTest, RelayRenewsItsJwtBeforeExpiryForReportsAndStreams) {
  // Tokens of 2 s are inside their margin (a quarter of that) 1.5 s after they are issued.
  edge_.setJwtTtlSeconds(2);
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  edge_.addNamedHook("stripe-dev");
  auto relay = startNamedRelay({});
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.streamLastEventIds().size() == 1; }))
      << relay->err();
  const size_t issuedAtStart = edge_.issuedJwts().size();

  std::this_thread::sleep_for(1600ms);
  edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.deliveries().size() == 1; })) << relay->err();

  // The report went with a JWT issued after the stream's.
  const std::vector<std::string> paths = edge_.paths();
  const std::vector<std::string> authorizations = edge_.authorizations();
  const std::vector<std::string> jwts = edge_.issuedJwts();
  ASSERT_GT(jwts.size(), issuedAtStart);
  std::string reportAuthorization;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (paths[i].find("/deliveries") != std::string::npos) reportAuthorization = authorizations[i];
  }
  EXPECT_EQ(reportAuthorization, "Bearer " + jwts.back());
  EXPECT_NE(reportAuthorization, "Bearer " + jwts.at(issuedAtStart - 1));

  // A dropped stream reconnects with a renewed JWT too.
  std::this_thread::sleep_for(1600ms);
  const size_t issuedBeforeDrop = edge_.issuedJwts().size();
  edge_.dropStreams();
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.streamLastEventIds().size() == 2; }))
      << relay->err();
  EXPECT_GT(edge_.issuedJwts().size(), issuedBeforeDrop);
  relay->interrupt();
  EXPECT_EQ(relay->wait(), 0) << relay->err();
}

TEST_F(AccountTest, RelayOnTheShortestTokensDoesNotRenewForEveryRequest) {
  // 60 s, the shortest lifetime an edge issues: one token serves the whole run below.
  edge_.setJwtTtlSeconds(60);
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  edge_.addNamedHook("stripe-dev");
  const uint64_t atLogin = edge_.exchanges();
  auto relay = startNamedRelay({});
  for (int i = 0; i < 10; ++i) edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(target_.waitForRequests(10, 15s)) << relay->err();
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.deliveries().size() == 10; })) << relay->err();
  relay->interrupt();
  EXPECT_EQ(relay->wait(), 0) << relay->err();
  EXPECT_EQ(edge_.exchanges() - atLogin, 1u);
}

TEST_F(AccountTest, RefusedStreamIsRetriedOnceWithARenewedJwt) {
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  edge_.addNamedHook("stripe-dev");

  // One refusal (the JWT may have expired on the way): a renewal and a second stream request.
  edge_.setStreamRefusals(1);
  auto relay = startNamedRelay({});
  edge_.addEvent(FakeEvent{});
  ASSERT_TRUE(target_.waitForRequests(1, 15s)) << relay->err();
  ASSERT_EQ(edge_.streamLastEventIds().size(), 2u);
  const std::vector<std::string> jwts = edge_.issuedJwts();
  ASSERT_GE(jwts.size(), 3u);  // login, relay start, renewal
  relay->interrupt();
  EXPECT_EQ(relay->wait(), 0) << relay->err();

  // Refused again after the renewal: the relay ends, naming the hook and the edge's words.
  edge_.setStreamRefusals(2);
  auto refused = startNamedRelay({});
  EXPECT_EQ(refused->wait(), 1);
  EXPECT_NE(refused->err().find(std::string("anonymily: error: the edge refused the stream of "
                                            "hook ") +
                                FakeEdge::kHookId + ": unknown hook"),
            std::string::npos)
      << refused->err();
  EXPECT_EQ(edge_.streamLastEventIds().size(), 4u);
}

TEST_F(AccountTest, UnreadableEventIsReportedLoggedAndPassed) {
  auto relay = std::make_unique<CliProcess>(
      std::vector<std::string>{"relay", "--edge", edge_.url(), "--to", target_.url(), "--json"},
      env());
  edge_.addRawFrame(1,
                    "id: 1\nevent: unreadable\n"
                    "data: {\"id\":1,\"error\":\"sealed with key k2, which this edge lacks\"}\n\n");
  FakeEvent after;
  after.body = "readable";
  edge_.addEvent(after);
  ASSERT_TRUE(target_.waitForRequests(1, 15s)) << relay->err();
  EXPECT_EQ(target_.requests().at(0).body, "readable");
  ASSERT_TRUE(FakeEdge::waitUntil([&] { return edge_.deliveries().size() == 2; })) << relay->err();

  // The unreadable event got a report of its own, status 0, and an error line with its id.
  const std::vector<ReportedDelivery> reports = edge_.deliveries();
  EXPECT_EQ(reports[0].event, 1);
  EXPECT_EQ(reports[0].status, 0);
  EXPECT_EQ(reports[0].error, "unreadable at the edge");
  EXPECT_EQ(reports[1].event, 2);
  EXPECT_EQ(reports[1].status, 200);
  EXPECT_NE(relay->err().find("event_id=1"), std::string::npos) << relay->err();
  EXPECT_NE(relay->err().find("sealed with key k2, which this edge lacks"), std::string::npos);
  relay->interrupt();
  EXPECT_EQ(relay->wait(), 0);

  // The saved position is past both.
  const std::string cursor =
      config_.path() + "/anonymily/hooks/" + cursorFileName(FakeEdge::kHookId, target_.url());
  EXPECT_EQ(readFile(cursor), "2\n");
}

TEST_F(AccountTest, RelayLogLinesStartWithTheTimeOfDay) {
  auto relay = std::make_unique<CliProcess>(
      std::vector<std::string>{"relay", "--edge", edge_.url(), "--to", target_.url(), "--json"},
      env());
  ASSERT_TRUE(FakeEdge::waitUntil([&] {
    return relay->err().find("stream connected") != std::string::npos;
  })) << relay->err();
  relay->interrupt();
  relay->wait();
  std::istringstream lines(relay->err());
  size_t logLines = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("relay started") == std::string::npos &&
        line.find("stream connected") == std::string::npos) {
      continue;
    }
    ++logLines;
    // HH:MM:SS.mmm, then the level letter.
    ASSERT_GE(line.size(), 14u) << line;
    EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(line[0])) && line[2] == ':' &&
                line[5] == ':' && line[8] == '.' && line[12] == ' ')
        << line;
  }
  EXPECT_EQ(logLines, 2u) << relay->err();
}

TEST_F(AccountTest, EventsCommandsFindANamedHookWhenSignedIn) {
  ASSERT_NO_FATAL_FAILURE(login(edge_));
  edge_.addNamedHook("stripe-dev");
  FakeEvent event;
  event.eventType = "invoice.paid";
  edge_.addEvent(event);
  const CliResult list =
      runCli({"events", "list", "--hook", "stripe-dev", "--edge", edge_.url()}, env());
  ASSERT_EQ(list.exitCode, 0) << list.err;
  EXPECT_NE(list.out.find("invoice.paid"), std::string::npos) << list.out;
  EXPECT_EQ(countOf(edge_.paths(), "GET /api/v1/hooks?name=stripe-dev"), 1u);

  const CliResult missing =
      runCli({"events", "list", "--hook", "nope", "--edge", edge_.url()}, env());
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_NE(missing.err.find("no hook named nope"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace anm::cli::test
