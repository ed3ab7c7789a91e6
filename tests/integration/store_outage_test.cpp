// tests/integration/store_outage_test.cpp: the edge never acknowledges what it did not store.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_http.h"

namespace anm::test {
namespace {

// The file size limit the outage runs under. Big enough for the empty store, the hook and a few
// dozen events, small enough that the store's files reach it within kMaxPosts webhooks.
constexpr int64_t kLimitBytes = 2 * 1024 * 1024;

// dash and POSIX sh count `ulimit -f` in 512-byte blocks (bash outside POSIX mode uses 1024).
// The test reads the limit the edge really got from /proc, so a different unit fails loudly.
constexpr int64_t kLimitBlocks = kLimitBytes / 512;

// Each webhook body is this big, so the limit is reached after about 30 of them.
constexpr size_t kBodyBytes = 64 * 1024;

// The outage must show within this many webhooks; a store that never fails fails the test.
constexpr int kMaxPosts = 300;

// Posted after the first 503, to see that the edge keeps refusing rather than lying.
constexpr int kPostsAfterFirst503 = 5;

// Posted once the edge runs without the limit again.
constexpr int kPostsAfterRestart = 5;

constexpr char kSeqHeader[] = "X-Outage-Seq";

struct Hook {
  std::string id;
  std::string token;
};

// One webhook as sent and what the edge answered.
struct Post {
  int seq = 0;
  std::string body;
  int status = 0;  ///< 0: no response at all (connection closed or reset)
  std::string retryAfter;
  int64_t eventId = 0;  ///< set when the answer was 200
};

// What the outage phase saw, for the checks of each test.
struct Outage {
  std::vector<Post> posts;
  int first503 = -1;  ///< index into posts of the first 503, or -1
};

// Body bytes unique to `seq`: a readable prefix, then every byte value in a seeded order.
std::string webhookBody(int seq) {
  std::string body = "webhook seq=" + std::to_string(seq) + "\n";
  std::mt19937 random(static_cast<uint32_t>(seq));
  while (body.size() < kBodyBytes) body.push_back(static_cast<char>(random() & 0xff));
  return body;
}

Poco::JSON::Object::Ptr parseObject(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

// The value of one line of /proc/<pid>/<file> after `key`, or "" when there is no such line.
std::string procLine(pid_t pid, const std::string& file, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return line.substr(key.size());
  }
  return "";
}

class StoreOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-store-outage-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    dataDir_ = dir_ + "/data";
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the edge on the test's data dir. With `limited`, it runs through /bin/sh under the
  // file size limit with SIGXFSZ ignored, so a write past the limit fails with EFBIG instead of
  // killing the process; the shell execs the edge, so pid_ is the edge itself.
  void startEdge(bool limited) {
    ++runs_;
    const std::string portFile = dir_ + "/port";
    std::filesystem::remove(portFile);
    logPath_ = dir_ + "/edge-" + std::to_string(runs_) + ".log";
    std::vector<std::string> args = {ANM_EDGE_BINARY, "--listen",     "127.0.0.1:0",
                                     "--port-file",   portFile,       "--data-dir",
                                     dataDir_,        "--plugin-dir", ANM_TEST_PLUGIN_DIR};
    if (limited) {
      // "$0" "$@" are the edge and its arguments, so nothing needs quoting.
      const std::string script = "trap '' XFSZ; ulimit -f " + std::to_string(kLimitBlocks) +
                                 " || exit 126; exec \"$0\" \"$@\"";
      args.insert(args.begin(), {"/bin/sh", "-c", script});
    }

    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      if (chdir(dir_.c_str()) != 0) _exit(127);
      const int fd = open(logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0) _exit(127);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }

    // The port file appears once the edge listens; give up if the process ends first.
    int port = 0;
    for (int i = 0; i < 1000 && port == 0; ++i) {
      std::ifstream in(portFile);
      in >> port;
      if (port != 0) break;
      ASSERT_TRUE(alive()) << "the edge ended before listening:\n" << log();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_GT(port, 0) << "no port file from the edge:\n" << log();
    port_ = static_cast<uint16_t>(port);
  }

  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
    pid_ = -1;
    ended_ = WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                               : "signal " + std::to_string(WTERMSIG(status));
    return false;
  }

