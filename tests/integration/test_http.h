// tests/integration/test_http.h: a byte-exact HTTP/1.1 and SSE client for the edge's tests.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Net/StreamSocket.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace anm::test {

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The first value of a header (name compared ignoring case), or "".
  std::string header(const std::string& name) const;
};

/// Reads one response from `socket` (Content-Length, or until the peer closes).
Response readResponse(Poco::Net::StreamSocket& socket);

/// Sends `bytes` exactly as given on a new connection and reads one response.
Response rawExchange(uint16_t port, const std::string& bytes);

/// A request with "Connection: close"; `headers` are sent in the order given.
Response request(uint16_t port, const std::string& method, const std::string& target,
                 const std::string& body = "",
                 const std::vector<std::pair<std::string, std::string>>& headers = {});

/// The port an edge wrote to its --port-file `path`, waiting up to 10 s; 0 when it never did.
uint16_t waitForPortFile(const std::string& path);

/// The same with a bearer token.
Response apiRequest(uint16_t port, const std::string& method, const std::string& target,
                    const std::string& token, const std::string& body = "");

/// One SSE frame as received.
struct Frame {
  int64_t id = -1;
  std::string event;
  std::string data;
};

/// An open event stream.
class SseClient {
 public:
  /// Connects and reads the response head; `lastEventId` < 0 sends no Last-Event-ID. `route`
  /// is the hook's stream route: "stream" (relays) or "watch" (dashboards).
  SseClient(uint16_t port, const std::string& hookId, const std::string& token,
            int64_t lastEventId = -1, const std::string& route = "stream");

  const Response& head() const { return head_; }

  /// Waits (up to 10 s) for the next frame that carries an event id.
  bool nextEvent(Frame& frame);

  /// Waits (up to `timeoutMs`) for the next frame with an event name, with or without an id.
  bool nextNamed(Frame& frame, int timeoutMs = 10000);

  /// Reads frames for `ms` milliseconds and returns those with event ids.
  std::vector<Frame> eventsWithin(int ms);

 private:
  bool readFrame(Frame& frame, int timeoutMs);

  Poco::Net::StreamSocket socket_;
  Response head_;
  std::string buffer_;
};

/// Reads a newest-first event list page by page, following "next_before" to its end (at most
/// 100 pages), and returns the event ids in the order they came. `page` fetches one page given
/// "" for the first and "&before=N" for the next ones; a page that is not 200 ends the walk.
std::vector<int64_t> newestFirstIds(const std::function<Response(const std::string&)>& page);

/// Value of a top-level JSON member rendered as text (strings without quotes).
std::string jsonField(const std::string& json, const std::string& key);

/// HMAC-SHA256 of `body` under `key` as lower-case hex.
std::string hmacSha256Hex(const std::string& key, const std::string& body);

/// Standard base64 with `=` padding, and back.
std::string base64Encode(const std::string& bytes);
std::string base64Decode(const std::string& text);

/// What a Standard Webhooks sender puts in `webhook-signature`, from the secret alone:
/// "v1," + base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" under the base64 key after `whsec_`.
std::string standardWebhooksSignature(const std::string& secret, const std::string& id,
                                      int64_t timestamp, const std::string& body);

/// The raw body of a `webhook` frame: its JSON's body_base64, decoded.
std::string frameBody(const Frame& frame);

}  // namespace anm::test
