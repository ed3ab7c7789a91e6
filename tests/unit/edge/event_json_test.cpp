// tests/unit/edge/event_json_test.cpp: the JSON forms of events parse back to what was stored.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/event_json.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace anm::edge {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

std::string decodeBase64(const std::string& text) {
  std::istringstream in(text);
  Poco::Base64Decoder decoder(in);
  std::string out;
  char c;
  while (decoder.get(c)) out.push_back(c);
  return out;
}

std::string pocoBase64(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out);
  encoder.rdbuf()->setLineLength(0);
  encoder << bytes;
  encoder.close();
  return out.str();
}

Object::Ptr parseObject(const std::string& json) {
  Poco::JSON::Parser parser;
  return parser.parse(json).extract<Object::Ptr>();
}

std::string allBytes() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  return bytes;
}

store::EventRecord sampleEvent() {
  store::EventRecord event;
  event.id = 17;
  event.hookId = "hk_abc";
  event.receivedAtMs = 1700000000123;
  event.method = "POST";
  event.pathSuffix = "/x/y";
  event.rawQuery = "a=1&b=%20";
  event.headers = {{"Content-Type", "application/json"},
                   {"Stripe-Signature", "t=1,v1=abc"},
                   {"X-Quote", "say \"hi\"\\ \t end"},
                   {"X-Repeat", "1"},
                   {"X-Repeat", "2"}};
  event.body = "{\"k\":1}";
  event.bodySize = static_cast<int64_t>(event.body.size());
  event.verdict = store::Verdict::kValid;
  event.reason = 0;
  event.reasonMessage = "signature ok";
  event.eventType = "charge.succeeded";
  event.deliveryId = "evt_1";
  event.replayOf = 0;
  return event;
}

std::set<std::string> keysOf(const Object::Ptr& object) {
  std::set<std::string> keys;
  for (const auto& entry : *object) keys.insert(entry.first);
  return keys;
}

TEST(EventJson, SseFrameHasIdEventAndOneDataLine) {
  const auto event = sampleEvent();
  const std::string frame = sseFrame(event);

  const std::string head = "id: 17\nevent: webhook\ndata: ";
  ASSERT_EQ(frame.compare(0, head.size(), head), 0) << frame;
  ASSERT_GE(frame.size(), head.size() + 2);
  EXPECT_EQ(frame.substr(frame.size() - 2), "\n\n");

  // The data is exactly the envelope, on one line.
  const std::string data = frame.substr(head.size(), frame.size() - head.size() - 2);
  EXPECT_EQ(data.find('\n'), std::string::npos);
  EXPECT_EQ(data.find('\r'), std::string::npos);
  EXPECT_EQ(data, eventEnvelopeJson(event));
}

TEST(EventJson, EnvelopeCarriesTheDocumentedFields) {
  const auto event = sampleEvent();
  const auto object = parseObject(eventEnvelopeJson(event));

  const std::set<std::string> expected = {"id",        "hook",    "received_at_ms", "method",
                                          "path",      "query",   "headers",        "body_base64",
                                          "verdict",   "reason",  "event_type",     "delivery_id",
                                          "replay_of", "modified"};
  EXPECT_EQ(keysOf(object), expected);
  EXPECT_EQ(object->getValue<int64_t>("id"), 17);
  EXPECT_EQ(object->getValue<std::string>("hook"), "hk_abc");
  EXPECT_EQ(object->getValue<int64_t>("received_at_ms"), 1700000000123);
  EXPECT_EQ(object->getValue<std::string>("method"), "POST");
  EXPECT_EQ(object->getValue<std::string>("path"), "/x/y");
  EXPECT_EQ(object->getValue<std::string>("query"), "a=1&b=%20");
  EXPECT_EQ(object->getValue<std::string>("verdict"), "valid");
  EXPECT_EQ(object->getValue<std::string>("reason"), "ok");
  EXPECT_EQ(object->getValue<std::string>("event_type"), "charge.succeeded");
  EXPECT_EQ(object->getValue<std::string>("delivery_id"), "evt_1");
  EXPECT_EQ(object->getValue<int64_t>("replay_of"), 0);
  EXPECT_FALSE(object->getValue<bool>("modified"));
  EXPECT_EQ(decodeBase64(object->getValue<std::string>("body_base64")), event.body);
}

