// cli/src/stream_event.cpp: decoding of stream envelopes and of base64 bodies.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/stream_event.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <array>

namespace anm::cli {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

const std::array<int8_t, 256>& decodeTable() {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i)
      t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
    return t;
  }();
  return table;
}

std::string optionalString(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key) || object.isNull(key)) return "";
  return object.getValue<std::string>(key);
}

int64_t optionalInt(const Poco::JSON::Object& object, const std::string& key) {
  if (!object.has(key) || object.isNull(key)) return 0;
  return object.getValue<int64_t>(key);
}

// `key` + "_b64" decoded when present, else `key` as text. False for malformed base64.
bool rawOrDisplay(const Poco::JSON::Object& object, const std::string& key, std::string& out) {
  const std::string encodedKey = key + "_b64";
  if (!object.has(encodedKey) || object.isNull(encodedKey)) {
    out = optionalString(object, key);
    return true;
  }
  return decodeBase64(object.getValue<std::string>(encodedKey), out);
}

}  // namespace

bool decodeHeaderField(const Poco::JSON::Array::Ptr& entry, HeaderField& field) {
  // ["Name","value"], or with "b64" (value in base64) or "b64name" (both in base64), so that
  // header bytes that are not UTF-8 survive JSON.
  if (!entry || entry->size() < 2 || entry->size() > 3) return false;
  field.name = entry->getElement<std::string>(0);
  field.value = entry->getElement<std::string>(1);
  if (entry->size() == 2) return true;
  const std::string encoding = entry->getElement<std::string>(2);
  std::string decoded;
  if (encoding == "b64name") {
    if (!decodeBase64(field.name, decoded)) return false;
    field.name = decoded;
  } else if (encoding != "b64") {
    return false;
  }
  if (!decodeBase64(field.value, decoded)) return false;
  field.value = decoded;
  return true;
}

bool decodeBase64(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  out.reserve(text.size() / 4 * 3);
  const auto& table = decodeTable();
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int values[4];
    int padding = 0;
    for (int j = 0; j < 4; ++j) {
      const unsigned char c = static_cast<unsigned char>(text[i + j]);
      if (c == '=' && last && j >= 2) {
        values[j] = 0;
        ++padding;
        continue;
      }
      if (padding > 0 || table[c] < 0) return false;
      values[j] = table[c];
    }
    const uint32_t triple =
        (static_cast<uint32_t>(values[0]) << 18) | (static_cast<uint32_t>(values[1]) << 12) |
        (static_cast<uint32_t>(values[2]) << 6) | static_cast<uint32_t>(values[3]);
    out.push_back(static_cast<char>((triple >> 16) & 0xff));
    if (padding < 2) out.push_back(static_cast<char>((triple >> 8) & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(triple & 0xff));
  }
  return true;
}

std::string encodeBase64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t triple = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (n > 1) triple |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (n > 2) triple |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(kAlphabet[(triple >> 18) & 63]);
    out.push_back(kAlphabet[(triple >> 12) & 63]);
    out.push_back(n > 1 ? kAlphabet[(triple >> 6) & 63] : '=');
    out.push_back(n > 2 ? kAlphabet[triple & 63] : '=');
  }
  return out;
}

bool parseStreamEvent(const std::string& json, StreamEvent& event, std::string& error) {
  try {
    Poco::JSON::Parser parser;
    const Poco::Dynamic::Var root = parser.parse(json);
    const Poco::JSON::Object::Ptr object = root.extract<Poco::JSON::Object::Ptr>();

    // Request line parts; a missing method or id means the frame is not a webhook envelope.
    if (!object->has("id") || !object->has("method")) {
      error = "missing id or method";
      return false;
    }
    event.id = object->getValue<int64_t>("id");
    event.receivedAtMs = optionalInt(*object, "received_at_ms");
    event.request.method = object->getValue<std::string>("method");
    event.displayPath = optionalString(*object, "path");
    event.displayQuery = optionalString(*object, "query");

    // The raw suffix and query; the base64 forms win because "path" and "query" then hold
    // U+FFFD where the bytes were not UTF-8, and forwarding those would change the request.
    if (!rawOrDisplay(*object, "path", event.request.pathSuffix)) {
      error = "path_b64 is not valid base64";
      return false;
    }
    if (!rawOrDisplay(*object, "query", event.request.rawQuery)) {
      error = "query_b64 is not valid base64";
      return false;
    }

    // Headers as [[name, value], ...] in arrival order.
    event.request.headers.clear();
    if (object->has("headers")) {
      const Poco::JSON::Array::Ptr headers = object->getArray("headers");
      if (!headers) {
        error = "headers is not an array";
        return false;
      }
      event.request.headers.reserve(headers->size());
      for (size_t i = 0; i < headers->size(); ++i) {
        HeaderField field;
        if (!decodeHeaderField(headers->getArray(static_cast<unsigned>(i)), field)) {
          error = "header " + std::to_string(i) + " is not a valid [name, value(, encoding)]";
          return false;
        }
        event.request.headers.push_back(std::move(field));
      }
    }

    // The exact body bytes.
    if (!decodeBase64(optionalString(*object, "body_base64"), event.request.body)) {
      error = "body_base64 is not valid base64";
      return false;
    }

    event.eventType = optionalString(*object, "event_type");
    event.deliveryId = optionalString(*object, "delivery_id");
    event.verdict = optionalString(*object, "verdict");
    event.replayOf = optionalInt(*object, "replay_of");
    return true;
  } catch (const Poco::Exception& e) {
    error = e.displayText();
    return false;
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
}

}  // namespace anm::cli
