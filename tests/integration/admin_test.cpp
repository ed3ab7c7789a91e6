// tests/integration/admin_test.cpp: `anonymily-edge admin` against the store of a running edge:
// accounts, tokens, and a key rotation while the edge serves every request, on SQLite and on
// MySQL.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/admin.h"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/crypto/keys.h"
#include "core/edge/bootstrap.h"
#include "core/edge/config.h"
#include "core/edge/secrets.h"
#include "core/store/store.h"
#include "test_http.h"
#include "tests/support/mysql/test_mysql.h"

namespace anm::test {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Poco::JSON::Object::Ptr parseJson(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

struct ProcessRun {
  int exitCode = -1;
  std::string out;
  std::string err;
};

/// The backend a test runs on.
enum class Backend { kSqlite, kMySql };

class AdminTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-admin-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    data_ = dir_ + "/data";
    ::unsetenv("ANONYMILY_ENCRYPTION_KEYS");

    // SQLite keeps the key generated in the data directory; MySQL edges share a key file.
    std::string settings = "data_dir = " + data_ + "\n";
    if (GetParam() == Backend::kMySql) {
      requireMySqlServer();
      if (HasFatalFailure() || IsSkipped()) return;
      db_ = std::make_unique<TestDatabase>(*testMySqlServer());
      keyFile_ = dir_ + "/keys";
      crypto::KeyRing::writeFile(keyFile_, crypto::KeyRing::newKeyLine("k1") + "\n");
      settings += "store = " + db_->url() + "\nencryption.key_file = " + keyFile_ + "\n";
    } else {
      keyFile_ = data_ + "/encryption.keys";
    }
    configFile_ = dir_ + "/edge.properties";
    std::ofstream(configFile_) << settings;
  }