TEST(EventJson, HeadersKeepOrderRepeatsAndEscapedText) {
  const auto event = sampleEvent();
  const auto headers = parseObject(eventDetailJson(event, {}))->getArray("headers");

  ASSERT_EQ(headers->size(), event.headers.size());
  for (size_t i = 0; i < event.headers.size(); ++i) {
    const auto pair = headers->getArray(static_cast<unsigned>(i));
    ASSERT_EQ(pair->size(), 2u) << "field " << i;
    EXPECT_EQ(pair->getElement<std::string>(0), event.headers[i].name);
    EXPECT_EQ(pair->getElement<std::string>(1), event.headers[i].value);
  }
}

TEST(EventJson, SummaryCarriesTheDocumentedFieldsAndDeliveries) {
  auto event = sampleEvent();
  event.verdict = store::Verdict::kInvalid;
  event.reason = 4;
  event.bodySize = 2048;
  event.replayOf = 3;
  store::DeliveryRecord first{17, "relay-a", 200, 3, "", 1700000000200};
  store::DeliveryRecord second{17, "relay-b", 0, 5000, "timeout", 1700000005300};
  const auto object = parseObject(eventSummaryJson(event, {first, second}));

  const std::set<std::string> expected = {"id",        "hook",       "received_at_ms", "method",
                                          "path",      "query",      "verdict",        "reason",
                                          "message",   "event_type", "delivery_id",    "size",
                                          "replay_of", "modified",   "deliveries"};
  EXPECT_EQ(keysOf(object), expected);
  EXPECT_EQ(object->getValue<std::string>("verdict"), "invalid");
  EXPECT_EQ(object->getValue<std::string>("reason"), "timestamp_outside");
  EXPECT_EQ(object->getValue<std::string>("message"), "signature ok");
  EXPECT_EQ(object->getValue<int64_t>("size"), 2048);
  EXPECT_EQ(object->getValue<int64_t>("replay_of"), 3);

  const auto deliveries = object->getArray("deliveries");
  ASSERT_EQ(deliveries->size(), 2u);
  const auto d0 = deliveries->getObject(0);
  EXPECT_EQ(d0->getValue<std::string>("relay"), "relay-a");
  EXPECT_EQ(d0->getValue<int>("status"), 200);
  EXPECT_EQ(d0->getValue<int64_t>("duration_ms"), 3);
  EXPECT_EQ(d0->getValue<std::string>("error"), "");
  EXPECT_EQ(d0->getValue<int64_t>("reported_at_ms"), 1700000000200);
  const auto d1 = deliveries->getObject(1);
  EXPECT_EQ(d1->getValue<std::string>("relay"), "relay-b");
  EXPECT_EQ(d1->getValue<int>("status"), 0);
  EXPECT_EQ(d1->getValue<std::string>("error"), "timeout");
  EXPECT_FALSE(object->getValue<bool>("modified"));
}

TEST(EventJson, DeliveryCarriesEveryReportedFact) {
  store::DeliveryRecord delivery{17, "relay-a", 302, 12, "", 1700000000200};
  delivery.phase = store::DeliveryPhase::kReceiving;
  delivery.timeoutMs = 30000;
  delivery.targetHttps = true;
  delivery.startedAtMs = 1700000000150;
  delivery.responseExcerpt = std::string("{\"a\":\"\x01\"}\n\xff", 11);
  delivery.location = "https://localhost:3000/login?next=%2F";
  const auto object = parseObject(deliveryJson(delivery));

  const std::set<std::string> expected = {"relay",        "status",        "duration_ms",
                                          "error",        "phase",         "timeout_ms",
                                          "target_https", "started_at_ms", "response_excerpt",
                                          "location",     "reported_at_ms"};
  EXPECT_EQ(keysOf(object), expected);
  EXPECT_EQ(object->getValue<std::string>("phase"), "receiving");
  EXPECT_EQ(object->getValue<int64_t>("timeout_ms"), 30000);
  EXPECT_TRUE(object->getValue<bool>("target_https"));
  EXPECT_EQ(object->getValue<int64_t>("started_at_ms"), 1700000000150);
  EXPECT_EQ(object->getValue<std::string>("location"), delivery.location);

  // The excerpt is display text: control bytes escaped, a byte that is not UTF-8 as U+FFFD.
  EXPECT_EQ(object->getValue<std::string>("response_excerpt"), "{\"a\":\"\x01\"}\n\xEF\xBF\xBD");

  // A report of no answer reads "unknown" where the relay did not say; a delivery whose sealed
  // values did not open says so, with both empty.
  store::DeliveryRecord unreadable{17, "relay-b", 0, 5000, "timeout", 1700000005300};
  unreadable.integrityError = "could not open the delivery of event 17";
  const auto bad = parseObject(deliveryJson(unreadable));
  EXPECT_EQ(bad->getValue<std::string>("phase"), "unknown");
  EXPECT_FALSE(bad->getValue<bool>("target_https"));
  EXPECT_EQ(bad->getValue<std::string>("response_excerpt"), "");
  EXPECT_EQ(bad->getValue<std::string>("integrity_error"), unreadable.integrityError);
  EXPECT_EQ(deliveryFrame(delivery).rfind("event: delivery\ndata: {\"event\":17,\"relay\"", 0), 0u);
}

