// tests/integration/test_http.cpp: a byte-exact HTTP/1.1 and SSE client for the edge's tests.
// SPDX-License-Identifier: Apache-2.0
#include "test_http.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/String.h>
#include <Poco/Timespan.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace anm::test {
namespace {

constexpr long kReadTimeoutSeconds = 10;

// Appends what arrives; returns false when the peer closed (or reset) the connection.
bool receiveMore(Poco::Net::StreamSocket& socket, std::string& buffer) {
  char chunk[65536];
  int n = 0;
  try {
    n = socket.receiveBytes(chunk, sizeof(chunk));
  } catch (const Poco::Net::ConnectionResetException&) {
    return false;
  }
  if (n <= 0) return false;
  buffer.append(chunk, static_cast<size_t>(n));
  return true;
}

Response parseHead(const std::string& head) {
  Response response;
  size_t pos = head.find("\r\n");
  const std::string statusLine = head.substr(0, pos);
  response.status = std::stoi(statusLine.substr(9, 3));
  while (pos != std::string::npos && pos + 2 < head.size()) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string line = head.substr(pos + 2, next - pos - 2);
    pos = next;
    if (line.empty()) break;
    const auto colon = line.find(':');
    response.headers.emplace_back(line.substr(0, colon), Poco::trim(line.substr(colon + 1)));
  }
  return response;
}

}  // namespace

std::string Response::header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (Poco::icompare(key, name) == 0) return value;
  }
  return "";
}

Response readResponse(Poco::Net::StreamSocket& socket) {
  socket.setReceiveTimeout(Poco::Timespan(kReadTimeoutSeconds, 0));
  std::string buffer;
  size_t end;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (!receiveMore(socket, buffer))
      throw std::runtime_error("connection closed before a response");
  }
  Response response = parseHead(buffer.substr(0, end + 2));
  std::string rest = buffer.substr(end + 4);
  const std::string length = response.header("Content-Length");
  if (!length.empty()) {
    const size_t want = std::stoul(length);
    while (rest.size() < want && receiveMore(socket, rest)) {
    }
    response.body = rest.substr(0, want);
    return response;
  }
  while (receiveMore(socket, rest)) {
  }
  response.body = rest;
  return response;
}

Response rawExchange(uint16_t port, const std::string& bytes) {
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port));
  try {
    socket.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
  } catch (const Poco::Exception&) {
    // The edge may answer and close before it has read everything; read its answer anyway.
  }
  return readResponse(socket);
}

Response request(uint16_t port, const std::string& method, const std::string& target,
                 const std::string& body,
                 const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string bytes = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : headers) bytes += name + ": " + value + "\r\n";
  bytes += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  bytes += body;
  return rawExchange(port, bytes);
}

Response apiRequest(uint16_t port, const std::string& method, const std::string& target,
                    const std::string& token, const std::string& body) {
  return request(port, method, target, body, {{"Authorization", "Bearer " + token}});
}

SseClient::SseClient(uint16_t port, const std::string& hookId, const std::string& token,
                     int64_t lastEventId, const std::string& route)
    : socket_(Poco::Net::SocketAddress("127.0.0.1", port)) {
  std::string bytes = "GET /api/v1/hooks/" + hookId + "/" + route +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
                      "\r\nAccept: text/event-stream\r\n";
  if (lastEventId >= 0) bytes += "Last-Event-ID: " + std::to_string(lastEventId) + "\r\n";
  bytes += "\r\n";
  socket_.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
  socket_.setReceiveTimeout(Poco::Timespan(kReadTimeoutSeconds, 0));
  size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!receiveMore(socket_, buffer_)) throw std::runtime_error("stream closed before its head");
  }
  head_ = parseHead(buffer_.substr(0, end + 2));
  buffer_.erase(0, end + 4);
  if (head_.status != 200) head_.body = buffer_;
}

