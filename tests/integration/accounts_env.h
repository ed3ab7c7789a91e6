// tests/integration/accounts_env.h: an in-process edge with accounts, tokens and SSE readers.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/edge/admin.h"
#include "core/edge/bootstrap.h"
#include "core/edge/edge_server.h"
#include "core/store/store.h"
#include "edge_fixture.h"
#include "test_http.h"

namespace anm::test {

/// A member of an account made with the admin command, signed in through /api/v1/auth/token:
/// the owner, or a member the owner added.
struct Account {
  std::string id;
  std::string name;
  std::string memberId;
  std::string pat;
  std::string jwt;
};

using Fields = std::vector<std::pair<std::string, std::string>>;

inline Poco::JSON::Object::Ptr parseObject(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

inline int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// The header fields of a request a Standard Webhooks sender signed with `secret`.
inline Fields standardWebhooksFields(const std::string& secret, const std::string& id,
                                     int64_t timestamp, const std::string& body) {
  return {{"webhook-id", id},
          {"webhook-timestamp", std::to_string(timestamp)},
          {"webhook-signature", standardWebhooksSignature(secret, id, timestamp, body)}};
}

/// An event stream opened with any request head fields (X-Anonymily-Relay, ...).
class StreamReader {
 public:
  StreamReader(uint16_t port, const std::string& hookId, const std::string& bearer,
               const Fields& fields = {})
      : socket_(Poco::Net::SocketAddress("127.0.0.1", port)) {
    std::string head = "GET /api/v1/hooks/" + hookId + "/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!bearer.empty()) head += "Authorization: Bearer " + bearer + "\r\n";
    for (const auto& [name, value] : fields) head += name + ": " + value + "\r\n";
    head += "\r\n";
    socket_.sendBytes(head.data(), static_cast<int>(head.size()));
    readHead();
  }

  int status() const { return status_; }
  const std::string& body() const { return body_; }

  /// The next frame with an id, within `timeoutMs`; false when none came.
  bool next(Frame& frame, int timeoutMs = 10000) { return read(frame, timeoutMs, false); }

  /// The next frame with an id or an event name (`event: replaced` has no id).
  bool nextNamed(Frame& frame, int timeoutMs = 10000) { return read(frame, timeoutMs, true); }

  /// True when the edge closed the stream within `timeoutMs`.
  bool closedWithin(int timeoutMs) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!socket_.poll(Poco::Timespan(0, 50000), Poco::Net::Socket::SELECT_READ)) continue;
      char chunk[4096];
      int n = 0;
      try {
        n = socket_.receiveBytes(chunk, sizeof(chunk));
      } catch (const Poco::Exception&) {
        return true;
      }
      if (n <= 0) return true;
    }
    return false;
  }

  void close() { socket_.close(); }

 private:
  bool read(Frame& frame, int timeoutMs, bool anyEvent) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
      const auto end = buffer_.find("\n\n");
      if (end != std::string::npos) {
        const std::string block = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        Frame parsed;
        std::istringstream lines(block);
        std::string line;
        while (std::getline(lines, line)) {
          if (line.rfind("id: ", 0) == 0) parsed.id = std::stoll(line.substr(4));
          if (line.rfind("event: ", 0) == 0) parsed.event = line.substr(7);
          if (line.rfind("data: ", 0) == 0) parsed.data += line.substr(6);
        }
        if (parsed.id >= 0 || (anyEvent && !parsed.event.empty())) {
          frame = parsed;
          return true;
        }
        continue;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !receive(static_cast<int>(left.count()))) return false;
    }
  }

  bool receive(int timeoutMs) {
    if (!socket_.poll(Poco::Timespan(0, timeoutMs * 1000), Poco::Net::Socket::SELECT_READ)) {
      return false;
    }
    char chunk[8192];
    int n = 0;
    try {
      n = socket_.receiveBytes(chunk, sizeof(chunk));
    } catch (const Poco::Exception&) {
      return false;
    }
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  void readHead() {
    while (buffer_.find("\r\n\r\n") == std::string::npos) {
      if (!receive(10000)) return;
    }
    const auto end = buffer_.find("\r\n\r\n");
    const std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    status_ = std::stoi(head.substr(9, 3));
    if (status_ == 200) return;

    // A refusal is an ordinary answer with a length.
    size_t length = 0;
    std::istringstream lines(head);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("Content-Length:", 0) == 0) length = std::stoul(line.substr(15));
    }
    while (buffer_.size() < length && receive(10000)) {
    }
    body_ = buffer_.substr(0, length);
  }

  Poco::Net::StreamSocket socket_;
  int status_ = 0;
  std::string body_;
  std::string buffer_;
};

