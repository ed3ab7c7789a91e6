// tests/integration/bootstrap_test.cpp: an edge's first start (owner account, key file) and the
// checks of its key ring against the store, in-process and as the real binary.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/bootstrap.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/crypto/keys.h"
#include "core/edge/auth.h"
#include "core/edge/config.h"
#include "core/edge/edge_server.h"
#include "core/edge/secrets.h"
#include "core/store/store.h"
#include "edge_fixture.h"
#include "test_http.h"

extern char** environ;

namespace anm::test {
namespace {

using edge::EdgeConfig;
using edge::EdgeServer;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

mode_t fileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

struct ProcessRun {
  int exitCode = -1;
  std::string err;
};

class BootstrapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-bootstrap-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    data_ = dir_ + "/data";
    // The tests choose their key source themselves.
    ::unsetenv("ANONYMILY_ENCRYPTION_KEYS");
  }

  void TearDown() override {
    server_.reset();
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  EdgeConfig config() const {
    EdgeConfig config = loopbackEdgeConfig(data_);
    return config;
  }

  void startServer() {
    server_ = std::make_unique<EdgeServer>(config());
    server_->start();
  }

  // The store as the edge left it, opened with the edge's own key ring.
  std::unique_ptr<store::Store> openStore() {
    auto keys = edge::loadKeys(config(), false);
    auto store = store::openSqliteStore(config().sqlitePath, keys);
    edge::alignActiveKey(*store, *keys, config());
    return store;
  }

  // Runs the binary to its end (at most 30 s) with `env` added to the environment.
  ProcessRun runEdge(std::vector<std::string> args,
                     const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), ANM_EDGE_BINARY);
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      if (env.count(entry.substr(0, entry.find('='))) == 0) environment.push_back(entry);
    }
    for (const auto& [name, value] : env) environment.push_back(name + "=" + value);
    const std::string log = dir_ + "/stderr.log";
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      std::vector<char*> envp;
      for (auto& e : environment) envp.push_back(e.data());
      envp.push_back(nullptr);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    ProcessRun run;
    int status = 0;
    for (int i = 0; i < 3000; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      // A started edge is stopped once it is ready; only refusals end by themselves.
      if (std::filesystem::exists(dir_ + "/port")) {
        std::filesystem::remove(dir_ + "/port");
        kill(pid_, SIGTERM);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    run.err = readFile(log);
    return run;
  }

  std::vector<std::string> edgeArgs() const {
    return {"--listen",     "127.0.0.1:0",       "--data-dir",  data_,
            "--plugin-dir", ANM_TEST_PLUGIN_DIR, "--port-file", dir_ + "/port"};
  }

  std::string dir_;
  std::string data_;
  std::unique_ptr<EdgeServer> server_;
  pid_t pid_ = -1;
};

TEST_F(BootstrapTest, FirstStartWritesOwnerTokenThatTheStoreKnows) {
  startServer();
  const uint16_t port = server_->port();
  const std::string tokenFile = data_ + "/owner.token";
  ASSERT_TRUE(std::filesystem::exists(tokenFile));
  EXPECT_EQ(fileMode(tokenFile), 0600u);
  EXPECT_EQ(fileMode(data_ + "/encryption.keys"), 0600u);

  // One token, newline-terminated, of the documented form.
  const std::string text = readFile(tokenFile);
  ASSERT_TRUE(std::regex_match(text, std::regex("anm_pat_[a-z2-7]{52}\n"))) << text;
  const std::string pat = text.substr(0, text.size() - 1);

  // The edge exchanges it for an access token of the owner account.
  const auto exchanged = request(port, "POST", "/api/v1/auth/token", "{\"token\":\"" + pat + "\"}");
  EXPECT_EQ(exchanged.status, 200) << exchanged.body;
  EXPECT_NE(jsonField(exchanged.body, "access_token").find('.'), std::string::npos)
      << exchanged.body;
  server_.reset();

  // The store holds the account, its owner and the token's hash.
  auto store = openStore();
  const auto token = store->findTokenByHash(edge::sha256Hex(pat));
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->revokedAtMs, 0);
  const auto account = store->findAccount(token->accountId);
  ASSERT_TRUE(account.has_value());
  EXPECT_EQ(account->name, "owner");
  EXPECT_EQ(account->plan, store::Plan::kPro);
  const auto member = store->findMember(token->memberId);
  ASSERT_TRUE(member.has_value());
  EXPECT_EQ(member->name, "owner");
  EXPECT_TRUE(member->owner);
  const auto audit = store->listAudit(account->id, 0, 100);
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit.front().action, "account.create");
  EXPECT_EQ(audit.front().actor, "edge");

  // It is the operator's account: edge-wide admin entries go to its audit log.
  EXPECT_EQ(store->getSetting(edge::kOperatorAccountSetting).value_or(""), account->id);
  EXPECT_EQ(edge::operatorAccountId(*store), account->id);
}

