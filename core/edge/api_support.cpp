// core/edge/api_support.cpp: what every REST handler shares: JSON bodies, errors, store outages.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/api_support.h"

#include <Poco/Exception.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <mutex>
#include <set>
#include <sstream>

#include "core/edge/body_reader.h"

namespace anm::edge {
namespace {

using Poco::Net::HTTPResponse;

/// POCO's handler keeps the last of two equal keys; this one also remembers the first key that
/// was repeated within one object, so that the request can be refused instead of half-read.
class DuplicateKeyHandler : public Poco::JSON::ParseHandler {
 public:
  DuplicateKeyHandler() : ParseHandler(true) {}

  void startObject() override {
    keys_.emplace_back();
    ParseHandler::startObject();
  }
  void endObject() override {
    if (!keys_.empty()) keys_.pop_back();
    ParseHandler::endObject();
  }
  void key(const std::string& k) override {
    if (!keys_.empty() && !keys_.back().insert(k).second && !duplicate_) duplicate_ = k;
    ParseHandler::key(k);
  }

  const std::optional<std::string>& duplicate() const { return duplicate_; }

 private:
  std::vector<std::set<std::string>> keys_;
  std::optional<std::string> duplicate_;
};

}  // namespace

Poco::Logger& httpLog() {
  static Poco::Logger& instance = Poco::Logger::get("anm.http");
  return instance;
}

std::string jsonText(std::string_view text) {
  std::ostringstream out;
  Poco::JSON::Stringifier::formatString(std::string(text), out);
  return out.str();
}

std::string errorJson(std::string_view message) { return "{\"error\":" + jsonText(message) + "}"; }

void setSafetyHeaders(Poco::Net::HTTPResponse& resp) {
  resp.set("X-Content-Type-Options", "nosniff");
  resp.set("Content-Security-Policy", kSandboxCsp);
}

void sendBody(Poco::Net::HTTPServerResponse& resp, int status, const std::string& contentType,
              const std::string& body) {
  resp.setStatusAndReason(static_cast<HTTPResponse::HTTPStatus>(status));
  resp.setContentType(contentType);
  resp.setContentLength64(static_cast<Poco::Int64>(body.size()));
  resp.sendBuffer(body.data(), body.size());
}

void sendJson(Poco::Net::HTTPServerResponse& resp, int status, const std::string& body) {
  sendBody(resp, status, "application/json", body);
}

void sendError(Poco::Net::HTTPServerResponse& resp, int status, std::string_view message) {
  sendJson(resp, status, errorJson(message));
}

bool hasBody(const Poco::Net::HTTPServerRequest& req) {
  return req.getChunkedTransferEncoding() ||
         (req.hasContentLength() && req.getContentLength64() > 0);
}

void closeIfBodyUnread(const Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) {
  if (hasBody(req)) resp.setKeepAlive(false);
}

bool LogThrottle::admit(uint64_t& heldBack) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  if (lastLogged_ != std::chrono::steady_clock::time_point{} &&
      now - lastLogged_ < std::chrono::seconds(1)) {
    ++heldBack_;
    return false;
  }
  lastLogged_ = now;
  heldBack = heldBack_;
  heldBack_ = 0;
  return true;
}

void logStoreFailure(const std::exception& e) {
  static LogThrottle throttle;
  uint64_t alsoRefused = 0;
  if (!throttle.admit(alsoRefused)) return;
  httpLog().error("could not reach the store error=\"%s\" not_logged=%s", std::string(e.what()),
                  std::to_string(alsoRefused));
}

void sendStoreUnavailable(Poco::Net::HTTPServerResponse& resp, const std::exception& e) {
  logStoreFailure(e);
  resp.set("Retry-After", "5");
  sendError(resp, 503, "store unavailable, try again");
}

std::optional<int64_t> parseId(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < 0) return std::nullopt;
  return value;
}

BodyRead readBody(Poco::Net::HTTPServerRequest& req, size_t limit, std::string& body) {
  // body_reader decodes the framing itself: POCO's chunked stream ends silently on a truncated
  // or malformed body.
  const BodyResult result = readRequestBody(req, limit, body);
  switch (result.status) {
    case BodyStatus::kOk:
      return BodyRead::kOk;
    case BodyStatus::kTooLarge:
      return BodyRead::kTooLarge;
    case BodyStatus::kShort:
      return BodyRead::kShort;
    case BodyStatus::kTimeout:
      throw BadRequest(result.error, 408);
    case BodyStatus::kMalformed:
      break;
  }
  throw BadRequest(result.error);
}

Poco::JSON::Object::Ptr parseJsonObject(const std::string& body) {
  if (body.empty()) return new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);

  // POCO's parser answers a top-level scalar or array with an error about its own stack, so
  // the shape is checked first to say what is actually wrong.
  const auto start = body.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || body[start] != '{') {
    throw BadRequest("the request body must be a JSON object");
  }

  Poco::Dynamic::Var parsed;
  Poco::SharedPtr<DuplicateKeyHandler> handler = new DuplicateKeyHandler;
  try {
    Poco::JSON::Parser parser(handler);
    parsed = parser.parse(body);
  } catch (const Poco::Exception& e) {
    throw BadRequest("the body is not valid JSON: " + e.message());
  }
  if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
    throw BadRequest("the request body must be a JSON object");
  }
  if (handler->duplicate()) {
    throw BadRequest("duplicate key " + jsonText(*handler->duplicate()) + " in the request body");
  }
  return parsed.extract<Poco::JSON::Object::Ptr>();
}

std::string stringMember(const Poco::JSON::Object& object, const std::string& key,
                         const std::string& fallback) {
  if (!object.has(key)) return fallback;
  const auto value = object.get(key);
  if (!value.isString()) throw BadRequest(key + " must be a string");
  return value.extract<std::string>();
}

int64_t integerMember(const Poco::JSON::Object& object, const std::string& key, int64_t fallback,
                      int64_t min, int64_t max) {
  if (!object.has(key)) return fallback;
  const auto value = object.get(key);
  // POCO counts a boolean as an integer; JSON does not.
  if (!value.isInteger() || value.isBoolean()) {
    throw BadRequest(key + " must be an integer within " + std::to_string(min) + ".." +
                     std::to_string(max));
  }
  int64_t number = 0;
  try {
    number = value.convert<Poco::Int64>();
  } catch (const Poco::Exception&) {
    throw BadRequest(key + " is out of range");
  }
  if (number < min || number > max) {
    throw BadRequest(key + " must be an integer within " + std::to_string(min) + ".." +
                     std::to_string(max));
  }
  return number;
}

void refuseUnknownFields(const Poco::JSON::Object& object, const std::vector<std::string>& known) {
  std::vector<std::string> unknown;
  for (const auto& name : object.getNames()) {
    if (std::find(known.begin(), known.end(), name) == known.end())
      unknown.push_back(jsonText(name));
  }
  if (unknown.empty()) return;

  std::string message = unknown.size() == 1 ? "unknown field " : "unknown fields ";
  for (size_t i = 0; i < unknown.size(); ++i) message += (i > 0 ? ", " : "") + unknown[i];
  message += " (known fields: ";
  for (size_t i = 0; i < known.size(); ++i) message += (i > 0 ? ", " : "") + known[i];
  throw BadRequest(message + ")");
}

}  // namespace anm::edge
