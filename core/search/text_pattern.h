// core/search/text_pattern.h: case-insensitive text patterns with `*` wildcards for search terms.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace anm::search {

namespace detail {

/// Every byte's ASCII lower case, so that folding in the inner loop of a body scan is one load
/// instead of two comparisons and a branch.
struct FoldTable {
  std::array<char, 256> lower{};

  constexpr FoldTable() {
    for (int byte = 0; byte < 256; ++byte) {
      const bool upper = byte >= 'A' && byte <= 'Z';
      lower[static_cast<size_t>(byte)] = static_cast<char>(upper ? byte - 'A' + 'a' : byte);
    }
  }
};

inline constexpr FoldTable kFold;

}  // namespace detail

/// ASCII lower case of one byte; bytes 0x80..0xFF are left as they are, so text that is not
/// UTF-8 compares byte for byte and never fails.
inline char foldByte(char c) { return detail::kFold.lower[static_cast<unsigned char>(c)]; }

/// `text` with every ASCII letter in lower case.
std::string foldAscii(std::string_view text);

/// True when `text` equals `folded` (already lower case) ignoring ASCII case.
bool equalsFolded(std::string_view text, std::string_view folded);

/// One literal run of a pattern, lower case, with the shift table of a Boyer-Moore-Horspool
/// search built once, so that scanning a large body needs no allocation and skips ahead.
class Needle {
 public:
  explicit Needle(std::string folded);

  const std::string& text() const { return text_; }
  size_t size() const { return text_.size(); }

  /// The first offset at or after `from` where `haystack` holds the needle ignoring ASCII
  /// case, or npos.
  size_t findIn(std::string_view haystack, size_t from) const;

 private:
  std::string text_;
  /// How far the window may move when its last byte (folded) is the index. The needle is at
  /// most kMaxQueryBytes long, so 16 bits hold every shift.
  std::array<uint16_t, 256> shift_{};
};

/// How a pattern relates to the whole value it is matched against.
enum class PatternScope : uint8_t {
  kWhole,     ///< the pattern covers the whole value (method, path, type, header names/values)
  kContains,  ///< the pattern may stand anywhere in the value (body, query, free text)
};

/// A value typed in a query, lower-cased and split at its `*` wildcards. `parts` holds the
/// literal runs between wildcards: "invoice.*" is {"invoice.", ""}, "*" is {"", ""} and a value
/// without a wildcard is one part.
class TextPattern {
 public:
  TextPattern() = default;
  TextPattern(std::vector<std::string> parts, PatternScope scope);

  bool matches(std::string_view value) const;

  /// The parts as given (lower case), for rendering the pattern back.
  const std::vector<std::string>& parts() const { return parts_; }
  bool hasWildcard() const { return parts_.size() > 1; }
  /// A lone `*` (or several): the value must be there, that is, not empty.
  bool isPresence() const { return presence_; }

 private:
  std::vector<std::string> parts_;
  std::vector<Needle> needles_;  ///< the non-empty parts, in order
  bool anchoredStart_ = false;   ///< the first needle must start the value
  bool anchoredEnd_ = false;     ///< the last needle must end the value
  bool presence_ = false;
};

}  // namespace anm::search
