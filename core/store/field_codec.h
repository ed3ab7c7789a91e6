// core/store/field_codec.h: the byte encoding of header lists and hook options in one BLOB.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/store/store.h"

namespace anm::store {

/// The encoding, shared by every backend so that a database can be copied between them:
/// the fields one after another, each as
///
///     name length (uint32, little-endian) | name bytes | value length (uint32, LE) | value bytes
///
/// with nothing before, between or after them. An empty list is an empty BLOB. Any byte may
/// appear in a name or value (NUL included); order, spelling and duplicates are kept because
/// nothing is normalised.
///
/// Limit: a name or value must be shorter than 4 GiB (kMaxFieldPartBytes); a longer one
/// throws StoreError. The HTTP layer caps real headers far below this (8 KiB values).
inline constexpr uint64_t kMaxFieldPartBytes = 0xffffffffu;

std::string encodeHeaders(const std::vector<Header>& headers);

/// Throws StoreError when the bytes are not a complete encoding (truncated or overlong length).
std::vector<Header> decodeHeaders(std::string_view bytes);

std::string encodeOptions(const std::vector<std::pair<std::string, std::string>>& options);

/// Throws StoreError like decodeHeaders.
std::vector<std::pair<std::string, std::string>> decodeOptions(std::string_view bytes);

/// A hook's custom response in the same encoding: first the pair (status in decimal, body),
/// then one pair per header, in order. No custom response is an empty BLOB.
std::string encodeCustomResponse(const std::optional<CustomResponse>& response);

/// Throws StoreError like decodeHeaders, and for a status that is not a decimal number.
std::optional<CustomResponse> decodeCustomResponse(std::string_view bytes);

}  // namespace anm::store
