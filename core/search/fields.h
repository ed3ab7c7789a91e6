// core/search/fields.h: the field names of the search language and the names of their values.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/store/store.h"

namespace anm::search {

/// What a term looks at. The names in fieldName() are the public contract of the language
/// (docs/search.md); kText is a term without a field.
enum class Field : uint8_t {
  kMethod,
  kPath,
  kQuery,
  kHeader,       ///< `header:NAME`: a header of that name is present
  kHeaderValue,  ///< `header.NAME:VALUE`
  kBody,
  kType,
  kVerdict,
  kReason,
  kStatus,
  kTime,
  kId,
  kSize,
  kReplay,
  kText,
};

/// The name a query spells the field with ("header" for both header forms, "" for kText).
std::string_view fieldName(Field field);

/// The field spelled `name` (ASCII case ignored), or nothing. `header.NAME` is not looked up
/// here: the parser splits it off first.
std::optional<Field> fieldNamed(std::string_view name);

/// Every field name a query may use, in the order the reference lists them.
const std::vector<std::string_view>& fieldNames();

/// The verdict spelled `name` (valid, invalid, unsigned; ASCII case ignored), or nothing.
std::optional<store::Verdict> verdictNamed(std::string_view name);
std::string_view verdictLabel(store::Verdict verdict);
const std::vector<std::string_view>& verdictNames();

/// The ANM_REASON_* code spelled `name` (the names plugin::reasonName gives), or nothing.
std::optional<int32_t> reasonNamed(std::string_view name);
/// The name of a known reason code, "" for another code.
std::string_view reasonLabel(int32_t reason);
const std::vector<std::string_view>& reasonNames();

/// The candidate closest to `typed` when it is close enough to be a slip of the keyboard (at
/// most two letters added, dropped, changed or swapped, and fewer than half of them), else "".
std::string_view closestName(std::string_view typed, const std::vector<std::string_view>& names);

}  // namespace anm::search
