// tests/e2e/named_relay_test.cpp: a signed-in relay of a named hook against the real edge: login
// with the owner's PAT, `relay --hook NAME` creates the hook, a Stripe-signed webhook arrives
// byte for byte, a relay restarted with the same name gets every webhook it missed, once and
// in order, from the same hook, and two members of a team relay one hook at once.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/e2e/support/child_process.h"
#include "tests/e2e/support/delivery_check.h"
#include "tests/e2e/support/digest.h"
#include "tests/e2e/support/http_wire.h"
#include "tests/e2e/support/product.h"
#include "tests/e2e/support/target_server.h"
#include "tests/e2e/support/temp_dir.h"

namespace anm::e2e {
namespace {

using namespace std::chrono_literals;

const std::string kSecret = "whsec_test_e2eNamedRelaySecret0123456789ab";
constexpr auto kStep = std::chrono::milliseconds(15000);

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class NamedRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EdgeProcess::Options options;
    options.binary = ANM_E2E_EDGE_BIN;
    options.pluginDir = ANM_E2E_PLUGIN_DIR;
    options.workDir = dir_.sub("edge");
    options.home = dir_.sub("edge-home");
    edge_ = std::make_unique<EdgeProcess>(options);
    ownerTokenFile_ = options.workDir / "edge-data" / "owner.token";
    home_ = dir_.sub("relay-home");
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "edge: " << edge_->process().describe();
      if (relay_) std::cerr << "relay: " << relay_->describe();
      if (secondRelay_) std::cerr << "second relay: " << secondRelay_->describe();
    }
    secondRelay_.reset();
    relay_.reset();
  }

  /// Runs the CLI to its end; returns the exit code, with stdout and stderr in `output`.
  int runCli(const std::vector<std::string>& args, std::string& output) {
    return runCli(home_, args, output);
  }

  /// The same for a user whose configuration (saved credentials, positions) is in `home`.
  int runCli(const std::filesystem::path& home, const std::vector<std::string>& args,
             std::string& output) {
    ChildProcess cli(ANM_E2E_RELAY_BIN, args, productEnv(home));
    const auto deadline = std::chrono::steady_clock::now() + kStep;
    while (cli.running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    const int code = cli.running() ? cli.stop() : *cli.exitCode();
    // Let the pipe readers take the last lines.
    std::this_thread::sleep_for(50ms);
    for (const auto& line : cli.stdoutLines()) output += line + "\n";
    for (const auto& line : cli.stderrLines()) output += line + "\n";
    return code;
  }

  /// Starts `relay --hook stripe-dev` and waits for its "hook <id>" banner line.
  std::string startRelay(const std::vector<std::string>& extra) {
    std::string hookId;
    relay_ = launchRelay(home_, target_, "stripe-dev", extra, hookId);
    return hookId;
  }

  /// Starts `relay --hook NAME --to TARGET --json` signed in as the user of `home`, and waits
  /// for its "hook <id>" banner (the id goes to `hookId`, "" without one) and its stream.
  std::unique_ptr<ChildProcess> launchRelay(const std::filesystem::path& home,
                                            const TargetServer& target, const std::string& hookName,
                                            const std::vector<std::string>& extra,
                                            std::string& hookId) {
    std::vector<std::string> args = {"relay",      "--edge", edge_->url(), "--to",
                                     target.url(), "--hook", hookName,     "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto relay = std::make_unique<ChildProcess>(ANM_E2E_RELAY_BIN, args, productEnv(home));
    const auto banner = relay->waitForAnyLine(
        [](const std::string& line) { return line.rfind("hook ", 0) == 0; }, kStep);
    hookId = banner ? banner->substr(5) : "";
    if (!banner) return relay;
    // The stream is open once the relay says so; webhooks sent before are replayed anyway.
    relay->waitForAnyLine(
        [](const std::string& line) { return line.find("stream connected") != std::string::npos; },
        kStep);
    return relay;
  }

  /// Waits for the first start's owner token file and signs the user of home_ in with it.
  void loginAsOwner() {
    const auto until = std::chrono::steady_clock::now() + kStep;
    while (!std::filesystem::exists(ownerTokenFile_) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(std::filesystem::exists(ownerTokenFile_)) << ownerTokenFile_;
    std::string loginOutput;
    ASSERT_EQ(runCli({"login", "--edge", edge_->url(), "--token-file", ownerTokenFile_.string()},
                     loginOutput),
              0)
        << loginOutput;
    EXPECT_NE(loginOutput.find("signed in to " + edge_->url() + " as owner (account owner"),
              std::string::npos)
        << loginOutput;
    EXPECT_EQ(loginOutput.find(readFile(ownerTokenFile_).substr(0, 20)), std::string::npos);
  }

  SentRequest signedWebhook(int seq) {
    const std::string body =
        "{\n  \"id\": \"evt_named_" + std::to_string(seq) +
        "\",\n  \"type\": \"payment_intent.succeeded\",\n  \"n\": " + std::to_string(seq) + "\n}\n";
    const int64_t t = static_cast<int64_t>(std::time(nullptr));
    const std::string signature =
        "t=" + std::to_string(t) + ",v1=" + hmacSha256Hex(kSecret, std::to_string(t) + "." + body);
    return makeRequest("POST", "/stripe", "", edge_->port(),
                       {{"Content-Type", "application/json; charset=utf-8"},
                        {"Stripe-Signature", signature},
                        {kSeqHeader, std::to_string(seq)}},
                       body);
  }

  TempDir dir_;
  TargetServer target_;
  std::unique_ptr<EdgeProcess> edge_;
  std::filesystem::path ownerTokenFile_;
  std::filesystem::path home_;
  std::unique_ptr<ChildProcess> relay_;
  std::unique_ptr<ChildProcess> secondRelay_;
};

TEST_F(NamedRelayTest, NamedHookIsCreatedOnceAndARestartedRelayGetsEveryMissedWebhook) {
  // The first start writes the owner's PAT; sign in with it.
  ASSERT_NO_FATAL_FAILURE(loginAsOwner());

  // First run: the account has no hook of that name, so the relay creates it, Stripe-verified.
  const std::string hookId = startRelay({"--provider", "stripe", "--secret", kSecret});
  ASSERT_FALSE(hookId.empty());
  ASSERT_TRUE(relay_->waitForAnyLine(
      [](const std::string& line) { return line.rfind("signing secret whsec_", 0) == 0; }, 1s))
      << "the new hook's signing secret is printed once";

  const SentRequest first = signedWebhook(1);
  ASSERT_EQ(exchange(edge_->port(), first.serialize(hookId), false).status, 200);
  ASSERT_TRUE(target_.waitForCount(1, kStep));
  expectDeliveredUnchanged(first, target_.requests().at(0), target_.port());

  // A wrongly signed webhook is refused at the edge and never reaches the target.
  SentRequest forged = signedWebhook(99);
  forged.body[5] = 'X';
  EXPECT_EQ(exchange(edge_->port(), forged.serialize(hookId), false).status, 401);

  // The relay stops; three more webhooks arrive while it is away.
  EXPECT_EQ(relay_->stop(), 0);
  std::vector<SentRequest> missed;
  for (int seq = 2; seq <= 4; ++seq) {
    missed.push_back(signedWebhook(seq));
    ASSERT_EQ(exchange(edge_->port(), missed.back().serialize(hookId), false).status, 200);
  }

  // Second run by name alone: the same hook, no new secret, every missed webhook once, in order.
  const std::string againId = startRelay({});
  EXPECT_EQ(againId, hookId);
  ASSERT_TRUE(target_.waitForCount(4, kStep));
  std::this_thread::sleep_for(300ms);
  const std::vector<RecordedRequest> got = target_.requests();
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < missed.size(); ++i) {
    EXPECT_EQ(got[i + 1].message.value(kSeqHeader).value_or(""), std::to_string(i + 2));
    expectDeliveredUnchanged(missed[i], got[i + 1], target_.port());
  }
  for (const std::string& line : relay_->stderrLines()) {
    EXPECT_EQ(line.find("signing secret"), std::string::npos) << line;
  }
  EXPECT_EQ(relay_->stop(), 0);

  // The account holds exactly that one hook under that name.
  std::string hooksOutput;
  ASSERT_EQ(runCli({"hooks", "list", "--edge", edge_->url(), "--json"}, hooksOutput), 0)
      << hooksOutput;
  EXPECT_NE(hooksOutput.find("\"id\":\"" + hookId + "\""), std::string::npos) << hooksOutput;
  EXPECT_NE(hooksOutput.find("\"name\":\"stripe-dev\""), std::string::npos) << hooksOutput;
}

TEST_F(NamedRelayTest, FreePlanRefusesASecondLiveRelayWithTheEdgesMessage) {
  // A free account made with the admin command; its owner's PAT is the last line it prints.
  std::string adminOutput;
  ChildProcess admin(ANM_E2E_EDGE_BIN,
                     {"admin", "--data-dir", (dir_.path() / "edge" / "edge-data").string(),
                      "accounts", "create", "acme", "--plan", "free"},
                     productEnv(dir_.sub("edge-home")));
  const auto until = std::chrono::steady_clock::now() + kStep;
  while (admin.running() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(admin.running() ? admin.stop() : *admin.exitCode(), 0) << admin.describe();
  std::this_thread::sleep_for(50ms);
  std::string pat;
  for (const std::string& line : admin.stdoutLines()) {
    if (line.rfind("anm_pat_", 0) == 0) pat = line;
  }
  ASSERT_FALSE(pat.empty()) << admin.describe();
  const std::filesystem::path patFile = dir_.sub("secrets") / "acme.pat";
  {
    std::ofstream out(patFile);
    out << pat << "\n";
  }
  std::string loginOutput;
  ASSERT_EQ(
      runCli({"login", "--edge", edge_->url(), "--token-file", patFile.string()}, loginOutput), 0)
      << loginOutput;

  // The first relay holds the hook; a second one is refused and says why, in the edge's words.
  const std::string hookId = startRelay({});
  ASSERT_FALSE(hookId.empty());
  std::string secondOutput;
  EXPECT_EQ(runCli({"relay", "--edge", edge_->url(), "--to", target_.url(), "--hook", "stripe-dev"},
                   secondOutput),
            1);
  EXPECT_NE(secondOutput.find("anonymily: error: the free plan allows one live relay per hook"),
            std::string::npos)
      << secondOutput;

  // The first relay still relays.
  const SentRequest webhook = makeRequest("POST", "", "", edge_->port(), {{kSeqHeader, "1"}}, "{}");
  ASSERT_EQ(exchange(edge_->port(), webhook.serialize(hookId), false).status, 200);
  ASSERT_TRUE(target_.waitForCount(1, kStep));
  expectDeliveredUnchanged(webhook, target_.requests().at(0), target_.port());
}

TEST_F(NamedRelayTest, TwoMembersRelayOneHookAtOnceAndEachTargetGetsEveryWebhook) {
  // The owner signs in and adds bob to the team (the owner account is on the pro plan); the
  // answer carries bob's first PAT, with which bob signs in on a machine of his own.
  ASSERT_NO_FATAL_FAILURE(loginAsOwner());
  std::string ownerPat = readFile(ownerTokenFile_);
  ownerPat.pop_back();
  const WireResponse signedIn =
      apiPost(edge_->port(), "/api/v1/auth/token", "{\"token\":\"" + ownerPat + "\"}");
  ASSERT_EQ(signedIn.status, 200) << signedIn.message.body;
  const std::string ownerJwt = jsonText(parseObject(signedIn.message.body), "access_token");
  const WireResponse added =
      apiPost(edge_->port(), "/api/v1/account/members", R"({"name":"bob"})", ownerJwt);
  ASSERT_EQ(added.status, 201) << added.message.body;
  const std::filesystem::path bobPatFile = dir_.sub("secrets") / "bob.pat";
  {
    std::ofstream out(bobPatFile);
    out << jsonText(parseObject(added.message.body)->getObject("token"), "token") << "\n";
  }
  const std::filesystem::path bobHome = dir_.sub("bob-home");
  std::string loginOutput;
  ASSERT_EQ(runCli(bobHome, {"login", "--edge", edge_->url(), "--token-file", bobPatFile.string()},
                   loginOutput),
            0)
      << loginOutput;
  EXPECT_NE(loginOutput.find("as bob (account owner"), std::string::npos) << loginOutput;

  // The owner's relay creates the hook; bob's finds it by name. Both stay connected, each
  // forwarding to its own local target.
  TargetServer bobTarget;
  std::string ownerHookId;
  std::string bobHookId;
  relay_ = launchRelay(home_, target_, "team-hook", {}, ownerHookId);
  ASSERT_FALSE(ownerHookId.empty());
  secondRelay_ = launchRelay(bobHome, bobTarget, "team-hook", {}, bobHookId);
  ASSERT_EQ(bobHookId, ownerHookId);

  // Webhooks whose method, suffix, query, headers and body bytes must all arrive unchanged.
  std::vector<SentRequest> sent;
  for (int seq = 1; seq <= 8; ++seq) {
    const std::string n = std::to_string(seq);
    std::string body = "{\"team\":" + n + "}\r\n";
    body += std::string("\0\x01\xfe\xff", 4);
    sent.push_back(makeRequest(
        "POST", "/team/" + n, "n=" + n + "&x=%20", edge_->port(),
        {{"Content-Type", "application/octet-stream"}, {"X-Team", "m" + n}, {kSeqHeader, n}},
        body));
    ASSERT_EQ(exchange(edge_->port(), sent.back().serialize(ownerHookId), false).status, 200);
  }

  // Each member's target gets every one of them: once, in order, byte for byte.
  for (TargetServer* target : {&target_, &bobTarget}) {
    const std::string who = target == &target_ ? "owner's target" : "bob's target";
    ASSERT_TRUE(target->waitForCount(sent.size(), kStep)) << who << " got " << target->count();
  }
  std::this_thread::sleep_for(300ms);
  for (TargetServer* target : {&target_, &bobTarget}) {
    SCOPED_TRACE(target == &target_ ? "owner's target" : "bob's target");
    const std::vector<RecordedRequest> got = target->requests();
    ASSERT_EQ(got.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
      EXPECT_EQ(got[i].message.value(kSeqHeader).value_or(""), seqOf(sent[i]));
      expectDeliveredUnchanged(sent[i], got[i], target->port());
    }
  }
  EXPECT_EQ(secondRelay_->stop(), 0);
  EXPECT_EQ(relay_->stop(), 0);
}

}  // namespace
}  // namespace anm::e2e
