// tests/cli/support/fake_edge.cpp: hooks, events, deliveries and the SSE stream, in memory.
// SPDX-License-Identifier: Apache-2.0
#include "support/fake_edge.h"

#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/StringTokenizer.h>
#include <Poco/Timestamp.h>
#include <Poco/URI.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "cli/src/event_output.h"
#include "cli/src/stream_event.h"

namespace anm::cli::test {

namespace {

std::string base64(const std::string& bytes) {
  std::ostringstream out;
  Poco::Base64Encoder encoder(out);
  encoder.rdbuf()->setLineLength(0);
  encoder << bytes;
  encoder.close();
  return out.str();
}

// Header entries as docs/protocol.md gives them: a value that is not UTF-8 goes as base64.
Poco::JSON::Array headerArray(const std::vector<std::pair<std::string, std::string>>& headers) {
  Poco::JSON::Array out;
  for (const auto& [name, value] : headers) {
    Poco::JSON::Array entry;
    if (anm::cli::isValidUtf8(value)) {
      entry.add(name);
      entry.add(value);
    } else {
      entry.add(name);
      entry.add(base64(value));
      entry.add("b64");
    }
    out.add(entry);
  }
  return out;
}

// The display form the edge sends beside path_b64/query_b64: here every byte of 0x80 and up
// becomes U+FFFD, which is enough to make a relay that forwarded it send the wrong bytes.
std::string displayForm(const std::string& raw) {
  std::string out;
  for (unsigned char c : raw) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\xEF\xBF\xBD";
    }
  }
  return out;
}

// "path"/"query", plus "<key>_b64" with the exact bytes when they are not UTF-8.
void setRawText(Poco::JSON::Object& object, const std::string& key, const std::string& raw) {
  if (anm::cli::isValidUtf8(raw)) {
    object.set(key, raw);
    return;
  }
  object.set(key, displayForm(raw));
  object.set(key + "_b64", base64(raw));
}

std::string json(const Poco::JSON::Object& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

}  // namespace

