// tests/cli/events_test.cpp: `anonymily events list|show|replay` against the fake edge.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/src/config_store.h"
#include "cli/src/stream_event.h"
#include "support/cli_process.h"
#include "support/fake_edge.h"
#include "support/temp_dir.h"

namespace anm::cli::test {
namespace {

std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeEvent first;
    first.method = "POST";
    first.path = "/stripe";
    first.query = "a=1";
    first.eventType = "invoice.paid";
    first.headers = {{"Content-Type", "application/json"}, {"X-B", "2"}, {"x-a", "1"}};
    first.body = "{\"hello\":\"world\"}";
    edge_.addEvent(first);
    FakeEvent second;
    second.method = "PUT";
    second.path = "/bin";
    second.headers = {{"X-Bin", "\x01\xff"}};
    second.body = std::string("\0\x01\xff\xfe binary\n", 12);
    edge_.addEvent(second);
  }

  std::map<std::string, std::string> env() const {
    return {{"XDG_CONFIG_HOME", config_.path()}, {"ANONYMILY_EDGE", edge_.url()}};
  }

  std::vector<std::string> withToken(std::vector<std::string> args) const {
    args.insert(args.end(), {"--hook", FakeEdge::kHookId, "--token", FakeEdge::kToken});
    return args;
  }

  TempDir config_;
  FakeEdge edge_;
};

