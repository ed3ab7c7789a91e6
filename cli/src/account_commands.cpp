// cli/src/account_commands.cpp: login and the account, token, hook and audit commands.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/account_commands.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Stringifier.h>
#include <termios.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/src/api_client.h"
#include "cli/src/args.h"
#include "cli/src/command_support.h"
#include "cli/src/connection.h"
#include "cli/src/credentials.h"
#include "cli/src/event_output.h"
#include "cli/src/named_hooks.h"
#include "cli/src/session.h"

namespace anm::cli {

namespace {

// Bounds of a custom response, as the edge checks them (spec: PATCH /api/v1/hooks/<id>).
constexpr size_t kMaxResponseHeaders = 20;
constexpr size_t kMaxResponseBodyBytes = 64 * 1024;
// Most bytes read as a token from a file or stdin; a PAT is 60.
constexpr size_t kMaxTokenInputBytes = 4096;
constexpr size_t kMaxTokenNameBytes = 64;

const char kLoginHelp[] =
    "usage: anonymily login [--edge URL] [--token-file FILE] [--ca-file FILE]\n"
    "\n"
    "Signs in to the edge with a personal access token (anm_pat_...), read from --token-file or\n"
    "else from stdin (typed without echo on a terminal, or piped). The token is checked with the\n"
    "edge, then saved in $XDG_CONFIG_HOME/anonymily/credentials/<scheme>_<host>_<port>.pat\n"
    "(mode 0600, in a 0700 directory), one per edge: a login over https is never used over\n"
    "plain http. It is never taken on the command line, where other users of the machine could\n"
    "read it, and never sent over plain http to an edge that is not on this machine (loopback).\n"
    "'anonymily logout' deletes it.\n";

const char kLogoutHelp[] =
    "usage: anonymily logout [--edge URL]\n"
    "\n"
    "Deletes the token 'anonymily login' saved for the edge.\n";

const char kAccountHelp[] =
    "usage: anonymily account [--edge URL] [--json]\n"
    "\n"
    "Shows the signed-in member's account: name, plan and its limits.\n";

const char kTokensHelp[] =
    "usage: anonymily tokens list [--json]\n"
    "       anonymily tokens create [--name NAME]\n"
    "       anonymily tokens revoke TOKEN_ID\n"
    "\n"
    "Personal access tokens of the signed-in member (an owner sees every member's).\n"
    "create prints the new token alone on stdout, once; NAME defaults to this machine's host\n"
    "name. revoke ends at once every stream opened with the token.\n"
    "common options: --edge URL, --ca-file FILE\n";

const char kHooksHelp[] =
    "usage: anonymily hooks list [--json]\n"
    "       anonymily hooks create NAME [--provider P --secret S | --secret-file F]\n"
    "                              [--option KEY=VALUE ...] [--tolerance S] [--standard-webhooks]\n"
    "       anonymily hooks rotate-secret HOOK\n"
    "       anonymily hooks response HOOK (--status N [--header 'K: V' ...]\n"
    "                                      [--body TEXT | --body-file F] | --clear)\n"
    "\n"
    "Named hooks of the signed-in member's account. HOOK is a name or an id. create and\n"
    "rotate-secret print the hook's signing secret once. response sets what ingest answers\n"
    "(status 200..299, at most 20 headers, a body of at most 64 KiB; pro plan), --clear removes\n"
    "it.\n"
    "common options: --edge URL, --ca-file FILE\n";

const char kAuditHelp[] =
    "usage: anonymily audit [--after N] [--limit N] [--json] [--edge URL]\n"
    "\n"
    "The account's audit log (owners only): who read, replayed or changed what, and when.\n"
    "  --after N   only entries with an id above N (default 0)\n"
    "  --limit N   at most N entries, 1..1000 (default 100)\n"
    "  --json      one JSON object per entry\n";

// What a member command holds once signed in.
struct MemberContext {
  Url edge;
  std::unique_ptr<MemberSession> session;
  std::unique_ptr<ApiClient> api;

