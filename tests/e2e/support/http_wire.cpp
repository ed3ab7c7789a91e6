// tests/e2e/support/http_wire.cpp: HTTP/1.1 messages read and written byte by byte.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/support/http_wire.h"

#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Timespan.h>
#include <strings.h>

#include <cctype>
#include <cstdio>

namespace anm::e2e {

namespace {

// How long one poll waits before the reader looks at its deadline and stop flag again.
constexpr auto kPollSlice = std::chrono::milliseconds(50);

std::string trimOws(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

bool containsChunked(const std::vector<std::string>& values) {
  for (const auto& v : values) {
    std::string lower;
    for (char c : v) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("chunked") != std::string::npos) return true;
  }
  return false;
}

size_t parseLength(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    throw WireError("bad content-length value=\"" + text + "\"");
  }
  size_t n = std::stoull(text);
  if (n > kMaxWireBodyBytes) throw WireError("body too large length=" + text);
  return n;
}

}  // namespace

bool sameName(const std::string& a, const std::string& b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::vector<std::string> WireMessage::values(const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : headers) {
    if (sameName(n, name)) out.push_back(v);
  }
  return out;
}

std::optional<std::string> WireMessage::value(const std::string& name) const {
  for (const auto& [n, v] : headers) {
    if (sameName(n, name)) return v;
  }
  return std::nullopt;
}

bool WireReader::fill(std::chrono::steady_clock::time_point deadline) {
  if (eof_) return false;

  // Poll in short slices so that a stop request or the deadline is noticed promptly.
  while (true) {
    if (stop_ != nullptr && stop_->load()) throw WireError("reader stopped");
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) throw WireError("timed out waiting for bytes");
    auto slice = std::min<std::chrono::steady_clock::duration>(kPollSlice, deadline - now);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(slice).count();
    if (!socket_.poll(Poco::Timespan(micros), Poco::Net::Socket::SELECT_READ)) continue;
    char chunk[16384];
    int n = 0;
    try {
      n = socket_.receiveBytes(chunk, sizeof(chunk));
    } catch (const Poco::Net::ConnectionResetException&) {
      n = 0;
    }
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    if (pos_ > 0 && pos_ == buffer_.size()) {
      buffer_.clear();
      pos_ = 0;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
}

bool WireReader::atCleanEof(std::chrono::steady_clock::time_point deadline) {
  if (pos_ < buffer_.size()) return false;
  return !fill(deadline);
}

std::string WireReader::readLine(std::chrono::steady_clock::time_point deadline) {
  while (true) {
    size_t crlf = buffer_.find("\r\n", pos_);
    if (crlf != std::string::npos) {
      std::string line = buffer_.substr(pos_, crlf - pos_);
      pos_ = crlf + 2;
      return line;
    }
    if (buffer_.size() - pos_ > kMaxWireLineBytes) throw WireError("line too long");
    if (!fill(deadline)) throw WireError("connection closed inside a line");
  }
}

std::string WireReader::readExact(size_t n, std::chrono::steady_clock::time_point deadline) {
  while (buffer_.size() - pos_ < n) {
    if (!fill(deadline)) throw WireError("connection closed inside a body");
  }
  std::string out = buffer_.substr(pos_, n);
  pos_ += n;
  return out;
}

WireMessage WireReader::readHead(std::chrono::steady_clock::time_point deadline) {
  WireMessage message;
  message.startLine = readLine(deadline);
  while (true) {
    std::string line = readLine(deadline);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      throw WireError("malformed header line=\"" + line + "\"");
    }
    message.rawHeadLines.push_back(line);
    message.headers.emplace_back(line.substr(0, colon), trimOws(line.substr(colon + 1)));
  }
  return message;
}

