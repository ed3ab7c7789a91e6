// tests/cli/session_test.cpp: the JWT exchange and its renewal rules, with an injected clock,
// against the fake edge on 127.0.0.1.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/session.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "cli/src/credentials.h"
#include "support/fake_edge.h"
#include "support/temp_dir.h"

namespace anm::cli::test {
namespace {

class SessionTest : public ::testing::Test {
 protected:
  MemberSession session(const std::string& pat = FakeEdge::kPat) {
    std::string error;
    const std::optional<Url> url = Url::parse(edge_.url(), error);
    return MemberSession(*url, pat, std::chrono::seconds(10), [this] { return now_.load(); });
  }

  FakeEdge edge_;
  std::atomic<int64_t> now_{1764800000000};
};

TEST_F(SessionTest, RenewsOnlyWhenLessThanTheMarginIsLeft) {
  MemberSession member = session();
  const std::string first = member.accessToken();
  EXPECT_EQ(edge_.exchanges(), 1u);
  EXPECT_EQ(member.expiresAtMs(), now_.load() + 900 * 1000);
  EXPECT_EQ(member.identity().memberName, "alice");
  EXPECT_EQ(member.identity().accountName, "acme");
  EXPECT_TRUE(member.identity().owner);

  // 61 s before expiry the token is still used; 60 s before, a new one is fetched.
  now_ += (900 - 61) * 1000;
  EXPECT_EQ(member.accessToken(), first);
  EXPECT_EQ(edge_.exchanges(), 1u);
  now_ += 1000;
  const std::string second = member.accessToken();
  EXPECT_NE(second, first);
  EXPECT_EQ(edge_.exchanges(), 2u);
}

TEST_F(SessionTest, AShortLivedTokenServesThreeQuartersOfItsLife) {
  // 60 s, the shortest lifetime an edge issues: renewed 15 s before its end, not at once.
  edge_.setJwtTtlSeconds(60);
  MemberSession member = session();
  const std::string first = member.accessToken();
  now_ += 44 * 1000;
  EXPECT_EQ(member.accessToken(), first);
  EXPECT_EQ(edge_.exchanges(), 1u);
  now_ += 1000;
  EXPECT_NE(member.accessToken(), first);
  EXPECT_EQ(edge_.exchanges(), 2u);
}

TEST(RenewMarginTest, AQuarterOfTheLifetimeAndAtMostAMinute) {
  EXPECT_EQ(renewMarginMs(1000, 1000 + 900000), 60000);
  EXPECT_EQ(renewMarginMs(1000, 1000 + 240000), 60000);
  EXPECT_EQ(renewMarginMs(1000, 1000 + 60000), 15000);
  EXPECT_EQ(renewMarginMs(1000, 1000 + 2000), 500);
  EXPECT_EQ(renewMarginMs(1000, 1000), 0);
  EXPECT_EQ(renewMarginMs(1000, 0), 0);
}

TEST_F(SessionTest, ARefusalRenewsOnceEvenWhenSeveralThreadsReportIt) {
  MemberSession member = session();
  const std::string first = member.accessToken();

  // Every thread saw `first` refused; only the first report leads to an exchange.
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&] { member.renewAfterRefusal(first); });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(edge_.exchanges(), 2u);
  EXPECT_NE(member.accessToken(), first);
}

TEST_F(SessionTest, ConcurrentFirstUseExchangesOnce) {
  MemberSession member = session();
  std::vector<std::thread> threads;
  std::vector<std::string> seen(8);
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&, i] { seen[i] = member.accessToken(); });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(edge_.exchanges(), 1u);
  for (const std::string& token : seen) EXPECT_EQ(token, seen[0]);
}

TEST_F(SessionTest, RefusedPatThrowsTheSignInAgainMessage) {
  edge_.revokePat();
  MemberSession member = session();
  try {
    member.accessToken();
    FAIL() << "the exchange should have been refused";
  } catch (const SessionError& e) {
    EXPECT_EQ(e.status(), 401);
    EXPECT_STREQ(e.what(), kSignInAgainMessage);
  }
}

TEST_F(SessionTest, SendAsMemberRetriesOnceAfterA401) {
  MemberSession member = session();
  std::string error;
  ApiClient api(*Url::parse(edge_.url(), error), "", std::chrono::seconds(10));

  edge_.setDeadJwts(1);
  EXPECT_EQ(sendAsMember(member, api, "GET", "/api/v1/account").status, 200);
  EXPECT_EQ(edge_.exchanges(), 2u);

  // The JWT in hand is cut off and the renewed one is refused too: one renewal, then the error.
  edge_.expireJwts();
  edge_.setDeadJwts(1);
  EXPECT_THROW(sendAsMember(member, api, "GET", "/api/v1/account"), SessionError);
  EXPECT_EQ(edge_.exchanges(), 3u);
}