  ApiResponse send(const std::string& method, const std::string& path, const std::string& body = "",
                   bool hookRoute = false) {
    return sendAsMember(*session, *api, method, path, body, hookRoute);
  }
};

// Parses the common options, applies --ca-file and signs in. Returns kExitOk or the code of
// the message already printed.
int openMember(const Args& args, const std::string& command, MemberContext& context) {
  std::string error;
  const std::optional<Url> edge = edgeUrl(args, error);
  if (!edge) return usageError("--edge: " + error, command);
  if (const int rc = applyCaFile(args, command); rc != kExitOk) return rc;
  context.edge = *edge;
  context.session = signIn(*edge, error);
  if (!context.session) return failure(error);
  context.api = std::make_unique<ApiClient>(*edge, "", kApiTimeout);
  return kExitOk;
}

int refused(const ApiResponse& response, const std::string& doing) {
  if (!isJsonObject(response.body)) return failure(notJsonMessage(response.status));
  return failure(doing + ": edge answered " + std::to_string(response.status) + ": " +
                 response.errorText());
}

std::vector<OptionSpec> withCommon(std::vector<OptionSpec> specs) {
  specs.insert(specs.end(), {{"help", false}, {"edge"}, {"ca-file"}});
  return specs;
}

void printJsonLines(const Poco::JSON::Array::Ptr& items) {
  for (size_t i = 0; i < items->size(); ++i) {
    Poco::JSON::Stringifier::stringify(items->get(static_cast<unsigned>(i)), std::cout, 0, -1,
                                       Poco::JSON_WRAP_STRINGS);
    std::cout << "\n";
  }
}

std::string timeOrDash(const Poco::JSON::Object& object, const std::string& key) {
  const int64_t ms = getInt(object, key);
  return ms > 0 ? localTime(ms) : "-";
}

std::string orDash(const std::string& text) { return text.empty() ? "-" : printableText(text); }

// ---- login / logout ------------------------------------------------------------------------

// Reads one line from the terminal with echo off, so the token is not left on the screen.
std::string readHidden(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  termios saved{};
  const bool terminal = ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (terminal) {
    termios quiet = saved;
    quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (terminal) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::cerr << "\n";
  }
  return line;
}

std::string trimmed(const std::string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin])) != 0) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1])) != 0) --end;
  return text.substr(begin, end - begin);
}

}  // namespace

int loginCommand(const std::vector<std::string>& argv) {
  Args args;
  std::string error;
  if (!args.parse(argv, withCommon({{"token-file"}, {"token"}}), error)) {
    return usageError(error, "login");
  }
  if (args.has("help")) {
    std::cout << kLoginHelp;
    return kExitOk;
  }
  if (args.has("token")) {
    return usageError(
        "login does not take --token: a token on the command line can be read by other users "
        "of this machine (ps) and stays in the shell's history; use --token-file FILE, or type "
        "or pipe it on stdin",
        "login");
  }
  if (!args.positional().empty()) {
    return usageError("unexpected argument '" + args.positional().front() + "'", "login");
  }
  const std::optional<Url> edge = edgeUrl(args, error);
  if (!edge) return usageError("--edge: " + error, "login");
  if (const int rc = applyCaFile(args, "login"); rc != kExitOk) return rc;

  // Said before the token is asked for, so that nobody pastes it for nothing.
  if (const std::string refusal = plainHttpRefusal(*edge); !refusal.empty()) {
    return failure(refusal);
  }

  // The token: from the file, else a hidden prompt on a terminal, else piped stdin.
  std::string input;
  if (args.value("token-file")) {
    std::ifstream in(*args.value("token-file"), std::ios::binary);
    if (!in) return usageError("could not read --token-file " + *args.value("token-file"), "login");
    input.resize(kMaxTokenInputBytes);
    in.read(input.data(), static_cast<std::streamsize>(input.size()));
    input.resize(static_cast<size_t>(in.gcount()));
  } else if (::isatty(STDIN_FILENO) != 0) {
    input = readHidden("personal access token for " + edgeText(*edge) + ": ");
  } else {
    std::getline(std::cin, input);
  }
  const std::string pat = trimmed(input);
  if (pat.empty()) {
    return failure("no token given: pass --token-file FILE or give the token on stdin");
  }
  if (!looksLikePersonalToken(pat)) {
    return failure(
        "that is not a personal access token (they start with anm_pat_); create one with "
        "'anonymily tokens create' or 'anonymily-edge admin tokens create'");
  }

  // Checked with the edge before anything is saved.
  return guarded([&] {
    MemberSession session(*edge, pat, kApiTimeout);
    try {
      session.exchange();
    } catch (const SessionError& e) {
      if (e.status() == 401) return failure("the edge refused the token: invalid or revoked token");
      return failure(e.what());
    } catch (const NetError& e) {
      return failure("could not reach the edge at " + edgeText(*edge) + ": " + e.what());
    }
    saveCredentials(*edge, pat);
    const MemberIdentity who = session.identity();
    std::cout << "signed in to " << edgeText(*edge) << " as " << who.memberName << " (account "
              << who.accountName << ", plan " << who.plan << ")\n";
    return kExitOk;
  });
}

