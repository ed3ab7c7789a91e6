// cli/src/sse_parser.cpp: Server-Sent Events line and field handling.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/sse_parser.h"

#include <algorithm>
#include <string_view>

namespace anm::cli {

namespace {

// Buffers that grew for one big event are given back afterwards, so that one large webhook
// does not keep the relay's memory high for the rest of its life.
constexpr size_t kKeepCapacityBytes = 256 * 1024;

void release(std::string& buffer) {
  if (buffer.capacity() > kKeepCapacityBytes) {
    std::string().swap(buffer);
    return;
  }
  buffer.clear();
}

}  // namespace

void SseParser::reset() {
  release(line_);
  release(data_);
  type_.clear();
  sawCr_ = false;
  startOfStream_ = true;
  lineTooLong_ = false;
  oversized_ = false;
}

bool SseParser::feed(const char* data, size_t size, const Callback& onEvent) {
  const char* cursor = data;
  const char* end = data + size;

  // An LF directly after a CR that ended the previous piece is the same line break.
  if (sawCr_ && cursor < end) {
    if (*cursor == '\n') ++cursor;
    sawCr_ = false;
  }

  while (cursor < end) {
    const char* brk = std::find_if(cursor, end, [](char c) { return c == '\n' || c == '\r'; });
    const size_t room = maxEventBytes_ + 16 > line_.size() ? maxEventBytes_ + 16 - line_.size() : 0;
    const size_t take = static_cast<size_t>(brk - cursor);
    if (!lineTooLong_ && take > room) {
      // A line that alone is bigger than an event may be is dropped as it streams by.
      lineTooLong_ = true;
      release(line_);
    }
    if (!lineTooLong_) line_.append(cursor, brk);
    cursor = brk;
    if (cursor == end) break;

    // A complete line: CR LF, LF, or a lone CR.
    if (*cursor == '\r') {
      ++cursor;
      if (cursor == end) {
        sawCr_ = true;
      } else if (*cursor == '\n') {
        ++cursor;
      }
    } else {
      ++cursor;
    }
    const bool keepGoing = processLine(onEvent);
    if (!keepGoing) return false;
  }
  return true;
}

bool SseParser::processLine(const Callback& onEvent) {
  if (lineTooLong_) {
    // Only data lines can be that long in a sane stream; whatever it was, the event is spoilt.
    lineTooLong_ = false;
    oversized_ = true;
    release(data_);
    return true;
  }

  // The UTF-8 BOM may only appear as the stream's first bytes.
  if (startOfStream_) {
    startOfStream_ = false;
    if (line_.compare(0, 3, "\xEF\xBB\xBF") == 0) line_.erase(0, 3);
  }

  // An empty line dispatches the event collected so far.
  if (line_.empty()) {
    bool keepGoing = true;
    if (!data_.empty() || oversized_) {
      SseEvent event;
      event.id = lastEventId_;
      event.type = type_.empty() ? "message" : type_;
      if (!data_.empty() && data_.back() == '\n') data_.pop_back();
      event.data.swap(data_);
      event.oversized = oversized_;
      keepGoing = onEvent(event);
      release(event.data);
    }
    release(data_);
    type_.clear();
    oversized_ = false;
    return keepGoing;
  }

  // Comments.
  if (line_.front() == ':') {
    release(line_);
    return true;
  }

  // field ":" [" "] value, or a bare field name with an empty value.
  const size_t colon = line_.find(':');
  const std::string_view whole(line_);
  const std::string_view field = whole.substr(0, colon);
  std::string_view value;
  if (colon != std::string::npos) {
    value = whole.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }

  if (field == "data") {
    if (!oversized_ && data_.size() + value.size() + 1 > maxEventBytes_) {
      oversized_ = true;
      release(data_);
    }
    if (!oversized_) {
      data_.append(value);
      data_.push_back('\n');
    }
  } else if (field == "event") {
    type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) lastEventId_.assign(value);
  } else if (field == "retry") {
    const bool digits =
        !value.empty() && value.size() <= 12 &&
        std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) retryMs_ = std::stoll(std::string(value));
  }
  release(line_);
  return true;
}

}  // namespace anm::cli
