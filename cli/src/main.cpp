// cli/src/main.cpp: the `anonymily` command: relay webhooks to localhost and inspect events.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli/src/account_commands.h"
#include "cli/src/api_client.h"
#include "cli/src/args.h"
#include "cli/src/command_support.h"
#include "cli/src/config_store.h"
#include "cli/src/connection.h"
#include "cli/src/credentials.h"
#include "cli/src/event_commands.h"
#include "cli/src/event_output.h"
#include "cli/src/named_hooks.h"
#include "cli/src/relay.h"
#include "cli/src/session.h"
#include "cli/src/url.h"

namespace anm::cli {
namespace {

std::atomic<bool> gStop{false};

extern "C" void onStopSignal(int) { gStop.store(true); }

const char kMainHelp[] =
    "usage: anonymily <command> [options]\n"
    "\n"
    "Relays webhooks that reach an Anonymily edge to a server on this machine, byte for byte.\n"
    "\n"
    "commands:\n"
    "  relay           create a hook (or use one) and forward its webhooks to a local URL\n"
    "  events list     list the events stored for a hook\n"
    "  events show     show one event: headers in arrival order and body\n"
    "  events search   find a hook's events with a query\n"
    "  events replay   send stored events to the hook's relays again, as they were or edited\n"
    "  diagnose        say why an event failed, and how to fix it\n"
    "  login           sign in to an edge with a personal access token\n"
    "  logout          forget the token saved for an edge\n"
    "  account         show the signed-in account, its plan and limits\n"
    "  tokens          list, create or revoke personal access tokens\n"
    "  hooks           list, create and configure the account's named hooks\n"
    "  audit           read the account's audit log (owners)\n"
    "\n"
    "Run 'anonymily <command> --help' for a command's options.\n"
    "Environment: ANONYMILY_EDGE (default edge URL), XDG_CONFIG_HOME (token files and\n"
    "credentials).\n";

const char kRelayHelp[] =
    "usage: anonymily relay --to URL [options]\n"
    "       anonymily relay --hook NAME --to URL [options]   (signed in)\n"
    "\n"
    "Without --hook, creates an anonymous hook, prints its public URL and saves its token to\n"
    "$XDG_CONFIG_HOME/anonymily/hooks/<id>.token (mode 0600). Then holds the edge's event\n"
    "stream and forwards every event, in order and one at a time, to the --to URL: same method,\n"
    "the --to path plus the event's path suffix and raw query, the headers in arrival order\n"
    "(minus hop-by-hop fields, Host set to the target), the exact body bytes. Redirects are\n"
    "reported, not followed. On a lost stream it reconnects (250 ms doubling to 10 s, with\n"
    "jitter) and resumes after the last forwarded event; with --hook it also waits that way for\n"
    "an edge that is down at start. The position is saved beside the token, one per hook and\n"
    "--to URL, within 200 ms of the last forwarded event. SIGINT/SIGTERM finish the current "
    "delivery,\n"
    "save the position, flush the delivery reports and exit 0.\n"
    "\n"
    "Signed in ('anonymily login'), --hook NAME selects the account's hook of that name (or\n"
    "id), and creates it with the --provider/--secret/--option/--tolerance/--standard-webhooks\n"
    "given when the account has none; its signing secret is printed once then. On the free plan\n"
    "one relay at a time may hold a named hook: a second one ends with exit 1 and the edge's\n"
    "message.\n"
    "\n"
    "options:\n"
    "  --to URL             local target, e.g. http://localhost:3000 (required)\n"
    "  --edge URL           the edge (default $ANONYMILY_EDGE or http://127.0.0.1:8080)\n"
    "  --provider NAME      verify senders with this provider plugin (stripe, github, ...)\n"
    "  --secret S           the provider's signing secret (needed with --provider, and\n"
    "                       only with it)\n"
    "  --secret-file FILE   read the secret from FILE (one trailing newline is dropped)\n"
    "  --option KEY=VALUE   a provider option; may be repeated\n"
    "  --tolerance SECONDS  timestamp tolerance for signatures (0: no window)\n"
    "  --standard-webhooks  verify Standard Webhooks signatures with the hook's signing\n"
    "                       secret (without --provider)\n"
    "  --hook ID|NAME       use an existing hook (a named one when signed in)\n"
    "  --token TOKEN        its relay token (default: the saved token file)\n"
    "  --last-event-id N    resume after event N (default: the saved position, or 0)\n"
    "  --timeout SECONDS    per delivery to the target, 1..3600 (default 30)\n"
    "  --json               one JSON object per event on stdout; banner on stderr\n"
    "  --quiet              no per-event lines\n"
    "  --ca-file FILE       trust this CA (PEM) for an https edge\n";

void installSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Sleeps in short steps so that SIGINT/SIGTERM end the wait at once.
void sleepUnlessStopped(std::chrono::milliseconds delay) {
  const auto until = std::chrono::steady_clock::now() + delay;
  while (!gStop.load() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
  }
}

// ---- relay -----------------------------------------------------------------------------------

// Creates the anonymous hook with whatever verification was asked for and saves its token. Fails
// fast when the edge is unreachable: nothing exists yet that a retry would be waiting for.
int createHook(const Url& edge, const HookSettings& settings, RelayOptions& relay,
               std::string& ingestUrl, std::string& signingSecret) {
  ApiClient api(edge, "", kApiTimeout);
  ApiResponse response;
  try {
    response = api.send("POST", "/api/v1/hooks", hookCreateBody("", settings));
  } catch (const NetError& e) {
    return failure("could not create hook: could not reach the edge at " + edgeText(edge) + ": " +
                   e.what());
  }

  // An answer that is not JSON means --edge names some other server, whatever its status.
  if (!isJsonObject(response.body)) return failure(notJsonMessage(response.status));
  if (response.status != 201 && response.status != 200) {
    return failure("could not create hook: edge answered " + std::to_string(response.status) +
                   ": " + response.errorText());
  }
  const Poco::JSON::Object::Ptr hook = parseObject(response);
  relay.hookId = getString(*hook, "id");
  relay.token = getString(*hook, "token");
  ingestUrl = getString(*hook, "ingest_url");
  if (settings.standardWebhooks) signingSecret = getString(*hook, "signing_secret");
  if (!isValidHookId(relay.hookId) || relay.token.empty()) {
    return failure("could not create hook: the edge's answer has no valid id and token");
  }

  // Without the file the hook still works for this run; the token is printed nowhere else.
  try {
    saveToken(relay.hookId, relay.token);
  } catch (const std::exception& e) {
    Poco::Logger::get("anm.cli").warning("could not save hook token reason=\"%s\"",
                                         std::string(e.what()));
  }
  return kExitOk;
}

// Signs in and selects the account's hook that `relay --hook NAME` names, creating it with the
// given settings when the account has none of that name. An edge that is down is waited for as
// in checkExistingHook. Returns the exit code when the relay must not start.
std::optional<int> selectNamedHook(const Url& edge, const std::string& nameOrId,
                                   const HookSettings& settings,
                                   std::unique_ptr<MemberSession>& session, RelayOptions& relay,
                                   std::string& ingestUrl, std::string& signingSecret,
                                   bool& created) {
  Poco::Logger& log = Poco::Logger::get("anm.cli");
  const std::optional<std::string> pat = loadCredentials(edge);
  if (!pat) return failure(notSignedInMessage(edge));
  session = std::make_unique<MemberSession>(edge, *pat, kApiTimeout);
  ApiClient api(edge, "", kApiTimeout);
  std::mt19937_64 random(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    std::string reason;
    try {
      Poco::JSON::Object::Ptr hook = findHook(*session, api, nameOrId);
      if (hook.isNull()) {
        if (!isValidHookName(nameOrId)) {
          return failure("no hook named " + printableText(nameOrId) + " in account " +
                         session->identity().accountName +
                         ", and a new hook's name is 1..64 of a-z, 0-9, '-' and '_'");
        }
        hook = createNamedHook(*session, api, nameOrId, settings);
        created = true;
        signingSecret = getString(*hook, "signing_secret");
      } else if (settings.any) {
        log.warning(
            "hook exists; --provider, --secret, --option, --tolerance and --standard-webhooks "
            "only configure a new hook and were ignored hook=%s",
            getString(*hook, "id"));
      }
      relay.hookId = getString(*hook, "id");
      ingestUrl = getString(*hook, "ingest_url");
      relay.session = session.get();
      return std::nullopt;
    } catch (const SessionError& e) {
      return failure(e.what());
    } catch (const NetError& e) {
      if (e.kind() == NetErrorKind::kCertificate) return failure(e.what());
      reason = e.word();
    } catch (const std::exception& e) {
      return failure(e.what());
    }

    // Wait and try again, unless asked to stop meanwhile.
    const std::chrono::milliseconds delay =
        backoffDelay(attempt, relay.backoffStart, relay.backoffCap, random);
    log.warning("edge not available edge=%s reason=\"%s\" retrying attempt=%d delay_ms=%Ld",
                edgeText(edge), reason, attempt + 1, static_cast<Poco::Int64>(delay.count()));
    sleepUnlessStopped(delay);
    if (gStop.load()) {
      log.information("relay stopped before the edge answered hook=%s", printableText(nameOrId));
      return kExitOk;
    }
  }
}

// Checks the hook and token of `relay --hook` before the stream opens. The hook exists already,
// so an edge that is down (unreachable, or 502/503/504 from it or a proxy in front) is waited
// for with the relay's reconnect backoff, one log line per attempt. Returns the exit code when
// the relay must not start: a refusal, an answer that is not an edge's, or a stop signal.
std::optional<int> checkExistingHook(const Url& edge, RelayOptions& relay, std::string& ingestUrl) {
  Poco::Logger& log = Poco::Logger::get("anm.cli");
  ApiClient api(edge, relay.token, kApiTimeout);
  std::mt19937_64 random(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    std::string reason;
    try {
      const ApiResponse response = api.send("GET", "/api/v1/hooks/" + relay.hookId);
      if (response.status >= 502 && response.status <= 504) {
        reason = "status " + std::to_string(response.status) + ": " + response.errorText();
      } else if (!isJsonObject(response.body)) {
        return failure(notJsonMessage(response.status));
      } else if (response.status == 404) {
        return failure("hook " + relay.hookId + " not found or token refused");
      } else if (response.status != 200) {
        return failure("could not read hook: edge answered " + std::to_string(response.status) +
                       ": " + response.errorText());
      } else {
        ingestUrl = getString(*parseObject(response), "ingest_url");
        return std::nullopt;
      }
    } catch (const NetError& e) {
      // A refused certificate stays refused: say why once instead of waiting for the edge.
      if (e.kind() == NetErrorKind::kCertificate) return failure(e.what());
      reason = e.word();
    }

    // Wait and try again, unless asked to stop meanwhile.
    const std::chrono::milliseconds delay =
        backoffDelay(attempt, relay.backoffStart, relay.backoffCap, random);
    log.warning("edge not available edge=%s reason=\"%s\" retrying attempt=%d delay_ms=%Ld",
                edgeText(edge), reason, attempt + 1, static_cast<Poco::Int64>(delay.count()));
    sleepUnlessStopped(delay);
    if (gStop.load()) {
      log.information("relay stopped before the edge answered hook=%s", relay.hookId);
      return kExitOk;
    }
  }
}

int relayCommand(const std::vector<std::string>& argv) {
  std::vector<OptionSpec> specs = {
      {"help", false}, {"edge"},          {"to"},          {"hook"},         {"token"},
      {"timeout"},     {"last-event-id"}, {"json", false}, {"quiet", false}, {"ca-file"}};
  const std::vector<OptionSpec> settingSpecs = hookSettingSpecs();
  specs.insert(specs.end(), settingSpecs.begin(), settingSpecs.end());
  Args args;
  std::string error;
  if (!args.parse(argv, specs, error)) return usageError(error, "relay");
  if (args.has("help")) {
    std::cout << kRelayHelp;
    return kExitOk;
  }
  if (!args.positional().empty()) {
    return usageError("unexpected argument '" + args.positional().front() + "'", "relay");
  }

  // Validate everything before touching the network.
  if (!args.value("to")) return usageError("--to URL is required", "relay");
  const std::optional<Url> target = Url::parse(*args.value("to"), error);
  if (!target) return usageError("--to: " + error, "relay");
  const std::optional<Url> edge = edgeUrl(args, error);
  if (!edge) return usageError("--edge: " + error, "relay");
  if (const int rc = applyCaFile(args, "relay"); rc != kExitOk) return rc;
  long long timeoutS = 30;
  if (args.value("timeout") && !parseInteger(*args.value("timeout"), 1, 3600, timeoutS)) {
    return usageError("--timeout must be a whole number of seconds from 1 to 3600", "relay");
  }
  long long lastEventId = -1;
  if (args.value("last-event-id") &&
      !parseInteger(*args.value("last-event-id"), 0, INT64_MAX, lastEventId)) {
    return usageError("--last-event-id must be a whole number, 0 or more", "relay");
  }
  HookSettings settings;
  if (!parseHookSettings(args, settings, error)) return usageError(error, "relay");
  const bool creating = !args.has("hook");
  if (creating && args.has("token")) return usageError("--token needs --hook", "relay");

  // Which hook --hook means: one with a relay token (given, or saved by an earlier relay), else
  // a named hook of the signed-in account, which the settings may create.
  std::string hookArg;
  bool named = false;
  if (!creating) {
    hookArg = *args.value("hook");
    const bool hasToken = args.has("token") || (isValidHookId(hookArg) && loadToken(hookArg));
    named = !hasToken && hasCredentials(*edge);
    if (!named && settings.any) {
      return usageError(
          "--provider, --secret, --secret-file, --option, --tolerance and --standard-webhooks "
          "configure a new hook; with --hook they need a login ('anonymily login') and create a "
          "named hook when the account has none of that name",
          "relay");
    }
    if (!named && !isValidHookId(hookArg)) return usageError("invalid hook id", "relay");
    if (!named && !hasToken) {
      return usageError("no token for hook " + hookArg + " in " + tokenPath(hookArg) +
                            ": give --token or run 'anonymily relay' without --hook first; "
                            "to relay a named hook of your account, run 'anonymily login "
                            "--edge " +
                            edgeText(*edge) + "' first",
                        "relay");
    }
  }
  const bool json = args.has("json");
  const bool quiet = args.has("quiet");
  setUpLogging(quiet);

  RelayOptions relay;
  relay.edge = *edge;
  relay.target = *target;
  relay.targetText = *args.value("to");
  relay.timeout = std::chrono::seconds(timeoutS);
  relay.json = json;
  relay.quiet = quiet;
  relay.relayId = newRelayId();

  std::string ingestUrl;
  std::string signingSecret;
  bool createdNamed = false;
  std::unique_ptr<MemberSession> session;
  if (creating) {
    if (const int rc = createHook(*edge, settings, relay, ingestUrl, signingSecret);
        rc != kExitOk) {
      return rc;
    }
    installSignalHandlers();
  } else if (named) {
    // Installed first so that Ctrl-C also ends a wait for an edge that is down.
    installSignalHandlers();
    if (const std::optional<int> rc = selectNamedHook(*edge, hookArg, settings, session, relay,
                                                      ingestUrl, signingSecret, createdNamed)) {
      return *rc;
    }
  } else {
    // Use an existing hook; the token comes from the command line or the file a create saved.
    relay.hookId = hookArg;
    relay.token = args.value("token") ? *args.value("token") : *loadToken(relay.hookId);
    installSignalHandlers();
    if (const std::optional<int> rc = checkExistingHook(*edge, relay, ingestUrl)) return *rc;
  }
  if (ingestUrl.empty()) {
    ingestUrl = edge->scheme + "://" + edge->authority() + edge->basePath() + "/h/" + relay.hookId;
  }

  // Where to resume: asked for, else where this machine left off, else the beginning.
  const bool fresh = creating || createdNamed;
  if (lastEventId >= 0) {
    relay.lastEventId = lastEventId;
  } else if (const auto cursor =
                 fresh ? std::nullopt : loadCursor(relay.hookId, relay.targetText)) {
    relay.lastEventId = *cursor;
  }

  // The banner comes first; with --json stdout carries only event lines.
  std::FILE* banner = json ? stderr : stdout;
  std::fprintf(banner, "forwarding %s -> %s\nhook %s\n", ingestUrl.c_str(),
               args.value("to")->c_str(), relay.hookId.c_str());
  if (!signingSecret.empty()) {
    std::fprintf(banner, "signing secret %s (shown once)\n", signingSecret.c_str());
  }
  std::fflush(banner);
  if (named) {
    const MemberIdentity who = session->identity();
    Poco::Logger::get("anm.cli").information(
        "relay started hook=%s name=%s relay=%s account=%s member=%s created=%s", relay.hookId,
        printableText(hookArg), relay.relayId, who.accountName, who.memberName,
        std::string(createdNamed ? "true" : "false"));
  } else {
    Poco::Logger::get("anm.cli").information("relay started hook=%s relay=%s token_file=%s",
                                             relay.hookId, relay.relayId, tokenPath(relay.hookId));
  }
  return runRelay(relay, gStop, stdout);
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kMainHelp;
    return kExitUsage;
  }
  const std::string command = args.front();
  args.erase(args.begin());
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kMainHelp;
    return kExitOk;
  }
  if (command == "--version") {
    std::cout << "anonymily 0.1.0\n";
    return kExitOk;
  }
  try {
    if (command == "relay") return relayCommand(args);
    if (command == "events") return eventsCommand(args);
    if (command == "diagnose") return diagnoseCommand(args);
    if (command == "login") return loginCommand(args);
    if (command == "logout") return logoutCommand(args);
    if (command == "account") return accountCommand(args);
    if (command == "tokens") return tokensCommand(args);
    if (command == "hooks") return hooksCommand(args);
    if (command == "audit") return auditCommand(args);
  } catch (const std::exception& e) {
    return failure(e.what());
  }
  return usageError("unknown command '" + command + "'", "");
}

}  // namespace
}  // namespace anm::cli

int main(int argc, char** argv) { return anm::cli::run(argc, argv); }
