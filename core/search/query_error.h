// core/search/query_error.h: the error a malformed search query raises, with where it occurs.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace anm::search {

/// A query that cannot be parsed. The position is a 0-based byte offset into the query text
/// and the length covers the bytes at fault (0 where something is missing, such as at the end).
/// what() reads `<problem> at <position>` followed by `; <hint>` when there is one, e.g.
/// `unknown field "stauts" at 0; did you mean "status"?`.
class QueryError : public std::runtime_error {
 public:
  QueryError(size_t position, size_t length, std::string problem, std::string hint = "");

  size_t position() const { return position_; }
  size_t length() const { return length_; }
  /// The message without position and hint, for a caller that marks the position itself.
  const std::string& problem() const { return problem_; }
  /// What to do about it; may be empty.
  const std::string& hint() const { return hint_; }

 private:
  size_t position_;
  size_t length_;
  std::string problem_;
  std::string hint_;
};

/// Two lines for a terminal: the line of `query` holding the error, and below it `^` marks
/// under the bytes at fault (one `^` where nothing is there yet). Columns count UTF-8 code
/// points, so the marks line up under text that is not ASCII; other control bytes show as
/// '?'.
std::string markError(std::string_view query, const QueryError& error);

}  // namespace anm::search