  void TearDown() override {
    stopEdge();
    db_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void startEdge() {
    const std::string portFile = dir_ + "/port";
    std::filesystem::remove(portFile);
    std::vector<std::string> args = {ANM_EDGE_BINARY,     "--config",    configFile_,
                                     "--listen",          "127.0.0.1:0", "--plugin-dir",
                                     ANM_TEST_PLUGIN_DIR, "--port-file", portFile};
    edgePid_ = spawn(args, dir_ + "/edge.out", dir_ + "/edge.err");
    for (int i = 0; i < 3000 && port_ == 0; ++i) {
      const std::string text = readFile(portFile);
      if (!text.empty() && text.back() == '\n') port_ = static_cast<uint16_t>(std::stoi(text));
      int status = 0;
      if (port_ == 0 && waitpid(edgePid_, &status, WNOHANG) == edgePid_) {
        edgePid_ = -1;
        FAIL() << "edge exited: " << readFile(dir_ + "/edge.err");
      }
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_NE(port_, 0) << readFile(dir_ + "/edge.err");
  }

  void stopEdge() {
    if (edgePid_ <= 0) return;
    kill(edgePid_, SIGTERM);
    int status = 0;
    waitpid(edgePid_, &status, 0);
    edgePid_ = -1;
    port_ = 0;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << readFile(dir_ + "/edge.err");
  }

  ProcessRun admin(std::vector<std::string> words) {
    std::vector<std::string> args = {ANM_EDGE_BINARY, "admin", "--config", configFile_};
    args.insert(args.end(), words.begin(), words.end());
    const pid_t pid = spawn(args, dir_ + "/admin.out", dir_ + "/admin.err");
    ProcessRun run;
    int status = 0;
    waitpid(pid, &status, 0);
    run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    run.out = readFile(dir_ + "/admin.out");
    run.err = readFile(dir_ + "/admin.err");
    return run;
  }

  // The edge's store, opened by the test as the admin command does (the edge may run).
  std::unique_ptr<store::Store> openStore() {
    const auto config = edge::parseConfig(edge::readConfigFile(configFile_), "/nonexistent");
    auto keys = edge::loadKeys(config, false);
    std::unique_ptr<store::Store> store;
    if (config.storeKind == edge::StoreKind::kMySql) {
      auto options = config.mysql;
      options.keys = keys;
      store = store::MySqlStore::open(options);
    } else {
      store = store::openSqliteStore(config.sqlitePath, keys);
    }
    edge::alignActiveKey(*store, *keys, config);
    return store;
  }

  // A PAT exchanged at the running edge for an access token ("" after a recorded failure).
  std::string signIn(const std::string& pat) {
    const auto r = request(port_, "POST", "/api/v1/auth/token", "{\"token\":\"" + pat + "\"}");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? jsonField(r.body, "access_token") : "";
  }

  // The PAT the edge's first start wrote for the operator's `owner` account.
  std::string ownerToken() {
    std::string text = readFile(data_ + "/owner.token");
    while (!text.empty() && text.back() == '\n') text.pop_back();
    EXPECT_FALSE(text.empty()) << "no owner token in " << data_;
    return text;
  }

  // The audit log of the access token's account, as its owner reads it through the API.
  std::vector<Poco::JSON::Object::Ptr> auditThroughApi(const std::string& jwt) {
    const auto r = apiRequest(port_, "GET", "/api/v1/audit?limit=1000", jwt);
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<Poco::JSON::Object::Ptr> entries;
    if (r.status != 200) return entries;
    const auto list = parseJson(r.body)->getArray("entries");
    for (size_t i = 0; i < list->size(); ++i) {
      entries.push_back(list->getObject(static_cast<unsigned>(i)));
    }
    return entries;
  }

  // The actor of the admin command's entries when this user runs it.
  static std::string adminActor() {
    const passwd* entry = ::getpwuid(::geteuid());
    return "admin:" + (entry ? std::string(entry->pw_name) : "uid" + std::to_string(::geteuid()));
  }

  /// Changes one byte of event `eventId`'s wrapped data key in the database, as someone with
  /// write access to it could: the event's contents no longer open under any key.
  void corruptWrappedKey(int64_t eventId) {
    const std::string id = std::to_string(eventId);
    if (GetParam() == Backend::kMySql) {
      db_->connect()->execute(
          "UPDATE events SET wrapped_key = CONCAT(LEFT(wrapped_key, 20), "
          "CHAR(ASCII(SUBSTRING(wrapped_key, 21, 1)) ^ 1), SUBSTRING(wrapped_key, 22)) "
          "WHERE id = " +
          id);
      return;
    }
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session session("SQLite", data_ + "/anonymily.db");
    session << "PRAGMA busy_timeout = 5000", Poco::Data::Keywords::now;
    session << "UPDATE event_keys SET wrapped_key = substr(wrapped_key, 1, 20) || "
               "(CASE WHEN substr(wrapped_key, 21, 1) = x'5a' THEN x'a5' ELSE x'5a' END) || "
               "substr(wrapped_key, 22) WHERE event_id = " +
                   id,
        Poco::Data::Keywords::now;
  }

  static pid_t spawn(std::vector<std::string> args, const std::string& out,
                     const std::string& err) {
    const pid_t pid = fork();
    if (pid == 0) {
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(o, 1);
      dup2(e, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }

  std::string dir_;
  std::string data_;
  std::string configFile_;
  std::string keyFile_;
  std::unique_ptr<TestDatabase> db_;
  pid_t edgePid_ = -1;
  uint16_t port_ = 0;
};

std::string lastLine(const std::string& text) {
  std::string trimmed = text;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  const auto at = trimmed.rfind('\n');
  return at == std::string::npos ? trimmed : trimmed.substr(at + 1);
}

TEST_P(AdminTest, ManagesAccountsOfARunningEdge) {
  startEdge();

  // A new account: its owner's token is printed once, on the last line.
  ProcessRun run = admin({"accounts", "create", "acme", "--plan", "free", "--member", "alice"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const std::string pat = lastLine(run.out);
  ASSERT_TRUE(std::regex_match(pat, std::regex("anm_pat_[a-z2-7]{52}"))) << run.out;
  EXPECT_NE(run.out.find("acme"), std::string::npos);

  // The edge that never stopped exchanges it.
  auto exchanged = request(port_, "POST", "/api/v1/auth/token", "{\"token\":\"" + pat + "\"}");
  EXPECT_EQ(exchanged.status, 200) << exchanged.body;

  // A taken name is refused; the list shows both accounts.
  run = admin({"accounts", "create", "acme"});
  EXPECT_EQ(run.exitCode, 1) << run.out;
  EXPECT_NE(run.err.find("acme"), std::string::npos) << run.err;
  run = admin({"--json", "accounts", "list"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  auto list = parseJson(run.out)->getArray("accounts");
  ASSERT_EQ(list->size(), 2u) << run.out;
  std::map<std::string, Poco::JSON::Object::Ptr> byName;
  for (size_t i = 0; i < list->size(); ++i) {
    auto account = list->getObject(static_cast<unsigned>(i));
    byName[account->getValue<std::string>("name")] = account;
  }
  ASSERT_EQ(byName.count("acme"), 1u);
  ASSERT_EQ(byName.count("owner"), 1u);
  EXPECT_EQ(byName["acme"]->getValue<std::string>("plan"), "free");
  EXPECT_FALSE(byName["acme"]->getValue<bool>("disabled"));
  run = admin({"accounts", "list"});
  EXPECT_NE(run.out.find("acme"), std::string::npos) << run.out;

  // Disabled: the store says so and the edge refuses the token from then on.
  run = admin({"accounts", "disable", "acme"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  exchanged = request(port_, "POST", "/api/v1/auth/token", "{\"token\":\"" + pat + "\"}");
  EXPECT_EQ(exchanged.status, 403) << exchanged.body;
  run = admin({"accounts", "plan", "acme", "pro"});
  EXPECT_EQ(run.exitCode, 0) << run.err;

  // A recovery token for the owner of acme.
  run = admin({"tokens", "create", "acme", "--name", "laptop"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const std::string recovery = lastLine(run.out);
  EXPECT_TRUE(std::regex_match(recovery, std::regex("anm_pat_[a-z2-7]{52}"))) << run.out;
  EXPECT_NE(recovery, pat);

  auto store = openStore();
  const auto acme = store->findAccountByName("acme");
  ASSERT_TRUE(acme.has_value());
  EXPECT_TRUE(acme->disabled);
  EXPECT_EQ(acme->plan, store::Plan::kPro);
  const auto token = store->findTokenByHash(edge::sha256Hex(pat));
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->accountId, acme->id);
  const auto second = store->findTokenByHash(edge::sha256Hex(recovery));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->name, "laptop");
  EXPECT_EQ(second->memberId, token->memberId);

  // Every change is in acme's audit log, by the admin, from the local machine, and acme's owner
  // reads it through the API once the account is enabled again.
  run = admin({"accounts", "enable", "acme"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const std::string jwt = signIn(recovery);
  ASSERT_FALSE(jwt.empty());
  std::vector<std::string> actions;
  std::vector<std::string> details;
  for (const auto& entry : auditThroughApi(jwt)) {
    if (entry->getValue<std::string>("actor").rfind("admin:", 0) != 0) continue;  // sign-ins
    actions.push_back(entry->getValue<std::string>("action"));
    details.push_back(entry->getValue<std::string>("detail"));
    EXPECT_EQ(entry->getValue<std::string>("actor"), adminActor()) << actions.back();
    EXPECT_EQ(entry->getValue<std::string>("remote"), "local") << actions.back();
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"account.create", "token.create", "account.disable",
                                               "account.plan", "token.create", "account.enable"}));
  if (details.size() == 6) {
    EXPECT_EQ(details[0], "name=acme plan=free member=" + token->memberId);
    EXPECT_EQ(details[2], "name=acme");
    EXPECT_EQ(details[3], "name=acme from=free to=pro");
    EXPECT_EQ(details[4], "token=" + second->id + " member=" + token->memberId + " name=laptop");
  }

  // None of it is in the log of the edge's own owner account, which it does not concern.
  for (const auto& entry : auditThroughApi(signIn(ownerToken()))) {
    EXPECT_EQ(entry->getValue<std::string>("actor").rfind("admin:", 0), std::string::npos)
        << entry->getValue<std::string>("action") << " " << entry->getValue<std::string>("detail");
  }
}

TEST_P(AdminTest, DisablingAnAccountClosesItsOpenStreamsWithinASecond) {
  startEdge();
  ProcessRun run = admin({"accounts", "create", "acme", "--plan", "pro"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto exchanged =
      request(port_, "POST", "/api/v1/auth/token", "{\"token\":\"" + lastLine(run.out) + "\"}");
  ASSERT_EQ(exchanged.status, 200) << exchanged.body;
  const std::string jwt = jsonField(exchanged.body, "access_token");
  const auto created = apiRequest(port_, "POST", "/api/v1/hooks", jwt, "{\"name\":\"main\"}");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string hook = jsonField(created.body, "id");

  SseClient stream(port_, hook, jwt);
  ASSERT_EQ(stream.head().status, 200) << stream.head().body;
  ASSERT_EQ(request(port_, "POST", "/h/" + hook, "before").status, 200);
  Frame frame;
  ASSERT_TRUE(stream.nextEvent(frame));

  // The admin command is another process: the edge learns of it from the store alone.
  run = admin({"accounts", "disable", "acme"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto disabledAt = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));

  // Its hooks take no webhooks meanwhile (as unknown hooks), and its stream has ended: the read
  // returns at once instead of waiting 10 s for an event.
  ASSERT_EQ(request(port_, "POST", "/h/" + hook, "after").status, 404);
  EXPECT_FALSE(stream.nextEvent(frame))
      << "the stream of a disabled account got event " << frame.id;
  EXPECT_LT(std::chrono::steady_clock::now() - disabledAt, std::chrono::seconds(4));

  const auto refused = apiRequest(port_, "GET", "/api/v1/account", jwt);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.body, "{\"error\":\"account acme is disabled\"}");
  SseClient again(port_, hook, jwt);
  EXPECT_EQ(again.head().status, 404);
}

TEST_P(AdminTest, MovingAnAccountToFreeEnforcesTheFreePlanOnWhatItHas) {
  startEdge();
  ProcessRun run = admin({"accounts", "create", "acme", "--plan", "pro"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto signIn = [&](const std::string& pat) {
    return request(port_, "POST", "/api/v1/auth/token", "{\"token\":\"" + pat + "\"}");
  };
  const std::string owner = jsonField(signIn(lastLine(run.out)).body, "access_token");
  const auto added =
      apiRequest(port_, "POST", "/api/v1/account/members", owner, R"({"name":"bob"})");
  ASSERT_EQ(added.status, 201) << added.body;
  const std::string bobPat =
      parseJson(added.body)->getObject("token")->getValue<std::string>("token");
  const std::string bob = jsonField(signIn(bobPat).body, "access_token");

  // Two named hooks, one answering senders with its own response; two relays of the owner on
  // it and one of bob on the other.
  const auto main =
      apiRequest(port_, "POST", "/api/v1/hooks", owner,
                 R"({"name":"main","custom_response":{"status":202,"body":"thanks"}})");
  ASSERT_EQ(main.status, 201) << main.body;
  const std::string mainId = jsonField(main.body, "id");
  const auto second = apiRequest(port_, "POST", "/api/v1/hooks", owner, R"({"name":"second"})");
  ASSERT_EQ(second.status, 201) << second.body;
  const std::string secondId = jsonField(second.body, "id");
  SseClient one(port_, mainId, owner);
  SseClient two(port_, mainId, owner);
  SseClient bobs(port_, secondId, bob);
  for (SseClient* stream : {&one, &two, &bobs}) {
    ASSERT_EQ(stream->head().status, 200) << stream->head().body;
  }
  EXPECT_EQ(request(port_, "POST", "/h/" + mainId, "on pro").status, 202);
  Frame frame;
  ASSERT_TRUE(one.nextEvent(frame));
  ASSERT_TRUE(two.nextEvent(frame));

  run = admin({"accounts", "plan", "acme", "free"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));

  // The default answer, to a webhook that is stored all the same.
  const auto answered = request(port_, "POST", "/h/" + mainId, "on free");
  EXPECT_EQ(answered.status, 200) << answered.body;
  EXPECT_EQ(answered.body.rfind("{\"ok\":true,", 0), 0u) << answered.body;

  // One of the owner's two relays is left, and it gets the webhook.
  const bool oneGot = one.nextEvent(frame);
  const bool twoGot = two.nextEvent(frame);
  EXPECT_NE(oneGot, twoGot) << "relays left on the hook: " << (oneGot + twoGot);

  // Bob's stream is closed, and bob may sign in no more; the plan is named.
  EXPECT_FALSE(bobs.nextEvent(frame));
  const auto refused = signIn(bobPat);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(jsonField(refused.body, "plan"), "free");
  EXPECT_EQ(jsonField(refused.body, "error"),
            "member bob needs the pro plan to sign in: the free plan allows 1 member (the owner)");
  EXPECT_EQ(apiRequest(port_, "GET", "/api/v1/account", bob).status, 403);

  // Both named hooks stay and take webhooks; a third one is refused.
  EXPECT_EQ(request(port_, "POST", "/h/" + secondId, "kept").status, 200);
  const auto listed = apiRequest(port_, "GET", "/api/v1/hooks/" + secondId + "/events", owner);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(parseJson(listed.body)->getArray("events")->size(), 1u);
  const auto third = apiRequest(port_, "POST", "/api/v1/hooks", owner, R"({"name":"third"})");
  EXPECT_EQ(third.status, 403) << third.body;

  // Back on pro, the hook answers with its own response again.
  ASSERT_EQ(admin({"accounts", "plan", "acme", "pro"}).exitCode, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(request(port_, "POST", "/h/" + mainId, "on pro again").status, 202);
  EXPECT_EQ(signIn(bobPat).status, 200);
}

TEST_P(AdminTest, RefusalsUsageAndConfigurationHaveTheirExitCodes) {
  // No store yet (SQLite): nothing is created behind the operator's back.
  if (GetParam() == Backend::kSqlite) {
    const ProcessRun run = admin({"accounts", "list"});
    EXPECT_EQ(run.exitCode, 78) << run.err;
    EXPECT_FALSE(std::filesystem::exists(data_ + "/anonymily.db"));
  }
  startEdge();
  stopEdge();

  EXPECT_EQ(admin({"accounts", "frobnicate"}).exitCode, 2);
  EXPECT_EQ(admin({"accounts", "create"}).exitCode, 2);
  EXPECT_EQ(admin({"accounts", "create", "Bad Name"}).exitCode, 2);
  EXPECT_EQ(admin({"accounts", "list", "--plan", "pro"}).exitCode, 2);
  EXPECT_EQ(admin({"--bogus", "accounts", "list"}).exitCode, 2);
  ProcessRun run = admin({"accounts", "disable", "nobody"});
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_NE(run.err.find("nobody"), std::string::npos) << run.err;
  EXPECT_EQ(admin({"tokens", "create", "owner", "--member", "nobody"}).exitCode, 1);
  EXPECT_EQ(admin({"keys", "rotate", "--key", "k99"}).exitCode, 1);
  EXPECT_EQ(admin({"--help"}).exitCode, 0);

  // A different key under the store's key id: configuration, 78.
  crypto::KeyRing::writeFile(keyFile_, crypto::KeyRing::newKeyLine("k1") + "\n");
  run = admin({"keys", "status"});
  EXPECT_EQ(run.exitCode, 78) << run.err;
  EXPECT_NE(run.err.find("k1"), std::string::npos) << run.err;
}

TEST_P(AdminTest, NeedsNoSettingOnlyTheServerUsesButRefusesAMalformedOne) {
  startEdge();
  stopEdge();
  const std::string settings = readFile(configFile_);

  // The model explanation's key is the serving edge's business: admin runs without it.
  ::unsetenv("ANM_TEST_UNSET_EXPLAIN_KEY");
  std::ofstream(configFile_) << settings << "explain.url = http://127.0.0.1:9/v1\n"
                             << "explain.key_env = ANM_TEST_UNSET_EXPLAIN_KEY\n";
  ProcessRun run = admin({"accounts", "list"});
  EXPECT_EQ(run.exitCode, 0) << run.err;
  std::ofstream(configFile_) << settings << "explain.url = http://127.0.0.1:9/v1\n"
                             << "explain.key_file = " << dir_ << "/no-such-key\n";
  run = admin({"keys", "status"});
  EXPECT_EQ(run.exitCode, 0) << run.err;

  // The server still refuses to start without it.
  const std::vector<std::string> serve = {ANM_EDGE_BINARY, "--config", configFile_, "--listen",
                                          "127.0.0.1:0"};
  int status = 0;
  waitpid(spawn(serve, dir_ + "/edge.out", dir_ + "/edge.err"), &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 78) << readFile(dir_ + "/edge.err");

  // A malformed value is refused all the same.
  for (const std::string bad :
       {"explain.url = http://127.0.0.1:9/v1\nexplain.key_env = 1-not-a-name\n",
        "explain.key_env = ANM_TEST_UNSET_EXPLAIN_KEY\n", "explain.url = ftp://127.0.0.1/v1\n",
        "explain.url = http://127.0.0.1:9/v1\nexplain.key_file = k\nexplain.key_env = K\n"}) {
    std::ofstream(configFile_) << settings << bad;
    run = admin({"accounts", "list"});
    EXPECT_EQ(run.exitCode, 78) << bad << run.err;
    EXPECT_NE(run.err.find("explain."), std::string::npos) << run.err;
  }
}

/// The output of the admin command run in the test's own process. It holds the command at its
/// first progress line ("re-encrypted N records"), which comes after a batch of the rotation
/// committed and before the next one starts: while it is held, the records are certainly split
/// between the old key and the new one, however fast the batches run.
class ProgressGate : public std::streambuf {
 public:
  /// Waits until the command printed its first progress line; false after `timeout`.
  bool waitUntilHeld(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [this] { return held_; });
  }

  /// Lets the command go on; later progress lines pass at once.
  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      released_ = true;
    }
    changed_.notify_all();
  }

  std::string text() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    put(static_cast<char>(c));
    return c;
  }

  std::streamsize xsputn(const char* s, std::streamsize n) override {
    for (std::streamsize i = 0; i < n; ++i) put(s[i]);
    return n;
  }

 private:
  void put(char c) {
    std::unique_lock<std::mutex> lock(mutex_);
    text_ += c;
    if (c != '\n') return;
    const std::string line = text_.substr(lineStart_);
    lineStart_ = text_.size();
    if (held_ || line.rfind("re-encrypted ", 0) != 0) return;
    held_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return released_; });
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string text_;
  size_t lineStart_ = 0;
  bool held_ = false;
  bool released_ = false;
};

/// Runs `done` when the scope ends, also when an assertion left it early.
class OnExit {
 public:
  explicit OnExit(std::function<void()> done) : done_(std::move(done)) {}
  ~OnExit() { done_(); }
  OnExit(const OnExit&) = delete;
  OnExit& operator=(const OnExit&) = delete;

 private:
  std::function<void()> done_;
};

// Records per key id in `keys status --json`.
std::map<std::string, int64_t> recordsPerKey(const std::string& json) {
  std::map<std::string, int64_t> records;
  const auto keys = parseJson(json)->getArray("keys");
  for (size_t i = 0; i < keys->size(); ++i) {
    const auto key = keys->getObject(static_cast<unsigned>(i));
    records[key->getValue<std::string>("id")] = key->getValue<int64_t>("records");
  }
  return records;
}

TEST_P(AdminTest, KeyRotationReencryptsInBatchesWhileTheEdgeServesEveryRequest) {
  // The test sends as fast as the edge answers; the rate limits have tests of their own.
  std::ofstream(configFile_, std::ios::app) << "ingest.rate_per_hook = 0\n"
                                            << "ingest.rate_per_address = 0\n";
  startEdge();
  const auto created = request(port_, "POST", "/api/v1/hooks", "{}");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string hook = jsonField(created.body, "id");
  const std::string token = jsonField(created.body, "token");

  // Acknowledged webhooks and their bodies; every answer that is not the expected one. Each is
  // posted with its body as its path suffix too (a summary field, sealed like the body).
  std::mutex mutex;
  std::map<int64_t, std::string> acked;
  std::vector<std::string> failures;
  const auto fail = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex);
    failures.push_back(what);
  };
  const auto suffixOf = [](std::string body) {
    std::replace(body.begin(), body.end(), ' ', '-');
    return "/" + body;
  };
  const auto post = [&](const std::string& body) {
    const auto r = request(port_, "POST", "/h/" + hook + suffixOf(body), body);
    if (r.status != 200) return fail("ingest answered " + std::to_string(r.status) + " " + r.body);
    std::lock_guard<std::mutex> lock(mutex);
    acked[std::stoll(jsonField(r.body, "id"))] = body;
  };
  const auto readBack = [&](int64_t id, const std::string& body) {
    const auto r = apiRequest(
        port_, "GET", "/api/v1/hooks/" + hook + "/events/" + std::to_string(id) + "/body", token);
    if (r.status != 200) {
      return fail("event " + std::to_string(id) + " answered " + std::to_string(r.status) + " " +
                  r.body);
    }
    if (r.body != body) fail("event " + std::to_string(id) + " read back other bytes");
    const auto detail =
        apiRequest(port_, "GET", "/api/v1/hooks/" + hook + "/events/" + std::to_string(id), token);
    if (jsonField(detail.body, "path") != suffixOf(body)) {
      fail("event " + std::to_string(id) + " read back another path: " + detail.body);
    }
  };

  // More records than one batch of the rotation (events, plus the hook and the settings), so
  // that it takes several.
  constexpr int kSenders = 4;
  constexpr int kStoredBefore = 1200;
  static_assert(kStoredBefore > 2 * static_cast<int>(edge::kRotateBatch), "three batches at least");
  {
    std::vector<std::thread> senders;
    for (int s = 0; s < kSenders; ++s) {
      senders.emplace_back([&, s] {
        for (int i = s; i < kStoredBefore; i += kSenders) post("before " + std::to_string(i));
      });
    }
    for (auto& sender : senders) sender.join();
  }
  ASSERT_TRUE(failures.empty()) << failures.front();
  const std::map<int64_t, std::string> before = acked;
  const int64_t streamFrom = before.rbegin()->first;

  // A stream open across the whole rotation, reading every event stored after it opened.
  SseClient stream(port_, hook, token, streamFrom);
  ASSERT_EQ(stream.head().status, 200) << stream.head().body;

  // The rotation, in this process, held at its first progress line.
  ProgressGate gate;
  std::ostream adminOut(&gate);
  std::ostringstream adminErr;
  std::atomic<bool> stop{false};
  std::atomic<size_t> streamTarget{SIZE_MAX};
  std::atomic<int> posts{0};
  std::atomic<int> reads{0};
  std::vector<Frame> frames;
  std::future<int> rotation;
  std::future<void> writer;
  std::future<void> reader;
  std::future<void> streamReader;
  OnExit cleanup([&] {
    stop = true;
    streamTarget = 0;
    gate.release();
    for (auto* f : {&writer, &reader, &streamReader}) {
      if (f->valid()) f->wait();
    }
    if (rotation.valid()) rotation.wait();
  });
  rotation = std::async(std::launch::async, [&] {
    return edge::runAdmin({"--config", configFile_, "keys", "rotate"}, adminOut, adminErr);
  });

  // Traffic through all of it: new webhooks, reads of the stored ones, the open stream. Paced,
  // so that the connections each request opens stay far from the machine's port range.
  writer = std::async(std::launch::async, [&] {
    for (int i = 0; !stop; ++i, ++posts) {
      post("during " + std::to_string(i));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  reader = std::async(std::launch::async, [&] {
    for (auto it = before.begin(); !stop; ++reads) {
      readBack(it->first, it->second);
      if (++it == before.end()) it = before.begin();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  streamReader = std::async(std::launch::async, [&] {
    Frame frame;
    while (frames.size() < streamTarget) {
      if (stream.nextEvent(frame)) {
        frames.push_back(frame);
      } else if (streamTarget != SIZE_MAX) {
        return;
      }
    }
  });

  // Between two batches: some records are under k2 already and the rest still under k1, and
  // the edge serves each of them, takes new ones and streams them.
  ASSERT_TRUE(gate.waitUntilHeld(std::chrono::seconds(60))) << gate.text() << adminErr.str();
  ProcessRun run = admin({"--json", "keys", "status"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const auto halfway = recordsPerKey(run.out);
  EXPECT_GT(halfway.count("k1") ? halfway.at("k1") : 0, 0) << run.out;
  EXPECT_GE(halfway.count("k2") ? halfway.at("k2") : 0, static_cast<int64_t>(edge::kRotateBatch))
      << run.out;
  for (const auto& [id, body] : before) readBack(id, body);
  post("halfway");
  gate.release();

  // The rotation ends by itself, in several batches, with every record under k2.
  ASSERT_EQ(rotation.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  const int exitCode = rotation.get();
  const std::string out = gate.text();
  ASSERT_EQ(exitCode, 0) << out << adminErr.str();
  EXPECT_NE(out.find("added key k2"), std::string::npos) << out;
  EXPECT_NE(out.find("re-encrypted 1000 records"), std::string::npos) << out;
  EXPECT_NE(out.find("every record is under key k2"), std::string::npos) << out;
  EXPECT_NE(readFile(keyFile_).find("k2:"), std::string::npos);
  stop = true;
  writer.wait();
  reader.wait();
  for (int i = 0; i < 10; ++i) post("after " + std::to_string(i));

  // Not one request failed, and there were requests while the rotation ran.
  {
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_TRUE(failures.empty()) << failures.size() << " failed, the first: " << failures.front();
  }
  EXPECT_GT(posts.load(), 0);
  EXPECT_GT(reads.load(), 0);
  RecordProperty("webhooks_during_rotation", posts.load());
  RecordProperty("reads_during_rotation", reads.load());

  // The stream got every webhook stored after it opened, once, in order, byte for byte.
  std::vector<std::pair<int64_t, std::string>> expected(acked.upper_bound(streamFrom), acked.end());
  streamTarget = expected.size();
  streamReader.wait();
  ASSERT_EQ(frames.size(), expected.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    ASSERT_EQ(frames[i].id, expected[i].first) << "frame " << i;
    EXPECT_EQ(frames[i].event, "webhook") << "event " << frames[i].id << ": " << frames[i].data;
    EXPECT_EQ(frameBody(frames[i]), expected[i].second) << "event " << frames[i].id;
  }

  // Every record is under k2, including those that arrived during and after the rotation.
  run = admin({"--json", "keys", "status"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(parseJson(run.out)->getValue<std::string>("active"), "k2");
  for (const auto& [id, records] : recordsPerKey(run.out)) {
    if (id == "k2") {
      EXPECT_GE(records, static_cast<int64_t>(acked.size()));
    } else {
      EXPECT_EQ(records, 0) << id;
    }
  }

  // The running edge reads old and new events alike.
  auto readAll = [&] {
    for (const auto& [id, body] : acked) readBack(id, body);
    std::lock_guard<std::mutex> lock(mutex);
    ASSERT_TRUE(failures.empty()) << failures.front();
  };
  readAll();

  // With nothing left to move, the same rotation says so.
  run = admin({"keys", "rotate", "--key", "k2"});
  EXPECT_EQ(run.exitCode, 0) << run.err;
  EXPECT_NE(run.out.find("nothing to do"), std::string::npos) << run.out;

  // The old key can go: a restarted edge with only k2 reads everything.
  stopEdge();
  std::string kept;
  std::istringstream lines(readFile(keyFile_));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("k1:", 0) != 0) kept += line + "\n";
  }
  crypto::KeyRing::writeFile(keyFile_, kept);
  ASSERT_EQ(crypto::KeyRing::loadFile(keyFile_).find("k1"), nullptr);
  startEdge();
  readAll();

  // The switch concerns the whole edge: it is in the audit log of the operator's account, the
  // owner account of the first start, whose owner reads it through the API.
  std::vector<std::string> rotations;
  for (const auto& entry : auditThroughApi(signIn(ownerToken()))) {
    if (entry->getValue<std::string>("action") != "keys.rotate") continue;
    rotations.push_back(entry->getValue<std::string>("detail"));
    EXPECT_EQ(entry->getValue<std::string>("actor"), adminActor());
    EXPECT_EQ(entry->getValue<std::string>("remote"), "local");
  }
  EXPECT_EQ(rotations, std::vector<std::string>{"from=k1 to=k2"});
}

TEST_P(AdminTest, KeysRotateNamesRecordsThatFailAuthenticationApartFromLaggingEdges) {
  startEdge();
  const auto created = request(port_, "POST", "/api/v1/hooks", "{}");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string hook = jsonField(created.body, "id");
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    const auto r = request(port_, "POST", "/h/" + hook, "body " + std::to_string(i));
    ASSERT_EQ(r.status, 200) << r.body;
    ids.push_back(std::stoll(jsonField(r.body, "id")));
  }
  stopEdge();
  corruptWrappedKey(ids[1]);

  // The rotation moves everything else and says which record failed, and why, on every run.
  for (int run = 0; run < 2; ++run) {
    const ProcessRun rotated = admin({"keys", "rotate"});
    EXPECT_EQ(rotated.exitCode, 1) << rotated.out << rotated.err;
    EXPECT_NE(rotated.out.find("1 record could not be re-encrypted because it fails "
                               "authentication (changed or corrupt in the store): event " +
                               std::to_string(ids[1])),
              std::string::npos)
        << rotated.out;
    EXPECT_EQ(rotated.out.find("some edge lacks key"), std::string::npos) << rotated.out;
  }
  const ProcessRun json = admin({"--json", "keys", "rotate"});
  EXPECT_EQ(json.exitCode, 1) << json.err;
  const auto answer = parseJson(json.out);
  EXPECT_EQ(answer->getValue<int64_t>("failed_authentication"), 1);
  EXPECT_EQ(answer->getArray("failed_examples")->getElement<std::string>(0),
            "event " + std::to_string(ids[1]));
  EXPECT_EQ(answer->getValue<int64_t>("left"), 1);

  // Only that one stays under k1.
  auto store = openStore();
  std::map<std::string, int64_t> byKey;
  for (const auto& entry : store->keyUsage()) byKey[entry.keyId] = entry.records;
  EXPECT_EQ(byKey["k1"], 1);
  EXPECT_GE(byKey["k2"], 3);  // two events, the hook and the settings
}

INSTANTIATE_TEST_SUITE_P(Backends, AdminTest, ::testing::Values(Backend::kSqlite, Backend::kMySql),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "MySql";
                         });

}  // namespace
}  // namespace anm::test