class FakeEdge::Handler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(FakeEdge& edge) : edge_(edge) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    std::string body;
    Poco::StreamCopier::copyToString(request.stream(), body);
    const Poco::URI uri(request.getURI());
    std::vector<std::string> segments;
    uri.getPathSegments(segments);
    const std::string& method = request.getMethod();
    const std::string authorization = request.get("Authorization", "");
    {
      std::lock_guard<std::mutex> lock(edge_.mutex_);
      edge_.authorizations_.push_back(authorization);
      edge_.paths_.push_back(method + " " + request.getURI());
    }
    const bool member = edge_.validJwt(authorization);
    const std::vector<std::string> hooksPath = {"api", "v1", "hooks"};

    // POST /api/v1/auth/token: the PAT for a JWT.
    if (method == "POST" && segments == std::vector<std::string>{"api", "v1", "auth", "token"}) {
      return exchange(response, body);
    }

    // Account routes need a JWT.
    if (segments.size() >= 3 && segments[0] == "api" &&
        (segments[2] == "account" || segments[2] == "tokens" || segments[2] == "audit" ||
         (segments == hooksPath && method == "GET")) &&
        !member) {
      return send(response, 401, R"({"error":"access token expired or invalid; sign in again"})");
    }
    if (segments == hooksPath && method == "GET") return listHooks(response, uri);
    if (segments.size() >= 3 && segments[0] == "api" && segments[2] == "account") {
      return send(response, 200,
                  R"({"id":"acc_fake","name":"acme","plan":"free","disabled":false,)"
                  R"("created_at_ms":1764800000000,"limits":{"named_hooks":1,"relays_per_hook":1,)"
                  R"("members":1,"custom_response":false},)"
                  R"("member":{"id":"mem_fake","name":"alice","owner":true}})");
    }
    if (segments.size() >= 3 && segments[0] == "api" && segments[2] == "tokens") {
      if (method == "POST") {
        return send(response, 201,
                    R"({"id":"tok_new","name":"laptop","token":"anm_pat_new","created_at_ms":1})");
      }
      if (method == "DELETE" && segments.size() == 4) {
        if (segments[3] != "tok_fake") return send(response, 404, R"({"error":"unknown token"})");
        response.setStatus(Poco::Net::HTTPResponse::HTTP_NO_CONTENT);
        response.setContentLength(0);
        response.send();
        return;
      }
      return send(
          response, 200,
          R"({"tokens":[{"id":"tok_fake","name":"ci","member":"mem_fake",)"
          R"("created_at_ms":1764800000000,"last_used_at_ms":null,"revoked_at_ms":null}]})");
    }
    if (segments.size() >= 3 && segments[0] == "api" && segments[2] == "audit") {
      return send(response, 200,
                  R"({"entries":[{"id":7,"at_ms":1764800000000,"actor":"member:mem_fake",)"
                  R"("action":"event.read","hook":"hk_test42","event":3,"detail":"",)"
                  R"("remote":"127.0.0.1"}],"next_after":7})");
    }

    // POST /api/v1/hooks: anonymous without a bearer, named with a JWT.
    if (method == "POST" && segments == hooksPath) {
      {
        std::lock_guard<std::mutex> lock(edge_.mutex_);
        edge_.createBodies_.push_back(body);
      }
      if (!authorization.empty()) return createNamed(response, body, member);
      Poco::JSON::Object hook;
      hook.set("id", kHookId);
      hook.set("ingest_url", edge_.url() + "/h/" + kHookId);
      hook.set("token", kToken);
      hook.set("signing_secret", kSigningSecret);
      return send(response, 201, json(hook));
    }

    // Everything else is /api/v1/hooks/<id>/... with the bearer token, or a JWT once the hook
    // is a named hook of the account.
    const bool allowed =
        authorization == std::string("Bearer ") + kToken || (member && !edge_.hookName().empty());
    if (segments.size() < 4 || segments[0] != "api" || segments[3] != kHookId || !allowed) {
      return send(response, 404, R"({"error":"unknown hook"})");
    }
    if (segments.size() == 4 && method == "GET") return send(response, 200, hookJson(false));
    const std::string what = segments[4];
    if (what == "stream" && method == "GET") return stream(request, response, uri);
    if (what == "deliveries" && method == "POST") return deliveries(response, body);
    if (what == "events" && segments.size() == 5 && method == "GET") return list(response, uri);
    if (what == "events" && segments.size() >= 6) {
      const int64_t id = std::stoll(segments[5]);
      std::unique_lock<std::mutex> lock(edge_.mutex_);
      const FakeEvent* found = nullptr;
      for (const FakeEvent& event : edge_.events_) {
        if (event.id == id) found = &event;
      }
      if (found == nullptr) {
        lock.unlock();
        return send(response, 404, R"({"error":"unknown event"})");
      }
      const FakeEvent event = *found;
      const std::string detail = edge_.summary(event, true);
      lock.unlock();
      if (segments.size() == 6 && method == "GET") return send(response, 200, detail);
      if (segments.size() == 7 && segments[6] == "body" && method == "GET") {
        return send(response, 200, event.body, "application/octet-stream");
      }
      if (segments.size() == 7 && segments[6] == "replay" && method == "POST") {
        {
          std::lock_guard<std::mutex> relock(edge_.mutex_);
          edge_.replayBodies_.push_back(body);
        }
        FakeEvent copy = event;
        copy.replayOf = event.id;
        if (!body.empty()) applyEdit(body, copy);
        copy.id = edge_.addEvent(copy);
        std::lock_guard<std::mutex> relock(edge_.mutex_);
        std::string answer = edge_.summary(copy, false);
        if (copy.modified) {
          answer.insert(answer.size() - 1,
                        R"(,"warning":"the provider's signature covers the original request; )"
                        R"(the local handler's check will fail for an edited one")");
        }
        return send(response, 201, answer);
      }
    }
    send(response, 404, R"({"error":"no such route"})");
  }

 private:
  static void send(Poco::Net::HTTPServerResponse& response, int status, const std::string& body,
                   const std::string& type = "application/json") {
    response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    response.setContentType(type);
    response.setContentLength(static_cast<std::streamsize>(body.size()));
    response.send() << body;
  }

  std::string hookJson(bool created) const {
    Poco::JSON::Object hook;
    hook.set("id", kHookId);
    hook.set("ingest_url", edge_.url() + "/h/" + kHookId);
    const std::string name = edge_.hookName();
    if (!name.empty()) {
      hook.set("name", name);
      hook.set("account", "acc_fake");
    }
    if (created) hook.set("signing_secret", kSigningSecret);
    return json(hook);
  }

  void exchange(Poco::Net::HTTPServerResponse& response, const std::string& body) {
    std::string presented;
    try {
      Poco::JSON::Parser parser;
      presented =
          parser.parse(body).extract<Poco::JSON::Object::Ptr>()->getValue<std::string>("token");
    } catch (const Poco::Exception&) {
      presented.clear();
    }
    std::string jwt;
    int64_t ttl = 0;
    {
      std::lock_guard<std::mutex> lock(edge_.mutex_);
      ++edge_.exchanges_;
      if (presented != kPat || edge_.patRevoked_) {
        jwt.clear();
      } else {
        jwt = "eyJhbGciOiJIUzI1NiJ9.eyJuIjo" + std::to_string(edge_.jwts_.size()) + "fQ.c2ln";
        edge_.jwts_.push_back(jwt);
        if (edge_.deadOnIssue_ > 0) {
          --edge_.deadOnIssue_;
          edge_.deadJwts_.push_back(jwt);
        }
      }
      ttl = edge_.jwtTtlS_;
    }
    if (jwt.empty()) return send(response, 401, R"({"error":"invalid or revoked token"})");
    const int64_t now = static_cast<int64_t>(Poco::Timestamp().epochMicroseconds() / 1000);
    send(response, 200,
         "{\"access_token\":\"" + jwt + "\",\"token_type\":\"Bearer\",\"expires_in\":" +
             std::to_string(ttl) + ",\"expires_at_ms\":" + std::to_string(now + ttl * 1000) +
             R"(,"account":{"id":"acc_fake","name":"acme","plan":"free"},)"
             R"("member":{"id":"mem_fake","name":"alice","owner":true}})");
  }

  void listHooks(Poco::Net::HTTPServerResponse& response, const Poco::URI& uri) {
    std::string wanted;
    bool filtered = false;
    for (const auto& [key, value] : uri.getQueryParameters()) {
      if (key == "name") {
        wanted = value;
        filtered = true;
      }
    }
    const std::string name = edge_.hookName();
    const bool listed = !name.empty() && (!filtered || name == wanted);
    send(response, 200, "{\"hooks\":[" + (listed ? hookJson(false) : std::string()) + "]}");
  }

  void createNamed(Poco::Net::HTTPServerResponse& response, const std::string& body, bool member) {
    if (!member) {
      return send(response, 401, R"({"error":"access token expired or invalid; sign in again"})");
    }
    Poco::JSON::Parser parser;
    const auto request = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    if (!request->has("name")) return send(response, 400, R"({"error":"name is required"})");
    const std::string name = request->getValue<std::string>("name");
    {
      std::lock_guard<std::mutex> lock(edge_.mutex_);
      if (edge_.hookName_ == name) {
        return send(response, 409, "{\"error\":\"a hook named " + name + " exists\"}");
      }
      if (!edge_.hookName_.empty()) {
        return send(response, 403,
                    R"({"error":"a second named hook needs the pro plan: the free plan allows )"
                    R"(one named hook per account","plan":"free"})");
      }
      edge_.hookName_ = name;
    }
    send(response, 201, hookJson(true));
  }

  // An edited replay's members, applied as the edge would (without its checks).
  static void applyEdit(const std::string& body, FakeEvent& copy) {
    Poco::JSON::Parser parser;
    const auto edit = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    if (edit->has("method")) copy.method = edit->getValue<std::string>("method");
    if (edit->has("path")) copy.path = edit->getValue<std::string>("path");
    if (edit->has("query")) copy.query = edit->getValue<std::string>("query");
    if (edit->has("headers")) {
      copy.headers.clear();
      const auto headers = edit->getArray("headers");
      for (size_t i = 0; i < headers->size(); ++i) {
        HeaderField field;
        decodeHeaderField(headers->getArray(static_cast<unsigned>(i)), field);
        copy.headers.emplace_back(field.name, field.value);
      }
    }
    if (edit->has("body_base64")) {
      decodeBase64(edit->getValue<std::string>("body_base64"), copy.body);
    }
    copy.modified = true;
  }

  void deliveries(Poco::Net::HTTPServerResponse& response, const std::string& body) {
    Poco::JSON::Parser parser;
    const auto root = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    const auto list = root->getArray("deliveries");
    std::vector<ReportedDelivery> parsed;
    for (size_t i = 0; i < list->size(); ++i) {
      const auto d = list->getObject(static_cast<unsigned>(i));
      ReportedDelivery report{d->getValue<int64_t>("event"), d->getValue<std::string>("relay"),
                              d->getValue<int>("status"), d->getValue<int64_t>("duration_ms"),
                              d->getValue<std::string>("error")};
      report.phase = d->optValue<std::string>("phase", "unknown");
      report.timeoutMs = d->optValue<int64_t>("timeout_ms", 0);
      report.targetHttps = d->optValue<bool>("target_https", false);
      report.startedAtMs = d->optValue<int64_t>("started_at_ms", 0);
      report.responseExcerpt = d->optValue<std::string>("response_excerpt", "");
      report.location = d->optValue<std::string>("location", "");
      parsed.push_back(std::move(report));
    }
    {
      std::lock_guard<std::mutex> lock(edge_.mutex_);
      edge_.deliveries_.insert(edge_.deliveries_.end(), parsed.begin(), parsed.end());
    }
    send(response, 201, "{\"stored\":" + std::to_string(parsed.size()) + "}");
  }

  void list(Poco::Net::HTTPServerResponse& response, const Poco::URI& uri) {
    int64_t after = 0;
    size_t limit = 100;
    for (const auto& [key, value] : uri.getQueryParameters()) {
      if (key == "after") after = std::stoll(value);
      if (key == "limit") limit = std::stoul(value);
    }
    std::string out = "{\"events\":[";
    int64_t last = after;
    size_t n = 0;
    std::lock_guard<std::mutex> lock(edge_.mutex_);
    for (const FakeEvent& event : edge_.events_) {
      if (event.id <= after || n == limit) continue;
      if (n++ > 0) out += ",";
      out += edge_.summary(event, false);
      last = event.id;
    }
    out += "],\"next_after\":" + std::to_string(last) + "}";
    send(response, 200, out);
  }

  void stream(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response,
              const Poco::URI&) {
    const std::string lastHeader = request.get("Last-Event-ID", "");
    const int64_t lastId = lastHeader.empty() ? 0 : std::stoll(lastHeader);
    int generation;
    std::string conflict;
    bool refuse = false;
    {
      std::lock_guard<std::mutex> lock(edge_.mutex_);
      edge_.lastEventIds_.push_back(lastHeader);
      edge_.relayHeaders_.push_back(request.get("X-Anonymily-Relay", ""));
      generation = edge_.generation_;
      conflict = edge_.conflict_;
      if (edge_.streamRefusals_ > 0) {
        --edge_.streamRefusals_;
        refuse = true;
      }
    }
    if (refuse) return send(response, 404, R"({"error":"unknown hook"})");
    if (!conflict.empty()) {
      Poco::JSON::Object refusal;
      refusal.set("error", conflict);
      refusal.set("plan", "free");
      return send(response, 409, json(refusal));
    }
    response.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
    response.setContentType("text/event-stream");
    response.set("Cache-Control", "no-cache");
    response.setKeepAlive(false);
    response.setChunkedTransferEncoding(edge_.chunked_);
    std::ostream& out = response.send();
    out << "retry: 1000\n\n";
    out.flush();

    // Backlog above Last-Event-ID, then whatever is added, until dropped or stopped.
    size_t next = 0;
    auto lastWrite = std::chrono::steady_clock::now();
    for (;;) {
      std::vector<std::string> pending;
      {
        std::unique_lock<std::mutex> lock(edge_.mutex_);
        edge_.changed_.wait_for(lock, std::chrono::milliseconds(100), [&] {
          return edge_.stopping_ || edge_.generation_ != generation || next < edge_.frames_.size();
        });
        if (edge_.stopping_ || edge_.generation_ != generation) return;
        for (; next < edge_.frames_.size(); ++next) {
          if (edge_.frames_[next].id > lastId) pending.push_back(edge_.frames_[next].text);
        }
      }
      for (const std::string& frame : pending) out << frame;
      if (pending.empty() &&
          std::chrono::steady_clock::now() - lastWrite > std::chrono::seconds(1)) {
        out << ": keep-alive\n\n";
        pending.emplace_back();
      }
      if (!pending.empty()) {
        out.flush();
        lastWrite = std::chrono::steady_clock::now();
      }
      if (!out.good()) return;
    }
  }

  FakeEdge& edge_;
};

