// tests/e2e/cli_inspect_test.cpp: `anonymily events search`, `anonymily diagnose` and
// `anonymily events replay --matching` against a real edge and relay.
// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "tests/e2e/relay_env.h"
#include "tests/e2e/support/digest.h"

namespace anm::e2e {
namespace {

const std::string kSecret = "whsec_test_cliInspectSecret0123456789abc";

// What one run of the CLI printed, and how it ended.
struct CliRun {
  int exitCode = -1;
  std::vector<std::string> out;
  std::vector<std::string> err;

  bool outHas(const std::string& text) const { return anyHas(out, text); }
  bool errHas(const std::string& text) const { return anyHas(err, text); }
  std::string all() const {
    std::string text;
    for (const auto& line : out) text += "out: " + line + "\n";
    for (const auto& line : err) text += "err: " + line + "\n";
    return text;
  }

 private:
  static bool anyHas(const std::vector<std::string>& lines, const std::string& text) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
      return line.find(text) != std::string::npos;
    });
  }
};

class CliInspectTest : public E2eTest {
 protected:
  // `anonymily <args> --hook <id> --token <token> --edge <url>` to its end.
  CliRun cli(std::vector<std::string> args) {
    args.insert(args.end(), {"--hook", env_->hookId(), "--token", env_->relay->token(), "--edge",
                             env_->edge->url()});
    ChildProcess process(ANM_E2E_RELAY_BIN, args, productEnv(env_->dir.path() / "cli-home"));
    CliRun run;
    run.exitCode = process.waitForExit(kStepTimeout).value_or(-1);
    run.out = process.stdoutLines();
    run.err = process.stderrLines();
    return run;
  }

  // The same with stdout and stderr on a pseudo-terminal, as in a person's shell: the exit code
  // and everything the terminal received.
  std::pair<int, std::string> cliOnTerminal(std::vector<std::string> args) {
    args.insert(args.begin(), ANM_E2E_RELAY_BIN);
    args.insert(args.end(), {"--hook", env_->hookId(), "--token", env_->relay->token(), "--edge",
                             env_->edge->url()});
    std::vector<std::string> environment;
    for (const auto& [name, value] : productEnv(env_->dir.path() / "cli-home")) {
      environment.push_back(name + "=" + value);
    }
    int controller = -1;
    int terminal = -1;
    if (::openpty(&controller, &terminal, nullptr, nullptr, nullptr) != 0) {
      ADD_FAILURE() << "openpty failed";
      return {-1, ""};
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(controller);
      ::dup2(terminal, STDOUT_FILENO);
      ::dup2(terminal, STDERR_FILENO);
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      std::vector<char*> envp;
      for (auto& entry : environment) envp.push_back(entry.data());
      envp.push_back(nullptr);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(terminal);

    // Read until the child has closed its side (EIO on Linux), then reap it.
    std::string screen;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(controller, buffer, sizeof buffer);
      if (n <= 0) break;
      screen.append(buffer, static_cast<size_t>(n));
    }
    ::close(controller);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, screen};
  }

  int64_t ingest(const std::string& suffix, const std::string& body, HeaderList headers = {}) {
    WireResponse answer = env_->ingest(request("POST", suffix, "", std::move(headers), body));
    EXPECT_EQ(answer.status, 200) << answer.message.body;
    return jsonInt(parseObject(answer.message.body), "id");
  }

  // Waits until the event's detail lists a delivery report.
  void waitForReport(int64_t eventId) {
    const std::string path =
        "/api/v1/hooks/" + env_->hookId() + "/events/" + std::to_string(eventId);
    const auto deadline = std::chrono::steady_clock::now() + kStepTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      WireResponse answer = apiGet(env_->edgePort(), path, env_->relay->token());
      if (answer.status == 200) {
        auto deliveries = parseObject(answer.message.body)->getArray("deliveries");
        if (deliveries && deliveries->size() > 0) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "no delivery report for event " << eventId << "\n" << env_->describe();
  }
};

// The first column of each table row after the heading: the event ids listed.
std::vector<std::string> listedIds(const CliRun& run) {
  std::vector<std::string> ids;
  for (size_t i = 1; i < run.out.size(); ++i)
    ids.push_back(run.out[i].substr(0, run.out[i].find(' ')));
  return ids;
}

