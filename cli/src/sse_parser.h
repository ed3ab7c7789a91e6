// cli/src/sse_parser.h: an incremental Server-Sent Events parser with bounded buffers.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace anm::cli {

/// One dispatched event (WHATWG HTML "event stream interpretation").
struct SseEvent {
  std::string id;          ///< the last event id in effect when the event was dispatched
  std::string type;        ///< "message" when the stream gave none
  std::string data;        ///< data lines joined with '\n', without the final newline
  bool oversized = false;  ///< data went past the limit and was dropped; id and type are valid
};

/// Largest event data kept by default. The edge may be configured for bodies up to 256 MiB
/// (its ingest.max_body_bytes limit), which become about 342 MiB of base64 in the event JSON,
/// plus up to 100 headers of 8 KiB (about 1.1 MiB as base64); 360 MiB covers that with room for
/// escaping, so that a relay never refuses what its edge accepted. Memory is only taken for
/// events that large.
inline constexpr size_t kDefaultMaxEventBytes = size_t{360} << 20;

/// Feeds bytes as they arrive, in pieces of any size, and calls back once per complete event.
/// Lines may end in CR LF, LF or CR; comment lines (starting with ':') and unknown fields are
/// ignored; a BOM at the start of the stream is skipped. Memory is bounded by the largest
/// event: data past maxEventBytes is dropped and the event is delivered with oversized set, so
/// the caller can skip it without losing its place in the stream.
class SseParser {
 public:
  /// Return false from the callback to stop parsing the rest of the current piece.
  using Callback = std::function<bool(SseEvent&)>;

  explicit SseParser(size_t maxEventBytes = kDefaultMaxEventBytes)
      : maxEventBytes_(maxEventBytes) {}

  /// Returns false when the callback asked to stop.
  bool feed(const char* data, size_t size, const Callback& onEvent);

  /// The reconnection time of the last valid retry: field, if any.
  std::optional<int64_t> retryMs() const { return retryMs_; }

  /// The last event id seen (persists across events, as the specification says).
  const std::string& lastEventId() const { return lastEventId_; }

  /// Forgets a partial line and event (a new connection starts a new stream), keeping the
  /// last event id.
  void reset();

 private:
  bool processLine(const Callback& onEvent);

  size_t maxEventBytes_;
  std::string line_;
  std::string data_;
  std::string type_;
  std::string lastEventId_;
  std::optional<int64_t> retryMs_;
  bool sawCr_ = false;  ///< the previous piece ended in CR: an LF right after belongs to it
  bool startOfStream_ = true;
  bool lineTooLong_ = false;  ///< the current line went past the limit and is being skipped
  bool oversized_ = false;    ///< the current event went past the limit
};

}  // namespace anm::cli