namespace {

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(FakeEdge& edge) : edge_(edge) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new FakeEdge::Handler(edge_);
  }

 private:
  FakeEdge& edge_;
};

}  // namespace

FakeEdge::FakeEdge(bool chunkedStream, uint16_t port) : chunked_(chunkedStream) {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", port), 64);
  port_ = socket.address().port();
  auto* params = new Poco::Net::HTTPServerParams;  // owned by the server from here on
  params->setMaxThreads(16);
  server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket, params);
  server_->start();
}

FakeEdge::~FakeEdge() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  server_->stopAll(true);
}

std::string FakeEdge::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::string FakeEdge::summary(const FakeEvent& event, bool detail) const {
  Poco::JSON::Object object;
  object.set("id", event.id);
  object.set("hook", kHookId);
  object.set("received_at_ms", static_cast<Poco::Int64>(1764800000000LL + event.id));
  object.set("method", event.method);
  object.set("path", event.path);
  object.set("query", event.query);
  object.set("verdict", "valid");
  object.set("reason", "ok");
  object.set("event_type", event.eventType);
  object.set("size", static_cast<Poco::Int64>(event.body.size()));
  object.set("replay_of", event.replayOf);
  object.set("modified", event.modified);
  Poco::JSON::Array deliveries;
  for (const ReportedDelivery& d : deliveries_) {
    if (d.event != event.id) continue;
    Poco::JSON::Object item;
    item.set("relay", d.relay);
    item.set("status", d.status);
    item.set("duration_ms", d.durationMs);
    item.set("error", d.error);
    item.set("phase", d.phase);
    item.set("timeout_ms", d.timeoutMs);
    item.set("target_https", d.targetHttps);
    item.set("started_at_ms", d.startedAtMs);
    item.set("response_excerpt", d.responseExcerpt);
    item.set("location", d.location);
    deliveries.add(item);
  }
  object.set("deliveries", deliveries);
  if (!event.integrityError.empty()) object.set("integrity_error", event.integrityError);
  if (detail) {
    object.set("headers", headerArray(event.headers));
    object.set("body_base64", base64(event.body));
  }
  return json(object);
}

