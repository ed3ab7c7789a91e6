// tests/abi/loader_test.cpp: the Registry loads good plugins and refuses each faulty one once.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <openssl/hmac.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "anonymily/plugin.h"
#include "core/plugin/registry.h"
#include "tests/abi/log_capture.h"

namespace anm::plugin {
namespace {

namespace fs = std::filesystem;

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

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A fresh directory holding every fixture, a text file dressed as a library, a copy of a
    // good plugin under a later name (a duplicate provider) and a file that is no library.
    std::string pattern = (fs::temp_directory_path() / "anm-abi-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    for (const auto& entry : fs::directory_iterator(ANM_ABI_FIXTURE_DIR)) {
      // The versioned fixtures belong to the reload tests, which copy them in one by one.
      const bool versioned = entry.path().filename().string().rfind("anm-gamma", 0) == 0;
      if (entry.path().extension() == ".so" && !versioned) {
        fs::copy_file(entry.path(), dir_ / entry.path().filename());
      }
    }
    fs::copy_file(dir_ / "anm-alpha.so", dir_ / "anm-zz-alpha-copy.so");
    // Longer than an ELF header, so that the loader reads it and finds no ELF magic.
    std::ofstream(dir_ / "anm-text.so") << std::string(4, '\n') + std::string(200, '#') + "\n";
    std::ofstream(dir_ / "README.txt") << "not a plugin\n";
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  store::HookRecord hook(const std::string& provider, const std::string& secret = "") const {
    store::HookRecord h;
    h.id = "hook-1";
    h.provider = provider;
    h.secret = secret;
    return h;
  }

