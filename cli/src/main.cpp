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
#include <Poco/Timestamp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli/src/api_client.h"
#include "cli/src/args.h"
#include "cli/src/config_store.h"
#include "cli/src/connection.h"
#include "cli/src/event_output.h"
#include "cli/src/relay.h"
#include "cli/src/stream_event.h"
#include "cli/src/url.h"

namespace anm::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr char kDefaultEdge[] = "http://127.0.0.1:8080";
constexpr std::chrono::seconds kApiTimeout{30};

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
    "\n"
    "Run 'anonymily <command> --help' for a command's options.\n"
    "Environment: ANONYMILY_EDGE (default edge URL), XDG_CONFIG_HOME (token files).\n";

const char kRelayHelp[] =
    "usage: anonymily relay --to URL [options]\n"
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
    "options:\n"
    "  --to URL             local target, e.g. http://localhost:3000 (required)\n"
    "  --edge URL           the edge (default $ANONYMILY_EDGE or http://127.0.0.1:8080)\n"
    "  --provider NAME      verify senders with this provider plugin (stripe, github, ...)\n"
    "  --secret S           the provider's signing secret (needed with --provider, and\n"
    "                       only with it)\n"
    "  --secret-file FILE   read the secret from FILE (one trailing newline is dropped)\n"
    "  --option KEY=VALUE   a provider option; may be repeated\n"
    "  --tolerance SECONDS  timestamp tolerance for signatures (0: no window)\n"
    "  --hook ID            use an existing hook instead of creating one\n"
    "  --token TOKEN        its relay token (default: the saved token file)\n"
    "  --last-event-id N    resume after event N (default: the saved position, or 0)\n"
    "  --timeout SECONDS    per delivery to the target, 1..3600 (default 30)\n"
    "  --json               one JSON object per event on stdout; banner on stderr\n"
    "  --quiet              no per-event lines\n";

const char kEventsHelp[] =
    "usage: anonymily events list --hook ID [--after N] [--limit N] [--json]\n"
    "       anonymily events show EVENT_ID --hook ID [--raw]\n"
    "       anonymily events replay EVENT_ID --hook ID\n"
    "\n"
    "common options:\n"
    "  --hook ID     the hook (required)\n"
    "  --edge URL    the edge (default $ANONYMILY_EDGE or http://127.0.0.1:8080)\n"
    "  --token T     relay token (default: the saved token file)\n"
    "list:\n"
    "  --after N     only events with an id above N (default 0)\n"
    "  --limit N     at most N events, 1..1000 (default 100)\n"
    "  --json        one JSON object per event\n"
    "show:\n"
    "  --raw         write the exact body bytes to stdout and nothing else\n"
    "replay: prints the id of the new event.\n";

int usageError(const std::string& message, const std::string& command) {
  std::cerr << "anonymily: " << message << "\n"
            << "run 'anonymily " << (command.empty() ? "" : command + " ") << "--help' for usage\n";
  return kExitUsage;
}

int failure(const std::string& message) {
  std::cerr << "anonymily: error: " << message << "\n";
  return kExitFailure;
}

void setUpLogging(bool quiet) {
  Poco::AutoPtr<Poco::ConsoleChannel> console(new Poco::ConsoleChannel(std::cerr));
  Poco::AutoPtr<Poco::PatternFormatter> pattern(new Poco::PatternFormatter("%q %t"));
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

std::optional<Url> edgeUrl(const Args& args, std::string& error) {
  std::string text = kDefaultEdge;
  const char* env = std::getenv("ANONYMILY_EDGE");
  if (env != nullptr && env[0] != '\0') text = env;
  if (args.value("edge")) text = *args.value("edge");
  return Url::parse(text, error);
}

// Said instead of the parser's complaint: the usual cause is --edge naming some other server.
std::string notJsonMessage(int status) {
  return "the edge answered " + std::to_string(status) +
         " with something that is not JSON; is --edge pointing at an Anonymily edge?";
}

Poco::JSON::Object::Ptr parseJsonObject(const std::string& text) {
  Poco::JSON::Parser parser(new Poco::JSON::ParseHandler(true));
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

bool isJsonObject(const std::string& text) {
  try {
    return !parseJsonObject(text).isNull();
  } catch (const Poco::Exception&) {
    return false;
  }
}

/// The answer's JSON object; throws std::runtime_error with notJsonMessage() when it has none.
Poco::JSON::Object::Ptr parseObject(const ApiResponse& response) {
  try {
    Poco::JSON::Object::Ptr object = parseJsonObject(response.body);
    if (!object.isNull()) return object;
  } catch (const Poco::Exception&) {
    // Reported below in the words a user can act on.
  }
  throw std::runtime_error(notJsonMessage(response.status));
}

std::string edgeText(const Url& edge) {
  return edge.scheme + "://" + edge.authority() + edge.basePath();
}

// Sleeps in short steps so that SIGINT/SIGTERM end the wait at once.
void sleepUnlessStopped(std::chrono::milliseconds delay) {
  const auto until = std::chrono::steady_clock::now() + delay;
  while (!gStop.load() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
  }
}

std::string getString(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key) || object.isNull(key)) return "";
  return object.get(key).toString();
}

