// tests/abi/host_services_test.cpp: the anm_host_api services against published test vectors.
// SPDX-License-Identifier: Apache-2.0
#include "core/plugin/host_services.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/abi/log_capture.h"

namespace anm::plugin {
namespace {

anm_bytes bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

anm_str str(const std::string& s) { return {s.data(), s.size()}; }

class HostServicesTest : public ::testing::Test {
 protected:
  std::string toHex(const std::string& raw) {
    std::string out(raw.size() * 2, '\0');
    size_t len = 0;
    EXPECT_EQ(api_->hex_encode(bytes(raw), out.data(), out.size(), &len), ANM_OK);
    out.resize(len);
    return out;
  }

  std::string hmacHex(anm_hash algorithm, const std::string& key, const std::string& data) {
    uint8_t out[64];
    size_t len = 0;
    const anm_bytes part = bytes(data);
    EXPECT_EQ(api_->hmac(algorithm, bytes(key), &part, 1, out, sizeof(out), &len), ANM_OK);
    return toHex(std::string(reinterpret_cast<char*>(out), len));
  }

  // Runs json_find_string; returns the status and leaves the value in `value`.
  anm_status findJson(const std::string& json, const std::string& key, std::string* value,
                      size_t cap = 256) {
    std::string out(cap, '\0');
    size_t len = 0;
    const anm_status status =
        api_->json_find_string(bytes(json), str(key), out.data(), out.size(), &len);
    if (status == ANM_OK) *value = out.substr(0, len);
    return status;
  }