TEST_F(CliInspectTest, SearchListsTheMatchesNewestFirstAndMarksAQueryErrorWhereItIs) {
  ASSERT_NO_FATAL_FAILURE(start());
  const int64_t paid = ingest("/orders", R"({"order":42,"state":"paid"})");
  ingest("/orders", R"({"order":43,"state":"open"})");
  const int64_t paidLater = ingest("/refunds", R"({"order":44,"state":"paid"})");
  ASSERT_TRUE(env_->target->waitForCount(3, kStepTimeout));

  const CliRun found = cli({"events", "search", "body:paid"});
  ASSERT_EQ(found.exitCode, 0) << found.all();
  EXPECT_EQ(listedIds(found),
            (std::vector<std::string>{std::to_string(paidLater), std::to_string(paid)}));

  const CliRun narrowed = cli({"events", "search", "body:paid AND path:/orders", "--json"});
  ASSERT_EQ(narrowed.exitCode, 0) << narrowed.all();
  ASSERT_EQ(narrowed.out.size(), 1u) << narrowed.all();
  EXPECT_EQ(jsonInt(parseObject(narrowed.out[0]), "id"), paid);

  // "verdict:maybe": the value at column 8 is marked under the echoed query.
  const CliRun broken = cli({"events", "search", "verdict:maybe"});
  EXPECT_EQ(broken.exitCode, 1) << broken.all();
  ASSERT_GE(broken.err.size(), 3u) << broken.all();
  EXPECT_NE(broken.err[0].find("invalid query"), std::string::npos) << broken.all();
  EXPECT_EQ(broken.err[1], "  verdict:maybe");
  EXPECT_EQ(broken.err[2], "          ^^^^^");
  EXPECT_TRUE(broken.out.empty());

  // The edge counts bytes; the mark counts columns: three wide characters take two each and
  // the escape byte is echoed as four.
  const std::string japanese = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";
  const CliRun wide = cli({"events", "search", "body:\"" + japanese + "\x1b\" verdict:maybe"});
  ASSERT_GE(wide.err.size(), 3u) << wide.all();
  EXPECT_EQ(wide.err[1], "  body:\"" + japanese + "\\x1b\" verdict:maybe");
  EXPECT_EQ(wide.err[2], "  " + std::string(26, ' ') + "^^^^^");
}

TEST_F(CliInspectTest, DiagnoseNamesATargetThatIsNotListeningAndPointsAtItsPage) {
  RelayEnvOptions options;
  options.targetUrl = deadTargetUrl();
  ASSERT_NO_FATAL_FAILURE(start(std::move(options)));
  const int64_t id = ingest("/nobody-home", "x");
  waitForReport(id);

  const CliRun run = cli({"diagnose", std::to_string(id)});
  ASSERT_EQ(run.exitCode, 0) << run.all();
  EXPECT_TRUE(run.outHas("delivery.nothing_listening")) << run.all();
  EXPECT_TRUE(run.outHas("fix: ")) << run.all();
  EXPECT_TRUE(run.outHas("error=connection refused")) << run.all();
  EXPECT_TRUE(run.outHas("more: " + env_->edge->url() + "/diagnosis/delivery.nothing_listening"))
      << run.all();

  // The model explanation is off on this edge: said, and the findings still stand.
  const CliRun explained = cli({"diagnose", std::to_string(id), "--explain"});
  EXPECT_EQ(explained.exitCode, 0) << explained.all();
  EXPECT_TRUE(explained.outHas("delivery.nothing_listening")) << explained.all();
  EXPECT_TRUE(explained.outHas("no explanation: model explanations are off")) << explained.all();

  EXPECT_EQ(cli({"diagnose", "999999"}).exitCode, 1);
  EXPECT_EQ(cli({"diagnose"}).exitCode, 2);
}

TEST_F(CliInspectTest, DiagnoseSaysALocalHandlerRefusedAWebhookTheEdgeVerified) {
  RelayEnvOptions options;
  options.relayArgs = {"--provider", "stripe", "--secret", kSecret};
  options.responder = [](const RecordedRequest&) {
    TargetServer::Reply reply;
    reply.status = 401;
    reply.body = "No signatures found matching the expected signature for payload";
    return reply;
  };
  ASSERT_NO_FATAL_FAILURE(start(std::move(options)));
  const std::string body = R"({"id":"evt_1","type":"invoice.paid"})";
  const int64_t t = static_cast<int64_t>(std::time(nullptr));
  const std::string signature =
      "t=" + std::to_string(t) + ",v1=" + hmacSha256Hex(kSecret, std::to_string(t) + "." + body);
  const int64_t id = ingest("", body, {{"Stripe-Signature", signature}});
  waitForReport(id);

  const CliRun run = cli({"diagnose", std::to_string(id)});
  ASSERT_EQ(run.exitCode, 0) << run.all();
  EXPECT_TRUE(run.outHas("delivery.local_verification_failed")) << run.all();
  EXPECT_TRUE(run.outHas("No signatures found")) << run.all();
}