  // Sends SIGTERM and waits (at most 20 s); returns how the process ended.
  std::string stopEdge() {
    if (pid_ <= 0) return ended_;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 2000 && alive(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      ended_ = "killed after 20 s";
    }
    return ended_;
  }

  std::string log() const {
    std::ifstream in(logPath_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  Hook createHook() {
    const Response r = request(port_, "POST", "/api/v1/hooks", "{}");
    EXPECT_EQ(r.status, 201) << r.body;
    return Hook{jsonField(r.body, "id"), jsonField(r.body, "token")};
  }

  // Posts webhook `seq`; a connection that ends without an answer is recorded as status 0.
  Post postWebhook(const Hook& hook, int seq) {
    Post post;
    post.seq = seq;
    post.body = webhookBody(seq);
    try {
      const Response r = request(
          port_, "POST", "/h/" + hook.id + "/outage", post.body,
          {{kSeqHeader, std::to_string(seq)}, {"Content-Type", "application/octet-stream"}});
      post.status = r.status;
      post.retryAfter = r.header("Retry-After");
      if (r.status == 200) post.eventId = std::stoll(jsonField(r.body, "id"));
    } catch (const std::exception&) {
      post.status = 0;
    }
    return post;
  }

  // Starts the edge under the limit, creates a hook and posts webhooks until the store fails.
  // The edge is left running under the limit.
  Outage runOutage(Hook& hook) {
    Outage outage;
    startEdge(true);
    if (HasFatalFailure()) return outage;

    // The limit is what the edge really runs under, and SIGXFSZ is ignored in it.
    const std::string limits = procLine(pid_, "limits", "Max file size");
    std::istringstream fields(limits);
    int64_t soft = 0;
    int64_t hard = 0;
    fields >> soft >> hard;
    EXPECT_EQ(soft, kLimitBytes) << limits;
    const uint64_t ignored = std::stoull(procLine(pid_, "status", "SigIgn:"), nullptr, 16);
    EXPECT_NE(ignored & (uint64_t{1} << (SIGXFSZ - 1)), 0u) << "SIGXFSZ is not ignored";

    hook = createHook();
    if (hook.id.empty()) return outage;

    // Post until the first 503, then a few more to see what follows it.
    int seq = 0;
    while (seq < kMaxPosts) {
      outage.posts.push_back(postWebhook(hook, ++seq));
      if (outage.posts.back().status == 0) break;
      if (outage.first503 < 0 && outage.posts.back().status == 503) {
        outage.first503 = static_cast<int>(outage.posts.size()) - 1;
      }
      if (outage.first503 >= 0 &&
          static_cast<int>(outage.posts.size()) > outage.first503 + kPostsAfterFirst503) {
        break;
      }
    }
    return outage;
  }

  std::vector<Post> acknowledged(const Outage& outage) const {
    std::vector<Post> acked;
    for (const Post& post : outage.posts) {
      if (post.status == 200) acked.push_back(post);
    }
    return acked;
  }

  Response readBody(const Hook& hook, const Post& post) {
    return apiRequest(
        port_, "GET",
        "/api/v1/hooks/" + hook.id + "/events/" + std::to_string(post.eventId) + "/body",
        hook.token);
  }

  // "" when the edge serves the body of `post` byte for byte under its event id, else what
  // differs (short, so that a failure does not print 64 KiB bodies).
  std::string bodyMismatch(const Hook& hook, const Post& post) {
    return bodyMismatch(readBody(hook, post), post);
  }

  // The same for an answer already read.
  static std::string bodyMismatch(const Response& r, const Post& post) {
    const std::string what =
        "webhook " + std::to_string(post.seq) + " event " + std::to_string(post.eventId) + ": ";
    if (r.status != 200) return what + "status " + std::to_string(r.status) + " " + r.body;
    if (r.body == post.body) return "";
    size_t at = 0;
    while (at < r.body.size() && at < post.body.size() && r.body[at] == post.body[at]) ++at;
    return what + "sent " + std::to_string(post.body.size()) + " bytes, stored " +
           std::to_string(r.body.size()) + ", first difference at " + std::to_string(at);
  }

  // bodyMismatch for each post, joined; "" when all are stored byte for byte.
  std::string bodyMismatches(const Hook& hook, const std::vector<Post>& posts) {
    std::string text;
    for (const Post& post : posts) {
      const std::string mismatch = bodyMismatch(hook, post);
      if (!mismatch.empty()) text += mismatch + "\n";
    }
    return text;
  }

  // The values of the sequence header of a stored event, as the API's event form lists them.
  std::vector<std::string> storedSeqHeaders(const Hook& hook, int64_t eventId) {
    const Response r =
        apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events/" + std::to_string(eventId),
                   hook.token);
    std::vector<std::string> values;
    if (r.status != 200) return values;
    const auto headers = parseObject(r.body)->getArray("headers");
    for (size_t i = 0; headers && i < headers->size(); ++i) {
      const auto field = headers->getArray(static_cast<unsigned>(i));
      if (field->getElement<std::string>(0) == kSeqHeader) {
        values.push_back(field->getElement<std::string>(1));
      }
    }
    return values;
  }

  // Ids of every stored event of the hook, oldest first.
  Response listEvents(const Hook& hook) {
    return apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id + "/events?after=0&limit=1000",
                      hook.token);
  }

