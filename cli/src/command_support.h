// cli/src/command_support.h: what every `anonymily` command shares: exit codes, messages,
// the edge URL, JSON answers, and signing in with the saved credentials.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cli/src/api_client.h"
#include "cli/src/args.h"
#include "cli/src/connection.h"
#include "cli/src/session.h"
#include "cli/src/url.h"

namespace anm::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr char kDefaultEdge[] = "http://127.0.0.1:8080";
inline constexpr std::chrono::seconds kApiTimeout{30};

/// Prints "anonymily: <message>" and where to find the usage; returns kExitUsage.
int usageError(const std::string& message, const std::string& command);

/// Prints "anonymily: error: <message>"; returns kExitFailure.
int failure(const std::string& message);

/// --edge, else $ANONYMILY_EDGE, else kDefaultEdge.
std::optional<Url> edgeUrl(const Args& args, std::string& error);

/// The edge as the user would type it: scheme://host[:port][/base].
std::string edgeText(const Url& edge);

/// Said instead of a parser's complaint: the usual cause is --edge naming some other server.
std::string notJsonMessage(int status);

Poco::JSON::Object::Ptr parseJsonObject(const std::string& text);
bool isJsonObject(const std::string& text);

/// The answer's JSON object; throws std::runtime_error with notJsonMessage() when it has none.
Poco::JSON::Object::Ptr parseObject(const ApiResponse& response);

/// A member as text ("" when absent or null) or as an integer (0 when absent or null).
std::string getString(const Poco::JSON::Object& object, const std::string& key);
int64_t getInt(const Poco::JSON::Object& object, const std::string& key);

/// "2026-12-03 14:03:07" in local time.
std::string localTime(int64_t epochMs);

/// `not signed in to <edge>: run 'anonymily login --edge <edge>'`; for an http edge with a
/// login of the same host and port over https, says that one is used only over https.
std::string notSignedInMessage(const Url& edge);

/// Whether `anonymily login` saved a PAT for this edge.
bool hasCredentials(const Url& edge);

/// The saved PAT of `edge` exchanged for a JWT. Nothing, with `error` set to the sentence to
/// print, when the token must not go to that edge (plainHttpRefusal), there is no login, the
/// edge refuses it, or cannot be reached.
std::unique_ptr<MemberSession> signIn(const Url& edge, std::string& error);

/// Applies --ca-file when given: an https edge is then checked against that CA (PEM) instead
/// of the system store. Returns kExitOk, or the exit code of a usage error already printed.
int applyCaFile(const Args& args, const std::string& command);

/// Named hooks take names of 1..64 of a-z, 0-9, '-' and '_'.
bool isValidHookName(const std::string& name);

/// Logs to stderr with the local time to the millisecond; `quiet` keeps warnings and worse.
void setUpLogging(bool quiet);

/// Renders rows as columns two spaces apart, each as wide as its widest cell.
std::string formatTable(const std::vector<std::vector<std::string>>& rows);

/// Runs a command body, turning what it throws into one line on stderr and exit 1.
template <typename Body>
int guarded(Body&& body) {
  try {
    return body();
  } catch (const SessionError& e) {
    return failure(e.what());
  } catch (const NetError& e) {
    return failure(std::string("could not reach the edge: ") + e.what());
  } catch (const Poco::Exception& e) {
    return failure("could not read the edge's answer: " + e.displayText());
  } catch (const std::exception& e) {
    return failure(e.what());
  }
}

}  // namespace anm::cli