TEST(EventJson, EditedReplayIsMarkedModifiedInEveryForm) {
  auto event = sampleEvent();
  event.replayOf = 3;
  event.modified = true;
  EXPECT_TRUE(parseObject(eventSummaryJson(event, {}))->getValue<bool>("modified"));
  EXPECT_TRUE(parseObject(eventDetailJson(event, {}))->getValue<bool>("modified"));
  EXPECT_TRUE(parseObject(eventEnvelopeJson(event))->getValue<bool>("modified"));
}

TEST(EventJson, Base64DecodesExactlyWhatAppendBase64Writes) {
  for (size_t size = 0; size < 8; ++size) {
    const std::string bytes = allBytes().substr(250 - size, size);
    std::string text;
    appendBase64(text, bytes);
    EXPECT_EQ(anm::edge::decodeBase64(text), bytes) << text;
  }
  for (const char* bad : {"QQ", "QQ=", "Q===", "QQ=A", "QQ==QQ==", "QQ Q", "QQ\nQ", "QUJD!A=="}) {
    EXPECT_FALSE(anm::edge::decodeBase64(bad).has_value()) << bad;
  }
}

TEST(EventJson, DetailIsSummaryPlusHeadersAndBody) {
  const auto event = sampleEvent();
  const auto summary = parseObject(eventSummaryJson(event, {}));
  const auto detail = parseObject(eventDetailJson(event, {}));

  auto expected = keysOf(summary);
  expected.insert("headers");
  expected.insert("body_base64");
  EXPECT_EQ(keysOf(detail), expected);
  EXPECT_EQ(decodeBase64(detail->getValue<std::string>("body_base64")), event.body);
}

TEST(EventJson, BinaryBodyAndInvalidUtf8HeadersRoundTrip) {
  auto event = sampleEvent();
  event.body = allBytes() + allBytes().substr(0, 7);
  event.bodySize = static_cast<int64_t>(event.body.size());
  event.headers = {
      {"X-Latin1", std::string("caf\xE9", 4)},            // Latin-1, not UTF-8
      {"X-Utf8", "caf\xC3\xA9 \xF0\x9F\x98\x80"},         // valid UTF-8 stays text
      {"X-Control", std::string("a\0b\x01\x1F\x7F", 6)},  // control bytes stay text, escaped
      {std::string("X-Bad\xFF", 6), "v"},                 // a name that is not UTF-8
      {"X-Overlong", "\xC0\xAF"},                         // overlong '/'
      {"X-Surrogate", "\xED\xA0\x80"},                    // UTF-16 surrogate
      {"X-Truncated", "ok\xE2\x82"},                      // sequence cut short
  };

  const std::string frame = sseFrame(event);
  const std::string head = "id: 17\nevent: webhook\ndata: ";
  const auto object = parseObject(frame.substr(head.size(), frame.size() - head.size() - 2));

  // Every field comes back byte for byte, whichever of the three forms it was sent in.
  const auto headers = object->getArray("headers");
  ASSERT_EQ(headers->size(), event.headers.size());
  for (size_t i = 0; i < event.headers.size(); ++i) {
    const auto pair = headers->getArray(static_cast<unsigned>(i));
    std::string name = pair->getElement<std::string>(0);
    std::string value = pair->getElement<std::string>(1);
    const std::string marker = pair->size() > 2 ? pair->getElement<std::string>(2) : "";
    if (marker == "b64") value = decodeBase64(value);
    if (marker == "b64name") {
      name = decodeBase64(name);
      value = decodeBase64(value);
    }
    EXPECT_EQ(name, event.headers[i].name) << "field " << i;
    EXPECT_EQ(value, event.headers[i].value) << "field " << i;
  }

  // The markers are where the documentation says: text stays text.
  EXPECT_EQ(headers->getArray(0)->size(), 3u);
  EXPECT_EQ(headers->getArray(0)->getElement<std::string>(2), "b64");
  EXPECT_EQ(headers->getArray(1)->size(), 2u);
  EXPECT_EQ(headers->getArray(2)->size(), 2u);
  EXPECT_EQ(headers->getArray(3)->getElement<std::string>(2), "b64name");

  EXPECT_EQ(decodeBase64(object->getValue<std::string>("body_base64")), event.body);
}

