// cli/src/main.cpp: the `anonymily` command: relay webhooks to localhost and inspect events.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/FormattingChannel.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/LocalDateTime.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/Process.h>
#include <Poco/Timestamp.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
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
#include "cli/src/event_output.h"
#include "cli/src/named_hooks.h"
#include "cli/src/relay.h"
#include "cli/src/replay_edit.h"
#include "cli/src/session.h"
#include "cli/src/stream_event.h"
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
    "  events replay   send a stored event to the hook's relays again\n"
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

const char kEventsHelp[] =
    "usage: anonymily events list --hook ID [--after N] [--limit N] [--json]\n"
    "       anonymily events show EVENT_ID --hook ID [--raw]\n"
    "       anonymily events replay EVENT_ID --hook ID [--method M] [--path P] [--query Q]\n"
    "                               [--header 'Name: value' ...] [--body-file FILE | -]\n"
    "       anonymily events replay EVENT_ID --hook ID --edit\n"
    "\n"
    "common options:\n"
    "  --hook ID     the hook (required); signed in, also a named hook of the account\n"
    "  --edge URL    the edge (default $ANONYMILY_EDGE or http://127.0.0.1:8080)\n"
    "  --token T     relay token (default: the saved token file, else the login)\n"
    "  --ca-file F   trust this CA (PEM) for an https edge\n"
    "list:\n"
    "  --after N     only events with an id above N (default 0)\n"
    "  --limit N     at most N events, 1..1000 (default 100)\n"
    "  --json        one JSON object per event\n"
    "  an event the edge stores but cannot read ends its line with UNREADABLE: <reason>\n"
    "show:\n"
    "  --raw         write the exact body bytes to stdout and nothing else\n"
    "replay: prints the id of the new event. An edit option replays an edited copy instead,\n"
    "  which the edge marks modified and unsigned: the provider's signature covers the\n"
    "  original request only, so the local handler's check of it will fail.\n"
    "  --method M        the method\n"
    "  --path P          the path suffix after /h/<hook id>: \"\" or starting with /\n"
    "  --query Q         the raw query, without '?'\n"
    "  --header 'N: V'   a header field; may be repeated; replaces all of the event's\n"
    "  --body-file F     the body: the bytes of F, or of stdin for -\n"
    "  --edit            open the event in $EDITOR (else vi) and send what is saved: a line\n"
    "                    METHOD TARGET (the path suffix, then ? and the query), the header\n"
    "                    lines 'Name: value', an empty line, then the body byte for byte; the\n"
    "                    file's last line feed is not part of the body\n";

void setUpLogging(bool quiet) {
  Poco::AutoPtr<Poco::ConsoleChannel> console(new Poco::ConsoleChannel(std::cerr));
  // Local wall time to the millisecond, like the relay's per-event lines, so that a log line
  // can be placed among them.
  Poco::AutoPtr<Poco::PatternFormatter> pattern(new Poco::PatternFormatter("%H:%M:%S.%i %q %t"));
  pattern->setProperty(Poco::PatternFormatter::PROP_TIMES, "local");
  Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(pattern, console));
  Poco::Logger::root().setChannel(channel);
  Poco::Logger::root().setLevel(quiet ? Poco::Message::PRIO_WARNING
                                      : Poco::Message::PRIO_INFORMATION);
  Poco::Logger::get("anm.cli").setLevel(quiet ? Poco::Message::PRIO_WARNING
                                              : Poco::Message::PRIO_INFORMATION);
}

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

