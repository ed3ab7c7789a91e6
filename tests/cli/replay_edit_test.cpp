// tests/cli/replay_edit_test.cpp: the edit options of `events replay`, the editable text of an
// event and the JSON an edited replay sends.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/replay_edit.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <string>

#include "cli/src/stream_event.h"

namespace anm::cli {
namespace {

ForwardRequest sampleRequest() {
  ForwardRequest request;
  request.method = "POST";
  request.pathSuffix = "/orders";
  request.rawQuery = "page=1&x";
  request.headers = {{"Content-Type", "application/json"}, {"X-A", "1"}, {"x-a", "two words"}};
  request.body = "{\"order\":1}";
  return request;
}

void expectSameRequest(const ForwardRequest& expected, const ForwardRequest& actual) {
  EXPECT_EQ(expected.method, actual.method);
  EXPECT_EQ(expected.pathSuffix, actual.pathSuffix);
  EXPECT_EQ(expected.rawQuery, actual.rawQuery);
  ASSERT_EQ(expected.headers.size(), actual.headers.size());
  for (size_t i = 0; i < expected.headers.size(); ++i) {
    EXPECT_EQ(expected.headers[i].name, actual.headers[i].name) << i;
    EXPECT_EQ(expected.headers[i].value, actual.headers[i].value) << i;
  }
  EXPECT_TRUE(expected.body == actual.body) << "bodies differ: " << actual.body;
}

TEST(ReplayEdit, TheEditableTextReadsBackAsTheSameRequest) {
  const ForwardRequest request = sampleRequest();
  const std::string text = editableText(request);
  EXPECT_EQ(text,
            "POST /orders?page=1&x\n"
            "Content-Type: application/json\nX-A: 1\nx-a: two words\n"
            "\n{\"order\":1}\n");
  ForwardRequest back;
  std::string error;
  ASSERT_TRUE(parseEditedText(text, back, error)) << error;
  expectSameRequest(request, back);
  EXPECT_TRUE(differences(request, back).empty());

  // Bodies that end in line feeds, are empty or hold any byte; suffixes and queries that are
  // empty; no headers at all.
  for (const std::string& body : {std::string("line\n"), std::string("\n\n"), std::string(),
                                  std::string("\0\xff\r\n bin", 8)}) {
    for (const auto& [path, query] :
         {std::pair<std::string, std::string>{"", ""}, {"", "a=1"}, {"/x", ""}}) {
      ForwardRequest other;
      other.method = "PUT";
      other.pathSuffix = path;
      other.rawQuery = query;
      other.body = body;
      ForwardRequest read;
      ASSERT_TRUE(parseEditedText(editableText(other), read, error)) << error;
      expectSameRequest(other, read);
    }
  }
}

TEST(ReplayEdit, SavedChangesBecomeTheEditAndOnlyThey) {
  const ForwardRequest original = sampleRequest();

  // CRLF line ends in the head, blanks around values, and the final line feed an editor adds.
  const std::string saved =
      "PUT /refunds/7\r\nContent-Type:   text/plain \r\nX-New: v\r\n\r\nrefund\n";
  ForwardRequest edited;
  std::string error;
  ASSERT_TRUE(parseEditedText(saved, edited, error)) << error;
  const ReplayEdit edit = differences(original, edited);
  EXPECT_EQ(edit.method, std::optional<std::string>("PUT"));
  EXPECT_EQ(edit.path, std::optional<std::string>("/refunds/7"));
  EXPECT_EQ(edit.query, std::optional<std::string>(""));
  ASSERT_TRUE(edit.headers.has_value());
  ASSERT_EQ(edit.headers->size(), 2u);
  EXPECT_EQ((*edit.headers)[0].value, "text/plain");
  EXPECT_EQ(edit.body, std::optional<std::string>("refund"));

  // A file that ends after its head has an empty body; only the body changed then.
  ForwardRequest headOnly;
  ASSERT_TRUE(
      parseEditedText("POST /orders?page=1&x\nContent-Type: application/json\nX-A: 1\n"
                      "x-a: two words\n",
                      headOnly, error))
      << error;
  const ReplayEdit bodyOnly = differences(original, headOnly);
  EXPECT_FALSE(bodyOnly.method || bodyOnly.path || bodyOnly.query || bodyOnly.headers);
  EXPECT_EQ(bodyOnly.body, std::optional<std::string>(""));
}

TEST(ReplayEdit, AFileThatDoesNotParseIsRefusedNamingItsLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "line 1: the file is empty"},
      {"\n\nbody", "line 1: the request line"},
      {"PO ST /x\n\n", "line 1: the target"},
      {"POST orders\n\n", "line 1: the target"},
      {"POST /caf\xc3\xa9\n\n", "line 1: the target"},
      {"POST /x\nContent-Type application/json\n\n", "line 2: a header line"},
      {"POST /x\nX-A: 1\n: no name\n\n", "line 3: a header line"},
      {"POST /x\nX A: 1\n\n", "line 2: a header line"},
  };
  for (const auto& [text, words] : cases) {
    ForwardRequest request;
    std::string error;
    EXPECT_FALSE(parseEditedText(text, request, error)) << text;
    EXPECT_EQ(error.rfind(words, 0), 0u) << text << " -> " << error;
  }
}

TEST(ReplayEdit, HeaderOptionsTakeNameColonValue) {
  HeaderField field;
  std::string error;
  ASSERT_TRUE(parseHeaderOption("X-Trace:  \tabc: d ", field, error)) << error;
  EXPECT_EQ(field.name, "X-Trace");
  EXPECT_EQ(field.value, "abc: d");
  ASSERT_TRUE(parseHeaderOption("X-Empty:", field, error)) << error;
  EXPECT_EQ(field.value, "");
  for (const char* bad : {"no colon", ": value", "Bad Name: v"}) {
    EXPECT_FALSE(parseHeaderOption(bad, field, error)) << bad;
    EXPECT_NE(error.find("--header"), std::string::npos) << error;
  }
}

TEST(ReplayEdit, TheJsonHoldsOnlyTheEditsWithBytesThatAreNotTextInBase64) {
  ReplayEdit edit;
  EXPECT_EQ(replayEditJson(edit), "{}");
  edit.method = "PATCH";
  edit.path = "";
  edit.headers =
      std::vector<HeaderField>{{"X-Text", "caf\xc3\xa9"}, {"X-Latin1", "caf\xe9"}, {"X-\xff", "v"}};
  edit.body = std::string("\0\xff", 2);
  Poco::JSON::Parser parser;
  const auto json = parser.parse(replayEditJson(edit)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(json->size(), 4u);
  EXPECT_EQ(json->getValue<std::string>("method"), "PATCH");
  EXPECT_EQ(json->getValue<std::string>("path"), "");
  EXPECT_FALSE(json->has("query"));
  std::string body;
  ASSERT_TRUE(decodeBase64(json->getValue<std::string>("body_base64"), body));
  EXPECT_EQ(body, std::string("\0\xff", 2));

  // Each header comes back as it was, whichever form it went in.
  const auto headers = json->getArray("headers");
  ASSERT_EQ(headers->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    HeaderField field;
    ASSERT_TRUE(decodeHeaderField(headers->getArray(static_cast<unsigned>(i)), field)) << i;
    EXPECT_EQ(field.name, (*edit.headers)[i].name);
    EXPECT_EQ(field.value, (*edit.headers)[i].value);
  }
  EXPECT_EQ(headers->getArray(1)->size(), 3u);
  EXPECT_EQ(headers->getArray(2)->getElement<std::string>(2), "b64name");
}

}  // namespace
}  // namespace anm::cli