TEST(EventJson, InvalidUtf8OutsideHeadersStillGivesValidJson) {
  auto event = sampleEvent();
  event.rawQuery = "q=\xFF\xFE";
  event.eventType = "t\x80";
  const auto object = parseObject(eventEnvelopeJson(event));

  EXPECT_EQ(object->getValue<std::string>("query"), "q=\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(object->getValue<std::string>("event_type"), "t\xEF\xBF\xBD");

  // The query is forwarded, so its bytes come along; the event type is display text only.
  EXPECT_EQ(decodeBase64(object->getValue<std::string>("query_b64")), event.rawQuery);
  EXPECT_FALSE(object->has("event_type_b64"));
  EXPECT_FALSE(object->has("path_b64"));
}

// The bytes a relay puts back on the request line, read from one form of an event.
struct ForwardedTarget {
  std::string path;
  std::string query;
};

ForwardedTarget forwardedTarget(const Object::Ptr& object) {
  ForwardedTarget out;
  out.path = object->has("path_b64") ? decodeBase64(object->getValue<std::string>("path_b64"))
                                     : object->getValue<std::string>("path");
  out.query = object->has("query_b64") ? decodeBase64(object->getValue<std::string>("query_b64"))
                                       : object->getValue<std::string>("query");
  return out;
}

std::vector<Object::Ptr> everyForm(const store::EventRecord& event) {
  const std::string frame = sseFrame(event);
  const std::string head = "id: " + std::to_string(event.id) + "\nevent: webhook\ndata: ";
  return {parseObject(eventEnvelopeJson(event)), parseObject(eventSummaryJson(event, {})),
          parseObject(eventDetailJson(event, {})),
          parseObject(frame.substr(head.size(), frame.size() - head.size() - 2))};
}

TEST(EventJson, PathAndQueryBytesAbove0x7FRoundTripInEveryForm) {
  auto event = sampleEvent();
  std::string high;
  for (int b = 0x80; b <= 0xFF; ++b) high.push_back(static_cast<char>(b));
  event.pathSuffix = "/p/" + high + "/end";
  event.rawQuery = "a=" + high + "&b=%FF";

  for (const auto& object : everyForm(event)) {
    const auto target = forwardedTarget(object);
    EXPECT_EQ(target.path, event.pathSuffix);
    EXPECT_EQ(target.query, event.rawQuery);

    // The text forms stay readable: valid UTF-8 with U+FFFD for each byte that was not.
    const auto path = object->getValue<std::string>("path");
    EXPECT_TRUE(isValidUtf8(path));
    EXPECT_EQ(path.compare(0, 3, "/p/"), 0);
    EXPECT_NE(path.find("\xEF\xBF\xBD"), std::string::npos);
    EXPECT_TRUE(isValidUtf8(object->getValue<std::string>("query")));
  }
}

TEST(EventJson, EachHighByteAloneInThePathRoundTrips) {
  auto event = sampleEvent();
  for (int b = 0x80; b <= 0xFF; ++b) {
    event.pathSuffix = std::string("/") + static_cast<char>(b);
    event.rawQuery = std::string("x=") + static_cast<char>(b);
    for (const auto& object : everyForm(event)) {
      ASSERT_TRUE(object->has("path_b64")) << "byte " << b;
      ASSERT_TRUE(object->has("query_b64")) << "byte " << b;
      const auto target = forwardedTarget(object);
      EXPECT_EQ(target.path, event.pathSuffix) << "byte " << b;
      EXPECT_EQ(target.query, event.rawQuery) << "byte " << b;
    }
  }
}

TEST(EventJson, Utf8PathAndQueryAreTextOnly) {
  auto event = sampleEvent();
  event.pathSuffix = "/caf\xC3\xA9/\xF0\x9F\x98\x80";
  event.rawQuery = "name=Z\xC3\xBCrich";
  for (const auto& object : everyForm(event)) {
    EXPECT_FALSE(object->has("path_b64"));
    EXPECT_FALSE(object->has("query_b64"));
    EXPECT_EQ(object->getValue<std::string>("path"), event.pathSuffix);
    EXPECT_EQ(object->getValue<std::string>("query"), event.rawQuery);
  }
}

TEST(EventJson, Base64MatchesPocoForEveryPadding) {
  const std::string bytes = allBytes();
  for (size_t len = 0; len <= 10; ++len) {
    std::string out = "prefix:";
    appendBase64(out, bytes.substr(250 - len, len));
    EXPECT_EQ(out, "prefix:" + pocoBase64(bytes.substr(250 - len, len))) << "length " << len;
  }
  std::string whole;
  appendBase64(whole, bytes);
  EXPECT_EQ(whole, pocoBase64(bytes));
  EXPECT_EQ(decodeBase64(whole), bytes);
}

TEST(EventJson, Utf8Validation) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(isValidUtf8("plain ascii"));
  EXPECT_TRUE(isValidUtf8("\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xEF\xBF\xBF"));
  EXPECT_TRUE(isValidUtf8("\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(isValidUtf8("\x80"));              // lone continuation byte
  EXPECT_FALSE(isValidUtf8("\xC1\xBF"));          // overlong two-byte form
  EXPECT_FALSE(isValidUtf8("\xE0\x9F\xBF"));      // overlong three-byte form
  EXPECT_FALSE(isValidUtf8("\xED\xBF\xBF"));      // surrogate
  EXPECT_FALSE(isValidUtf8("\xF0\x8F\xBF\xBF"));  // overlong four-byte form
  EXPECT_FALSE(isValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(isValidUtf8("\xF5\x80\x80\x80"));  // lead byte never used
  EXPECT_FALSE(isValidUtf8("\xE2\x82"));          // cut short at the end
  EXPECT_FALSE(isValidUtf8("\xE2\x28\xA1"));      // continuation missing in the middle
}

TEST(EventJson, VerdictAndReasonNames) {
  EXPECT_EQ(verdictName(store::Verdict::kValid), "valid");
  EXPECT_EQ(verdictName(store::Verdict::kInvalid), "invalid");
  EXPECT_EQ(verdictName(store::Verdict::kUnsigned), "unsigned");
  EXPECT_EQ(verdictName(static_cast<store::Verdict>(42)), "unknown");

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
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(reasonName(static_cast<int32_t>(i)), names[i]);
  }
  EXPECT_EQ(reasonName(-1), "unknown");
  EXPECT_EQ(reasonName(10), "unknown");
}

TEST(EventJson, ControlCharactersInTextFieldsAreEscaped) {
  auto event = sampleEvent();
  event.reasonMessage = "line1\nline2\r\t\"q\"\\";
  event.pathSuffix = std::string("/a\0b", 4);
  const std::string json = eventSummaryJson(event, {});

  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_NE(json.find("\\u0000"), std::string::npos);
  const auto object = parseObject(json);
  EXPECT_EQ(object->getValue<std::string>("message"), event.reasonMessage);
  EXPECT_EQ(object->getValue<std::string>("path"), event.pathSuffix);
}

TEST(EventJson, UnreadableEventIsItsOwnFrameAndSummariesSayWhy) {
  store::EventRecord event;
  event.id = 42;
  event.hookId = "h";
  event.method = "POST";
  event.integrityError = "sealed with key k9, which is not in the key ring \"x\"";

  // The frame keeps the event's id so that a relay's position moves past it.
  const std::string frame = sseFrame(event);
  const std::string prefix = "id: 42\nevent: unreadable\ndata: ";
  ASSERT_EQ(frame.rfind(prefix, 0), 0u) << frame;
  ASSERT_EQ(frame.substr(frame.size() - 2), "\n\n");
  const std::string data = frame.substr(prefix.size(), frame.size() - prefix.size() - 2);
  EXPECT_EQ(data.find('\n'), std::string::npos);
  Poco::JSON::Parser parser;
  const auto object = parser.parse(data).extract<Object::Ptr>();
  EXPECT_EQ(object->getValue<int64_t>("id"), 42);
  EXPECT_EQ(object->getValue<std::string>("error"), event.integrityError);
  EXPECT_EQ(object->size(), 2u);

  const auto summary = parser.parse(eventSummaryJson(event, {})).extract<Object::Ptr>();
  EXPECT_EQ(summary->getValue<std::string>("integrity_error"), event.integrityError);

  // A readable event has no such member and its usual frame.
  event.integrityError.clear();
  EXPECT_EQ(sseFrame(event).rfind("id: 42\nevent: webhook\n", 0), 0u);
  const auto plain = parser.parse(eventSummaryJson(event, {})).extract<Object::Ptr>();
  EXPECT_FALSE(plain->has("integrity_error"));
}

}  // namespace
}  // namespace anm::edge