int logoutCommand(const std::vector<std::string>& argv) {
  Args args;
  std::string error;
  if (!args.parse(argv, withCommon({}), error)) return usageError(error, "logout");
  if (args.has("help")) {
    std::cout << kLogoutHelp;
    return kExitOk;
  }
  const std::optional<Url> edge = edgeUrl(args, error);
  if (!edge) return usageError("--edge: " + error, "logout");
  return guarded([&] {
    if (deleteCredentials(*edge)) {
      std::cout << "signed out of " << edgeText(*edge) << "\n";
    } else {
      std::cout << "not signed in to " << edgeText(*edge) << "\n";
    }
    return kExitOk;
  });
}

// ---- account -------------------------------------------------------------------------------

int accountCommand(const std::vector<std::string>& argv) {
  Args args;
  std::string error;
  if (!args.parse(argv, withCommon({{"json", false}}), error)) return usageError(error, "account");
  if (args.has("help")) {
    std::cout << kAccountHelp;
    return kExitOk;
  }
  MemberContext member;
  if (const int rc = openMember(args, "account", member); rc != kExitOk) return rc;
  return guarded([&] {
    const ApiResponse response = member.send("GET", "/api/v1/account");
    if (response.status != 200) return refused(response, "could not read the account");
    if (args.has("json")) {
      std::cout << response.body << "\n";
      return kExitOk;
    }
    const Poco::JSON::Object::Ptr account = parseObject(response);
    std::ostringstream out;
    out << "account   " << getString(*account, "name") << " (" << getString(*account, "id") << ")"
        << (account->has("disabled") && getString(*account, "disabled") == "true" ? ", disabled"
                                                                                  : "")
        << "\n";
    out << "plan      " << getString(*account, "plan") << "\n";
    if (const Poco::JSON::Object::Ptr who = account->getObject("member")) {
      out << "member    " << getString(*who, "name") << " (" << getString(*who, "id")
          << (getString(*who, "owner") == "true" ? ", owner" : "") << ")\n";
    }
    if (const Poco::JSON::Object::Ptr limits = account->getObject("limits")) {
      auto limit = [&](const std::string& key) {
        return limits->isNull(key) || !limits->has(key) ? std::string("unlimited")
                                                        : getString(*limits, key);
      };
      out << "limits    named hooks " << limit("named_hooks") << ", relays per hook "
          << limit("relays_per_hook") << ", members " << limit("members") << ", custom response "
          << (getString(*limits, "custom_response") == "true" ? "yes" : "no") << "\n";
    }
    if (getInt(*account, "created_at_ms") > 0) {
      out << "created   " << localTime(getInt(*account, "created_at_ms")) << "\n";
    }
    std::cout << out.str();
    return kExitOk;
  });
}

// ---- tokens --------------------------------------------------------------------------------

