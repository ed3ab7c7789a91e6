// tests/sdk_consumer/example_plugin_check.cpp: the out-of-tree example works in the registry
// and in the real edge. Run by run_consumer.sh, which builds the plugin first.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>
#include <openssl/hmac.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "anonymily/plugin.h"
#include "core/plugin/registry.h"

namespace anm::plugin {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

std::string hmacSha256Hex(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0x0F]);
  }
  return out;
}

store::HookRecord exampleHook(const std::string& secret) {
  store::HookRecord hook;
  hook.id = "hook-example";
  hook.provider = "example";
  hook.secret = secret;
  return hook;
}

TEST(ExamplePluginTest, RegistryLoadsTheOutOfTreeBuild) {
  const std::string dir = env("ANM_PLUGIN_DIR");
  ASSERT_FALSE(dir.empty()) << "run through run_consumer.sh, which sets ANM_PLUGIN_DIR";
  Registry registry;

  const auto failures = registry.loadDirectory(dir);
  ASSERT_TRUE(failures.empty()) << failures.front().file << ": " << failures.front().reason;
  const auto plugins = registry.list();
  ASSERT_EQ(plugins.size(), 1u);
  EXPECT_EQ(plugins[0].name, "example");
  EXPECT_EQ(plugins[0].version, "1.0.0");
  EXPECT_EQ(plugins[0].abiMajor, ANM_ABI_MAJOR);

  // Correct, wrong and malformed signatures each get their own verdict and reason.
  const std::string body = R"({"hello":"world"})";
  std::vector<store::Header> headers = {{"x-example-signature", hmacSha256Hex("k3y", body)}};
  RequestView request;
  request.method = "POST";
  request.headers = &headers;
  request.body = body;
  Outcome good = registry.verify(exampleHook("k3y"), request);
  EXPECT_EQ(good.verdict, store::Verdict::kValid);
  EXPECT_EQ(good.reason, ANM_REASON_OK);
  Outcome wrong = registry.verify(exampleHook("other"), request);
  EXPECT_EQ(wrong.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(wrong.reason, ANM_REASON_SIGNATURE_MISMATCH);
  headers[0].value = "sha256=abc";
  EXPECT_EQ(registry.verify(exampleHook("k3y"), request).reason, ANM_REASON_HEADER_MALFORMED);

  // The plugin takes no options and says so when a hook is created with one.
  store::HookRecord withOption = exampleHook("k3y");
  withOption.options = {{"tolerance", "5"}};
  EXPECT_EQ(registry.checkSettings(withOption),
            "the example provider takes no options, got \"tolerance\"");
}

// The real edge process, started on a free loopback port and stopped by its own PID, with its
// log collected from its stderr.
class EdgeProcess {
 public:
  EdgeProcess(const std::string& binary, const std::string& work, const std::string& pluginDir)
      : portFile_(work + "/edge.port") {
    fs::remove(portFile_);
    const std::vector<std::string> args = {"--listen=127.0.0.1:0", "--data-dir=" + work + "/data",
                                           "--plugin-dir=" + pluginDir, "--port-file=" + portFile_};
    Poco::Pipe errors;
    handle_ = std::make_unique<Poco::ProcessHandle>(
        Poco::Process::launch(binary, args, nullptr, nullptr, &errors));
    reader_ = std::thread([this, errors]() mutable {
      Poco::PipeInputStream in(errors);
      std::string line;
      while (std::getline(in, line)) {
        std::lock_guard<std::mutex> lock(mutex_);
        log_ += line + "\n";
      }
    });
  }

  // Asks the edge to stop (SIGINT), and kills it only if it has not stopped after 10 s.
  ~EdgeProcess() {
    if (!exited()) {
      Poco::Process::requestTermination(handle_->id());
      for (int i = 0; i < 200 && !exited(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!exited()) {
        Poco::Process::kill(*handle_);
        handle_->wait();
      }
    }
    reader_.join();
  }

  /// Waits until the edge has written the port it bound; 0 if it exited or never did.
  uint16_t waitForPort() {
    for (int i = 0; i < 400; ++i) {
      std::ifstream in(portFile_);
      int port = 0;
      if (in >> port && port > 0) return static_cast<uint16_t>(port);
      if (exited()) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 0;
  }

  /// What the edge logged so far.
  std::string log() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return log_;
  }

 private:
  // isRunning() still sees an exited child until it is reaped, so reap with tryWait().
  bool exited() {
    if (!reaped_ && handle_->tryWait() != -1) reaped_ = true;
    return reaped_;
  }

  std::string portFile_;
  std::unique_ptr<Poco::ProcessHandle> handle_;
  bool reaped_ = false;
  mutable std::mutex mutex_;
  std::string log_;
  std::thread reader_;
};

struct HttpAnswer {
  int status = 0;
  std::string body;
};

HttpAnswer post(uint16_t port, const std::string& path, const std::string& body,
                const std::vector<std::pair<std::string, std::string>>& headers) {
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, path,
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  request.setContentType("application/json");
  request.setContentLength(static_cast<std::streamsize>(body.size()));
  for (const auto& [name, value] : headers) request.set(name, value);
  session.sendRequest(request) << body;
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  HttpAnswer answer;
  answer.status = static_cast<int>(response.getStatus());
  Poco::StreamCopier::copyToString(in, answer.body);
  return answer;
}

HttpAnswer get(uint16_t port, const std::string& path) {
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path,
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  HttpAnswer answer;
  answer.status = static_cast<int>(response.getStatus());
  Poco::StreamCopier::copyToString(in, answer.body);
  return answer;
}

// Waits (up to 15 s) until `done` holds: the edge notices plugin files on its own thread.
bool eventually(const std::function<bool()>& done) {
  const auto giveUpAt = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!done()) {
    if (std::chrono::steady_clock::now() > giveUpAt) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// The version of `provider` that GET /api/v1/providers lists, or "" when it lists none.
std::string offeredVersion(uint16_t port, const std::string& provider) {
  const HttpAnswer answer = get(port, "/api/v1/providers");
  if (answer.status != 200) return "";
  Poco::JSON::Parser parser;
  const auto list =
      parser.parse(answer.body).extract<Poco::JSON::Object::Ptr>()->getArray("providers");
  for (size_t i = 0; i < list->size(); ++i) {
    const auto entry = list->getObject(static_cast<unsigned>(i));
    if (entry->getValue<std::string>("name") == provider) {
      return entry->getValue<std::string>("version");
    }
  }
  return "";
}

// Copies `from` over `to` the way `cp` does: the same file, truncated and written again.
void copyOver(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
}

TEST(ExamplePluginTest, TheRealEdgeVerifiesWithTheExample) {
  const std::string edge = env("ANM_EDGE_BIN");
  if (edge.empty()) GTEST_SKIP() << "anonymily-edge is not part of this build";
  EdgeProcess process(edge, env("ANM_WORK_DIR"), env("ANM_PLUGIN_DIR"));
  const uint16_t port = process.waitForPort();
  ASSERT_NE(port, 0) << "the edge did not start";

  // A hook for the example provider.
  const HttpAnswer created =
      post(port, "/api/v1/hooks", R"({"provider":"example","secret":"topsecret"})", {});
  ASSERT_EQ(created.status, 201) << created.body;
  Poco::JSON::Parser parser;
  const auto hook = parser.parse(created.body).extract<Poco::JSON::Object::Ptr>();
  const std::string id = hook->getValue<std::string>("id");
  EXPECT_EQ(hook->getValue<std::string>("provider"), "example");

  // Signed with the secret: stored and acknowledged. Signed wrongly: refused with the reason.
  const std::string body = R"({"event":"ping","n":1})";
  const HttpAnswer signedOk =
      post(port, "/h/" + id, body, {{"X-Example-Signature", hmacSha256Hex("topsecret", body)}});
  EXPECT_EQ(signedOk.status, 200) << signedOk.body;
  const HttpAnswer signedWrong =
      post(port, "/h/" + id, body, {{"X-Example-Signature", hmacSha256Hex("guess", body)}});
  EXPECT_EQ(signedWrong.status, 401) << signedWrong.body;
  EXPECT_NE(signedWrong.body.find("signature_mismatch"), std::string::npos) << signedWrong.body;

  // The plugin's settings check reaches the API: an option it does not know is a 400.
  const HttpAnswer refused =
      post(port, "/api/v1/hooks", R"({"provider":"example","secret":"s","options":{"x":"1"}})", {});
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("takes no options"), std::string::npos) << refused.body;
}

TEST(ExamplePluginTest, RunningEdgeTakesThePluginDroppedInReplacedBrokenAndRemoved) {
  const std::string edge = env("ANM_EDGE_BIN");
  if (edge.empty()) GTEST_SKIP() << "anonymily-edge is not part of this build";
  const std::string work = env("ANM_WORK_DIR") + "/live";
  const std::string plugins = work + "/plugins";
  fs::create_directories(plugins);
  EdgeProcess process(edge, work, plugins);
  const uint16_t port = process.waitForPort();
  ASSERT_NE(port, 0) << "the edge did not start";
  ASSERT_EQ(offeredVersion(port, "example"), "");

  // Copied into the directory of the running edge: offered without a restart, and verifying.
  const std::string installed = plugins + "/anm-example.so";
  copyOver(env("ANM_EXAMPLE_V1"), installed);
  ASSERT_TRUE(eventually([&] { return offeredVersion(port, "example") == "1.0.0"; }))
      << process.log();
  const HttpAnswer created =
      post(port, "/api/v1/hooks", R"({"provider":"example","secret":"dropped-in"})", {});
  ASSERT_EQ(created.status, 201) << created.body;
  Poco::JSON::Parser parser;
  const std::string id =
      parser.parse(created.body).extract<Poco::JSON::Object::Ptr>()->getValue<std::string>("id");
  const std::string body = R"({"event":"deploy"})";
  const auto send = [&](const std::string& key) {
    return post(port, "/h/" + id, body, {{"X-Example-Signature", hmacSha256Hex(key, body)}});
  };
  EXPECT_EQ(send("dropped-in").status, 200);
  EXPECT_EQ(send("wrong").status, 401);

  // A new release written over the file takes over for new webhooks.
  copyOver(env("ANM_EXAMPLE_V2"), installed);
  ASSERT_TRUE(eventually([&] { return offeredVersion(port, "example") == "2.0.0"; }))
      << process.log();
  EXPECT_EQ(send("dropped-in").status, 200);
  EXPECT_EQ(send("wrong").status, 401);

  // A broken file: one log line naming it and why; the release before it keeps verifying.
  { std::ofstream(installed, std::ios::trunc) << "this is not a shared library\n"; }
  const std::string refusal = "could not load plugin file=" + installed + " reason=";
  ASSERT_TRUE(eventually([&] { return process.log().find(refusal) != std::string::npos; }))
      << process.log();
  const std::string log = process.log();
  const size_t line = log.find(refusal);
  EXPECT_EQ(log.find(refusal, line + 1), std::string::npos) << "refused more than once:\n" << log;
  EXPECT_NE(log.find("keeping_version=2.0.0", line), std::string::npos) << log;
  EXPECT_EQ(offeredVersion(port, "example"), "2.0.0");
  EXPECT_EQ(send("dropped-in").status, 200);

  // A copy that stops half-way (the writer paused past the settle time) is refused for what it
  // lacks, and loaded once the writer finishes; the release before it serves meanwhile (#5).
  std::string release;
  {
    std::ifstream in(env("ANM_EXAMPLE_V1"), std::ios::binary);
    release.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const size_t half = release.size() / 2;
  { std::ofstream(installed, std::ios::binary | std::ios::trunc) << release.substr(0, half); }
  const std::string truncated = refusal + "\"truncated: ";
  ASSERT_TRUE(eventually([&] { return process.log().find(truncated) != std::string::npos; }))
      << process.log();
  EXPECT_EQ(offeredVersion(port, "example"), "2.0.0");
  EXPECT_EQ(send("dropped-in").status, 200);
  { std::ofstream(installed, std::ios::binary | std::ios::app) << release.substr(half); }
  ASSERT_TRUE(eventually([&] { return offeredVersion(port, "example") == "1.0.0"; }))
      << process.log();
  EXPECT_EQ(send("dropped-in").status, 200);

  // Removed: no longer offered; its hooks' webhooks are asked to come back, not judged.
  fs::remove(installed);
  ASSERT_TRUE(eventually([&] { return offeredVersion(port, "example").empty(); })) << process.log();
  const HttpAnswer unavailable = send("dropped-in");
  EXPECT_EQ(unavailable.status, 503) << unavailable.body;
  EXPECT_NE(unavailable.body.find("not loaded"), std::string::npos) << unavailable.body;
}

}  // namespace
}  // namespace anm::plugin
