// cli/src/command_support.cpp: shared pieces of the `anonymily` commands.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/command_support.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Exception.h>
#include <Poco/FormattingChannel.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>
#include <Poco/LocalDateTime.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/Timestamp.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

#include "cli/src/connection.h"
#include "cli/src/credentials.h"
#include "cli/src/tls_trust.h"

namespace anm::cli {

int usageError(const std::string& message, const std::string& command) {
  std::cerr << "anonymily: " << message << "\n"
            << "run 'anonymily " << (command.empty() ? "" : command + " ") << "--help' for usage\n";
  return kExitUsage;
}

int failure(const std::string& message) {
  std::cerr << "anonymily: error: " << message << "\n";
  return kExitFailure;
}

std::optional<Url> edgeUrl(const Args& args, std::string& error) {
  std::string text = kDefaultEdge;
  const char* env = std::getenv("ANONYMILY_EDGE");
  if (env != nullptr && env[0] != '\0') text = env;
  if (args.value("edge")) text = *args.value("edge");
  return Url::parse(text, error);
}

std::string edgeText(const Url& edge) {
  return edge.scheme + "://" + edge.authority() + edge.basePath();
}

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

Poco::JSON::Object::Ptr parseObject(const ApiResponse& response) {
  try {
    Poco::JSON::Object::Ptr object = parseJsonObject(response.body);
    if (!object.isNull()) return object;
  } catch (const Poco::Exception&) {
    // Reported below in the words a user can act on.
  }
  throw std::runtime_error(notJsonMessage(response.status));
}

std::string getString(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key) || object.isNull(key)) return "";
  return object.get(key).toString();
}

int64_t getInt(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key) || object.isNull(key)) return 0;
  return object.getValue<int64_t>(key);
}

std::string localTime(int64_t epochMs) {
  const Poco::Timestamp when(static_cast<Poco::Timestamp::TimeVal>(epochMs) * 1000);
  return Poco::DateTimeFormatter::format(Poco::LocalDateTime(when), "%Y-%m-%d %H:%M:%S");
}

std::string notSignedInMessage(const Url& edge) {
  const std::string login = "not signed in to " + edgeText(edge) +
                            ": run 'anonymily login --edge " + edgeText(edge) + "'";
  if (edge.tls()) return login;

  // A login of the same host and port over https is not used here, and the user should know
  // why rather than think it lost.
  Url secure = edge;
  secure.scheme = "https";
  if (!loadCredentials(secure)) return login;
  return "not signed in to " + edgeText(edge) + ": the login saved for " + edgeText(secure) +
         " is used only over https, never sent over plain http; use --edge " + edgeText(secure) +
         ", or run 'anonymily login --edge " + edgeText(edge) + "'";
}

bool hasCredentials(const Url& edge) { return loadCredentials(edge).has_value(); }

std::unique_ptr<MemberSession> signIn(const Url& edge, std::string& error) {
  error = plainHttpRefusal(edge);
  if (!error.empty()) return nullptr;
  const std::optional<std::string> pat = loadCredentials(edge);
  if (!pat) {
    error = notSignedInMessage(edge);
    return nullptr;
  }
  auto session = std::make_unique<MemberSession>(edge, *pat, kApiTimeout);
  try {
    session->exchange();
  } catch (const SessionError& e) {
    error = e.what();
    return nullptr;
  } catch (const NetError& e) {
    error = "could not reach the edge at " + edgeText(edge) + ": " + e.what();
    return nullptr;
  }
  return session;
}

int applyCaFile(const Args& args, const std::string& command) {
  if (!args.value("ca-file")) return kExitOk;
  try {
    trustCaFile(*args.value("ca-file"));
  } catch (const TrustError& e) {
    return usageError(std::string("--ca-file: ") + e.what(), command);
  }
  return kExitOk;
}

bool isValidHookName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::string formatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      out += row[c];
      if (c + 1 < row.size()) out += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

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

}  // namespace anm::cli