/// An edge on 127.0.0.1 with a SQLite store in a temporary directory, and accounts made with
/// the admin command on the same store, as an operator would.
class AccountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/anm-accounts-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void startServer(const std::function<void(edge::EdgeConfig&)>& tweak = {}) {
    edge::EdgeConfig config = loopbackEdgeConfig(dir_ + "/data");
    config.maxThreads = 16;
    if (tweak) tweak(config);
    server_ = std::make_unique<edge::EdgeServer>(config);
    server_->start();
    port_ = server_->port();
  }

  /// A new account with its owner, signed in.
  Account createAccount(const std::string& name, const std::string& plan) {
    std::ostringstream out;
    std::ostringstream err;
    std::vector<std::string> args = {"--data-dir", dir_ + "/data"};
    if (!adminStore_.empty()) args.insert(args.end(), {"--store", adminStore_});
    args.insert(args.end(), {"--json", "accounts", "create", name, "--plan", plan});
    const int code = edge::runAdmin(args, out, err);
    EXPECT_EQ(code, 0) << err.str();
    Account account;
    account.name = name;
    if (code != 0) return account;
    const auto created = parseObject(out.str());
    account.id = created->getObject("account")->getValue<std::string>("id");
    account.memberId = created->getObject("member")->getValue<std::string>("id");
    account.pat = created->getObject("token")->getValue<std::string>("token");
    account.jwt = exchange(account.pat);
    return account;
  }

  /// A member the owner of `owner`'s account adds through the API, signed in with the first
  /// token the answer hands over.
  Account addMember(const Account& owner, const std::string& memberName) {
    Account member;
    member.id = owner.id;
    member.name = owner.name;
    const auto r =
        call("POST", "/api/v1/account/members", owner.jwt, "{\"name\":\"" + memberName + "\"}");
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status != 201) return member;
    const auto added = parseObject(r.body);
    member.memberId = added->getObject("member")->getValue<std::string>("id");
    member.pat = added->getObject("token")->getValue<std::string>("token");
    member.jwt = exchange(member.pat);
    return member;
  }

  std::string exchange(const std::string& pat) {
    const auto r = request(port_, "POST", "/api/v1/auth/token", "{\"token\":\"" + pat + "\"}");
    EXPECT_EQ(r.status, 200) << r.body;
    return jsonField(r.body, "access_token");
  }

  Response call(const std::string& method, const std::string& target, const std::string& bearer,
                const std::string& body = "", Fields fields = {}) {
    if (!bearer.empty()) fields.insert(fields.begin(), {"Authorization", "Bearer " + bearer});
    return request(port_, method, target, body, fields);
  }

  /// A named hook of the account; returns the create answer.
  Poco::JSON::Object::Ptr createNamedHook(const Account& account, const std::string& name,
                                          const std::string& extra = "") {
    const std::string body =
        "{\"name\":\"" + name + "\"" + (extra.empty() ? "" : "," + extra) + "}";
    const auto r = call("POST", "/api/v1/hooks", account.jwt, body);
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status != 201) return new Poco::JSON::Object;
    return parseObject(r.body);
  }

  Response ingest(const std::string& hookId, const std::string& body, const Fields& fields = {}) {
    return request(port_, "POST", "/h/" + hookId, body, fields);
  }

  /// Entries of the account's audit log, read through the API by its owner.
  Poco::JSON::Array::Ptr auditEntries(const Account& owner) {
    const auto r = call("GET", "/api/v1/audit?limit=1000", owner.jwt);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return new Poco::JSON::Array;
    return parseObject(r.body)->getArray("entries");
  }

  /// The edge's store, opened beside the running edge with its key ring, as the admin command
  /// opens it: to see what the API never shows, such as a hook's signing secrets.
  std::unique_ptr<store::Store> openStore() {
    const edge::EdgeConfig& config = server_->config();
    auto keys = edge::loadKeys(config, false);
    auto store = store::openSqliteStore(config.sqlitePath, keys);
    edge::alignActiveKey(*store, *keys, config);
    return store;
  }

  /// Waits up to `timeoutMs` for `done`, checking every 20 ms.
  static bool eventually(const std::function<bool()>& done, int timeoutMs = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
  }

  std::string dir_;
  std::unique_ptr<edge::EdgeServer> server_;
  uint16_t port_ = 0;

  /// The store the admin command opens when the edge's is not the data directory's SQLite
  /// file (a mysql:// URL).
  std::string adminStore_;
};

}  // namespace anm::test