  std::vector<int64_t> storedIds(const Hook& hook) { return listedIds(listEvents(hook)); }

  static std::vector<int64_t> listedIds(const Response& r) {
    std::vector<int64_t> ids;
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return ids;
    const auto events = parseObject(r.body)->getArray("events");
    for (size_t i = 0; i < events->size(); ++i) {
      ids.push_back(events->getObject(static_cast<unsigned>(i))->getValue<int64_t>("id"));
    }
    return ids;
  }

  std::string describe(const Outage& outage) const {
    std::string text;
    for (const Post& post : outage.posts) {
      text += std::to_string(post.seq) + ":" + std::to_string(post.status) + " ";
    }
    return text;
  }

  std::string dir_;
  std::string dataDir_;
  std::string logPath_;
  std::string ended_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int runs_ = 0;
};

TEST_F(StoreOutageTest, FullStoreAnswers503WithRetryAfterAndKeepsServingReads) {
  Hook hook;
  const Outage outage = runOutage(hook);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_FALSE(hook.id.empty());

  // The limit is reached, and the answer to it is 503 with Retry-After, not a dropped request.
  ASSERT_GE(outage.first503, 0) << "no 503 within " << kMaxPosts
                                << " webhooks: " << describe(outage) << "\n"
                                << log();
  for (const Post& post : outage.posts) {
    EXPECT_TRUE(post.status == 200 || post.status == 503)
        << "webhook " << post.seq << " got " << post.status << "\n"
        << log();
    if (post.status == 503) {
      EXPECT_EQ(post.retryAfter, "5") << "webhook " << post.seq;
    }
  }
  EXPECT_GT(outage.first503, 0) << "the store failed before the first webhook";

  // The failure is the one this test caused: a store file ends exactly at the limit.
  bool atLimit = false;
  for (const auto& entry : std::filesystem::directory_iterator(dataDir_)) {
    if (entry.is_regular_file() && static_cast<int64_t>(entry.file_size()) == kLimitBytes) {
      atLimit = true;
    }
  }
  EXPECT_TRUE(atLimit) << "no file in the data dir reached " << kLimitBytes << " bytes";

  // With the limit still in place the edge is up and answers reads.
  ASSERT_TRUE(alive()) << "the edge ended: " << ended_ << "\n" << log();
  EXPECT_EQ(request(port_, "GET", "/healthz").body, "ok");
  const Response hookRead = apiRequest(port_, "GET", "/api/v1/hooks/" + hook.id, hook.token);
  EXPECT_EQ(hookRead.status, 200) << hookRead.body;
  EXPECT_EQ(jsonField(hookRead.body, "id"), hook.id);

  // Reads while full see exactly the acknowledged events, with their bytes, or are refused.
  // Each event read is audited first, and its entry needs room in the store as a webhook does:
  // whether it still fits depends on the room the last commits left, so a read may get 503 with
  // Retry-After instead, never other contents. The restart test checks every byte again.
  const auto refusedForRoom = [](const Response& r) {
    return r.status == 503 && r.header("Retry-After") == "5";
  };
  const std::vector<Post> acked = acknowledged(outage);
  ASSERT_FALSE(acked.empty());
  std::vector<int64_t> ackedIds;
  for (const Post& post : acked) ackedIds.push_back(post.eventId);
  const Response listed = listEvents(hook);
  if (!refusedForRoom(listed)) {
    EXPECT_EQ(listedIds(listed), ackedIds) << describe(outage);
  }
  const Response body = readBody(hook, acked.back());
  if (!refusedForRoom(body)) {
    EXPECT_EQ(bodyMismatch(body, acked.back()), "");
  }
  EXPECT_TRUE(alive()) << "the edge ended: " << ended_ << "\n" << log();
}

