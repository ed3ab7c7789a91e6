// core/search/query_error.cpp: the error a malformed search query raises, with where it occurs.
// SPDX-License-Identifier: Apache-2.0
#include "core/search/query_error.h"

#include <algorithm>
#include <utility>

namespace anm::search {

QueryError::QueryError(size_t position, size_t length, std::string problem, std::string hint)
    : std::runtime_error(problem + " at " + std::to_string(position) +
                         (hint.empty() ? "" : "; " + hint)),
      position_(position),
      length_(length),
      problem_(std::move(problem)),
      hint_(std::move(hint)) {}

std::string markError(std::string_view query, const QueryError& error) {
  // The line holding the error, and the columns (code points) before and under it.
  const size_t position = std::min(error.position(), query.size());
  const size_t newline = position == 0 ? std::string_view::npos : query.rfind('\n', position - 1);
  const size_t begin = newline == std::string_view::npos ? 0 : newline + 1;
  const size_t lineEnd = std::min(query.find('\n', position), query.size());
  const auto columns = [&](size_t from, size_t to) {
    size_t count = 0;
    for (size_t i = from; i < to && i < query.size(); ++i) {
      if ((static_cast<unsigned char>(query[i]) & 0xC0) != 0x80) ++count;
    }
    return count;
  };

  std::string line;
  for (size_t i = begin; i < lineEnd; ++i) {
    const auto byte = static_cast<unsigned char>(query[i]);
    line.push_back(byte == '\t' ? ' ' : (byte < 0x20 || byte == 0x7F) ? '?' : query[i]);
  }
  const size_t markEnd = std::min(position + error.length(), lineEnd);
  const size_t marks = std::max<size_t>(columns(position, markEnd), 1);
  return line + "\n" + std::string(columns(begin, position), ' ') + std::string(marks, '^');
}

}  // namespace anm::search
