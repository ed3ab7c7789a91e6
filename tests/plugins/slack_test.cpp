// tests/plugins/slack_test.cpp: the slack plugin, loaded through the plugin host.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plugin_test_support.h"

namespace anm::plugin::test {
namespace {

constexpr char kProvider[] = "slack";
constexpr char kSecret[] = "5d0f6b2e8a9c41d7b3e6f0a2c4d8e1b9";
constexpr int64_t kNowS = 1733270400;
constexpr int64_t kNowMs = kNowS * 1000;

// Slack's worked example from "Verifying requests from Slack"
// (api.slack.com/authentication/verifying-requests-from-slack): a slash command form body.
constexpr char kDocSecret[] = "8f742231b10e8888abcd99yyyzzz85a5";
constexpr char kDocTimestamp[] = "1531420618";
constexpr int64_t kDocTimestampS = 1531420618;
const std::string kDocBody =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F"
    "T1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
constexpr char kDocSignature[] =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

const std::string kEventBody =
    R"({"token":"XXYYZZ","team_id":"T123ABC456","event":{"type":"app_mention","event_id":)"
    R"("nested"},"type":"event_callback","event_id":"Ev08MFMKH6","event_time":1733270400})";

const std::string kChallengeBody =
    R"({"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":)"
    R"("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"})";

std::string sign(int64_t t, const std::string& body, const std::string& secret = kSecret) {
  return "v0=" + hmacSha256Hex(secret, "v0:" + std::to_string(t) + ":" + body);
}

std::vector<store::Header> signedHeaders(int64_t t, const std::string& signature) {
  return {{"Content-Type", "application/json"},
          {"X-Slack-Request-Timestamp", std::to_string(t)},
          {"X-Slack-Signature", signature}};
}

class SlackTest : public PluginTest {};

TEST_F(SlackTest, PublishedExampleIsValidSlashCommand) {
  ASSERT_EQ(sign(kDocTimestampS, kDocBody, kDocSecret), kDocSignature);
  std::vector<store::Header> headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                                        {"X-Slack-Request-Timestamp", kDocTimestamp},
                                        {"X-Slack-Signature", kDocSignature}};

  Outcome out =
      verify(makeHook(kProvider, kDocSecret), headers, kDocBody, kDocTimestampS * 1000 + 30000);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.reason, ANM_REASON_OK);
  EXPECT_EQ(out.eventType, "slash_command");
  EXPECT_EQ(out.deliveryId, "");
  EXPECT_FALSE(out.response.has_value());
}