  fs::path dir_;
};

TEST_F(LoaderTest, RefusesEachFaultyFileWithAReasonNamingTheFault) {
  test::LogCapture logs;
  Registry registry;

  const std::vector<LoadFailure> failures = registry.loadDirectory(dir_.string());

  // Every faulty file is refused, for its own reason; nothing else is.
  const std::map<std::string, std::vector<std::string>> expected = {
      {"anm-badname.so", {"bad provider name", "Bad Name!"}},
      {"anm-entrythrow.so", {"entry function threw", "entry exploded"}},
      {"anm-initfail.so", {"init failed", "cannot reach the key vault"}},
      {"anm-initthrow.so", {"init threw", "init exploded"}},
      {"anm-longname.so", {"bad provider name", "1 to 32 characters"}},
      {"anm-major.so", {"ABI major", "expected 1, found 2"}},
      {"anm-minor.so", {"needs ABI 1.1", "offers 1.0"}},
      {"anm-noentry.so", {"missing entry symbol anm_plugin_entry"}},
      {"anm-noverify.so", {"no verify hook"}},
      {"anm-nullentry.so", {"entry function returned NULL"}},
      {"anm-small.so", {"struct_size 16", "smaller than the 64 bytes"}},
      {"anm-text.so", {"not a loadable library", "invalid ELF header"}},
      {"anm-unterminated.so", {"init failed with status 4: " + std::string(511, 'x')}},
      {"anm-unresolved.so", {"not a loadable library: undefined symbol: anm_fixture_missing"}},
      {"anm-zz-alpha-copy.so", {"provider alpha is already loaded from", path("anm-alpha.so")}},
  };
  ASSERT_EQ(failures.size(), expected.size());
  for (const auto& failure : failures) {
    const std::string name = fs::path(failure.file).filename().string();
    ASSERT_EQ(failure.file, path(name));
    const auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << "unexpected refusal of " << failure.file;
    for (const auto& part : it->second) {
      EXPECT_TRUE(contains(failure.reason, part)) << name << ": " << failure.reason;
    }
    // The log line names the file already; the reason does not repeat it (#5).
    EXPECT_FALSE(contains(failure.reason, failure.file)) << failure.reason;
  }

  // An error text without its terminator is cut at the buffer size, not read beyond it.
  const auto unterminated = std::find_if(failures.begin(), failures.end(), [&](const auto& f) {
    return f.file == path("anm-unterminated.so");
  });
  ASSERT_NE(unterminated, failures.end());
  EXPECT_EQ(unterminated->reason,
            "init failed with status 4: " + std::string(kPluginErrorBytes - 1, 'x'));

  // Exactly one warning line per refused file, naming the file and the same reason.
  const auto warnings = logs.at(Poco::Message::PRIO_WARNING);
  ASSERT_EQ(warnings.size(), failures.size());
  for (const auto& failure : failures) {
    const std::string prefix = "could not load plugin file=" + failure.file + " reason=\"";
    const auto count = std::count_if(warnings.begin(), warnings.end(), [&](const auto& line) {
      return line.text.rfind(prefix, 0) == 0;
    });
    EXPECT_EQ(count, 1) << failure.file;
  }
  for (const auto& line : warnings) EXPECT_EQ(line.logger, "anm.plugin");
}

TEST_F(LoaderTest, LoadsTheGoodPluginsInNameOrderWithCopiedInfo) {
  test::LogCapture logs;
  Registry registry;

  registry.loadDirectory(dir_.string());

  const std::vector<PluginInfo> plugins = registry.list();
  ASSERT_EQ(plugins.size(), 3u);
  EXPECT_EQ(plugins[0].name, "alpha");
  EXPECT_EQ(plugins[0].version, "1.2.3");
  EXPECT_EQ(plugins[0].summary, "alpha test provider");
  EXPECT_EQ(plugins[0].abiMajor, 1);
  EXPECT_EQ(plugins[0].abiMinor, 0);
  EXPECT_EQ(plugins[0].file, path("anm-alpha.so"));
  EXPECT_EQ(plugins[1].name, "beta");
  EXPECT_EQ(plugins[1].summary, "");
  EXPECT_EQ(plugins[2].name, "thrower");
  EXPECT_TRUE(registry.has("beta"));
  EXPECT_FALSE(registry.has("major"));
  EXPECT_FALSE(registry.has("initfail"));

  // One information line per loaded plugin, and the plugin's own log goes to its logger.
  int loadedLines = 0;
  for (const auto& line : logs.at(Poco::Message::PRIO_INFORMATION)) {
    if (line.text ==
        "loaded plugin provider=alpha version=1.2.3 abi=1.0 file=" + path("anm-alpha.so")) {
      ++loadedLines;
    }
  }
  EXPECT_EQ(loadedLines, 1);
  const auto lines = logs.lines();
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const auto& line) {
    return line.logger == "anm.plugin.alpha" && line.text == "alpha: alpha ready";
  }));
}