  HostApi host_{"svc"};
  const anm_host_api* api_ = host_.table();
};

TEST_F(HostServicesTest, TableCarriesItsSizeAndVersion) {
  EXPECT_EQ(api_->struct_size, sizeof(anm_host_api));
  EXPECT_EQ(api_->abi_major, ANM_ABI_MAJOR);
  EXPECT_EQ(api_->abi_minor, ANM_ABI_MINOR);
  EXPECT_NE(api_->result_set_response, nullptr);
}

TEST_F(HostServicesTest, HmacSha256AndSha512MatchRfc4231) {
  const std::string key1(20, '\x0b');
  EXPECT_EQ(hmacHex(ANM_HASH_SHA256, key1, "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hmacHex(ANM_HASH_SHA512, key1, "Hi There"),
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
            "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854");
  EXPECT_EQ(hmacHex(ANM_HASH_SHA256, "Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hmacHex(ANM_HASH_SHA512, "Jefe", "what do ya want for nothing?"),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
            "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
  // Test case 6: a key longer than the block is hashed first.
  EXPECT_EQ(hmacHex(ANM_HASH_SHA256, std::string(131, '\xaa'),
                    "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_F(HostServicesTest, HmacSha1MatchesRfc2202) {
  EXPECT_EQ(hmacHex(ANM_HASH_SHA1, std::string(20, '\x0b'), "Hi There"),
            "b617318655057264e28bc0b6fb378c8ef146be00");
  EXPECT_EQ(hmacHex(ANM_HASH_SHA1, "Jefe", "what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(hmacHex(ANM_HASH_SHA1, std::string(80, '\xaa'),
                    "Test Using Larger Than Block-Size Key - Hash Key First"),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

TEST_F(HostServicesTest, HmacOfPartsEqualsHmacOfTheirConcatenation) {
  const std::vector<std::string> pieces = {"1700000000", ".", R"({"id":"evt_1"})"};
  std::vector<anm_bytes> parts;
  for (const auto& p : pieces) parts.push_back(bytes(p));
  parts.push_back({nullptr, 0});
  uint8_t out[64];
  size_t len = 0;
  ASSERT_EQ(api_->hmac(ANM_HASH_SHA256, bytes("whsec"), parts.data(), parts.size(), out,
                       sizeof(out), &len),
            ANM_OK);
  EXPECT_EQ(toHex(std::string(reinterpret_cast<char*>(out), len)),
            hmacHex(ANM_HASH_SHA256, "whsec", pieces[0] + pieces[1] + pieces[2]));

  // An empty key is a key like any other, not "no key".
  EXPECT_EQ(hmacHex(ANM_HASH_SHA256, "", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_F(HostServicesTest, HmacAndDigestRefuseUnknownAlgorithmsAndShortBuffers) {
  uint8_t out[64];
  size_t len = 0;
  const std::string x = "x";
  const anm_bytes part = bytes(x);
  EXPECT_EQ(api_->hmac(99, bytes("k"), &part, 1, out, sizeof(out), &len), ANM_ERR_UNSUPPORTED);
  EXPECT_EQ(api_->hmac(ANM_HASH_SHA256, bytes("k"), &part, 1, out, 31, &len),
            ANM_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(api_->digest(0, &part, 1, out, sizeof(out), &len), ANM_ERR_UNSUPPORTED);
  EXPECT_EQ(api_->digest(ANM_HASH_SHA512, &part, 1, out, 63, &len), ANM_ERR_BUFFER_TOO_SMALL);
}

TEST_F(HostServicesTest, DigestsMatchFips180Examples) {
  uint8_t out[64];
  size_t len = 0;
  const std::string text = "abc";
  const anm_bytes abc = bytes(text);
  ASSERT_EQ(api_->digest(ANM_HASH_SHA256, &abc, 1, out, sizeof(out), &len), ANM_OK);
  EXPECT_EQ(toHex(std::string(reinterpret_cast<char*>(out), len)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ASSERT_EQ(api_->digest(ANM_HASH_SHA1, &abc, 1, out, sizeof(out), &len), ANM_OK);
  EXPECT_EQ(toHex(std::string(reinterpret_cast<char*>(out), len)),
            "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST_F(HostServicesTest, ConstantTimeCompareIsEqualityOfBytes) {
  EXPECT_TRUE(api_->equal_constant_time(bytes("abcdef"), bytes("abcdef")));
  EXPECT_FALSE(api_->equal_constant_time(bytes("abcdef"), bytes("abcdeg")));
  EXPECT_FALSE(api_->equal_constant_time(bytes("abcdef"), bytes("abcde")));
  EXPECT_FALSE(api_->equal_constant_time(bytes(""), bytes("a")));
  EXPECT_TRUE(api_->equal_constant_time({nullptr, 0}, bytes("")));
  EXPECT_FALSE(
      api_->equal_constant_time(bytes(std::string("a\0b", 3)), bytes(std::string("a\0c", 3))));
}

TEST_F(HostServicesTest, Base64FollowsRfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
      {std::string("\xff\xfe\x00", 3), "//4A"}};
  for (const auto& [raw, encoded] : vectors) {
    char text[16];
    size_t len = 0;
    ASSERT_EQ(api_->base64_encode(bytes(raw), text, sizeof(text), &len), ANM_OK);
    EXPECT_EQ(std::string(text, len), encoded);
    uint8_t back[16];
    ASSERT_EQ(api_->base64_decode(str(encoded), back, sizeof(back), &len), ANM_OK) << encoded;
    EXPECT_EQ(std::string(reinterpret_cast<char*>(back), len), raw);
  }
}

TEST_F(HostServicesTest, Base64DecodeRefusesEverythingNonCanonical) {
  const std::vector<std::string> refused = {"Zg",            // unpadded
                                            "Zh==",          // bits under the padding are not zero
                                            "Zm9=",          // the same with one pad
                                            "Zg=a",          // data after padding
                                            "Z===",          // three pads
                                            "====",          // only padding
                                            "Zm9v\n",        // whitespace
                                            "Zm-v",          // URL-safe alphabet
                                            "Zm9vYg==Zm9v",  // padding in the middle
                                            "Zm 9"};
  for (const auto& text : refused) {
    uint8_t out[16] = {0xAA};
    size_t len = 99;
    EXPECT_EQ(api_->base64_decode(str(text), out, sizeof(out), &len), ANM_ERR_INVALID_ARGUMENT)
        << text;
    EXPECT_EQ(out[0], 0xAA) << "refused input must write nothing: " << text;
  }

  // Too small an output buffer is its own status, for both directions.
  uint8_t small[2];
  size_t len = 0;
  EXPECT_EQ(api_->base64_decode(str("Zm9v"), small, sizeof(small), &len), ANM_ERR_BUFFER_TOO_SMALL);
  char text[3];
  EXPECT_EQ(api_->base64_encode(bytes("foo"), text, sizeof(text), &len), ANM_ERR_BUFFER_TOO_SMALL);
}

TEST_F(HostServicesTest, HexRoundTripsAndRefusesBadInput) {
  const std::string raw("\x00\x01\x7f\x80\xfe\xff", 6);
  EXPECT_EQ(toHex(raw), "00017f80feff");
  uint8_t out[8];
  size_t len = 0;
  ASSERT_EQ(api_->hex_decode(str("00017F80FEff"), out, sizeof(out), &len), ANM_OK);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), len), raw);
  EXPECT_EQ(api_->hex_decode(str("abc"), out, sizeof(out), &len), ANM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(api_->hex_decode(str("zz"), out, sizeof(out), &len), ANM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(api_->hex_decode(str("0x12"), out, sizeof(out), &len), ANM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(api_->hex_decode(str("001122"), out, 2, &len), ANM_ERR_BUFFER_TOO_SMALL);
  char text[3];
  EXPECT_EQ(api_->hex_encode(bytes("ab"), text, sizeof(text), &len), ANM_ERR_BUFFER_TOO_SMALL);
}

TEST_F(HostServicesTest, JsonFindStringReadsOnlyTopLevelMembers) {
  std::string value;
  const std::string body =
      R"( { "data": {"type": "nested", "list": ["type", {"type": "deeper"}]},)"
      R"( "n": -1.5e3, "ok": true, "none": null, "s": "a}b]c\"", "type" : "outer" } )";
  ASSERT_EQ(findJson(body, "type", &value), ANM_OK);
  EXPECT_EQ(value, "outer");
  ASSERT_EQ(findJson(body, "s", &value), ANM_OK);
  EXPECT_EQ(value, "a}b]c\"");
  EXPECT_EQ(findJson(body, "list", &value), ANM_ERR_INVALID_ARGUMENT);  // only nested
  EXPECT_EQ(findJson(body, "absent", &value), ANM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(findJson(body, "n", &value), ANM_ERR_INVALID_ARGUMENT);     // not a string
  EXPECT_EQ(findJson(body, "data", &value), ANM_ERR_INVALID_ARGUMENT);  // an object
}

TEST_F(HostServicesTest, JsonFindStringUnescapesIncludingSurrogatePairs) {
  std::string value;
  const std::string body =
      R"({"t":"q\"b\\s\/n\nt\tu\u00e9\u20ac\ud83d\ude00","ty\u0070e":"escaped key"})";
  ASSERT_EQ(findJson(body, "t", &value), ANM_OK);
  EXPECT_EQ(value, "q\"b\\s/n\nt\tu\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  ASSERT_EQ(findJson(body, "type", &value), ANM_OK);
  EXPECT_EQ(value, "escaped key");

  // Lone surrogates, bad escapes and raw control characters are not JSON strings.
  EXPECT_EQ(findJson(R"({"t":"\ud83d"})", "t", &value), ANM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(findJson(R"({"t":"\ude00x"})", "t", &value), ANM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(findJson(R"({"t":"\x41"})", "t", &value), ANM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(findJson(R"({"t":"\u12"})", "t", &value), ANM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(findJson("{\"t\":\"a\nb\"}", "t", &value), ANM_ERR_INVALID_ARGUMENT);
}

TEST_F(HostServicesTest, JsonFindStringRefusesNonObjects) {
  std::string value;
  for (const std::string& body :
       {std::string(""), std::string("   "), std::string(R"(["type","x"])"),
        std::string(R"("type")"), std::string("null"), std::string("{}"), std::string(R"({"type")"),
        std::string(R"({"type":)"), std::string(R"({"a":1 "type":"x"})"),
        std::string(R"({"a":[1,2}, "type":"x"})"), std::string(R"({"type":"unterminated)")}) {
    EXPECT_EQ(findJson(body, "type", &value), ANM_ERR_INVALID_ARGUMENT) << body;
  }
}

TEST_F(HostServicesTest, JsonFindStringStopsAtTheFirstMatch) {
  // Whatever follows the member is never read: here it is not even JSON.
  std::string value;
  ASSERT_EQ(findJson(R"({"type":"first", "type":"second", ]]] garbage)", "type", &value), ANM_OK);
  EXPECT_EQ(value, "first");

  // A large body with the member near the start is answered without reading the rest.
  std::string big = R"({"type":"early","pad":")" + std::string(10 * 1024 * 1024, 'x');
  ASSERT_EQ(findJson(big, "type", &value), ANM_OK);
  EXPECT_EQ(value, "early");
}

TEST_F(HostServicesTest, JsonFindStringReportsAShortBufferWithoutWriting) {
  std::string out(4, '#');
  size_t len = 0;
  const std::string body = R"({"type":"order.paid"})";
  EXPECT_EQ(api_->json_find_string(bytes(body), str("type"), out.data(), out.size(), &len),
            ANM_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(out, "####");
  EXPECT_EQ(len, 10u);
}

TEST_F(HostServicesTest, FindHeaderIgnoresAsciiCaseAndCountsRepeats) {
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"X-Sig", "one"}, {"Content-Type", "text/plain"}, {"x-sig", "two"}, {"X-SIG\xc3\xa9", "no"}};
  std::vector<anm_header> headers;
  for (const auto& [n, v] : fields) headers.push_back({str(n), str(v)});
  anm_request request{};
  request.struct_size = sizeof(request);
  request.headers = headers.data();
  request.header_count = headers.size();

  anm_str value{};
  ASSERT_TRUE(api_->find_header(&request, str("x-SIG"), 0, &value));
  EXPECT_EQ(std::string(value.ptr, value.len), "one");
  ASSERT_TRUE(api_->find_header(&request, str("X-Sig"), 1, &value));
  EXPECT_EQ(std::string(value.ptr, value.len), "two");
  EXPECT_FALSE(api_->find_header(&request, str("X-Sig"), 2, &value));
  EXPECT_FALSE(api_->find_header(&request, str("X-Sig\xc3\x89"), 0, &value));
  EXPECT_FALSE(api_->find_header(&request, str("Content"), 0, &value));
}

TEST_F(HostServicesTest, FindOptionReturnsTheLastExactMatch) {
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"allow_sha1", "false"}, {"Allow_sha1", "x"}, {"allow_sha1", "true"}};
  std::vector<anm_option> options;
  for (const auto& [k, v] : pairs) options.push_back({str(k), str(v)});
  anm_settings settings{};
  settings.struct_size = sizeof(settings);
  settings.options = options.data();
  settings.option_count = options.size();

  anm_str value{};
  ASSERT_TRUE(api_->find_option(&settings, str("allow_sha1"), &value));
  EXPECT_EQ(std::string(value.ptr, value.len), "true");
  EXPECT_FALSE(api_->find_option(&settings, str("allow"), &value));
}

TEST_F(HostServicesTest, ResultSettersFillTheOutcomeWithinTheirLimits) {
  ResultCollector result;
  EXPECT_FALSE(result.hasVerdict());
  EXPECT_EQ(result.outcome().reason, ANM_REASON_INTERNAL);

  const std::string longMessage(kMaxResultMessageBytes + 10, 'm');
  api_->result_set_verdict(result.handle(), ANM_VERDICT_INVALID, ANM_REASON_TIMESTAMP_OUTSIDE,
                           str(longMessage));
  EXPECT_TRUE(result.hasVerdict());
  EXPECT_EQ(result.outcome().verdict, store::Verdict::kInvalid);
  EXPECT_EQ(result.outcome().reason, ANM_REASON_TIMESTAMP_OUTSIDE);
  EXPECT_EQ(result.outcome().message.size(), kMaxResultMessageBytes);

  const std::string longId(kMaxEventFieldBytes + 1, 'd');
  api_->result_set_event(result.handle(), str("charge.succeeded"), str(longId));
  EXPECT_EQ(result.outcome().eventType, "charge.succeeded");
  EXPECT_EQ(result.outcome().deliveryId.size(), kMaxEventFieldBytes);

  // Responses outside 2xx or over the size limits are refused with a reason.
  api_->result_set_response(result.handle(), 302, str("text/plain"), bytes("x"));
  EXPECT_FALSE(result.outcome().response.has_value());
  EXPECT_EQ(result.problem(), "response status 302 is not 200..299");
  const std::string bigBody(kMaxResponseBodyBytes + 1, 'b');
  api_->result_set_response(result.handle(), 200, str("text/plain"), bytes(bigBody));
  EXPECT_FALSE(result.outcome().response.has_value());
  const std::string limitBody(kMaxResponseBodyBytes, 'b');
  api_->result_set_response(result.handle(), 200, str("text/plain"), bytes(limitBody));
  ASSERT_TRUE(result.outcome().response.has_value());
  EXPECT_EQ(result.outcome().response->body.size(), kMaxResponseBodyBytes);

  // An unknown verdict number is never taken for "valid".
  api_->result_set_verdict(result.handle(), 7, ANM_REASON_OK, str(""));
  EXPECT_EQ(result.outcome().verdict, store::Verdict::kInvalid);
  EXPECT_EQ(result.outcome().reason, ANM_REASON_INTERNAL);
}

TEST_F(HostServicesTest, MessagesAreCutOnUtf8Boundaries) {
  ResultCollector result;
  // Two-byte characters straddling the limit: the cut keeps whole characters only.
  std::string message(kMaxResultMessageBytes - 1, 'a');
  message += "\xc3\xa9\xc3\xa9";
  api_->result_set_verdict(result.handle(), ANM_VERDICT_INVALID, ANM_REASON_INTERNAL, str(message));
  EXPECT_EQ(result.outcome().message, std::string(kMaxResultMessageBytes - 1, 'a'));
}

TEST_F(HostServicesTest, LogWritesOneLinePrefixedWithTheProvider) {
  test::LogCapture logs;
  HostApi host("alpha");
  const anm_host_api* api = host.table();

  api->log(api, ANM_LOG_WARNING, str("bad header\r\ninjected=1"));
  api->log(api, ANM_LOG_DEBUG, str("not shown at information level"));
  api->log(api, ANM_LOG_ERROR, str(std::string(kMaxPluginLogBytes + 5, 'z')));

  const auto lines = logs.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].logger, "anm.plugin.alpha");
  EXPECT_EQ(lines[0].priority, Poco::Message::PRIO_WARNING);
  EXPECT_EQ(lines[0].text, "alpha: bad header  injected=1");
  EXPECT_EQ(lines[1].priority, Poco::Message::PRIO_ERROR);
  EXPECT_EQ(lines[1].text, "alpha: " + std::string(kMaxPluginLogBytes, 'z') + "...");
}

}  // namespace
}  // namespace anm::plugin