bool isUtf8Text(const std::string& bytes) {
  for (unsigned char c : bytes) {
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') return false;
  }
  return isValidUtf8(bytes);
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

// ---- events ----------------------------------------------------------------------------------

struct EventsContext {
  std::optional<Url> edge;
  std::string hookId;
  std::string token;
  std::unique_ptr<MemberSession> session;  ///< for a named hook of the signed-in account

  /// A request with the relay token, or as the signed-in member.
  ApiResponse send(ApiClient& api, const std::string& method, const std::string& path,
                   const std::string& body = "") {
    if (!session) return api.send(method, path, body);
    return sendAsMember(*session, api, method, path, body, true);
  }
};

// The hook and how to authenticate for it: --token, else the token file a relay saved, else the
// signed-in member (--hook then names a hook of the account, by name or id).
int eventsContext(const Args& args, EventsContext& context) {
  std::string error;
  context.edge = edgeUrl(args, error);
  if (!context.edge) return usageError("--edge: " + error, "events");
  if (const int rc = applyCaFile(args, "events"); rc != kExitOk) return rc;
  if (!args.value("hook")) return usageError("--hook ID is required", "events");
  const std::string hook = *args.value("hook");
  if (args.value("token")) {
    if (!isValidHookId(hook)) return usageError("invalid hook id", "events");
    context.hookId = hook;
    context.token = *args.value("token");
    return kExitOk;
  }
  if (isValidHookId(hook)) {
    if (const auto saved = loadToken(hook)) {
      context.hookId = hook;
      context.token = *saved;
      return kExitOk;
    }
  }
  if (!hasCredentials(*context.edge)) {
    if (!isValidHookId(hook)) return usageError("invalid hook id", "events");
    return usageError("no token for hook " + hook + " in " + tokenPath(hook) +
                          ": give --token or run 'anonymily relay' first; for a named hook of "
                          "your account, run 'anonymily login --edge " +
                          edgeText(*context.edge) + "' first",
                      "events");
  }

  // Signed in: resolve the name (or id) among the account's hooks.
  context.session = signIn(*context.edge, error);
  if (!context.session) return failure(error);
  ApiClient api(*context.edge, "", kApiTimeout);
  const Poco::JSON::Object::Ptr found = findHook(*context.session, api, hook);
  if (found.isNull()) {
    return failure("no hook named " + printableText(hook) + " (or with that id) in account " +
                   context.session->identity().accountName);
  }
  context.hookId = getString(*found, "id");
  return kExitOk;
}

int apiFailure(const ApiResponse& response, const std::string& doing) {
  if (!isJsonObject(response.body)) return failure(notJsonMessage(response.status));
  if (response.status == 404) return failure(doing + ": not found (or the token was refused)");
  return failure(doing + ": edge answered " + std::to_string(response.status) + ": " +
                 response.errorText());
}

std::string lastDelivery(const Poco::JSON::Object& event) {
  const Poco::JSON::Array::Ptr deliveries = event.getArray("deliveries");
  if (!deliveries || deliveries->size() == 0) return "-";
  const Poco::JSON::Object::Ptr last = deliveries->getObject(deliveries->size() - 1);
  const int64_t status = getInt(*last, "status");
  if (status == 0) return getString(*last, "error");
  return std::to_string(status);
}

int eventsList(const Args& args) {
  EventsContext context;
  if (const int rc = eventsContext(args, context); rc != kExitOk) return rc;
  long long after = 0;
  long long limit = 100;
  if (args.value("after") && !parseInteger(*args.value("after"), 0, INT64_MAX, after)) {
    return usageError("--after must be a whole number, 0 or more", "events");
  }
  if (args.value("limit") && !parseInteger(*args.value("limit"), 1, 1000, limit)) {
    return usageError("--limit must be from 1 to 1000", "events");
  }

  ApiClient api(*context.edge, context.token, kApiTimeout);
  const ApiResponse response =
      context.send(api, "GET",
                   "/api/v1/hooks/" + context.hookId + "/events?after=" + std::to_string(after) +
                       "&limit=" + std::to_string(limit));
  if (response.status != 200) return apiFailure(response, "could not list events");
  const Poco::JSON::Object::Ptr root = parseObject(response);
  const Poco::JSON::Array::Ptr events = root->getArray("events");
  if (!events) return failure("could not list events: the answer has no events array");

  // JSON lines, or a table sized to its content.
  if (args.has("json")) {
    for (size_t i = 0; i < events->size(); ++i) {
      Poco::JSON::Stringifier::stringify(events->get(static_cast<unsigned>(i)), std::cout, 0, -1,
                                         Poco::JSON_WRAP_STRINGS);
      std::cout << "\n";
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "TIME", "METHOD", "PATH", "VERDICT", "TYPE", "SIZE", "LAST"}};
  for (size_t i = 0; i < events->size(); ++i) {
    const Poco::JSON::Object::Ptr event = events->getObject(static_cast<unsigned>(i));
    std::string path = getString(*event, "path");
    if (path.empty()) path = "/";
    const std::string query = getString(*event, "query");
    if (!query.empty()) path += "?" + query;
    std::string verdict = getString(*event, "verdict");
    const std::string reason = getString(*event, "reason");
    if (!reason.empty()) verdict += "/" + reason;
    const std::string type = getString(*event, "event_type");
    rows.push_back({std::to_string(getInt(*event, "id")),
                    localTime(getInt(*event, "received_at_ms")), getString(*event, "method"), path,
                    verdict, type.empty() ? "-" : type, std::to_string(getInt(*event, "size")),
                    lastDelivery(*event)});

    // The edge holds the event but cannot open its contents (docs/protocol.md): said at the
    // end of its line, so that it is not taken for an empty request.
    const std::string unreadable = getString(*event, "integrity_error");
    if (!unreadable.empty()) rows.back().push_back("UNREADABLE: " + printableText(unreadable));
  }
  std::cout << formatTable(rows);
  if (static_cast<long long>(events->size()) == limit) {
    std::cerr << "more events may follow: --after " << getInt(*root, "next_after") << "\n";
  }
  return kExitOk;
}

// One delivery of an event's detail: its facts on one line, then what the local server
// answered, each only when the relay reported it.
std::string deliveryLines(const Poco::JSON::Object& d) {
  std::ostringstream out;
  out << "delivered  relay=" << printableText(getString(d, "relay"))
      << " status=" << getInt(d, "status") << " duration_ms=" << getInt(d, "duration_ms");
  if (!getString(d, "error").empty()) {
    out << " error=\"" << printableText(getString(d, "error")) << "\"";
  }
  const std::string phase = getString(d, "phase");
  if (!phase.empty() && phase != "unknown") out << " phase=" << printableText(phase);
  if (getInt(d, "timeout_ms") > 0) out << " timeout_ms=" << getInt(d, "timeout_ms");
  if (d.optValue<bool>("target_https", false)) out << " target_https=true";
  if (getInt(d, "started_at_ms") > 0)
    out << " started=\"" << localTime(getInt(d, "started_at_ms")) << "\"";
  if (!getString(d, "location").empty()) {
    out << " location=" << printableText(getString(d, "location"));
  }
  out << "\n";
  if (!getString(d, "response_excerpt").empty()) {
    out << "           answer: " << printableText(getString(d, "response_excerpt")) << "\n";
  }
  if (!getString(d, "integrity_error").empty()) {
    out << "           answer and location unreadable: "
        << printableText(getString(d, "integrity_error")) << "\n";
  }
  return out.str();
}

int eventsShow(const Args& args, const std::string& eventId) {
  EventsContext context;
  if (const int rc = eventsContext(args, context); rc != kExitOk) return rc;
  ApiClient api(*context.edge, context.token, kApiTimeout);
  const std::string base = "/api/v1/hooks/" + context.hookId + "/events/" + eventId;

  // --raw: the body bytes and nothing else.
  if (args.has("raw")) {
    const ApiResponse response = context.send(api, "GET", base + "/body");
    if (response.status != 200) return apiFailure(response, "could not read event " + eventId);
    std::fwrite(response.body.data(), 1, response.body.size(), stdout);
    std::fflush(stdout);
    return kExitOk;
  }

  const ApiResponse response = context.send(api, "GET", base);
  if (response.status != 200) return apiFailure(response, "could not read event " + eventId);
  const Poco::JSON::Object::Ptr event = parseObject(response);
  std::string path = getString(*event, "path");
  if (path.empty()) path = "/";
  if (!getString(*event, "query").empty()) path += "?" + getString(*event, "query");
  std::ostringstream out;
  out << "event      " << getInt(*event, "id") << "\n";
  out << "received   " << localTime(getInt(*event, "received_at_ms")) << "\n";
  out << "request    " << getString(*event, "method") << " " << path << "\n";
  out << "verdict    " << getString(*event, "verdict") << " (" << getString(*event, "reason")
      << ")";
  if (!getString(*event, "message").empty()) out << " " << getString(*event, "message");
  out << "\n";
  if (!getString(*event, "event_type").empty()) {
    out << "type       " << getString(*event, "event_type") << "\n";
  }
  if (!getString(*event, "delivery_id").empty()) {
    out << "delivery   " << getString(*event, "delivery_id") << "\n";
  }
  if (getInt(*event, "replay_of") != 0) out << "replay of  " << getInt(*event, "replay_of") << "\n";
  if (event->optValue<bool>("modified", false)) {
    out << "edited     yes: the provider's signature does not cover this request\n";
  }
  out << "size       " << getInt(*event, "size") << "\n";
  if (const Poco::JSON::Array::Ptr deliveries = event->getArray("deliveries")) {
    for (size_t i = 0; i < deliveries->size(); ++i) {
      out << deliveryLines(*deliveries->getObject(static_cast<unsigned>(i)));
    }
  }
  out << "\n";
  if (const Poco::JSON::Array::Ptr headers = event->getArray("headers")) {
    for (size_t i = 0; i < headers->size(); ++i) {
      HeaderField field;
      if (!decodeHeaderField(headers->getArray(static_cast<unsigned>(i)), field)) {
        return failure("could not read event " + eventId + ": header " + std::to_string(i) +
                       " is malformed");
      }
      out << printableText(field.name) << ": " << printableText(field.value) << "\n";
    }
  }
  out << "\n";
  std::string body;
  if (!decodeBase64(getString(*event, "body_base64"), body)) {
    return failure("could not read event " + eventId + ": body_base64 is not valid base64");
  }
  if (isUtf8Text(body)) {
    out << body;
    if (!body.empty() && body.back() != '\n') out << "\n";
  } else {
    out << "(binary body, " << body.size() << " bytes; use --raw to write it out)\n";
  }
  std::cout << out.str();
  return kExitOk;
}

// Removes a file when it goes out of scope (the edited copy of an event holds its contents).
struct RemovedFile {
  std::string path;
  ~RemovedFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

// Opens `original` in the user's editor as editableText (replay_edit.h) and reads what was
// saved into `edited`. Returns the exit code when there is nothing to send.
std::optional<int> editInEditor(const ForwardRequest& original, ForwardRequest& edited) {
  // A file only this user can read: it holds the webhook's headers and body.
  const char* tmp = std::getenv("TMPDIR");
  RemovedFile file{std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                   "/anonymily-event-XXXXXX.http"};
  const int fd = ::mkstemps(file.path.data(), 5);
  if (fd < 0) {
    const std::string why = std::strerror(errno);
    file.path.clear();
    return failure("could not create a file to edit the event in: " + why);
  }
  const std::string text = editableText(original);
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!written) return failure("could not write " + file.path);

  // $EDITOR may hold arguments ("code --wait"), so the shell splits it, as git does.
  const char* editor = std::getenv("EDITOR");
  const std::string command = editor != nullptr && *editor != '\0' ? editor : "vi";
  Poco::ProcessHandle handle =
      Poco::Process::launch("/bin/sh", {"-c", command + " \"$1\"", "sh", file.path});
  const int status = handle.wait();
  if (status != 0) {
    return failure("the editor (" + command + ") exited with " + std::to_string(status) +
                   "; nothing was replayed");
  }

  std::ifstream in(file.path, std::ios::binary);
  std::ostringstream saved;
  saved << in.rdbuf();
  std::string error;
  if (!parseEditedText(saved.str(), edited, error)) {
    return failure("could not read the edited event: " + error + "; nothing was replayed");
  }
  return std::nullopt;
}

// The edit the options ask for. Returns the exit code of a usage error.
std::optional<int> editFromOptions(const Args& args, ReplayEdit& edit) {
  if (args.value("method")) edit.method = *args.value("method");
  if (args.value("path")) edit.path = *args.value("path");
  if (args.value("query")) edit.query = *args.value("query");
  if (args.has("header")) {
    edit.headers.emplace();
    for (const std::string& text : args.values("header")) {
      HeaderField field;
      std::string error;
      if (!parseHeaderOption(text, field, error)) return usageError(error, "events");
      edit.headers->push_back(std::move(field));
    }
  }
  if (const auto file = args.value("body-file")) {
    std::ostringstream body;
    if (*file == "-") {
      body << std::cin.rdbuf();
    } else {
      std::ifstream in(*file, std::ios::binary);
      if (!in) return usageError("could not read --body-file " + *file, "events");
      body << in.rdbuf();
    }
    edit.body = body.str();
  }
  return std::nullopt;
}

int eventsReplay(const Args& args, const std::string& eventId) {
  // The options are checked before anything is asked of the edge.
  ReplayEdit edit;
  const bool editing = args.has("edit");
  for (const char* option : {"method", "path", "query", "header", "body-file"}) {
    if (editing && args.has(option)) {
      return usageError(
          std::string("--edit takes no --") + option + "; change the request in the editor",
          "events");
    }
  }
  if (const auto rc = editFromOptions(args, edit)) return *rc;

  EventsContext context;
  if (const int rc = eventsContext(args, context); rc != kExitOk) return rc;
  ApiClient api(*context.edge, context.token, kApiTimeout);
  const std::string base = "/api/v1/hooks/" + context.hookId + "/events/" + eventId;

  // --edit: the event as the edge holds it, changed in the editor; only what changed is sent.
  if (editing) {
    const ApiResponse read = context.send(api, "GET", base);
    if (read.status != 200) return apiFailure(read, "could not read event " + eventId);
    StreamEvent original;
    std::string error;
    if (!parseStreamEvent(read.body, original, error)) {
      return failure("could not read event " + eventId + ": " + error);
    }
    ForwardRequest edited;
    if (const auto rc = editInEditor(original.request, edited)) return *rc;
    edit = differences(original.request, edited);
    if (edit.empty()) return failure("nothing was changed; event " + eventId + " was not replayed");
  }

  const ApiResponse response =
      context.send(api, "POST", base + "/replay", edit.empty() ? "" : replayEditJson(edit));
  if (response.status != 201 && response.status != 200) {
    return apiFailure(response, "could not replay event " + eventId);
  }
  const Poco::JSON::Object::Ptr copy = parseObject(response);
  std::cout << getInt(*copy, "id") << "\n";
  if (!getString(*copy, "warning").empty()) {
    std::cerr << "anonymily: warning: " << printableText(getString(*copy, "warning")) << "\n";
  }
  return kExitOk;
}

int eventsCommand(const std::vector<std::string>& argv) {
  if (argv.empty() || argv.front() == "--help" || argv.front() == "-h" || argv.front() == "help") {
    std::cout << kEventsHelp;
    return argv.empty() ? kExitUsage : kExitOk;
  }
  const std::string sub = argv.front();
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  std::vector<OptionSpec> specs = {{"help", false}, {"edge"}, {"hook"}, {"token"}, {"ca-file"}};
  if (sub == "list") {
    specs.insert(specs.end(), {{"after"}, {"limit"}, {"json", false}});
  } else if (sub == "show") {
    specs.push_back({"raw", false});
  } else if (sub == "replay") {
    specs.insert(
        specs.end(),
        {{"method"}, {"path"}, {"query"}, {"header", true, true}, {"body-file"}, {"edit", false}});
  } else {
    return usageError("unknown events command '" + sub + "'", "events");
  }
  Args args;
  std::string error;
  if (!args.parse(rest, specs, error)) return usageError(error, "events");
  if (args.has("help")) {
    std::cout << kEventsHelp;
    return kExitOk;
  }
  setUpLogging(true);

  // list takes no positional argument; show and replay take exactly one event id.
  try {
    if (sub == "list") {
      if (!args.positional().empty()) {
        return usageError("unexpected argument '" + args.positional().front() + "'", "events");
      }
      return eventsList(args);
    }
    long long id = 0;
    if (args.positional().size() != 1 ||
        !parseInteger(args.positional().front(), 1, INT64_MAX, id)) {
      return usageError("events " + sub + " needs one event id (a number)", "events");
    }
    const std::string eventId = std::to_string(id);
    return sub == "show" ? eventsShow(args, eventId) : eventsReplay(args, eventId);
  } catch (const NetError& e) {
    return failure(std::string("could not reach the edge: ") + e.what());
  } catch (const Poco::Exception& e) {
    return failure("could not read the edge's answer: " + e.displayText());
  } catch (const std::exception& e) {
    return failure(e.what());
  }
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