TEST_F(CliInspectTest, ShowAndSearchEscapeWhatCouldDriveTheTerminal) {
  ASSERT_NO_FATAL_FAILURE(start());
  // Escape sequences, a bare CR that would hide the line's start, a C1 control and a
  // right-to-left override, in a body the sender chose.
  const std::string body =
      "visible\rHIDDEN \x1b]0;title\x07 \x1b[2J \xc2\x9b"
      "31m \xe2\x80\xae"
      "evil\r\nnext line\n";
  const int64_t id = ingest("/hostile", body);

  const CliRun shown = cli({"events", "show", std::to_string(id)});
  ASSERT_EQ(shown.exitCode, 0) << shown.all();
  std::string out;
  for (const auto& line : shown.out) out += line + "\n";
  for (const char* raw : {"\x1b", "\x07", "\xc2\x9b", "\xe2\x80\xae", "visible\rHIDDEN"}) {
    EXPECT_EQ(out.find(raw), std::string::npos) << "raw bytes reached the terminal:\n" << out;
  }
  EXPECT_NE(out.find("visible\\x0dHIDDEN \\x1b]0;title\\x07 \\x1b[2J \\u009b31m \\u202eevil"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("next line"), std::string::npos) << out;

  const CliRun found = cli({"events", "search", "body:HIDDEN"});
  ASSERT_EQ(found.exitCode, 0) << found.all();
  EXPECT_EQ(listedIds(found), std::vector<std::string>{std::to_string(id)});

  // --raw writes the exact bytes to a pipe, but not to a terminal, where they would act.
  const CliRun piped = cli({"events", "show", std::to_string(id), "--raw"});
  ASSERT_EQ(piped.exitCode, 0) << piped.all();
  const auto [code, screen] = cliOnTerminal({"events", "show", std::to_string(id), "--raw"});
  EXPECT_EQ(code, 1) << screen;
  EXPECT_EQ(screen.find('\x1b'), std::string::npos) << screen;
  EXPECT_NE(screen.find("body holds bytes a terminal would act on"), std::string::npos) << screen;

  // A plain text body goes out raw on a terminal as well.
  const int64_t plain = ingest("/plain", "just text\r\n");
  const auto [plainCode, plainScreen] =
      cliOnTerminal({"events", "show", std::to_string(plain), "--raw"});
  EXPECT_EQ(plainCode, 0) << plainScreen;
  EXPECT_NE(plainScreen.find("just text"), std::string::npos) << plainScreen;
}

TEST_F(CliInspectTest, ReplayMatchingConfirmsTheCountThenReplaysEachMatchToTheRelay) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::vector<int64_t> paid;
  for (int i = 0; i < 3; ++i) {
    paid.push_back(ingest("/p", "paid " + std::to_string(i)));
    ingest("/o", "open " + std::to_string(i));
  }
  ASSERT_TRUE(env_->target->waitForCount(6, kStepTimeout));

  // Without a terminal to ask on, nothing happens unless --yes says so.
  const CliRun unconfirmed = cli({"events", "replay", "--matching", "body:paid"});
  EXPECT_EQ(unconfirmed.exitCode, 2) << unconfirmed.all();
  EXPECT_TRUE(unconfirmed.errHas("--yes")) << unconfirmed.all();

  const CliRun run = cli({"events", "replay", "--matching", "body:paid", "--yes"});
  ASSERT_EQ(run.exitCode, 0) << run.all();
  ASSERT_EQ(run.out.size(), paid.size()) << run.all();
  EXPECT_TRUE(run.errHas("replayed 3 of 3 events")) << run.all();

  // Each new event replays one original, oldest first, and reaches the relay's target.
  for (size_t i = 0; i < paid.size(); ++i) {
    WireResponse detail =
        apiGet(env_->edgePort(), "/api/v1/hooks/" + env_->hookId() + "/events/" + run.out[i],
               env_->relay->token());
    ASSERT_EQ(detail.status, 200) << detail.message.body;
    EXPECT_EQ(jsonInt(parseObject(detail.message.body), "replay_of"), paid[i]);
  }
  ASSERT_TRUE(env_->target->waitForCount(9, kStepTimeout)) << env_->describe();

  const CliRun none = cli({"events", "replay", "--matching", "body:refund", "--yes"});
  EXPECT_EQ(none.exitCode, 0) << none.all();
  EXPECT_TRUE(none.errHas("no events match")) << none.all();
  EXPECT_EQ(cli({"events", "replay", "--matching", "body:paid", "--edit", "--yes"}).exitCode, 2);
}

}  // namespace
}  // namespace anm::e2e