TEST_F(LoaderTest, GoodPluginsVerifyThroughTheHostServices) {
  test::LogCapture logs;
  Registry registry;
  registry.loadDirectory(dir_.string());

  const std::string body = R"({"data":{"type":"nested"},"type":"order.paid"})";
  std::vector<store::Header> headers = {{"Content-Type", "application/json"},
                                        {"x-alpha-signature", hmacSha256Hex("s3cret", body)},
                                        {"X-Alpha-Delivery", "d-42"}};
  RequestView request;
  request.hookId = "hook-1";
  request.method = "POST";
  request.headers = &headers;
  request.body = body;

  // A correct signature is valid, and the event fields come from the body and the header.
  Outcome valid = registry.verify(hook("alpha", "s3cret"), request);
  EXPECT_EQ(valid.verdict, store::Verdict::kValid);
  EXPECT_EQ(valid.reason, ANM_REASON_OK);
  EXPECT_EQ(valid.eventType, "order.paid");
  EXPECT_EQ(valid.deliveryId, "d-42");

  // A different secret gives a mismatch; no secret and no header have reasons of their own.
  Outcome wrong = registry.verify(hook("alpha", "other"), request);
  EXPECT_EQ(wrong.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(wrong.reason, ANM_REASON_SIGNATURE_MISMATCH);
  EXPECT_EQ(registry.verify(hook("alpha"), request).reason, ANM_REASON_SECRET_MISSING);
  std::vector<store::Header> unsignedHeaders = {{"Content-Type", "application/json"}};
  request.headers = &unsignedHeaders;
  Outcome missing = registry.verify(hook("alpha", "s3cret"), request);
  EXPECT_EQ(missing.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(missing.reason, ANM_REASON_HEADER_MISSING);
  EXPECT_EQ(missing.message, "x-alpha-signature is missing");

  // beta answers a GET handshake itself with the query as the body.
  RequestView handshake;
  handshake.method = "GET";
  handshake.rawQuery = "challenge=abc";
  Outcome pong = registry.verify(hook("beta"), handshake);
  EXPECT_EQ(pong.verdict, store::Verdict::kUnsigned);
  EXPECT_EQ(pong.reason, ANM_REASON_NOT_SIGNED);
  ASSERT_TRUE(pong.response.has_value());
  EXPECT_EQ(pong.response->status, 200);
  EXPECT_EQ(pong.response->contentType, "text/plain");
  EXPECT_EQ(pong.response->body, "challenge=abc");
  // Tolerance, options, hook id and path suffix reach the plugin as they were given.
  handshake.method = "POST";
  handshake.hookId = "hook-7";
  handshake.pathSuffix = "/orders/1";
  store::HookRecord tuned = hook("beta");
  tuned.toleranceS = 300;
  tuned.options = {{"a", "1"}, {"b", "2"}};
  Outcome echoed = registry.verify(tuned, handshake);
  EXPECT_EQ(echoed.verdict, store::Verdict::kValid);
  EXPECT_EQ(echoed.message, "tolerance=300 options=2 hook=hook-7 path=/orders/1");

  // None of these outcomes is a plugin failure: the only warnings are the 15 load refusals.
  EXPECT_EQ(logs.at(Poco::Message::PRIO_WARNING).size(), 15u);
}

TEST_F(LoaderTest, AThrowingPluginIsContainedAndTheEdgeKeepsWorking) {
  Registry registry;
  registry.loadDirectory(dir_.string());
  test::LogCapture logs;

  // The hook recorded "valid" and then threw: the host must not believe the verdict.
  RequestView request;
  request.method = "POST";
  request.body = "boom";
  Outcome failed = registry.verify(hook("thrower"), request);
  EXPECT_EQ(failed.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(failed.reason, ANM_REASON_INTERNAL);
  EXPECT_TRUE(contains(failed.message, "verify exploded")) << failed.message;
  const auto warnings = logs.at(Poco::Message::PRIO_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].text,
            "plugin hook failed provider=thrower hook=verify reason=\"exception: verify "
            "exploded\"");

  // The same plugin and the others still work afterwards.
  request.body = "ok";
  EXPECT_EQ(registry.verify(hook("thrower"), request).verdict, store::Verdict::kValid);
  EXPECT_EQ(registry.verify(hook("beta"), request).verdict, store::Verdict::kValid);

  // check_settings throws too: refused with a message, one more warning.
  const std::string refusal = registry.checkSettings(hook("thrower"));
  EXPECT_EQ(refusal, "provider thrower failed to check the settings");
  EXPECT_EQ(logs.at(Poco::Message::PRIO_WARNING).size(), 2u);
}

TEST_F(LoaderTest, VerifyRunsConcurrentlyFromManyThreads) {
  Registry registry;
  registry.loadDirectory(dir_.string());

  // Each thread signs its own bodies; every verdict must match what that thread sent.
  constexpr int kThreads = 4;
  constexpr int kCalls = 200;
  std::atomic<int> wrongVerdicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::string body =
            "{\"type\":\"t" + std::to_string(t) + "\",\"i\":" + std::to_string(i) + "}";
        const bool sign = i % 2 == 0;
        std::vector<store::Header> headers = {
            {"X-Alpha-Signature", hmacSha256Hex(sign ? "k" : "not-k", body)}};
        RequestView request;
        request.headers = &headers;
        request.body = body;
        const Outcome outcome = registry.verify(hook("alpha", "k"), request);
        const auto expected = sign ? store::Verdict::kValid : store::Verdict::kInvalid;
        if (outcome.verdict != expected || outcome.eventType != "t" + std::to_string(t)) {
          ++wrongVerdicts;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrongVerdicts.load(), 0);
}

TEST_F(LoaderTest, CheckSettingsNamesUnknownProvidersAndPluginReasons) {
  Registry registry;
  registry.loadDirectory(dir_.string());

  EXPECT_EQ(registry.checkSettings(hook("gamma")),
            "unknown provider \"gamma\"; loaded: alpha, beta, thrower");
  EXPECT_EQ(registry.checkSettings(hook("")), "");
  EXPECT_EQ(registry.checkSettings(hook("beta")), "");

  store::HookRecord strict = hook("alpha", "k");
  strict.options = {{"mode", "strict"}};
  EXPECT_EQ(registry.checkSettings(strict), "");
  store::HookRecord typo = hook("alpha", "k");
  typo.options = {{"mode", "strict"}, {"tolerence", "5"}};
  EXPECT_EQ(registry.checkSettings(typo), "unknown option \"tolerence\"");

  Registry empty;
  EXPECT_EQ(empty.checkSettings(hook("alpha")), "unknown provider \"alpha\"; loaded: none");
}

TEST_F(LoaderTest, HooksWithoutOrWithAMissingProvider) {
  Registry registry;
  registry.loadDirectory(dir_.string());
  RequestView request;
  request.body = "{}";

  Outcome open = registry.verify(hook(""), request);
  EXPECT_EQ(open.verdict, store::Verdict::kUnsigned);
  EXPECT_EQ(open.reason, ANM_REASON_NOT_SIGNED);

  Outcome gone = registry.verify(hook("major"), request);
  EXPECT_EQ(gone.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(gone.reason, ANM_REASON_INTERNAL);
  EXPECT_EQ(gone.message, "provider \"major\" is not loaded");
}

TEST_F(LoaderTest, LoadingAFileTwiceRefusesTheSecondAndShutdownRunsOnce) {
  test::LogCapture logs;
  {
    Registry registry;
    EXPECT_FALSE(registry.loadFile(path("anm-alpha.so")).has_value());
    const auto again = registry.loadFile(path("anm-alpha.so"));
    ASSERT_TRUE(again.has_value());
    EXPECT_TRUE(contains(again->reason, "already loaded")) << again->reason;
    EXPECT_EQ(registry.list().size(), 1u);
  }

  // Destroying the registry shuts the plugin down exactly once.
  const auto lines = logs.lines();
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const auto& line) { return line.text == "alpha: alpha stopped"; }),
            1);
}