TEST(CredentialsTest, TokenShapeIsCheckedBeforeAnythingIsSent) {
  EXPECT_TRUE(looksLikePersonalToken(FakeEdge::kPat));
  EXPECT_FALSE(looksLikePersonalToken("anm_pat_"));
  EXPECT_FALSE(looksLikePersonalToken("anm_pat_ABC"));
  EXPECT_FALSE(looksLikePersonalToken(std::string(64, 'a')));
  EXPECT_FALSE(looksLikePersonalToken("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
  EXPECT_FALSE(looksLikePersonalToken("anm_pat_" + std::string(300, 'a')));
}

std::string fileNameOf(const std::string& path) { return path.substr(path.rfind('/') + 1); }

Url url(const std::string& text) {
  std::string error;
  return *Url::parse(text, error);
}

TEST(CredentialsTest, FileNameIsOneSafeSegmentPerSchemeHostAndPort) {
  EXPECT_EQ(fileNameOf(credentialsPath(url("http://127.0.0.1:8080"))), "http_127.0.0.1_8080.pat");
  EXPECT_EQ(fileNameOf(credentialsPath(url("https://127.0.0.1:8080"))), "https_127.0.0.1_8080.pat");
  EXPECT_EQ(fileNameOf(credentialsPath(url("https://[::1]/"))), "https_--1_443.pat");
  EXPECT_EQ(fileNameOf(legacyCredentialsPath(url("https://[::1]/"))), "--1_443.pat");
}

// Runs with XDG_CONFIG_HOME in a directory of its own, restored afterwards.
class CredentialsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* saved = std::getenv("XDG_CONFIG_HOME");
    if (saved != nullptr) saved_ = saved;
    hadSaved_ = saved != nullptr;
    ::setenv("XDG_CONFIG_HOME", dir_.path().c_str(), 1);
  }

  void TearDown() override {
    if (hadSaved_) {
      ::setenv("XDG_CONFIG_HOME", saved_.c_str(), 1);
    } else {
      ::unsetenv("XDG_CONFIG_HOME");
    }
  }

  static void writeLegacy(const Url& edge, const std::string& text) {
    std::filesystem::create_directories(dir(legacyCredentialsPath(edge)));
    std::ofstream(legacyCredentialsPath(edge)) << text;
  }

  static std::string dir(const std::string& path) { return path.substr(0, path.rfind('/')); }

  TempDir dir_;
  std::string saved_;
  bool hadSaved_ = false;
};

TEST_F(CredentialsFileTest, AnHttpsLoginIsNeverReadForPlainHttp) {
  saveCredentials(url("https://127.0.0.1:18431"), FakeEdge::kPat);
  EXPECT_EQ(loadCredentials(url("https://127.0.0.1:18431")), std::string(FakeEdge::kPat));
  EXPECT_FALSE(loadCredentials(url("http://127.0.0.1:18431")).has_value());

  // Each scheme keeps its own login, and a logout removes only its own.
  saveCredentials(url("http://127.0.0.1:18431"), "anm_pat_other");
  EXPECT_TRUE(deleteCredentials(url("http://127.0.0.1:18431")));
  EXPECT_EQ(loadCredentials(url("https://127.0.0.1:18431")), std::string(FakeEdge::kPat));
}

TEST_F(CredentialsFileTest, ALegacyFileServesHttpsOnlyUntilTheNextLoginOrLogout) {
  const Url secure = url("https://127.0.0.1:18431");
  writeLegacy(secure, std::string(FakeEdge::kPat) + "\n");
  EXPECT_EQ(loadCredentials(secure), std::string(FakeEdge::kPat));
  EXPECT_FALSE(loadCredentials(url("http://127.0.0.1:18431")).has_value());

  // A new login of that edge replaces the legacy file.
  saveCredentials(secure, "anm_pat_renewed");
  EXPECT_FALSE(std::filesystem::exists(legacyCredentialsPath(secure)));
  EXPECT_EQ(loadCredentials(secure), std::string("anm_pat_renewed"));

  // A logout removes a legacy file too, so that it cannot come back into use.
  EXPECT_TRUE(deleteCredentials(secure));
  writeLegacy(secure, std::string(FakeEdge::kPat) + "\n");
  EXPECT_TRUE(deleteCredentials(secure));
  EXPECT_FALSE(loadCredentials(secure).has_value());
  EXPECT_FALSE(deleteCredentials(secure));
}

TEST(PlainHttpTest, APatGoesInClearOnlyToThisMachine) {
  for (const char* allowed : {"https://hooks.example.com", "https://192.0.2.1:8443",
                              "http://127.0.0.1:8080", "http://127.1.2.3:8080",
                              "http://localhost:8080", "http://LOCALHOST", "http://[::1]:8080"}) {
    EXPECT_EQ(plainHttpRefusal(url(allowed)), "") << allowed;
  }
  for (const char* refused :
       {"http://hooks.example.com", "http://192.0.2.1:8080", "http://10.0.0.7",
        "http://0.0.0.0:8080", "http://[2001:db8::1]", "http://localhost.example.com"}) {
    const std::string refusal = plainHttpRefusal(url(refused));
    EXPECT_NE(refusal.find("will not send your personal access token to "), std::string::npos)
        << refused;
    EXPECT_NE(refusal.find("https://"), std::string::npos) << refusal;
    EXPECT_NE(refusal.find("behind TLS"), std::string::npos) << refusal;
  }
}

TEST_F(SessionTest, NoExchangeGoesOverPlainHttpOffThisMachine) {
  // 0.0.0.0 is no loopback address, though Linux delivers a connection to it locally: were the
  // token sent, the fake edge would see it.
  const std::string port = edge_.url().substr(edge_.url().rfind(':') + 1);
  MemberSession member(url("http://0.0.0.0:" + port), FakeEdge::kPat, std::chrono::seconds(10));
  try {
    member.exchange();
    FAIL() << "the exchange should have been refused";
  } catch (const SessionError& e) {
    EXPECT_EQ(e.status(), 0);
    EXPECT_NE(std::string(e.what()).find("will not send your personal access token"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(edge_.exchanges(), 0u);
  EXPECT_TRUE(edge_.paths().empty());
}

}  // namespace
}  // namespace anm::cli::test