TEST_F(SlackTest, PublishedExampleReceivedTodayIsStale) {
  std::vector<store::Header> headers = {{"X-Slack-Request-Timestamp", kDocTimestamp},
                                        {"X-Slack-Signature", kDocSignature}};

  Outcome out = verify(makeHook(kProvider, kDocSecret), headers, kDocBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  EXPECT_EQ(out.message, "timestamp is " + std::to_string(kNowS - kDocTimestampS) +
                             " s old, outside the 300 s tolerance");
}

TEST_F(SlackTest, EventsApiRequestNamesTypeAndEventId) {
  Outcome out = verify(makeHook(kProvider, kSecret), signedHeaders(kNowS, sign(kNowS, kEventBody)),
                       kEventBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.eventType, "event_callback");
  EXPECT_EQ(out.deliveryId, "Ev08MFMKH6");
  EXPECT_FALSE(out.response.has_value());
}

TEST_F(SlackTest, InteractivePayloadIsNamedInteractive) {
  std::string body = "payload=%7B%22type%22%3A%22block_actions%22%7D";

  Outcome out =
      verify(makeHook(kProvider, kSecret), signedHeaders(kNowS, sign(kNowS, body)), body, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.eventType, "interactive");
}

TEST_F(SlackTest, FormFieldsAreMatchedWholeNotByPrefix) {
  // "commander=" and "xpayload=" are other fields; neither makes the request a command.
  std::string body = "commander=1&xpayload=2&text=command%3Dx";

  Outcome out =
      verify(makeHook(kProvider, kSecret), signedHeaders(kNowS, sign(kNowS, body)), body, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.eventType, "");
}

TEST_F(SlackTest, UrlVerificationIsAnsweredWhenSigned) {
  Outcome out = verify(makeHook(kProvider, kSecret),
                       signedHeaders(kNowS, sign(kNowS, kChallengeBody)), kChallengeBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_EQ(out.eventType, "url_verification");
  ASSERT_TRUE(out.response.has_value());
  EXPECT_EQ(out.response->status, 200);
  EXPECT_EQ(out.response->contentType, "text/plain");
  EXPECT_EQ(out.response->body, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
}

TEST_F(SlackTest, OtherEventsWithAChallengeMemberAreNotAnswered) {
  // Only the url_verification handshake is echoed, never a "challenge" in another event.
  std::string body = R"({"type":"event_callback","event_id":"Ev1","challenge":"leak-me"})";

  Outcome out =
      verify(makeHook(kProvider, kSecret), signedHeaders(kNowS, sign(kNowS, body)), body, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
  EXPECT_FALSE(out.response.has_value());
}

TEST_F(SlackTest, UrlVerificationIsNotAnsweredWhenSignedWrongly) {
  Outcome wrong = verify(makeHook(kProvider, kSecret),
                         signedHeaders(kNowS, sign(kNowS, kChallengeBody, "not-the-secret")),
                         kChallengeBody, kNowMs);
  EXPECT_EQ(wrong.reason, ANM_REASON_SIGNATURE_MISMATCH);
  EXPECT_FALSE(wrong.response.has_value());

  std::vector<store::Header> unsignedHeaders = {{"Content-Type", "application/json"}};
  Outcome missing = verify(makeHook(kProvider, kSecret), unsignedHeaders, kChallengeBody, kNowMs);
  EXPECT_EQ(missing.reason, ANM_REASON_HEADER_MISSING);
  EXPECT_FALSE(missing.response.has_value());

  Outcome stale =
      verify(makeHook(kProvider, kSecret),
             signedHeaders(kNowS - 301, sign(kNowS - 301, kChallengeBody)), kChallengeBody, kNowMs);
  EXPECT_EQ(stale.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  EXPECT_FALSE(stale.response.has_value());

  Outcome noSecret =
      verify(makeHook(kProvider, ""), signedHeaders(kNowS, sign(kNowS, kChallengeBody)),
             kChallengeBody, kNowMs);
  EXPECT_EQ(noSecret.reason, ANM_REASON_SECRET_MISSING);
  EXPECT_FALSE(noSecret.response.has_value());
}

TEST_F(SlackTest, ChallengesUpTo1024BytesAreEchoed) {
  for (size_t len : {size_t{1024}, size_t{1025}}) {
    std::string challenge(len, 'c');
    std::string body = R"({"type":"url_verification","challenge":")" + challenge + R"("})";

    Outcome out =
        verify(makeHook(kProvider, kSecret), signedHeaders(kNowS, sign(kNowS, body)), body, kNowMs);

    // A longer challenge is not Slack's: the request is still valid, only not echoed.
    EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
    EXPECT_EQ(out.response.has_value(), len <= 1024) << len;
    if (out.response) {
      EXPECT_EQ(out.response->body, challenge);
    }
  }
}

TEST_F(SlackTest, TamperedBodyIsMismatch) {
  std::string tampered = kEventBody;
  tampered.replace(tampered.find("T123ABC456"), 10, "T999ZZZ999");

  Outcome out = verify(makeHook(kProvider, kSecret), signedHeaders(kNowS, sign(kNowS, kEventBody)),
                       tampered, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
  EXPECT_EQ(out.message, "X-Slack-Signature does not match the signing secret");
}

TEST_F(SlackTest, TamperedTimestampIsMismatch) {
  // The timestamp is signed: moving it (say, to dodge the window) breaks the signature.
  Outcome out = verify(makeHook(kProvider, kSecret),
                       signedHeaders(kNowS, sign(kNowS - 3600, kEventBody)), kEventBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(SlackTest, WrongSecretIsMismatch) {
  Outcome out = verify(makeHook(kProvider, "another-signing-secret"),
                       signedHeaders(kNowS, sign(kNowS, kEventBody)), kEventBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_SIGNATURE_MISMATCH);
}

TEST_F(SlackTest, MissingSignatureHeaderIsHeaderMissing) {
  std::vector<store::Header> headers = {{"X-Slack-Request-Timestamp", std::to_string(kNowS)}};

  Outcome out = verify(makeHook(kProvider, kSecret), headers, kEventBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_HEADER_MISSING);
  EXPECT_EQ(out.message, "no X-Slack-Signature header");
  EXPECT_EQ(out.eventType, "event_callback");
}

TEST_F(SlackTest, MissingTimestampHeaderIsTimestampMissing) {
  std::vector<store::Header> headers = {{"X-Slack-Signature", sign(kNowS, kEventBody)}};

  Outcome out = verify(makeHook(kProvider, kSecret), headers, kEventBody, kNowMs);

  EXPECT_EQ(out.reason, ANM_REASON_TIMESTAMP_MISSING);
  EXPECT_EQ(out.message, "no X-Slack-Request-Timestamp header");
}

TEST_F(SlackTest, NonNumericTimestampIsMalformed) {
  for (std::string t : {"soon", "-1", "1733270400.0", " 1733270400x", "9999999999999999999"}) {
    std::vector<store::Header> headers = {{"X-Slack-Request-Timestamp", t},
                                          {"X-Slack-Signature", sign(kNowS, kEventBody)}};

    Outcome out = verify(makeHook(kProvider, kSecret), headers, kEventBody, kNowMs);

    EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED) << t << ": " << out.message;
  }
}

TEST_F(SlackTest, MalformedSignatureHeadersAreMalformed) {
  std::string hex = hmacSha256Hex(kSecret, "v0:" + std::to_string(kNowS) + ":" + kEventBody);
  std::string badHex = hex;
  badHex[7] = 'q';

  for (const std::string& value : {std::string(), hex, "v1=" + hex, "V0=" + hex, "v0=" + badHex,
                                   "v0=" + hex.substr(2), "v0=" + hex + "ab", std::string("v0=")}) {
    Outcome out =
        verify(makeHook(kProvider, kSecret), signedHeaders(kNowS, value), kEventBody, kNowMs);

    EXPECT_EQ(out.verdict, store::Verdict::kInvalid) << value;
    EXPECT_EQ(out.reason, ANM_REASON_HEADER_MALFORMED) << value << ": " << out.message;
  }
}

TEST_F(SlackTest, MissingPrefixSaysWhichPrefix) {
  std::string hex = hmacSha256Hex(kSecret, "v0:" + std::to_string(kNowS) + ":" + kEventBody);

  Outcome out = verify(makeHook(kProvider, kSecret), signedHeaders(kNowS, hex), kEventBody, kNowMs);

  EXPECT_EQ(out.message, "X-Slack-Signature does not start with \"v0=\"");
}

TEST_F(SlackTest, StaleAndFutureTimestampsAreOutside) {
  Outcome stale =
      verify(makeHook(kProvider, kSecret),
             signedHeaders(kNowS - 301, sign(kNowS - 301, kEventBody)), kEventBody, kNowMs);
  EXPECT_EQ(stale.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(stale.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  EXPECT_EQ(stale.message, "timestamp is 301 s old, outside the 300 s tolerance");

  Outcome future =
      verify(makeHook(kProvider, kSecret),
             signedHeaders(kNowS + 301, sign(kNowS + 301, kEventBody)), kEventBody, kNowMs);
  EXPECT_EQ(future.reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  EXPECT_EQ(future.message, "timestamp is 301 s in the future, outside the 300 s tolerance");
}

TEST_F(SlackTest, ExactlyAtToleranceEdgeIsValid) {
  for (int64_t t : {kNowS - 300, kNowS + 300}) {
    Outcome out = verify(makeHook(kProvider, kSecret), signedHeaders(t, sign(t, kEventBody)),
                         kEventBody, kNowMs);

    EXPECT_EQ(out.verdict, store::Verdict::kValid) << "t=" << t << ": " << out.message;
  }
}

TEST_F(SlackTest, ConfiguredToleranceReplacesTheDefault) {
  store::HookRecord hook = makeHook(kProvider, kSecret, 30);

  EXPECT_EQ(
      verify(hook, signedHeaders(kNowS + 30, sign(kNowS + 30, kEventBody)), kEventBody, kNowMs)
          .verdict,
      store::Verdict::kValid);
  Outcome out =
      verify(hook, signedHeaders(kNowS + 31, sign(kNowS + 31, kEventBody)), kEventBody, kNowMs);
  EXPECT_EQ(out.message, "timestamp is 31 s in the future, outside the 30 s tolerance");
}

TEST_F(SlackTest, ToleranceZeroTurnsTheWindowOff) {
  std::vector<store::Header> headers = {{"X-Slack-Request-Timestamp", kDocTimestamp},
                                        {"X-Slack-Signature", kDocSignature}};

  Outcome out = verify(makeHook(kProvider, kDocSecret, 0), headers, kDocBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kValid) << out.message;
}

TEST_F(SlackTest, MissingSecretIsSecretMissing) {
  Outcome out = verify(makeHook(kProvider, ""), signedHeaders(kNowS, sign(kNowS, kEventBody)),
                       kEventBody, kNowMs);

  EXPECT_EQ(out.verdict, store::Verdict::kInvalid);
  EXPECT_EQ(out.reason, ANM_REASON_SECRET_MISSING);
}

TEST_F(SlackTest, CheckSettingsRefusesOptionsAndBadTolerance) {
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, -1, {{"verification_token", "x"}})),
            "unknown option \"verification_token\"; slack takes no options");
  EXPECT_NE(checkSettings(makeHook(kProvider, kSecret, -300)), "");
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret)), "");
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, 0)), "");
  EXPECT_EQ(checkSettings(makeHook(kProvider, kSecret, 120)), "");
}

}  // namespace
}  // namespace anm::plugin::test