std::string FakeEdge::envelope(const FakeEvent& event) const {
  Poco::JSON::Object object;
  object.set("id", event.id);
  object.set("hook", kHookId);
  object.set("received_at_ms", static_cast<Poco::Int64>(1764800000000LL + event.id));
  object.set("method", event.method);
  setRawText(object, "path", event.path);
  setRawText(object, "query", event.query);
  object.set("headers", headerArray(event.headers));
  object.set("body_base64", base64(event.body));
  object.set("verdict", "valid");
  object.set("reason", "ok");
  object.set("event_type", event.eventType);
  object.set("delivery_id", "");
  object.set("replay_of", event.replayOf);
  object.set("modified", event.modified);
  return json(object);
}

int64_t FakeEdge::addEvent(FakeEvent event) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t id = std::max(nextId_, frames_.empty() ? 1 : frames_.back().id + 1);
    nextId_ = id + 1;
    event.id = id;
    events_.push_back(event);
    frames_.push_back(
        {id, "id: " + std::to_string(id) + "\nevent: webhook\ndata: " + envelope(event) + "\n\n"});
  }
  changed_.notify_all();
  return event.id;
}

void FakeEdge::addRawFrame(int64_t id, std::string frame) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    frames_.push_back({id, std::move(frame)});
  }
  changed_.notify_all();
}

