// core/edge/api_support.h: what every REST handler shares: JSON bodies, errors, store outages.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace anm::edge {

/// The logger of the HTTP side ("anm.http"), looked up once: Logger::get takes a process-wide
/// lock and searches a map on every call.
Poco::Logger& httpLog();

/// A request the client must fix; the message goes back as {"error": ...}.
class BadRequest : public std::runtime_error {
 public:
  explicit BadRequest(const std::string& what, int status = 400)
      : std::runtime_error(what), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

/// `text` as a JSON string literal, quotes included.
std::string jsonText(std::string_view text);

/// {"error": message}.
std::string errorJson(std::string_view message);

/// The Content-Security-Policy of every answer whose route sets none of its own (ingest, the
/// API, errors): a document made from it runs no script and gets an opaque origin, so that bytes
/// a sender or a hook's custom response chose never act as the dashboard's origin (#4).
inline constexpr char kSandboxCsp[] = "sandbox; default-src 'none'";

/// Sets what every answer of the edge carries before its route adds anything: nosniff, so that
/// no browser reads a body as another type than the one sent, and kSandboxCsp, which a route
/// with a policy of its own (the dashboard's files, the diagnosis pages) replaces.
void setSafetyHeaders(Poco::Net::HTTPResponse& resp);

void sendBody(Poco::Net::HTTPServerResponse& resp, int status, const std::string& contentType,
              const std::string& body);
void sendJson(Poco::Net::HTTPServerResponse& resp, int status, const std::string& body);
void sendError(Poco::Net::HTTPServerResponse& resp, int status, std::string_view message);

/// Whether the request announces a body (chunked, or a Content-Length above 0).
bool hasBody(const Poco::Net::HTTPServerRequest& req);

/// Closes the connection after the answer when the request's body was not read: the unread
/// bytes would otherwise be taken for the next request.
void closeIfBodyUnread(const Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp);

/// Lets one line through per second and counts the ones held back, so that a condition hit by
/// every request under load writes a few lines instead of one per request.
class LogThrottle {
 public:
  /// True when a line may be written now; `heldBack` then says how many were not since.
  bool admit(uint64_t& heldBack);

 private:
  std::mutex mutex_;
  std::chrono::steady_clock::time_point lastLogged_{};
  uint64_t heldBack_ = 0;
};

/// Logs a store failure at most once a second, with the count of those left out, so that an
/// outage under load writes a few lines instead of one per refused request.
void logStoreFailure(const std::exception& e);

/// 503 {"error":"store unavailable, try again"} with Retry-After: 5, and the log line above.
void sendStoreUnavailable(Poco::Net::HTTPServerResponse& resp, const std::exception& e);

/// A non-negative decimal integer that is the whole of `text`, or nothing.
std::optional<int64_t> parseId(std::string_view text);

enum class BodyRead { kOk, kTooLarge, kShort };

/// Reads at most limit + 1 bytes of the body, which is enough to tell a body over the limit from
/// one at it. Throws BadRequest for a framing error (malformed chunks, the peer vanished; 408
/// when too slow).
BodyRead readBody(Poco::Net::HTTPServerRequest& req, size_t limit, std::string& body);

/// A JSON object from a request body; "" is an empty object. Throws BadRequest for anything
/// else, for invalid JSON and for a key repeated within one object (which parsers disagree on).
Poco::JSON::Object::Ptr parseJsonObject(const std::string& body);

/// The string member `key`, or `fallback` when absent; BadRequest when not a string.
std::string stringMember(const Poco::JSON::Object& object, const std::string& key,
                         const std::string& fallback);

/// The integer member `key` within min..max, or `fallback` when absent; BadRequest for a
/// non-integer (booleans included) or a number out of range.
int64_t integerMember(const Poco::JSON::Object& object, const std::string& key, int64_t fallback,
                      int64_t min, int64_t max);

/// Throws BadRequest naming every member of `object` not in `known`, and the known ones, so
/// that a misspelt field is not silently ignored.
void refuseUnknownFields(const Poco::JSON::Object& object, const std::vector<std::string>& known);

}  // namespace anm::edge