int tokensCommand(const std::vector<std::string>& argv) {
  if (argv.empty() || argv.front() == "--help" || argv.front() == "-h" || argv.front() == "help") {
    std::cout << kTokensHelp;
    return argv.empty() ? kExitUsage : kExitOk;
  }
  const std::string sub = argv.front();
  std::vector<OptionSpec> specs;
  if (sub == "list") {
    specs = {{"json", false}};
  } else if (sub == "create") {
    specs = {{"name"}};
  } else if (sub != "revoke") {
    return usageError("unknown tokens command '" + sub + "'", "tokens");
  }
  Args args;
  std::string error;
  if (!args.parse({argv.begin() + 1, argv.end()}, withCommon(specs), error)) {
    return usageError(error, "tokens");
  }
  if (args.has("help")) {
    std::cout << kTokensHelp;
    return kExitOk;
  }
  const size_t positional = sub == "revoke" ? 1 : 0;
  if (args.positional().size() != positional) {
    return usageError(sub == "revoke" ? "tokens revoke needs one token id"
                                      : "unexpected argument '" + args.positional().front() + "'",
                      "tokens");
  }
  std::string name;
  if (sub == "create") {
    if (args.value("name")) {
      name = *args.value("name");
    } else {
      char host[256] = {};
      name = ::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0' ? host : "cli";
    }
    bool printable = !name.empty() && name.size() <= kMaxTokenNameBytes;
    for (const unsigned char c : name) printable = printable && c >= 0x20 && c != 0x7f;
    if (!printable) return usageError("--name must be 1..64 printable bytes", "tokens");
  }

  MemberContext member;
  if (const int rc = openMember(args, "tokens", member); rc != kExitOk) return rc;
  return guarded([&] {
    if (sub == "list") {
      const ApiResponse response = member.send("GET", "/api/v1/tokens");
      if (response.status != 200) return refused(response, "could not list tokens");
      const Poco::JSON::Array::Ptr tokens = parseObject(response)->getArray("tokens");
      if (!tokens) return failure("could not list tokens: the answer has no tokens array");
      if (args.has("json")) {
        printJsonLines(tokens);
        return kExitOk;
      }
      std::vector<std::vector<std::string>> rows = {
          {"ID", "NAME", "MEMBER", "CREATED", "LAST USED", "REVOKED"}};
      for (size_t i = 0; i < tokens->size(); ++i) {
        const Poco::JSON::Object::Ptr t = tokens->getObject(static_cast<unsigned>(i));
        rows.push_back({getString(*t, "id"), orDash(getString(*t, "name")),
                        orDash(getString(*t, "member")), timeOrDash(*t, "created_at_ms"),
                        timeOrDash(*t, "last_used_at_ms"), timeOrDash(*t, "revoked_at_ms")});
      }
      std::cout << formatTable(rows);
      return kExitOk;
    }
    if (sub == "create") {
      Poco::JSON::Object request;
      request.set("name", name);
      std::ostringstream body;
      request.stringify(body);
      const ApiResponse response = member.send("POST", "/api/v1/tokens", body.str());
      if (response.status != 201 && response.status != 200) {
        return refused(response, "could not create a token");
      }
      const Poco::JSON::Object::Ptr token = parseObject(response);
      if (getString(*token, "token").empty()) {
        return failure("could not create a token: the answer has no token");
      }

      // The token alone on stdout, so that it can go straight into a file.
      std::cerr << "created token " << getString(*token, "id") << " (" << printableText(name)
                << "); it is shown once, now:\n";
      std::cout << getString(*token, "token") << "\n";
      return kExitOk;
    }
    const std::string id = args.positional().front();
    const ApiResponse response = member.send("DELETE", "/api/v1/tokens/" + encodeSegment(id));
    if (response.status == 404) {
      return failure("token " + printableText(id) + " not found (or not yours to revoke)");
    }
    if (response.status != 204 && response.status != 200) {
      return refused(response, "could not revoke token " + printableText(id));
    }
    std::cout << "revoked " << id << "\n";
    return kExitOk;
  });
}

// ---- hooks ---------------------------------------------------------------------------------

namespace {

int hooksList(MemberContext& member, const Args& args) {
  const ApiResponse response = member.send("GET", "/api/v1/hooks");
  if (response.status != 200) return refused(response, "could not list hooks");
  const Poco::JSON::Array::Ptr hooks = parseObject(response)->getArray("hooks");
  if (!hooks) return failure("could not list hooks: the answer has no hooks array");
  if (args.has("json")) {
    printJsonLines(hooks);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "NAME", "VERIFIES", "INGEST URL"}};
  for (size_t i = 0; i < hooks->size(); ++i) {
    const Poco::JSON::Object::Ptr hook = hooks->getObject(static_cast<unsigned>(i));
    std::string verifies = getString(*hook, "provider");
    if (verifies.empty()) {
      verifies = getString(*hook, "standard_webhooks") == "true" ? "standard-webhooks" : "-";
    }
    rows.push_back({getString(*hook, "id"), orDash(getString(*hook, "name")), verifies,
                    getString(*hook, "ingest_url")});
  }
  std::cout << formatTable(rows);
  return kExitOk;
}

int hooksCreate(MemberContext& member, const std::string& name, const HookSettings& settings) {
  const Poco::JSON::Object::Ptr hook =
      createNamedHook(*member.session, *member.api, name, settings);
  std::cout << "hook            " << name << " (" << getString(*hook, "id") << ")\n";
  std::cout << "ingest url      " << getString(*hook, "ingest_url") << "\n";
  if (!getString(*hook, "signing_secret").empty()) {
    std::cout << "signing secret  " << getString(*hook, "signing_secret")
              << "  (shown once; 'anonymily hooks rotate-secret " << name << "' makes a new one)\n";
  }
  return kExitOk;
}