void FakeEdge::dropStreams() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
  }
  changed_.notify_all();
}

std::vector<std::string> FakeEdge::streamLastEventIds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lastEventIds_;
}

std::vector<ReportedDelivery> FakeEdge::deliveries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return deliveries_;
}

std::vector<std::string> FakeEdge::createBodies() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return createBodies_;
}

std::vector<std::string> FakeEdge::authorizations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return authorizations_;
}

std::vector<FakeEvent> FakeEdge::events() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

std::vector<std::string> FakeEdge::replayBodies() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return replayBodies_;
}

void FakeEdge::addDelivery(ReportedDelivery delivery) {
  std::lock_guard<std::mutex> lock(mutex_);
  deliveries_.push_back(std::move(delivery));
}

void FakeEdge::setJwtTtlSeconds(int64_t seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  jwtTtlS_ = seconds;
}

void FakeEdge::expireJwts() {
  std::lock_guard<std::mutex> lock(mutex_);
  firstValidJwt_ = jwts_.size();
}

void FakeEdge::setDeadJwts(int count) {
  std::lock_guard<std::mutex> lock(mutex_);
  deadOnIssue_ = count;
}

void FakeEdge::revokePat() {
  std::lock_guard<std::mutex> lock(mutex_);
  patRevoked_ = true;
  firstValidJwt_ = jwts_.size();
}