int64_t getInt(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key) || object.isNull(key)) return 0;
  return object.getValue<int64_t>(key);
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
int createHook(const Url& edge, const Args& args, const std::string& secret, bool secretIsBinary,
               long long tolerance, const std::vector<std::pair<std::string, std::string>>& options,
               RelayOptions& relay, std::string& ingestUrl) {
  Poco::JSON::Object request(Poco::JSON_PRESERVE_KEY_ORDER);
  if (args.value("provider")) request.set("provider", *args.value("provider"));
  if (!secret.empty()) {
    if (secretIsBinary) {
      request.set("secret_base64", encodeBase64(secret));
    } else {
      request.set("secret", secret);
    }
  }
  if (tolerance >= 0) request.set("tolerance_s", static_cast<Poco::Int64>(tolerance));
  if (!options.empty()) {
    Poco::JSON::Object optionObject(Poco::JSON_PRESERVE_KEY_ORDER);
    for (const auto& [key, value] : options) optionObject.set(key, value);
    request.set("options", optionObject);
  }
  std::ostringstream body;
  request.stringify(body);

  ApiClient api(edge, "", kApiTimeout);
  ApiResponse response;
  try {
    response = api.send("POST", "/api/v1/hooks", body.str());
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
  const std::vector<OptionSpec> specs = {{"help", false},
                                         {"edge"},
                                         {"to"},
                                         {"provider"},
                                         {"secret"},
                                         {"secret-file"},
                                         {"option", true, true},
                                         {"tolerance"},
                                         {"hook"},
                                         {"token"},
                                         {"timeout"},
                                         {"last-event-id"},
                                         {"json", false},
                                         {"quiet", false}};
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
  long long timeoutS = 30;
  if (args.value("timeout") && !parseInteger(*args.value("timeout"), 1, 3600, timeoutS)) {
    return usageError("--timeout must be a whole number of seconds from 1 to 3600", "relay");
  }
  long long tolerance = -1;
  if (args.value("tolerance") &&
      !parseInteger(*args.value("tolerance"), 0, 100LL * 365 * 24 * 3600, tolerance)) {
    return usageError("--tolerance must be a whole number of seconds, 0 or more", "relay");
  }
  long long lastEventId = -1;
  if (args.value("last-event-id") &&
      !parseInteger(*args.value("last-event-id"), 0, INT64_MAX, lastEventId)) {
    return usageError("--last-event-id must be a whole number, 0 or more", "relay");
  }
  if (args.has("secret") && args.has("secret-file")) {
    return usageError("give --secret or --secret-file, not both", "relay");
  }
  const bool creating = !args.has("hook");
  if (!creating && (args.has("provider") || args.has("secret") || args.has("secret-file") ||
                    args.has("option") || args.has("tolerance"))) {
    return usageError(
        "--provider, --secret, --secret-file, --option and --tolerance configure a new hook; "
        "they cannot be combined with --hook",
        "relay");
  }
  if (creating && args.has("token")) return usageError("--token needs --hook", "relay");
  std::vector<std::pair<std::string, std::string>> options;
  for (const std::string& option : args.values("option")) {
    const size_t eq = option.find('=');
    if (eq == std::string::npos || eq == 0) {
      return usageError("--option must be KEY=VALUE, got '" + option + "'", "relay");
    }
    options.emplace_back(option.substr(0, eq), option.substr(eq + 1));
  }
  std::string secret;
  bool secretIsBinary = false;
  if (args.value("secret")) secret = *args.value("secret");
  if (args.value("secret-file")) {
    std::ifstream in(*args.value("secret-file"), std::ios::binary);
    if (!in)
      return usageError("could not read --secret-file " + *args.value("secret-file"), "relay");
    std::ostringstream content;
    content << in.rdbuf();
    secret = content.str();
    if (secret.size() >= 2 && secret.compare(secret.size() - 2, 2, "\r\n") == 0) {
      secret.resize(secret.size() - 2);
    } else if (!secret.empty() && secret.back() == '\n') {
      secret.pop_back();
    }
    secretIsBinary = !isValidUtf8(secret);
  }

  // Every provider checks a signature with the secret: without one the edge would reject each
  // webhook as secret_missing. A secret without a provider would verify nothing at all.
  if (args.value("provider") && args.value("provider")->empty()) {
    return usageError("--provider needs a name (stripe, github, ...)", "relay");
  }
  if (args.value("provider") && secret.empty()) {
    return usageError("--provider " + *args.value("provider") + " needs --secret or --secret-file",
                      "relay");
  }
  if (!args.value("provider") && (args.has("secret") || args.has("secret-file"))) {
    return usageError(
        "--secret and --secret-file need --provider NAME: without a provider the hook checks no "
        "signature",
        "relay");
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
  if (creating) {
    if (const int rc =
            createHook(*edge, args, secret, secretIsBinary, tolerance, options, relay, ingestUrl);
        rc != kExitOk) {
      return rc;
    }
    installSignalHandlers();
  } else {
    // Use an existing hook; the token comes from the command line or the file a create saved.
    relay.hookId = *args.value("hook");
    if (!isValidHookId(relay.hookId)) return usageError("invalid hook id", "relay");
    if (args.value("token")) {
      relay.token = *args.value("token");
    } else if (const auto saved = loadToken(relay.hookId)) {
      relay.token = *saved;
    } else {
      return usageError("no token for hook " + relay.hookId + " in " + tokenPath(relay.hookId) +
                            ": give --token or run 'anonymily relay' without --hook first",
                        "relay");
    }

    // Installed first so that Ctrl-C also ends a wait for an edge that is down.
    installSignalHandlers();
    if (const std::optional<int> rc = checkExistingHook(*edge, relay, ingestUrl)) return *rc;
  }
  if (ingestUrl.empty()) {
    ingestUrl = edge->scheme + "://" + edge->authority() + edge->basePath() + "/h/" + relay.hookId;
  }

  // Where to resume: asked for, else where this machine left off, else the beginning.
  if (lastEventId >= 0) {
    relay.lastEventId = lastEventId;
  } else if (const auto cursor =
                 creating ? std::nullopt : loadCursor(relay.hookId, relay.targetText)) {
    relay.lastEventId = *cursor;
  }

  // The banner comes first; with --json stdout carries only event lines.
  std::FILE* banner = json ? stderr : stdout;
  std::fprintf(banner, "forwarding %s -> %s\nhook %s\n", ingestUrl.c_str(),
               args.value("to")->c_str(), relay.hookId.c_str());
  std::fflush(banner);
  Poco::Logger::get("anm.cli").information("relay started hook=%s relay=%s token_file=%s",
                                           relay.hookId, relay.relayId, tokenPath(relay.hookId));
  return runRelay(relay, gStop, stdout);
}

// ---- events ----------------------------------------------------------------------------------

struct EventsContext {
  std::optional<Url> edge;
  std::string hookId;
  std::string token;
};

int eventsContext(const Args& args, EventsContext& context) {
  std::string error;
  context.edge = edgeUrl(args, error);
  if (!context.edge) return usageError("--edge: " + error, "events");
  if (!args.value("hook")) return usageError("--hook ID is required", "events");
  context.hookId = *args.value("hook");
  if (!isValidHookId(context.hookId)) return usageError("invalid hook id", "events");
  if (args.value("token")) {
    context.token = *args.value("token");
  } else if (const auto saved = loadToken(context.hookId)) {
    context.token = *saved;
  } else {
    return usageError("no token for hook " + context.hookId + " in " + tokenPath(context.hookId) +
                          ": give --token or run 'anonymily relay' first",
                      "events");
  }
  return kExitOk;
}

int apiFailure(const ApiResponse& response, const std::string& doing) {
  if (!isJsonObject(response.body)) return failure(notJsonMessage(response.status));
  if (response.status == 404) return failure(doing + ": not found (or the token was refused)");
  return failure(doing + ": edge answered " + std::to_string(response.status) + ": " +
                 response.errorText());
}

std::string localTime(int64_t epochMs) {
  const Poco::Timestamp when(static_cast<Poco::Timestamp::TimeVal>(epochMs) * 1000);
  return Poco::DateTimeFormatter::format(Poco::LocalDateTime(when), "%Y-%m-%d %H:%M:%S");
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
      api.send("GET", "/api/v1/hooks/" + context.hookId + "/events?after=" + std::to_string(after) +
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
  }
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  if (static_cast<long long>(events->size()) == limit) {
    std::cerr << "more events may follow: --after " << getInt(*root, "next_after") << "\n";
  }
  return kExitOk;
}

int eventsShow(const Args& args, const std::string& eventId) {
  EventsContext context;
  if (const int rc = eventsContext(args, context); rc != kExitOk) return rc;
  ApiClient api(*context.edge, context.token, kApiTimeout);
  const std::string base = "/api/v1/hooks/" + context.hookId + "/events/" + eventId;

  // --raw: the body bytes and nothing else.
  if (args.has("raw")) {
    const ApiResponse response = api.send("GET", base + "/body");
    if (response.status != 200) return apiFailure(response, "could not read event " + eventId);
    std::fwrite(response.body.data(), 1, response.body.size(), stdout);
    std::fflush(stdout);
    return kExitOk;
  }

  const ApiResponse response = api.send("GET", base);
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
  out << "size       " << getInt(*event, "size") << "\n";
  if (const Poco::JSON::Array::Ptr deliveries = event->getArray("deliveries")) {
    for (size_t i = 0; i < deliveries->size(); ++i) {
      const Poco::JSON::Object::Ptr d = deliveries->getObject(static_cast<unsigned>(i));
      out << "delivered  relay=" << getString(*d, "relay") << " status=" << getInt(*d, "status")
          << " duration_ms=" << getInt(*d, "duration_ms");
      if (!getString(*d, "error").empty()) out << " error=\"" << getString(*d, "error") << "\"";
      out << "\n";
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

int eventsReplay(const Args& args, const std::string& eventId) {
  EventsContext context;
  if (const int rc = eventsContext(args, context); rc != kExitOk) return rc;
  ApiClient api(*context.edge, context.token, kApiTimeout);
  const ApiResponse response =
      api.send("POST", "/api/v1/hooks/" + context.hookId + "/events/" + eventId + "/replay");
  if (response.status != 201 && response.status != 200) {
    return apiFailure(response, "could not replay event " + eventId);
  }
  std::cout << getInt(*parseObject(response), "id") << "\n";
  return kExitOk;
}

int eventsCommand(const std::vector<std::string>& argv) {
  if (argv.empty() || argv.front() == "--help" || argv.front() == "-h" || argv.front() == "help") {
    std::cout << kEventsHelp;
    return argv.empty() ? kExitUsage : kExitOk;
  }
  const std::string sub = argv.front();
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  std::vector<OptionSpec> specs = {{"help", false}, {"edge"}, {"hook"}, {"token"}};
  if (sub == "list") {
    specs.insert(specs.end(), {{"after"}, {"limit"}, {"json", false}});
  } else if (sub == "show") {
    specs.push_back({"raw", false});
  } else if (sub != "replay") {
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
  } catch (const std::exception& e) {
    return failure(e.what());
  }
  return usageError("unknown command '" + command + "'", "");
}

}  // namespace
}  // namespace anm::cli

int main(int argc, char** argv) { return anm::cli::run(argc, argv); }