Poco::JSON::Object::Ptr requireHook(MemberContext& member, const std::string& nameOrId) {
  const Poco::JSON::Object::Ptr hook = findHook(*member.session, *member.api, nameOrId);
  if (hook.isNull()) {
    throw std::runtime_error("no hook named " + printableText(nameOrId) +
                             " (or with that id) in account " +
                             member.session->identity().accountName);
  }
  return hook;
}

int hooksRotate(MemberContext& member, const std::string& nameOrId) {
  const std::string id = getString(*requireHook(member, nameOrId), "id");
  const ApiResponse response =
      member.send("POST", "/api/v1/hooks/" + encodeSegment(id) + "/signing-secret", "{}", true);
  if (response.status != 200) return refused(response, "could not rotate the signing secret");
  const Poco::JSON::Object::Ptr answer = parseObject(response);
  std::cout << "signing secret  " << getString(*answer, "signing_secret") << "  (shown once)\n";
  if (getInt(*answer, "previous_valid_until_ms") > 0) {
    std::cout << "the previous secret still verifies until "
              << localTime(getInt(*answer, "previous_valid_until_ms")) << "\n";
  }
  return kExitOk;
}

int hooksResponse(MemberContext& member, const std::string& nameOrId, const Args& args) {
  // Checked here first so that a typo costs no round trip; the edge checks the same rules.
  Poco::JSON::Object request;
  if (args.has("clear")) {
    if (args.has("status") || args.has("header") || args.has("body") || args.has("body-file")) {
      return usageError("--clear takes no --status, --header or --body", "hooks");
    }
    request.set("custom_response", Poco::Dynamic::Var());
  } else {
    long long status = 0;
    if (!args.value("status") || !parseInteger(*args.value("status"), 200, 299, status)) {
      return usageError("hooks response needs --status N (200..299) or --clear", "hooks");
    }
    if (args.has("body") && args.has("body-file")) {
      return usageError("give --body or --body-file, not both", "hooks");
    }
    const std::vector<std::string> headerArgs = args.values("header");
    if (headerArgs.size() > kMaxResponseHeaders) {
      return usageError("at most 20 --header options", "hooks");
    }
    Poco::JSON::Array headers;
    for (const std::string& header : headerArgs) {
      const size_t colon = header.find(':');
      if (colon == std::string::npos || colon == 0) {
        return usageError("--header must be 'Name: value', got '" + header + "'", "hooks");
      }
      Poco::JSON::Array pair;
      pair.add(header.substr(0, colon));
      size_t valueStart = colon + 1;
      while (valueStart < header.size() &&
             (header[valueStart] == ' ' || header[valueStart] == '\t')) {
        ++valueStart;
      }
      pair.add(header.substr(valueStart));
      headers.add(pair);
    }
    std::string body;
    if (args.value("body")) body = *args.value("body");
    if (args.value("body-file")) {
      std::ifstream in(*args.value("body-file"), std::ios::binary);
      if (!in) return usageError("could not read --body-file " + *args.value("body-file"), "hooks");
      std::ostringstream content;
      content << in.rdbuf();
      body = content.str();
    }
    if (body.size() > kMaxResponseBodyBytes) {
      return usageError("the response body may have at most 64 KiB", "hooks");
    }
    if (!isValidUtf8(body)) return usageError("the response body must be UTF-8 text", "hooks");
    Poco::JSON::Object custom;
    custom.set("status", static_cast<int>(status));
    custom.set("headers", headers);
    custom.set("body", body);
    request.set("custom_response", custom);
  }
  std::ostringstream json;
  request.stringify(json);

  const std::string id = getString(*requireHook(member, nameOrId), "id");
  const ApiResponse response =
      member.send("PATCH", "/api/v1/hooks/" + encodeSegment(id), json.str(), true);
  if (response.status != 200) return refused(response, "could not set the custom response");
  std::cout << (args.has("clear") ? "custom response cleared for " : "custom response set for ")
            << printableText(nameOrId) << "\n";
  return kExitOk;
}

}  // namespace