void FakeEdge::setStreamConflict(std::string message) {
  std::lock_guard<std::mutex> lock(mutex_);
  conflict_ = std::move(message);
}

void FakeEdge::setStreamRefusals(int count) {
  std::lock_guard<std::mutex> lock(mutex_);
  streamRefusals_ = count;
}

void FakeEdge::addNamedHook(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  hookName_ = name;
}

uint64_t FakeEdge::exchanges() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return exchanges_;
}

std::vector<std::string> FakeEdge::issuedJwts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jwts_;
}

std::vector<std::string> FakeEdge::relayHeaders() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return relayHeaders_;
}

std::vector<std::string> FakeEdge::paths() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return paths_;
}

std::string FakeEdge::hookName() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hookName_;
}

bool FakeEdge::validJwt(const std::string& authorization) const {
  const std::string prefix = "Bearer ";
  if (authorization.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string jwt = authorization.substr(prefix.size());
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::find(deadJwts_.begin(), deadJwts_.end(), jwt) != deadJwts_.end()) return false;
  for (size_t i = firstValidJwt_; i < jwts_.size(); ++i) {
    if (jwts_[i] == jwt) return true;
  }
  return false;
}

bool FakeEdge::waitUntil(const std::function<bool()>& condition,
                         std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace anm::cli::test
