// core/search/text_pattern.cpp: case-insensitive text patterns with `*` wildcards for search terms.
// SPDX-License-Identifier: Apache-2.0
#include "core/search/text_pattern.h"

#include <algorithm>
#include <utility>

namespace anm::search {

std::string foldAscii(std::string_view text) {
  std::string folded(text);
  for (char& c : folded) c = foldByte(c);
  return folded;
}

bool equalsFolded(std::string_view text, std::string_view folded) {
  if (text.size() != folded.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (foldByte(text[i]) != folded[i]) return false;
  }
  return true;
}

namespace {

bool startsWithFolded(std::string_view text, std::string_view folded) {
  return text.size() >= folded.size() && equalsFolded(text.substr(0, folded.size()), folded);
}

bool endsWithFolded(std::string_view text, std::string_view folded) {
  return text.size() >= folded.size() &&
         equalsFolded(text.substr(text.size() - folded.size()), folded);
}

}  // namespace

Needle::Needle(std::string folded) : text_(std::move(folded)) {
  // Horspool's table: a window whose last byte does not occur in the needle (except at its
  // end) moves by the whole needle length. Both cases of a letter share one entry because the
  // search looks the table up with the folded byte.
  const size_t length = text_.size();
  shift_.fill(static_cast<uint16_t>(std::min<size_t>(length, UINT16_MAX)));
  for (size_t i = 0; i + 1 < length; ++i) {
    shift_[static_cast<unsigned char>(text_[i])] =
        static_cast<uint16_t>(std::min<size_t>(length - 1 - i, UINT16_MAX));
  }
}

size_t Needle::findIn(std::string_view haystack, size_t from) const {
  const size_t length = text_.size();
  if (length == 0) return from <= haystack.size() ? from : std::string_view::npos;
  if (from > haystack.size() || haystack.size() - from < length) return std::string_view::npos;

  // A one-byte needle gains nothing from the table; a plain scan is quicker.
  if (length == 1) {
    const char wanted = text_[0];
    for (size_t i = from; i < haystack.size(); ++i) {
      if (foldByte(haystack[i]) == wanted) return i;
    }
    return std::string_view::npos;
  }

  const char last = text_[length - 1];
  for (size_t start = from; start + length <= haystack.size();) {
    const char windowLast = foldByte(haystack[start + length - 1]);
    if (windowLast == last) {
      size_t i = 0;
      while (i + 1 < length && foldByte(haystack[start + i]) == text_[i]) ++i;
      if (i + 1 == length) return start;
    }
    start += shift_[static_cast<unsigned char>(windowLast)];
  }
  return std::string_view::npos;
}

TextPattern::TextPattern(std::vector<std::string> parts, PatternScope scope)
    : parts_(std::move(parts)) {
  if (parts_.empty()) parts_.emplace_back();

  // Anchors: a whole-value pattern is tied to the value's start unless it begins with `*`, and
  // to its end unless it ends with one; a contains pattern is tied to neither.
  const bool whole = scope == PatternScope::kWhole;
  anchoredStart_ = whole && (parts_.size() == 1 || !parts_.front().empty());
  anchoredEnd_ = whole && (parts_.size() == 1 || !parts_.back().empty());

  presence_ = parts_.size() > 1 &&
              std::all_of(parts_.begin(), parts_.end(), [](const auto& p) { return p.empty(); });
  for (const auto& part : parts_) {
    if (!part.empty()) needles_.emplace_back(part);
  }
}

bool TextPattern::matches(std::string_view value) const {
  if (presence_) return !value.empty();

  // An exact value (no wildcard) in a whole-value field: one comparison.
  if (anchoredStart_ && anchoredEnd_ && needles_.size() <= 1) {
    return equalsFolded(value, needles_.empty() ? std::string_view() : needles_[0].text());
  }

  // The anchored ends are fixed places; the needles between them are found leftmost first,
  // which is enough for `*` (any run) wildcards: an earlier match never leaves less room for
  // the needles after it than a later one would.
  size_t next = 0;
  size_t end = value.size();
  size_t first = 0;
  size_t last = needles_.size();
  if (anchoredStart_ && first < last) {
    if (!startsWithFolded(value, needles_[first].text())) return false;
    next = needles_[first].size();
    ++first;
  }
  if (anchoredEnd_ && first < last) {
    const auto& tail = needles_[last - 1].text();
    if (end - next < tail.size() || !endsWithFolded(value, tail)) return false;
    end -= tail.size();
    --last;
  }

  const std::string_view between = value.substr(0, end);
  for (size_t i = first; i < last; ++i) {
    const size_t found = needles_[i].findIn(between, next);
    if (found == std::string_view::npos) return false;
    next = found + needles_[i].size();
  }
  return true;
}

}  // namespace anm::search
