// cli/src/event_commands.cpp: the commands that read a hook's events: list, search, show,
// replay (one, edited, or every match of a query) and diagnose.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/event_commands.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Process.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/src/api_client.h"
#include "cli/src/args.h"
#include "cli/src/command_support.h"
#include "cli/src/config_store.h"
#include "cli/src/connection.h"
#include "cli/src/credentials.h"
#include "cli/src/event_output.h"
#include "cli/src/named_hooks.h"
#include "cli/src/replay_edit.h"
#include "cli/src/session.h"
#include "cli/src/stream_event.h"
#include "cli/src/url.h"

namespace anm::cli {
namespace {

const char kEventsHelp[] =
    "usage: anonymily events list --hook ID [--after N] [--limit N] [--json]\n"
    "       anonymily events search QUERY --hook ID [--before N] [--limit N] [--json]\n"
    "       anonymily events show EVENT_ID --hook ID [--raw]\n"
    "       anonymily events replay EVENT_ID --hook ID [--method M] [--path P] [--query Q]\n"
    "                               [--header 'Name: value' ...] [--body-file FILE | -]\n"
    "       anonymily events replay EVENT_ID --hook ID --edit\n"
    "       anonymily events replay --matching QUERY --hook ID [--yes]\n"
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
    "search: the events matching QUERY, newest first, e.g. 'verdict:invalid time:[now-2h TO\n"
    "  now]' or 'status:5xx body:\"order 42\"' (the query language: docs/search.md). The edge\n"
    "  reads at most 5000 events per request; the line on stderr says where to go on. A query\n"
    "  that starts with '-' goes last, after '--': events search --hook ID -- '-type:ping'\n"
    "  --before N    only events with an id below N (to go on from an earlier page)\n"
    "  --limit N     at most N events, 1..1000 (default 100)\n"
    "  --json        one JSON object per event\n"
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
    "                    file's last line feed is not part of the body\n"
    "  --matching QUERY  replay every event the query matches, oldest first, as it was (at\n"
    "                    most 10000): shows the count and asks first, then the progress;\n"
    "                    Ctrl-C cancels what is left. Prints the new events' ids (the first\n"
    "                    100).\n"
    "  --yes             do not ask (needed when stdin is not a terminal)\n";

const char kDiagnoseHelp[] =
    "usage: anonymily diagnose EVENT_ID --hook ID [--explain] [--json]\n"
    "\n"
    "Says why an event failed: its signature verdict, and every relay's delivery, checked by\n"
    "the edge's rules, each finding with its cause, its evidence and the fix, and the page\n"
    "the edge serves for its code (docs/diagnosis.md).\n"
    "\n"
    "options:\n"
    "  --hook ID     the hook (required); signed in, also a named hook of the account\n"
    "  --explain     also ask the model the edge's operator set up (off unless they did)\n"
    "  --json        the edge's answer as JSON\n"
    "  --edge URL    the edge (default $ANONYMILY_EDGE or http://127.0.0.1:8080)\n"
    "  --token T     relay token (default: the saved token file, else the login)\n"
    "  --ca-file F   trust this CA (PEM) for an https edge\n";

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
int eventsContext(const Args& args, EventsContext& context, const std::string& command) {
  std::string error;
  context.edge = edgeUrl(args, error);
  if (!context.edge) return usageError("--edge: " + error, command);
  if (const int rc = applyCaFile(args, command); rc != kExitOk) return rc;
  if (!args.value("hook")) return usageError("--hook ID is required", command);
  const std::string hook = *args.value("hook");
  if (args.value("token")) {
    if (!isValidHookId(hook)) return usageError("invalid hook id", command);
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
    if (!isValidHookId(hook)) return usageError("invalid hook id", command);
    return usageError("no token for hook " + hook + " in " + tokenPath(hook) +
                          ": give --token or run 'anonymily relay' first; for a named hook of "
                          "your account, run 'anonymily login --edge " +
                          edgeText(*context.edge) + "' first",
                      command);
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

// A page of events: JSON lines, or a table sized to its content. Texts that come from senders
// are made printable, so that a webhook cannot move the terminal's cursor.
void printEvents(const Poco::JSON::Array& events, bool json) {
  if (json) {
    for (size_t i = 0; i < events.size(); ++i) {
      Poco::JSON::Stringifier::stringify(events.get(static_cast<unsigned>(i)), std::cout, 0, -1,
                                         Poco::JSON_WRAP_STRINGS);
      std::cout << "\n";
    }
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "TIME", "METHOD", "PATH", "VERDICT", "TYPE", "SIZE", "LAST"}};
  for (size_t i = 0; i < events.size(); ++i) {
    const Poco::JSON::Object::Ptr event = events.getObject(static_cast<unsigned>(i));
    std::string path = getString(*event, "path");
    if (path.empty()) path = "/";
    const std::string query = getString(*event, "query");
    if (!query.empty()) path += "?" + query;
    std::string verdict = getString(*event, "verdict");
    const std::string reason = getString(*event, "reason");
    if (!reason.empty()) verdict += "/" + reason;
    if (getInt(*event, "replay_of") != 0)
      verdict += event->optValue<bool>("modified", false) ? " (edited replay)" : " (replay)";
    const std::string type = getString(*event, "event_type");
    rows.push_back({std::to_string(getInt(*event, "id")),
                    localTime(getInt(*event, "received_at_ms")),
                    printableText(getString(*event, "method")), printableText(path), verdict,
                    type.empty() ? "-" : printableText(type),
                    std::to_string(getInt(*event, "size")), printableText(lastDelivery(*event))});

    // The edge holds the event but cannot open its contents (docs/protocol.md): said at the
    // end of its line, so that it is not taken for an empty request.
    const std::string unreadable = getString(*event, "integrity_error");
    if (!unreadable.empty()) rows.back().push_back("UNREADABLE: " + printableText(unreadable));
  }
  std::cout << formatTable(rows);
}

int eventsList(const Args& args) {
  EventsContext context;
  if (const int rc = eventsContext(args, context, "events"); rc != kExitOk) return rc;
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

  printEvents(*events, args.has("json"));
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
  if (const int rc = eventsContext(args, context, "events"); rc != kExitOk) return rc;
  ApiClient api(*context.edge, context.token, kApiTimeout);
  const std::string base = "/api/v1/hooks/" + context.hookId + "/events/" + eventId;

  // --raw: the body bytes and nothing else.
  if (args.has("raw")) {
    const ApiResponse response = context.send(api, "GET", base + "/body");
    if (response.status != 200) return apiFailure(response, "could not read event " + eventId);

    // A sender's escape sequences would act on a terminal (its title, its screen, what it
    // types back): on one, only a body that would show as it is goes out raw.
    if (::isatty(STDOUT_FILENO) != 0 && printableBody(response.body) != response.body) {
      return failure("event " + eventId +
                     "'s body holds bytes a terminal would act on or cannot show; send --raw to "
                     "a file or a pipe, or leave it out to see the body escaped");
    }
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
  out << "request    " << printableText(getString(*event, "method")) << " " << printableText(path)
      << "\n";
  out << "verdict    " << printableText(getString(*event, "verdict")) << " ("
      << printableText(getString(*event, "reason")) << ")";
  if (!getString(*event, "message").empty()) {
    out << " " << printableText(getString(*event, "message"));
  }
  out << "\n";
  if (!getString(*event, "event_type").empty()) {
    out << "type       " << printableText(getString(*event, "event_type")) << "\n";
  }
  if (!getString(*event, "delivery_id").empty()) {
    out << "delivery   " << printableText(getString(*event, "delivery_id")) << "\n";
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
  if (isValidUtf8(body)) {
    out << printableBody(body);
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
  if (const int rc = eventsContext(args, context, "events"); rc != kExitOk) return rc;
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

// ---- search ----------------------------------------------------------------------------------

// Every byte but the unreserved ones of RFC 3986 percent-encoded, for a query parameter.
std::string percentEncoded(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

// The edge's error for a query it cannot read, with the query and a mark under the bad span,
// as the dashboard shows it. The edge counts bytes; the mark counts the columns the echoed
// query takes on a terminal, escapes and wide characters included.
std::string queryErrorText(const std::string& query, const Poco::JSON::Object& answer) {
  const auto position = static_cast<size_t>(std::max<int64_t>(0, getInt(answer, "position")));
  const auto length = static_cast<size_t>(std::max<int64_t>(1, getInt(answer, "length")));
  const auto columns = [&query](size_t from, size_t to) {
    from = std::min(from, query.size());
    to = std::min(to, query.size());
    return displayWidth(printableText(query.substr(from, to - from)));
  };
  const size_t markFrom = columns(0, position);
  const size_t markWidth = std::max<size_t>(1, columns(position, position + length));
  return "invalid query: " + printableText(getString(answer, "error")) + "\n  " +
         printableText(query) + "\n  " + std::string(markFrom, ' ') + std::string(markWidth, '^');
}

int eventsSearch(const Args& args, const std::string& query) {
  long long before = 0;
  long long limit = 100;
  if (args.value("before") && !parseInteger(*args.value("before"), 1, INT64_MAX, before)) {
    return usageError("--before must be a whole number, 1 or more", "events");
  }
  if (args.value("limit") && !parseInteger(*args.value("limit"), 1, 1000, limit)) {
    return usageError("--limit must be from 1 to 1000", "events");
  }
  EventsContext context;
  if (const int rc = eventsContext(args, context, "events"); rc != kExitOk) return rc;

  ApiClient api(*context.edge, context.token, kApiTimeout);
  std::string target = "/api/v1/hooks/" + context.hookId + "/events?q=" + percentEncoded(query) +
                       "&limit=" + std::to_string(limit);
  if (before > 0) target += "&before=" + std::to_string(before);
  const ApiResponse response = context.send(api, "GET", target);
  if (response.status == 400 && isJsonObject(response.body)) {
    const Poco::JSON::Object::Ptr answer = parseObject(response);
    if (answer->has("position")) return failure(queryErrorText(query, *answer));
  }
  if (response.status != 200) return apiFailure(response, "could not search events");
  const Poco::JSON::Object::Ptr root = parseObject(response);
  const Poco::JSON::Array::Ptr events = root->getArray("events");
  if (!events) return failure("could not search events: the answer has no events array");
  printEvents(*events, args.has("json"));

  // The edge reads a bounded slice per request; what lies below it is another request away.
  const int64_t next = getInt(*root, "next_before");
  if (next > 0) {
    std::cerr << "more events may match: --before " << next << " (this page read "
              << getInt(*root, "scanned") << " events)\n";
  } else if (events->size() == 0) {
    std::cerr << "no events match\n";
  }
  return kExitOk;
}

// ---- bulk replay -----------------------------------------------------------------------------

std::atomic<bool> gCancelJob{false};

extern "C" void onCancelSignal(int) { gCancelJob.store(true); }

// Asks on the terminal; false for anything but y or yes.
bool confirmed(const std::string& question) {
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes";
}

// Reads the job until it ends, showing its progress; a Ctrl-C (gCancelJob) cancels what is
// left of it.
int followReplayJob(EventsContext& context, ApiClient& api, const std::string& jobPath,
                    const Poco::JSON::Object::Ptr& started) {
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  Poco::JSON::Object::Ptr job = started;
  bool cancelSent = false;
  while (getString(*job, "state") == "running") {
    if (terminal) {
      std::cerr << "\rreplayed " << getInt(*job, "done") << " of " << getInt(*job, "total")
                << std::flush;
    }
    if (!gCancelJob.load()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const bool cancel = gCancelJob.load() && !cancelSent;
    const ApiResponse read = context.send(api, cancel ? "DELETE" : "GET", jobPath);
    if (read.status != 200) {
      return apiFailure(read, "could not follow replay job " + getString(*started, "id"));
    }
    cancelSent = cancelSent || cancel;
    job = parseObject(read);
  }
  // The progress line is blanked, not left for the ids to be written over.
  if (terminal) std::cerr << "\r" << std::string(40, ' ') << "\r" << std::flush;

  const Poco::JSON::Array::Ptr replays = job->getArray("replays");
  const size_t listed = replays ? replays->size() : 0;
  for (size_t i = 0; i < listed; ++i) {
    std::cout << replays->getElement<int64_t>(static_cast<unsigned>(i)) << "\n";
  }
  const int64_t done = getInt(*job, "done");
  const int64_t failed = getInt(*job, "failed");
  const bool cancelled = getString(*job, "state") == "cancelled";
  std::cerr << "replayed " << done << " of " << getInt(*job, "total") << " events";
  if (failed > 0) std::cerr << ", " << failed << " could not be replayed";
  if (cancelled) std::cerr << "; cancelled";
  if (done > static_cast<int64_t>(listed)) std::cerr << "; the ids above are the first " << listed;
  std::cerr << "\n";
  return failed > 0 || cancelled ? kExitFailure : kExitOk;
}

// Starts the job `json` asks for (with the count the user confirmed) and follows it.
int startReplayJob(EventsContext& context, ApiClient& api, const std::string& base,
                   const std::string& json) {
  const ApiResponse started = context.send(api, "POST", base, json);
  if (started.status == 409 && isJsonObject(started.body)) {
    return failure(printableText(getString(*parseObject(started), "error")) +
                   "; run it again to see them");
  }
  if (started.status != 202) return apiFailure(started, "could not start the replay");
  const Poco::JSON::Object::Ptr job = parseObject(started);
  return followReplayJob(context, api, base + "/" + getString(*job, "id"), job);
}

// `events replay --matching QUERY`: the count first, a confirmation, then the job.
int eventsReplayMatching(const Args& args, const std::string& query) {
  const bool ask = !args.has("yes");
  if (ask && ::isatty(STDIN_FILENO) == 0) {
    return usageError("--matching replays many events at once: confirm with --yes", "events");
  }
  EventsContext context;
  if (const int rc = eventsContext(args, context, "events"); rc != kExitOk) return rc;
  ApiClient api(*context.edge, context.token, kApiTimeout);
  const std::string base = "/api/v1/hooks/" + context.hookId + "/replays";

  Poco::JSON::Object dryRun;
  dryRun.set("q", query);
  dryRun.set("dry_run", true);
  std::ostringstream dryRunText;
  dryRun.stringify(dryRunText);
  const ApiResponse counted = context.send(api, "POST", base, dryRunText.str());
  if (counted.status == 400 && isJsonObject(counted.body)) {
    const Poco::JSON::Object::Ptr answer = parseObject(counted);
    if (answer->has("position")) return failure(queryErrorText(query, *answer));
  }
  if (counted.status != 200) return apiFailure(counted, "could not count the matching events");
  const Poco::JSON::Object::Ptr count = parseObject(counted);
  const int64_t matching = getInt(*count, "count");
  if (count->optValue<bool>("over_limit", false)) {
    return failure("the query matches more than " + std::to_string(matching - 1) +
                   " events, more than one replay takes; narrow it");
  }
  if (matching == 0) {
    std::cerr << "no events match; nothing was replayed\n";
    return kExitOk;
  }
  std::cerr << matching << (matching == 1 ? " event matches" : " events match") << "\n";
  if (ask && !confirmed("replay them to the relays of hook " + context.hookId + "?")) {
    std::cerr << "nothing was replayed\n";
    return kExitFailure;
  }

  // The count confirmed is sent along: if the query matches another number by now, the edge
  // refuses rather than replaying what was not seen.
  Poco::JSON::Object start;
  start.set("q", query);
  start.set("expect", static_cast<Poco::Int64>(matching));
  std::ostringstream startText;
  start.stringify(startText);

  // From the start on, Ctrl-C cancels the job rather than ending this command: a job the edge
  // ran on after the command died would replay what the user meant to stop.
  struct sigaction action {};
  action.sa_handler = onCancelSignal;
  action.sa_flags = SA_RESTART;  // a request in flight goes on; the loop sees the flag after
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  sigaction(SIGINT, &action, &previous);
  const int rc = startReplayJob(context, api, base, startText.str());
  sigaction(SIGINT, &previous, nullptr);
  return rc;
}

// ---- diagnose --------------------------------------------------------------------------------

// One finding as the terminal shows it: code and title, what happened, the fix, the evidence
// and the page of the code on the edge.
std::string findingText(const Poco::JSON::Object& finding, const Url& edge) {
  std::ostringstream out;
  out << printableText(getString(finding, "severity")) << "  "
      << printableText(getString(finding, "code")) << ": "
      << printableText(getString(finding, "title")) << "\n";
  out << "  " << printableText(getString(finding, "detail")) << "\n";
  out << "  fix: " << printableText(getString(finding, "fix")) << "\n";
  if (const Poco::JSON::Object::Ptr evidence = finding.getObject("evidence")) {
    std::vector<std::string> names;
    evidence->getNames(names);
    if (!names.empty()) {
      out << "  evidence:";
      for (const std::string& name : names) {
        out << " " << printableText(name) << "=" << printableText(evidence->get(name).toString());
      }
      out << "\n";
    }
  }
  if (!getString(finding, "page").empty()) {
    out << "  more: " << edgeText(edge) << printableText(getString(finding, "page")) << "\n";
  }
  return out.str();
}

std::string explanationText(const Poco::JSON::Object& answer) {
  std::ostringstream out;
  out << "explanation by " << printableText(getString(answer, "model"))
      << (answer.optValue<bool>("cached", false) ? " (asked before)" : "")
      << "; a model can be wrong, the findings above are the edge's own checks\n";
  out << "  summary: " << printableText(getString(answer, "summary")) << "\n";
  out << "  cause: " << printableText(getString(answer, "cause")) << "\n";
  if (const Poco::JSON::Array::Ptr evidence = answer.getArray("evidence")) {
    for (size_t i = 0; i < evidence->size(); ++i) {
      out << "  - " << printableText(evidence->get(static_cast<unsigned>(i)).toString()) << "\n";
    }
  }
  out << "  fix: " << printableText(getString(answer, "fix")) << "\n";
  const double confidence = answer.optValue<double>("confidence", -1);
  if (confidence >= 0) {
    out << "  confidence: " << static_cast<int>(confidence * 100 + 0.5) << " %\n";
  }
  return out.str();
}

int diagnoseEvent(const Args& args, const std::string& eventId) {
  EventsContext context;
  if (const int rc = eventsContext(args, context, "diagnose"); rc != kExitOk) return rc;
  ApiClient api(*context.edge, context.token, kApiTimeout);
  const std::string base = "/api/v1/hooks/" + context.hookId + "/events/" + eventId;

  const ApiResponse response = context.send(api, "GET", base + "/diagnosis");
  if (response.status != 200) return apiFailure(response, "could not diagnose event " + eventId);
  std::optional<ApiResponse> explained;
  if (args.has("explain")) {
    explained = context.send(api, "POST", base + "/explain");
    if (explained->status != 200) {
      if (args.has("json") || !isJsonObject(explained->body)) {
        return apiFailure(*explained, "could not explain event " + eventId);
      }
    }
  }
  if (args.has("json")) {
    std::cout << response.body;
    if (explained) std::cout << "\n" << explained->body;
    std::cout << "\n";
    return kExitOk;
  }

  const Poco::JSON::Object::Ptr root = parseObject(response);
  const Poco::JSON::Array::Ptr findings = root->getArray("findings");
  if (!findings) return failure("could not diagnose event " + eventId + ": no findings array");
  if (findings->size() == 0) {
    std::cout << "event " << eventId
              << ": nothing to diagnose: its signature checked out and no relay reported a "
                 "failed delivery\n";
  }
  for (size_t i = 0; i < findings->size(); ++i) {
    if (i > 0) std::cout << "\n";
    std::cout << findingText(*findings->getObject(static_cast<unsigned>(i)), *context.edge);
  }
  if (explained) {
    std::cout << "\n";
    if (explained->status != 200) {
      // The findings stand; the model's absence is said, not made a failure of the command.
      std::cout << "no explanation: " << printableText(explained->errorText()) << "\n";
    } else {
      std::cout << explanationText(*parseObject(*explained));
    }
  }
  return kExitOk;
}

}  // namespace

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
  } else if (sub == "search") {
    specs.insert(specs.end(), {{"before"}, {"limit"}, {"json", false}});
  } else if (sub == "show") {
    specs.push_back({"raw", false});
  } else if (sub == "replay") {
    specs.insert(specs.end(), {{"method"},
                               {"path"},
                               {"query"},
                               {"header", true, true},
                               {"body-file"},
                               {"edit", false},
                               {"matching"},
                               {"yes", false}});
  } else {
    return usageError("unknown events command '" + sub + "'", "events");
  }
  Args args;
  std::string error;
  if (!args.parse(rest, specs, error)) {
    // A query such as -type:ping reads as an option unless '--' ends the options before it.
    if (sub == "search" && error.rfind("unknown option -", 0) == 0) {
      error += " (a query that starts with '-' goes last, after '--')";
    }
    return usageError(error, "events");
  }
  if (args.has("help")) {
    std::cout << kEventsHelp;
    return kExitOk;
  }
  setUpLogging(true);

  // list takes no positional argument, search one query, replay --matching none; show and
  // replay otherwise take exactly one event id.
  return guarded([&] {
    if (sub == "list") {
      if (!args.positional().empty()) {
        return usageError("unexpected argument '" + args.positional().front() + "'", "events");
      }
      return eventsList(args);
    }
    if (sub == "search") {
      if (args.positional().size() != 1) {
        return usageError("events search needs one query (quote it)", "events");
      }
      return eventsSearch(args, args.positional().front());
    }
    if (sub == "replay" && args.value("matching")) {
      for (const char* option : {"method", "path", "query", "header", "body-file", "edit"}) {
        if (args.has(option)) {
          return usageError(
              std::string("--matching replays events as they were; it takes no --") + option,
              "events");
        }
      }
      if (!args.positional().empty()) {
        return usageError("--matching takes no event id", "events");
      }
      return eventsReplayMatching(args, *args.value("matching"));
    }
    if (args.has("yes")) return usageError("--yes goes with --matching", "events");
    long long id = 0;
    if (args.positional().size() != 1 ||
        !parseInteger(args.positional().front(), 1, INT64_MAX, id)) {
      return usageError("events " + sub + " needs one event id (a number)", "events");
    }
    const std::string eventId = std::to_string(id);
    return sub == "show" ? eventsShow(args, eventId) : eventsReplay(args, eventId);
  });
}

int diagnoseCommand(const std::vector<std::string>& argv) {
  if (argv.empty() || argv.front() == "--help" || argv.front() == "-h" || argv.front() == "help") {
    std::cout << kDiagnoseHelp;
    return argv.empty() ? kExitUsage : kExitOk;
  }
  const std::vector<OptionSpec> specs = {{"help", false}, {"edge"},    {"hook"},
                                         {"token"},       {"ca-file"}, {"explain", false},
                                         {"json", false}};
  Args args;
  std::string error;
  if (!args.parse(argv, specs, error)) return usageError(error, "diagnose");
  if (args.has("help")) {
    std::cout << kDiagnoseHelp;
    return kExitOk;
  }
  setUpLogging(true);
  long long id = 0;
  if (args.positional().size() != 1 || !parseInteger(args.positional().front(), 1, INT64_MAX, id)) {
    return usageError("diagnose needs one event id (a number)", "diagnose");
  }
  return guarded([&] { return diagnoseEvent(args, std::to_string(id)); });
}

}  // namespace anm::cli