TEST_F(StoreOutageTest, EveryAcknowledgedWebhookIsStoredByteExactAfterRestart) {
  Hook hook;
  const Outage outage = runOutage(hook);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_FALSE(hook.id.empty());

  // Whether or not the edge ever refused, what it acknowledged must be on disk.
  EXPECT_GE(outage.first503, 0) << describe(outage);
  const std::string limitedLog = log();
  const std::string limitedEnd = stopEdge();

  // A stop under the limit is still a stop, not a death by SIGXFSZ.
  EXPECT_EQ(limitedEnd, "exit code 0") << limitedLog;

  // The same data dir, without the limit.
  startEdge(false);
  ASSERT_FALSE(HasFatalFailure());

  // Every 200 is there, byte for byte, with the header that tells it apart.
  const std::vector<Post> acked = acknowledged(outage);
  ASSERT_FALSE(acked.empty());
  const std::string mismatches = bodyMismatches(hook, acked);
  EXPECT_TRUE(mismatches.empty()) << mismatches << describe(outage);
  for (const Post& post : acked) {
    EXPECT_EQ(storedSeqHeaders(hook, post.eventId),
              std::vector<std::string>{std::to_string(post.seq)})
        << "webhook " << post.seq << " event " << post.eventId;
  }

  // And nothing else: a webhook that got 503 was not stored either.
  std::vector<int64_t> ackedIds;
  for (const Post& post : acked) ackedIds.push_back(post.eventId);
  EXPECT_EQ(storedIds(hook), ackedIds) << describe(outage) << "\n" << limitedLog;
}

TEST_F(StoreOutageTest, EdgeAcceptsWebhooksAgainOnceRestartedWithoutLimit) {
  Hook hook;
  const Outage outage = runOutage(hook);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_FALSE(hook.id.empty());
  ASSERT_GE(outage.first503, 0) << describe(outage);
  stopEdge();
  startEdge(false);
  ASSERT_FALSE(HasFatalFailure());

  // New webhooks get 200 with ids after every earlier one, and are retrievable.
  int64_t lastId = 0;
  for (const Post& post : acknowledged(outage)) lastId = std::max(lastId, post.eventId);
  const int firstSeq = static_cast<int>(outage.posts.size()) + 1;
  for (int seq = firstSeq; seq < firstSeq + kPostsAfterRestart; ++seq) {
    const Post post = postWebhook(hook, seq);
    ASSERT_EQ(post.status, 200) << "webhook " << seq << "\n" << log();
    EXPECT_GT(post.eventId, lastId);
    lastId = post.eventId;
    EXPECT_EQ(bodyMismatch(hook, post), "");
  }
}

}  // namespace
}  // namespace anm::test
