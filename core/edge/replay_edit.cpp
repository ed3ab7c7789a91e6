// core/edge/replay_edit.cpp: an edited replay's request, checked and applied to the copy.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/replay_edit.h"

#include <Poco/JSON/Array.h>
#include <Poco/String.h>

#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "anonymily/plugin.h"
#include "core/edge/api_support.h"
#include "core/edge/event_json.h"
#include "core/edge/raw_head.h"

namespace anm::edge {
namespace {

/// The string member `key` or BadRequest; only called for members that are there.
std::string textOf(const Poco::JSON::Object& request, const std::string& key) {
  const auto value = request.get(key);
  if (!value.isString()) throw BadRequest(key + " must be a string");
  return value.extract<std::string>();
}

/// One entry of "headers": ["Name","value"], ["Name","<base64 value>","b64"] or
/// ["<base64 name>","<base64 value>","b64name"], as the event form writes them.
store::Header headerOf(const Poco::JSON::Array& entry, size_t index) {
  const std::string where = "header " + std::to_string(index);
  const std::string malformed = where + " must be [name, value] with two strings (or a b64 form)";
  const auto text = [&](size_t i) {
    const auto value = entry.get(static_cast<unsigned>(i));
    if (!value.isString()) throw BadRequest(malformed);
    return value.extract<std::string>();
  };
  if (entry.size() == 2) return store::Header{text(0), text(1)};
  if (entry.size() != 3) throw BadRequest(malformed);

  const std::string form = text(2);
  if (form != "b64" && form != "b64name") {
    throw BadRequest(where + " has the form " + jsonText(form) +
                     "; the third element is b64 or b64name");
  }
  const auto value = decodeBase64(text(1));
  const auto name = form == "b64name" ? decodeBase64(text(0)) : std::optional(text(0));
  if (!value || !name) throw BadRequest(where + " is not valid base64 in its " + form + " form");
  return store::Header{*name, *value};
}

std::vector<store::Header> headersOf(const Poco::JSON::Object& request) {
  const auto entries = request.getArray("headers");
  if (!entries) throw BadRequest("headers must be an array of [name, value]");
  if (entries->size() > kMaxEditedHeaders) {
    throw BadRequest("headers may hold at most " + std::to_string(kMaxEditedHeaders) +
                     " fields, as ingest takes");
  }
  std::vector<store::Header> headers;
  for (size_t i = 0; i < entries->size(); ++i) {
    const auto entry = entries->getArray(static_cast<unsigned>(i));
    if (!entry) throw BadRequest("header " + std::to_string(i) + " must be an array");
    store::Header header = headerOf(*entry, i);
    if (header.name.size() > kMaxEditedHeaderNameBytes ||
        header.value.size() > kMaxEditedHeaderValueBytes) {
      throw BadRequest("header " + quoteForMessage(header.name) + " is over the limits ingest " +
                       "takes (names of " + std::to_string(kMaxEditedHeaderNameBytes) +
                       " bytes, values of " + std::to_string(kMaxEditedHeaderValueBytes) + ")");
    }
    headers.push_back(std::move(header));
  }

  // The same rule as ingest's, and its words: a field it would refuse cannot be relayed as is.
  const std::string refusal = fieldRefusal(headers);
  if (!refusal.empty()) throw BadRequest("headers: " + refusal);
  return headers;
}

}  // namespace

void applyReplayEdit(const Poco::JSON::Object& request, size_t maxBodyBytes,
                     store::EventRecord& copy) {
  const std::vector<std::string> known(std::begin(kReplayEditFields), std::end(kReplayEditFields));
  refuseUnknownFields(request, known);
  if (request.size() == 0) {
    throw BadRequest(
        "an edited replay changes at least one of method, path, query, headers and body_base64; "
        "send no body to replay the event as it was");
  }

  // Every member is checked before the copy changes.
  store::EventRecord edited = copy;
  if (request.has("method")) {
    edited.method = textOf(request, "method");
    if (!isToken(edited.method)) {
      throw BadRequest("method must be an RFC 9110 token, e.g. POST");
    }
  }
  if (request.has("path")) {
    edited.pathSuffix = textOf(request, "path");
    if (!edited.pathSuffix.empty() &&
        (edited.pathSuffix.front() != '/' || !isVisibleAscii(edited.pathSuffix))) {
      throw BadRequest(
          "path must be \"\" or start with \"/\", in visible ASCII; percent-encode other bytes");
    }
  }
  if (request.has("query")) {
    edited.rawQuery = textOf(request, "query");
    if (!edited.rawQuery.empty() && !isVisibleAscii(edited.rawQuery)) {
      throw BadRequest("query must be visible ASCII, without the '?'; percent-encode other bytes");
    }
  }
  const size_t target =
      edited.pathSuffix.size() + (edited.rawQuery.empty() ? 0 : 1 + edited.rawQuery.size());
  if (target > kMaxEditedTargetBytes) {
    throw BadRequest("path and query must be at most " + std::to_string(kMaxEditedTargetBytes) +
                     " bytes together, as ingest takes");
  }
  if (request.has("headers")) edited.headers = headersOf(request);
  if (request.has("body_base64")) {
    auto body = decodeBase64(textOf(request, "body_base64"));
    if (!body) throw BadRequest("body_base64 is not valid base64");
    if (body->size() > maxBodyBytes) {
      throw BadRequest("the body is " + std::to_string(body->size()) +
                       " bytes, over ingest.max_body_bytes (" + std::to_string(maxBodyBytes) + ")");
    }
    edited.body = std::move(*body);
    edited.bodySize = static_cast<int64_t>(edited.body.size());
  }

  // The stored headers must describe the stored body, or a copy of the request (the
  // dashboard's curl) would send a length that lies. Headers kept from the original follow a
  // new body; headers given with the edit must already agree with it.
  const std::string length = std::to_string(edited.body.size());
  for (auto& header : edited.headers) {
    if (Poco::icompare(header.name, "Content-Length") != 0 || header.value == length) continue;
    if (request.has("headers")) {
      throw BadRequest("headers: Content-Length says " + header.value + " but the body has " +
                       length + " bytes; leave it out or make it match");
    }
    header.value = length;
  }

  // The provider's signature covered the original request, not this one.
  edited.modified = true;
  edited.verdict = store::Verdict::kUnsigned;
  edited.reason = ANM_REASON_NOT_SIGNED;
  edited.reasonMessage = std::string(kEditedReplayMessage);
  copy = std::move(edited);
}

}  // namespace anm::edge