TEST_F(BootstrapTest, FirstStartLogsWhereItPutTheOwnerTokenAndTheKeyItGenerated) {
  ProcessRun run = runEdge(edgeArgs());
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const std::string tokenFile = data_ + "/owner.token";
  const std::string keyFile = data_ + "/encryption.keys";
  ASSERT_TRUE(std::filesystem::exists(tokenFile));
  ASSERT_TRUE(std::filesystem::exists(keyFile));

  // The operator learns from the log where both files are, and which key was made.
  EXPECT_NE(run.err.find("owner account created account=owner token_file=" + tokenFile),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("encryption key generated path=" + keyFile + " key_id=k1"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(crypto::KeyRing::loadFile(keyFile).active().id, "k1");

  // Where, never what: neither the token nor the key shows in the log.
  std::string token = readFile(tokenFile);
  token.pop_back();
  EXPECT_EQ(run.err.find(token), std::string::npos);
  const std::string keyText = readFile(keyFile);
  const auto keyLine = keyText.rfind("k1:");
  ASSERT_NE(keyLine, std::string::npos);
  EXPECT_EQ(run.err.find(keyText.substr(keyLine + 3, 44)), std::string::npos);

  // A second start finds both files and makes neither again, so it says neither again.
  run = runEdge(edgeArgs());
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.err.find("owner account created"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("encryption key generated"), std::string::npos) << run.err;
}

TEST_F(BootstrapTest, StoreFromBeforeTheOperatorSettingTakesTheAccountNamedOwner) {
  // Stores as an earlier version left them: accounts, but no operator recorded.
  std::filesystem::create_directories(data_);
  const EdgeConfig cfg = config();
  auto keys = edge::loadKeys(cfg);
  const auto openOld = [&](const std::string& path, const std::vector<std::string>& names) {
    auto store = store::openSqliteStore(path, keys);
    edge::alignActiveKey(*store, *keys, cfg);
    int64_t at = 1700000000000;
    for (const auto& name : names) {
      store::AccountRecord account;
      account.id = edge::newRecordId("acc_");
      account.name = name;
      account.createdAtMs = at++;
      store->createAccount(account);
    }
    EXPECT_FALSE(store->getSetting(edge::kOperatorAccountSetting).has_value());
    return store;
  };

  // The account named owner is the operator's, though another one is older; from then on
  // the store says so itself.
  auto store = openOld(cfg.sqlitePath, {"acme", "owner", "zeta"});
  const std::string ownerId = store->findAccountByName("owner")->id;
  EXPECT_EQ(edge::operatorAccountId(*store), ownerId);
  EXPECT_EQ(store->getSetting(edge::kOperatorAccountSetting).value_or(""), ownerId);
  EXPECT_EQ(edge::operatorAccountId(*store), ownerId);

  // Without an account of that name there is no operator's account, and none is recorded.
  auto other = openOld(dir_ + "/other.db", {"acme"});
  EXPECT_EQ(edge::operatorAccountId(*other), "");
  EXPECT_FALSE(other->getSetting(edge::kOperatorAccountSetting).has_value());
}

TEST_F(BootstrapTest, SecondStartKeepsTheOwnerAndItsTokenFile) {
  startServer();
  server_.reset();
  const std::string tokenFile = data_ + "/owner.token";
  const std::string first = readFile(tokenFile);
  ASSERT_FALSE(first.empty());

  startServer();
  server_.reset();
  EXPECT_EQ(readFile(tokenFile), first);
  auto store = openStore();
  EXPECT_EQ(store->listAccounts().size(), 1u);
}

TEST_F(BootstrapTest, ExistingTokenFileIsNeverOverwritten) {
  std::filesystem::create_directories(data_);
  std::ofstream(data_ + "/owner.token") << "keep me\n";
  startServer();
  server_.reset();
  EXPECT_EQ(readFile(data_ + "/owner.token"), "keep me\n");
  auto store = openStore();
  EXPECT_TRUE(store->listAccounts().empty());
}

TEST_F(BootstrapTest, StoreRemembersTheActiveKeyAndItsCheck) {
  startServer();
  server_.reset();
  auto store = openStore();
  EXPECT_EQ(store->getSetting(edge::kActiveKeySetting).value_or(""), "k1");
  const auto check = store->getSetting(std::string(edge::kKeyCheckSettingPrefix) + "k1");
  ASSERT_TRUE(check.has_value());
  const auto ring = crypto::KeyRing::loadFile(data_ + "/encryption.keys");
  EXPECT_TRUE(edge::keyCheckMatches(ring.active(), *check));
  EXPECT_FALSE(edge::keyCheckMatches({"k1", crypto::randomBytes(crypto::kKeyBytes)}, *check));
}

TEST_F(BootstrapTest, KeyFileReadableByOthersExits78NamingIt) {
  const std::string keyFile = dir_ + "/keys";
  std::ofstream(keyFile) << crypto::KeyRing::newKeyLine("k1") << "\n";
  ASSERT_EQ(::chmod(keyFile.c_str(), 0644), 0);
  std::ofstream(dir_ + "/edge.properties") << "encryption.key_file = " << keyFile << "\n";

  auto args = edgeArgs();
  args.insert(args.begin(), {"--config", dir_ + "/edge.properties"});
  const ProcessRun run = runEdge(args);
  EXPECT_EQ(run.exitCode, 78) << run.err;
  EXPECT_NE(run.err.find(keyFile), std::string::npos) << run.err;
  EXPECT_FALSE(std::filesystem::exists(data_ + "/owner.token"));
}

TEST_F(BootstrapTest, OtherKeyUnderTheSameIdExits78NamingTheKey) {
  ASSERT_EQ(runEdge(edgeArgs()).exitCode, 0);
  const std::string keyFile = data_ + "/encryption.keys";
  const std::string original = readFile(keyFile);

  // A fresh k1: same id, other bytes.
  crypto::KeyRing::writeFile(keyFile, crypto::KeyRing::newKeyLine("k1") + "\n");
  ProcessRun run = runEdge(edgeArgs());
  EXPECT_EQ(run.exitCode, 78) << run.err;
  EXPECT_NE(run.err.find("k1"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(keyFile), std::string::npos) << run.err;

  // A ring without the store's key at all.
  crypto::KeyRing::writeFile(keyFile, crypto::KeyRing::newKeyLine("k7") + "\n");
  run = runEdge(edgeArgs());
  EXPECT_EQ(run.exitCode, 78) << run.err;
  EXPECT_NE(run.err.find("k1"), std::string::npos) << run.err;

  // The right key starts again.
  crypto::KeyRing::writeFile(keyFile, original);
  run = runEdge(edgeArgs());
  EXPECT_EQ(run.exitCode, 0) << run.err;
}

TEST_F(BootstrapTest, KeysFromTheEnvironmentVariable) {
  const std::string ring = crypto::KeyRing::newKeyLine("e1");
  ProcessRun run = runEdge(edgeArgs(), {{"ANONYMILY_ENCRYPTION_KEYS", ring}});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_FALSE(std::filesystem::exists(data_ + "/encryption.keys"));
  EXPECT_TRUE(std::filesystem::exists(data_ + "/owner.token"));

  // Without the variable the edge would generate k1, which is not the store's key.
  run = runEdge(edgeArgs());
  EXPECT_EQ(run.exitCode, 78) << run.err;
  EXPECT_NE(run.err.find("e1"), std::string::npos) << run.err;

  // With it again, it starts.
  std::filesystem::remove(data_ + "/encryption.keys");
  run = runEdge(edgeArgs(), {{"ANONYMILY_ENCRYPTION_KEYS", ring}});
  EXPECT_EQ(run.exitCode, 0) << run.err;
}

TEST_F(BootstrapTest, NamedVariableThatIsNotSetExits78) {
  std::ofstream(dir_ + "/edge.properties") << "encryption.keys_env = ANM_TEST_NO_SUCH_KEYS\n";
  auto args = edgeArgs();
  args.insert(args.begin(), {"--config", dir_ + "/edge.properties"});
  const ProcessRun run = runEdge(args);
  EXPECT_EQ(run.exitCode, 78) << run.err;
  EXPECT_NE(run.err.find("ANM_TEST_NO_SUCH_KEYS"), std::string::npos) << run.err;
}

TEST_F(BootstrapTest, WatcherActivatesTheStoresKeyOnlyWhenTheEdgeHasIt) {
  startServer();
  server_.reset();

  // An edge's view: a ring from the key file, the store, a watcher.
  const auto cfg = config();
  auto keys = edge::loadKeys(cfg, false);
  auto store = store::openSqliteStore(cfg.sqlitePath, keys);
  edge::alignActiveKey(*store, *keys, cfg);
  edge::KeyWatcher watcher(*store, keys, cfg);

  // What a rotation does elsewhere: k2 gets a check and becomes the store's active key (the
  // setting sealed under k2 by a ring that has it), while this edge's file lacks k2.
  const std::string keyFile = data_ + "/encryption.keys";
  const std::string oldText = readFile(keyFile);
  const std::string newText = oldText + crypto::KeyRing::newKeyLine("k2") + "\n";
  crypto::KeyRing withK2 = crypto::KeyRing::parse(newText, "test ring");
  const crypto::KeyRing oldRing = *keys->ring();
  store->putSettingIfAbsent(std::string(edge::kKeyCheckSettingPrefix) + "k2",
                            edge::keyCheckValue(*withK2.find("k2")));
  withK2.setActive("k2");
  keys->replace(withK2);
  store->setSetting(edge::kActiveKeySetting, "k2");
  keys->replace(oldRing);

  watcher.reloadNowForTest();
  EXPECT_EQ(keys->ring()->active().id, "k1");
  EXPECT_EQ(keys->ring()->find("k2"), nullptr);

  // Once the key file holds k2, the next reload switches to it.
  crypto::KeyRing::writeFile(keyFile, newText);
  watcher.reloadNowForTest();
  EXPECT_EQ(keys->ring()->active().id, "k2");
  EXPECT_NE(keys->ring()->find("k1"), nullptr);

  // A k2 of other bytes under the same id is refused: k2 from before stays active.
  const std::string otherText = oldText + crypto::KeyRing::newKeyLine("k2") + "\n";
  crypto::KeyRing::writeFile(keyFile, otherText);
  watcher.reloadNowForTest();
  const auto ring = keys->ring();
  EXPECT_EQ(ring->active().id, "k2");
  EXPECT_EQ(ring->active().bytes, withK2.find("k2")->bytes);
}

}  // namespace
}  // namespace anm::test
