// tests/cli/session_test.cpp: the JWT exchange and its renewal rules, with an injected clock,
// against the fake edge on 127.0.0.1.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/session.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "cli/src/credentials.h"
#include "support/fake_edge.h"

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

TEST(CredentialsTest, FileNameIsOneSafeSegmentPerHostAndPort) {
  std::string error;
  const std::string v4 = credentialsPath(*Url::parse("http://127.0.0.1:8080", error));
  EXPECT_EQ(v4.substr(v4.rfind('/') + 1), "127.0.0.1_8080.pat");
  const std::string v6 = credentialsPath(*Url::parse("https://[::1]/", error));
  EXPECT_EQ(v6.substr(v6.rfind('/') + 1), "--1_443.pat");
}

}  // namespace
}  // namespace anm::cli::test