TEST_F(LoaderTest, AMissingDirectoryIsReportedNotThrown) {
  Registry registry;
  const auto failures = registry.loadDirectory((dir_ / "nowhere").string());
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(contains(failures[0].reason, "could not read directory")) << failures[0].reason;
  EXPECT_TRUE(registry.list().empty());
}

TEST(NamesTest, ReasonAndVerdictNamesAreStable) {
  const std::vector<std::string> names = {"ok",
                                          "header_missing",
                                          "header_malformed",
                                          "timestamp_missing",
                                          "timestamp_outside",
                                          "signature_mismatch",
                                          "secret_missing",
                                          "algorithm_refused",
                                          "not_signed",
                                          "internal"};
  for (int32_t i = 0; i < static_cast<int32_t>(names.size()); ++i) {
    EXPECT_EQ(reasonName(i), names[i]);
  }
  EXPECT_EQ(reasonName(10), "unknown");
  EXPECT_EQ(reasonName(-1), "unknown");
  EXPECT_EQ(verdictName(store::Verdict::kValid), "valid");
  EXPECT_EQ(verdictName(store::Verdict::kInvalid), "invalid");
  EXPECT_EQ(verdictName(store::Verdict::kUnsigned), "unsigned");
}

}  // namespace
}  // namespace anm::plugin