void WireReader::readChunked(WireMessage& message, std::chrono::steady_clock::time_point deadline) {
  message.chunked = true;
  while (true) {
    std::string sizeLine = readLine(deadline);
    std::string hex = trimOws(sizeLine.substr(0, sizeLine.find(';')));
    if (hex.empty() || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      throw WireError("bad chunk size line=\"" + sizeLine + "\"");
    }
    size_t size = std::stoull(hex, nullptr, 16);
    if (message.body.size() + size > kMaxWireBodyBytes) throw WireError("chunked body too large");
    if (size == 0) break;
    message.body += readExact(size, deadline);
    if (!readLine(deadline).empty()) throw WireError("chunk not followed by CRLF");
  }

  // Trailer fields end with an empty line; the tests send none, so they are skipped.
  while (!readLine(deadline).empty()) {
  }
}

void WireReader::readFramedBody(WireMessage& message,
                                std::chrono::steady_clock::time_point deadline) {
  if (containsChunked(message.values("Transfer-Encoding"))) {
    readChunked(message, deadline);
    return;
  }
  auto lengths = message.values("Content-Length");
  if (lengths.size() > 1) throw WireError("several content-length fields");
  if (lengths.size() == 1) message.body = readExact(parseLength(lengths[0]), deadline);
}

void WireReader::readRequestBody(WireMessage& message,
                                 std::chrono::steady_clock::time_point deadline) {
  readFramedBody(message, deadline);
}

void WireReader::readResponseBody(WireMessage& message, bool noBody,
                                  std::chrono::steady_clock::time_point deadline) {
  if (noBody) return;
  if (containsChunked(message.values("Transfer-Encoding")) ||
      !message.values("Content-Length").empty()) {
    readFramedBody(message, deadline);
    return;
  }

  // No framing: the body ends when the server closes the connection.
  while (fill(deadline)) {
    if (buffer_.size() - pos_ > kMaxWireBodyBytes) throw WireError("response too large");
  }
  message.body = buffer_.substr(pos_);
  pos_ = buffer_.size();
}

void sendAll(Poco::Net::StreamSocket& socket, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    int n = socket.sendBytes(bytes.data() + sent, static_cast<int>(bytes.size() - sent));
    if (n <= 0) throw WireError("could not send bytes");
    sent += static_cast<size_t>(n);
  }
}

std::string SentRequest::serialize(const std::string& hookId) const {
  std::string out =
      method + " /h/" + hookId + suffix + (query.empty() ? "" : "?" + query) + " HTTP/1.1\r\n";
  for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  if (chunks.empty()) return out + body;

  // Chunk sizes in lower-case hex, as most senders write them.
  char size[32];
  for (const auto& chunk : chunks) {
    snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
    out += size + chunk + "\r\n";
  }
  return out + "0\r\n\r\n";
}

SentRequest makeRequest(const std::string& method, const std::string& suffix,
                        const std::string& query, uint16_t edgePort, HeaderList headers,
                        const std::string& body) {
  SentRequest request;
  request.method = method;
  request.suffix = suffix;
  request.query = query;
  request.headers.emplace_back("Host", "127.0.0.1:" + std::to_string(edgePort));
  for (auto& header : headers) request.headers.push_back(std::move(header));
  bool carriesBody = method == "POST" || method == "PUT" || method == "PATCH";
  if (!body.empty() || carriesBody) {
    request.headers.emplace_back("Content-Length", std::to_string(body.size()));
  }
  request.body = body;
  return request;
}

WireResponse exchange(uint16_t port, const std::string& requestBytes, bool headRequest,
                      std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Poco::Net::StreamSocket socket;
  socket.connect(Poco::Net::SocketAddress("127.0.0.1", port),
                 Poco::Timespan(timeout.count() * 1000));
  socket.setNoDelay(true);
  sendAll(socket, requestBytes);

  WireReader reader(socket);
  WireResponse response;
  response.message = reader.readHead(deadline);
  const std::string& line = response.message.startLine;
  if (line.compare(0, 5, "HTTP/") != 0 || line.size() < 12) {
    throw WireError("bad status line=\"" + line + "\"");
  }
  response.status = std::stoi(line.substr(9, 3));
  bool noBody =
      headRequest || response.status / 100 == 1 || response.status == 204 || response.status == 304;
  reader.readResponseBody(response.message, noBody, deadline);
  return response;
}

}  // namespace anm::e2e
