// core/store/field_codec.cpp: length-prefixed encoding of name/value lists.
// SPDX-License-Identifier: Apache-2.0
#include "core/store/field_codec.h"

namespace anm::store {
namespace {

void appendPart(std::string& out, std::string_view part) {
  if (part.size() > kMaxFieldPartBytes) {
    throw StoreError("could not encode field: part of " + std::to_string(part.size()) +
                     " bytes exceeds the 4 GiB limit");
  }

  // Little-endian by hand so that the stored bytes do not depend on the host.
  const auto length = static_cast<uint32_t>(part.size());
  for (int shift = 0; shift < 32; shift += 8) {
    out.push_back(static_cast<char>((length >> shift) & 0xffu));
  }
  out.append(part.data(), part.size());
}

std::string_view takePart(std::string_view& rest) {
  if (rest.size() < 4) throw StoreError("could not decode fields: truncated length");

  uint32_t length = 0;
  for (int i = 0; i < 4; ++i) {
    length |= static_cast<uint32_t>(static_cast<unsigned char>(rest[i])) << (8 * i);
  }
  rest.remove_prefix(4);

  if (length > rest.size()) throw StoreError("could not decode fields: length past the end");
  std::string_view part = rest.substr(0, length);
  rest.remove_prefix(length);
  return part;
}

template <typename Field, typename Make>
std::vector<Field> decodeWith(std::string_view bytes, Make make) {
  std::vector<Field> fields;
  while (!bytes.empty()) {
    std::string_view name = takePart(bytes);
    std::string_view value = takePart(bytes);
    fields.push_back(make(name, value));
  }
  return fields;
}

}  // namespace

std::string encodeHeaders(const std::vector<Header>& headers) {
  std::string out;
  for (const auto& header : headers) {
    appendPart(out, header.name);
    appendPart(out, header.value);
  }
  return out;
}

std::vector<Header> decodeHeaders(std::string_view bytes) {
  return decodeWith<Header>(bytes, [](std::string_view name, std::string_view value) {
    return Header{std::string(name), std::string(value)};
  });
}

std::string encodeOptions(const std::vector<std::pair<std::string, std::string>>& options) {
  std::string out;
  for (const auto& [name, value] : options) {
    appendPart(out, name);
    appendPart(out, value);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> decodeOptions(std::string_view bytes) {
  return decodeWith<std::pair<std::string, std::string>>(
      bytes, [](std::string_view name, std::string_view value) {
        return std::pair<std::string, std::string>(name, value);
      });
}

std::string encodeCustomResponse(const std::optional<CustomResponse>& response) {
  if (!response) return std::string();
  std::string out;
  appendPart(out, std::to_string(response->status));
  appendPart(out, response->body);
  for (const auto& header : response->headers) {
    appendPart(out, header.name);
    appendPart(out, header.value);
  }
  return out;
}

std::optional<CustomResponse> decodeCustomResponse(std::string_view bytes) {
  if (bytes.empty()) return std::nullopt;
  CustomResponse response;
  const std::string_view status = takePart(bytes);
  const std::string_view body = takePart(bytes);
  if (status.empty() || status.size() > 9) {
    throw StoreError("could not decode custom response: malformed status");
  }
  int32_t value = 0;
  for (char c : status) {
    if (c < '0' || c > '9') throw StoreError("could not decode custom response: malformed status");
    value = value * 10 + (c - '0');
  }
  response.status = value;
  response.body = std::string(body);
  response.headers = decodeHeaders(bytes);
  return response;
}

}  // namespace anm::store