TEST_F(EventsTest, ListPrintsOneRowPerEventWithTheDocumentedColumns) {
  const CliResult result = runCli(withToken({"events", "list"}), env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  const std::vector<std::string> lines = splitLines(result.out);
  ASSERT_EQ(lines.size(), 3u) << result.out;
  EXPECT_EQ(lines[0].rfind("ID", 0), 0u);
  for (const char* column : {"TIME", "METHOD", "PATH", "VERDICT", "TYPE", "SIZE", "LAST"}) {
    EXPECT_NE(lines[0].find(column), std::string::npos) << column;
  }
  EXPECT_EQ(lines[1].rfind("1 ", 0), 0u);
  EXPECT_NE(lines[1].find("POST"), std::string::npos);
  EXPECT_NE(lines[1].find("/stripe?a=1"), std::string::npos);
  EXPECT_NE(lines[1].find("valid/ok"), std::string::npos);
  EXPECT_NE(lines[1].find("invoice.paid"), std::string::npos);
  EXPECT_NE(lines[1].find(" 17 "), std::string::npos);  // body size
  EXPECT_NE(lines[2].find("/bin"), std::string::npos);
}

TEST_F(EventsTest, ListMarksAnEventTheEdgeCannotRead) {
  FakeEvent sealed;
  sealed.path = "/sealed";
  sealed.integrityError = "event 3 does not open with key k2";
  edge_.addEvent(sealed);
  const CliResult result = runCli(withToken({"events", "list"}), env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  const std::vector<std::string> lines = splitLines(result.out);
  ASSERT_EQ(lines.size(), 4u) << result.out;

  // At the end of its own line only, with the edge's reason.
  EXPECT_EQ(lines[3].rfind("3 ", 0), 0u) << lines[3];
  const std::string mark = "  UNREADABLE: event 3 does not open with key k2";
  ASSERT_GE(lines[3].size(), mark.size()) << lines[3];
  EXPECT_EQ(lines[3].substr(lines[3].size() - mark.size()), mark) << lines[3];
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(lines[i].find("UNREADABLE"), std::string::npos);
}

TEST_F(EventsTest, ListJsonAndPagingPassAfterAndLimit) {
  const CliResult result =
      runCli(withToken({"events", "list", "--after", "1", "--limit", "5", "--json"}), env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  Poco::JSON::Parser parser;
  const auto event = parser.parse(result.out).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(event->getValue<int>("id"), 2);
  EXPECT_EQ(event->getValue<std::string>("path"), "/bin");
}

TEST_F(EventsTest, ShowRawWritesExactlyTheBodyBytes) {
  const CliResult result = runCli(withToken({"events", "show", "2", "--raw"}), env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out, std::string("\0\x01\xff\xfe binary\n", 12));
}

TEST_F(EventsTest, ShowListsHeadersInArrivalOrderThenTheBody) {
  const CliResult result = runCli(withToken({"events", "show", "1"}), env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  const std::string headers = "Content-Type: application/json\nX-B: 2\nx-a: 1\n\n";
  const size_t at = result.out.find(headers);
  ASSERT_NE(at, std::string::npos) << result.out;
  EXPECT_EQ(result.out.substr(at + headers.size()), "{\"hello\":\"world\"}\n");
  EXPECT_NE(result.out.find("POST /stripe?a=1"), std::string::npos);

  // A binary body is not dumped on the terminal.
  const CliResult binary = runCli(withToken({"events", "show", "2"}), env());
  ASSERT_EQ(binary.exitCode, 0);
  EXPECT_NE(binary.out.find("binary body, 12 bytes"), std::string::npos) << binary.out;
  // Neither are control bytes or bytes that are not UTF-8 in a header.
  EXPECT_NE(binary.out.find("X-Bin: \\x01\\xff\n"), std::string::npos) << binary.out;
}

TEST_F(EventsTest, ReplayPrintsTheNewEventId) {
  const CliResult result = runCli(withToken({"events", "replay", "1"}), env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out, "3\n");
  const auto events = edge_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].replayOf, 1);
  EXPECT_EQ(events[2].body, events[0].body);
}

TEST_F(EventsTest, ShowPrintsWhatEachDeliveryReportedAndMarksAnEditedReplay) {
  ReportedDelivery redirect{1, "laptop", 302, 12, ""};
  redirect.timeoutMs = 30000;
  redirect.startedAtMs = 1764800000000;
  redirect.location = "/login?next=%2F";
  redirect.responseExcerpt = "<a href=\"/login\">\n";
  edge_.addDelivery(redirect);
  ReportedDelivery timeout{1, "laptop", 0, 1000, "timeout"};
  timeout.phase = "receiving";
  timeout.timeoutMs = 1000;
  timeout.targetHttps = true;
  edge_.addDelivery(timeout);

  const CliResult result = runCli(withToken({"events", "show", "1"}), env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  const std::string& out = result.out;
  EXPECT_NE(
      out.find("delivered  relay=laptop status=302 duration_ms=12 timeout_ms=30000 started=\""),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("location=/login?next=%2F\n           answer: <a href=\"/login\">\\x0a\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("delivered  relay=laptop status=0 duration_ms=1000 error=\"timeout\" "
                     "phase=receiving timeout_ms=1000 target_https=true\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("edited"), std::string::npos);

  FakeEvent edited;
  edited.replayOf = 1;
  edited.modified = true;
  const int64_t id = edge_.addEvent(edited);
  const CliResult copy = runCli(withToken({"events", "show", std::to_string(id)}), env());
  ASSERT_EQ(copy.exitCode, 0) << copy.err;
  EXPECT_NE(copy.out.find("edited     yes"), std::string::npos) << copy.out;
}

TEST_F(EventsTest, ReplayOptionsSendOnlyTheirEditsAndTheWarningIsPrinted) {
  const CliResult result =
      runCli(withToken({"events", "replay", "1", "--method", "PUT", "--query", "", "--header",
                        "X-A: 1", "--header", "x-b:two words"}),
             env());
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_EQ(result.out, "3\n");
  EXPECT_NE(result.err.find("warning: the provider's signature covers the original request"),
            std::string::npos)
      << result.err;
  ASSERT_EQ(edge_.replayBodies().size(), 1u);
  EXPECT_EQ(edge_.replayBodies()[0],
            R"({"method":"PUT","query":"","headers":[["X-A","1"],["x-b","two words"]]})");

  // The copy the edge stored has the edits and the rest of the original.
  const FakeEvent copy = edge_.events().at(2);
  EXPECT_TRUE(copy.modified);
  EXPECT_EQ(copy.method, "PUT");
  EXPECT_EQ(copy.path, "/stripe");
  EXPECT_EQ(copy.query, "");
  EXPECT_EQ(copy.body, edge_.events()[0].body);

  // Without an edit option the replay sends no body and warns of nothing.
  const CliResult plain = runCli(withToken({"events", "replay", "1"}), env());
  ASSERT_EQ(plain.exitCode, 0) << plain.err;
  EXPECT_EQ(edge_.replayBodies().back(), "");
  EXPECT_EQ(plain.err.find("warning"), std::string::npos);
}

TEST_F(EventsTest, ReplayBodyComesFromAFileOrStdinByteForByte) {
  const std::string bytes("\0\xff body\n", 8);
  const std::string file = config_.path() + "/body.bin";
  std::ofstream(file, std::ios::binary) << bytes;
  ASSERT_EQ(runCli(withToken({"events", "replay", "1", "--body-file", file}), env()).exitCode, 0);
  EXPECT_EQ(edge_.events().back().body, bytes);

  const CliResult piped =
      runCli(withToken({"events", "replay", "1", "--body-file", "-"}), env(), std::string("stdin"));
  ASSERT_EQ(piped.exitCode, 0) << piped.err;
  EXPECT_EQ(edge_.events().back().body, "stdin");

  const CliResult missing =
      runCli(withToken({"events", "replay", "1", "--body-file", config_.path() + "/none"}), env());
  EXPECT_EQ(missing.exitCode, 2);
  EXPECT_NE(missing.err.find("could not read --body-file"), std::string::npos) << missing.err;
  EXPECT_EQ(edge_.replayBodies().size(), 2u);
}

class EditorTest : public EventsTest {
 protected:
  /// An $EDITOR: a script in the test's directory that runs `body` with the file as $1.
  std::string editor(const std::string& body) {
    const std::string path = scripts_.path() + "/editor-" + std::to_string(++editors_);
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0700);
    return path;
  }

  CliResult replayWith(const std::string& editorCommand, std::vector<std::string> extra = {}) {
    auto environment = env();
    environment["EDITOR"] = editorCommand;
    environment["TMPDIR"] = files_.path();
    std::vector<std::string> args = {"events", "replay", "1", "--edit"};
    args.insert(args.end(), extra.begin(), extra.end());
    return runCli(withToken(args), environment);
  }

  /// Files the editor was given that are still there.
  size_t leftOver() const {
    size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(files_.path())) {
      (void)entry;
      ++count;
    }
    return count;
  }

  TempDir scripts_;
  TempDir files_;
  int editors_ = 0;
};

TEST_F(EditorTest, WhatIsSavedIsSentAndOnlyWhatChanged) {
  // The editor sees the event as an HTTP request without a version, and changes two things.
  const std::string seen = scripts_.path() + "/seen";
  const CliResult result = replayWith(
      editor("cp \"$1\" " + seen + " && sed -i -e 's/^POST /PATCH /' -e 's/world/there/' \"$1\""));
  ASSERT_EQ(result.exitCode, 0) << result.err;
  std::ifstream in(seen, std::ios::binary);
  std::ostringstream shown;
  shown << in.rdbuf();
  EXPECT_EQ(shown.str(),
            "POST /stripe?a=1\nContent-Type: application/json\nX-B: 2\nx-a: 1\n\n"
            "{\"hello\":\"world\"}\n");

  ASSERT_EQ(edge_.replayBodies().size(), 1u);
  EXPECT_EQ(edge_.replayBodies()[0],
            R"({"method":"PATCH","body_base64":")" + encodeBase64("{\"hello\":\"there\"}") + "\"}");
  EXPECT_EQ(edge_.events().back().body, "{\"hello\":\"there\"}");
  EXPECT_NE(result.err.find("warning: "), std::string::npos);
  EXPECT_EQ(leftOver(), 0u) << "the file with the event's contents was left behind";
}

TEST_F(EditorTest, AFileThatDoesNotParseIsRefusedWithItsLineAndNothingIsReplayed) {
  const CliResult result =
      replayWith(editor("printf 'POST /x\\nNot a header\\n\\nbody\\n' > \"$1\""));
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.err.find("line 2: a header line must be 'Name: value'"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("nothing was replayed"), std::string::npos) << result.err;
  EXPECT_TRUE(edge_.replayBodies().empty());
  EXPECT_EQ(leftOver(), 0u);
}

TEST_F(EditorTest, NoChangeAFailingEditorOrAnotherEditOptionReplaysNothing) {
  const CliResult unchanged = replayWith("true");
  EXPECT_EQ(unchanged.exitCode, 1);
  EXPECT_NE(unchanged.err.find("nothing was changed"), std::string::npos) << unchanged.err;

  const CliResult failed = replayWith("false");
  EXPECT_EQ(failed.exitCode, 1);
  EXPECT_NE(failed.err.find("the editor (false) exited with 1"), std::string::npos) << failed.err;

  const CliResult mixed = replayWith("true", {"--method", "PUT"});
  EXPECT_EQ(mixed.exitCode, 2);
  EXPECT_NE(mixed.err.find("--edit takes no --method"), std::string::npos) << mixed.err;
  EXPECT_TRUE(edge_.replayBodies().empty());
  EXPECT_EQ(leftOver(), 0u);
}

TEST_F(EventsTest, UnknownEventOrWrongTokenFailsWithExitOne) {
  const CliResult missing = runCli(withToken({"events", "show", "99"}), env());
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_NE(missing.err.find("not found"), std::string::npos);
  const CliResult wrong =
      runCli({"events", "list", "--hook", FakeEdge::kHookId, "--token", "nope"}, env());
  EXPECT_EQ(wrong.exitCode, 1);
}

TEST_F(EventsTest, SavedTokenIsUsedWhenNoneIsGiven) {
  // Without a token anywhere it is a usage error.
  const CliResult none = runCli({"events", "list", "--hook", FakeEdge::kHookId}, env());
  EXPECT_EQ(none.exitCode, 2);
  EXPECT_NE(none.err.find("no token"), std::string::npos);

  // Save it the way relay does, in this test's config directory.
  ::setenv("XDG_CONFIG_HOME", config_.path().c_str(), 1);
  saveToken(FakeEdge::kHookId, FakeEdge::kToken);
  ::unsetenv("XDG_CONFIG_HOME");
  const CliResult saved = runCli({"events", "list", "--hook", FakeEdge::kHookId}, env());
  EXPECT_EQ(saved.exitCode, 0) << saved.err;
  EXPECT_EQ(edge_.authorizations().back(), std::string("Bearer ") + FakeEdge::kToken);
}

}  // namespace
}  // namespace anm::cli::test