bool SseClient::readFrame(Frame& frame, int timeoutMs) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  size_t end;
  while ((end = buffer_.find("\n\n")) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    socket_.setReceiveTimeout(Poco::Timespan(left.count()));
    try {
      if (!receiveMore(socket_, buffer_)) return false;
    } catch (const Poco::TimeoutException&) {
      return false;
    }
  }
  const std::string block = buffer_.substr(0, end);
  buffer_.erase(0, end + 2);
  frame = Frame{};
  size_t pos = 0;
  while (pos <= block.size()) {
    size_t next = block.find('\n', pos);
    if (next == std::string::npos) next = block.size();
    const std::string line = block.substr(pos, next - pos);
    pos = next + 1;
    if (line.rfind("id: ", 0) == 0) frame.id = std::stoll(line.substr(4));
    if (line.rfind("event: ", 0) == 0) frame.event = line.substr(7);
    if (line.rfind("data: ", 0) == 0) {
      if (!frame.data.empty()) frame.data += "\n";
      frame.data += line.substr(6);
    }
  }
  return true;
}

bool SseClient::nextNamed(Frame& frame, int timeoutMs) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!readFrame(frame, static_cast<int>(left.count()) + 1)) return false;
    if (!frame.event.empty()) return true;
  }
  return false;
}

bool SseClient::nextEvent(Frame& frame) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!readFrame(frame, static_cast<int>(left.count()) + 1)) return false;
    if (frame.id >= 0) return true;
  }
  return false;
}

std::vector<Frame> SseClient::eventsWithin(int ms) {
  std::vector<Frame> frames;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  Frame frame;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !readFrame(frame, static_cast<int>(left.count()))) break;
    if (frame.id >= 0) frames.push_back(frame);
  }
  return frames;
}

std::string jsonField(const std::string& json, const std::string& key) {
  Poco::JSON::Parser parser;
  const auto object = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
  if (!object->has(key)) return "";
  return object->get(key).convert<std::string>();
}

std::string hmacSha256Hex(const std::string& key, const std::string& body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string base64Encode(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string base64Decode(const std::string& text) {
  std::string out(3 * text.size() / 4 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) throw std::runtime_error("not base64: " + text);
  out.resize(static_cast<size_t>(n));

  // EVP_DecodeBlock counts the bytes the padding stands for.
  if (!text.empty() && text.back() == '=') out.pop_back();
  if (text.size() > 1 && text[text.size() - 2] == '=') out.pop_back();
  return out;
}

std::string standardWebhooksSignature(const std::string& secret, const std::string& id,
                                      int64_t timestamp, const std::string& body) {
  const std::string key = base64Decode(secret.substr(secret.rfind('_') + 1));
  const std::string content = id + "." + std::to_string(timestamp) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &len);
  return "v1," + base64Encode(std::string(reinterpret_cast<const char*>(mac), len));
}

std::string frameBody(const Frame& frame) {
  return base64Decode(jsonField(frame.data, "body_base64"));
}

std::vector<int64_t> newestFirstIds(const std::function<Response(const std::string&)>& page) {
  std::vector<int64_t> ids;
  std::string before;
  for (int pages = 0; pages < 100; ++pages) {
    const Response r = page(before);
    if (r.status != 200) break;
    Poco::JSON::Parser parser;
    const auto body = parser.parse(r.body).extract<Poco::JSON::Object::Ptr>();
    const auto events = body->getArray("events");
    for (size_t i = 0; i < events->size(); ++i) {
      ids.push_back(events->getObject(static_cast<unsigned>(i))->getValue<int64_t>("id"));
    }
    const int64_t next = body->getValue<int64_t>("next_before");
    if (next == 0) break;
    before = "&before=" + std::to_string(next);
  }
  return ids;
}

uint16_t waitForPortFile(const std::string& path) {
  int port = 0;
  for (int i = 0; i < 1000 && port == 0; ++i) {
    std::ifstream in(path);
    in >> port;
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return static_cast<uint16_t>(port);
}

}  // namespace anm::test