int hooksCommand(const std::vector<std::string>& argv) {
  if (argv.empty() || argv.front() == "--help" || argv.front() == "-h" || argv.front() == "help") {
    std::cout << kHooksHelp;
    return argv.empty() ? kExitUsage : kExitOk;
  }
  const std::string sub = argv.front();
  std::vector<OptionSpec> specs;
  size_t positional = 1;
  if (sub == "list") {
    specs = {{"json", false}};
    positional = 0;
  } else if (sub == "create") {
    specs = hookSettingSpecs();
  } else if (sub == "response") {
    specs = {{"status"}, {"header", true, true}, {"body"}, {"body-file"}, {"clear", false}};
  } else if (sub != "rotate-secret") {
    return usageError("unknown hooks command '" + sub + "'", "hooks");
  }
  Args args;
  std::string error;
  if (!args.parse({argv.begin() + 1, argv.end()}, withCommon(specs), error)) {
    return usageError(error, "hooks");
  }
  if (args.has("help")) {
    std::cout << kHooksHelp;
    return kExitOk;
  }
  if (args.positional().size() != positional) {
    return usageError(positional == 0 ? "unexpected argument '" + args.positional().front() + "'"
                                      : "hooks " + sub + " needs one hook name",
                      "hooks");
  }
  HookSettings settings;
  if (sub == "create") {
    if (!parseHookSettings(args, settings, error)) return usageError(error, "hooks");
    if (!isValidHookName(args.positional().front())) {
      return usageError("a hook name is 1..64 of a-z, 0-9, '-' and '_'", "hooks");
    }
  }

  MemberContext member;
  if (const int rc = openMember(args, "hooks", member); rc != kExitOk) return rc;
  return guarded([&] {
    if (sub == "list") return hooksList(member, args);
    if (sub == "create") return hooksCreate(member, args.positional().front(), settings);
    if (sub == "rotate-secret") return hooksRotate(member, args.positional().front());
    return hooksResponse(member, args.positional().front(), args);
  });
}

// ---- audit ---------------------------------------------------------------------------------

int auditCommand(const std::vector<std::string>& argv) {
  Args args;
  std::string error;
  if (!args.parse(argv, withCommon({{"after"}, {"limit"}, {"json", false}}), error)) {
    return usageError(error, "audit");
  }
  if (args.has("help")) {
    std::cout << kAuditHelp;
    return kExitOk;
  }
  if (!args.positional().empty()) {
    return usageError("unexpected argument '" + args.positional().front() + "'", "audit");
  }
  long long after = 0;
  long long limit = 100;
  if (args.value("after") && !parseInteger(*args.value("after"), 0, INT64_MAX, after)) {
    return usageError("--after must be a whole number, 0 or more", "audit");
  }
  if (args.value("limit") && !parseInteger(*args.value("limit"), 1, 1000, limit)) {
    return usageError("--limit must be from 1 to 1000", "audit");
  }
  MemberContext member;
  if (const int rc = openMember(args, "audit", member); rc != kExitOk) return rc;
  return guarded([&] {
    const ApiResponse response = member.send(
        "GET", "/api/v1/audit?after=" + std::to_string(after) + "&limit=" + std::to_string(limit));
    if (response.status != 200) return refused(response, "could not read the audit log");
    const Poco::JSON::Object::Ptr root = parseObject(response);
    const Poco::JSON::Array::Ptr entries = root->getArray("entries");
    if (!entries) return failure("could not read the audit log: the answer has no entries array");
    if (args.has("json")) {
      printJsonLines(entries);
    } else {
      std::vector<std::vector<std::string>> rows = {
          {"ID", "TIME", "ACTOR", "ACTION", "HOOK", "EVENT", "REMOTE", "DETAIL"}};
      for (size_t i = 0; i < entries->size(); ++i) {
        const Poco::JSON::Object::Ptr e = entries->getObject(static_cast<unsigned>(i));
        const int64_t event = getInt(*e, "event");
        rows.push_back({getString(*e, "id"), timeOrDash(*e, "at_ms"),
                        orDash(getString(*e, "actor")), orDash(getString(*e, "action")),
                        orDash(getString(*e, "hook")), event > 0 ? std::to_string(event) : "-",
                        orDash(getString(*e, "remote")), orDash(getString(*e, "detail"))});
      }
      std::cout << formatTable(rows);
    }
    if (static_cast<long long>(entries->size()) == limit) {
      std::cerr << "more entries may follow: --after " << getInt(*root, "next_after") << "\n";
    }
    return kExitOk;
  });
}

}  // namespace anm::cli
