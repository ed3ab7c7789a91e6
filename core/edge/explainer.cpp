// core/edge/explainer.cpp: the redacted summary, the request to an OpenAI-compatible chat
// completions endpoint, the answer's checks, the cache and the hourly budget.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/explainer.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <list>
#include <map>
#include <mutex>
#include <sstream>
#include <string_view>
#include <utility>

#include "core/edge/event_json.h"
#include "core/plugin/registry.h"

namespace anm::edge {
namespace {

using JsonObject = Poco::JSON::Object;
using JsonArray = Poco::JSON::Array;
using Clock = std::chrono::steady_clock;

Poco::Logger& explainLog() { return Poco::Logger::get("anm.explain"); }

// Most bytes of any one text the summary quotes, excerpts aside.
constexpr size_t kQuotedTextBytes = 200;

// Most bytes of the model's answer the edge reads.
constexpr size_t kMaxAnswerBytes = 256 * 1024;

// What the model is asked to do: answer from the facts only, in a shape the edge can check.
constexpr char kInstructions[] =
    "You diagnose why a webhook failed on its way from a provider to a developer's local "
    "handler. The Anonymily edge received it, checked its signature and stored it; a relay "
    "forwarded it to the local handler and reported the answer. The user message is a JSON "
    "summary of one event: the hook, the request (secrets, signatures and most header values "
    "are left out), each delivery, and the findings of the edge's own rules. Answer with one "
    "JSON object with exactly these keys: \"summary\" (one sentence), \"cause\" (the most "
    "likely cause), \"evidence\" (an array of short facts taken from the input), \"fix\" (what "
    "the developer should do) and \"confidence\" (a number from 0 to 1). Use only the facts "
    "given; say so when they do not suffice.";

// Header fields whose values help and never carry a secret; every other value is left out.
constexpr std::array<std::string_view, 14> kShownHeaders = {
    "content-type",      "content-length",       "content-encoding",
    "user-agent",        "x-github-event",       "x-shopify-topic",
    "x-slack-retry-num", "x-slack-retry-reason", "x-slack-request-timestamp",
    "webhook-id",        "webhook-timestamp",    "x-razorpay-event-id",
    "x-github-hook-id",  "x-shopify-api-version"};

// Prefixes of well-known credentials; a token starting with one is replaced wherever it shows.
constexpr std::array<std::string_view, 12> kSecretPrefixes = {
    "whsec_", "sk_live_", "sk_test_", "rk_live_",    "rk_test_", "anm_pat_",
    "xoxb-",  "xoxp-",    "ghp_",     "github_pat_", "shpss_",   "Bearer "};

std::string lowerCase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool isTokenByte(unsigned char c) {
  return std::isalnum(c) || c == '_' || c == '-' || c == '+' || c == '/' || c == '=' || c == '.';
}

// Text cut to `limit` bytes, made valid UTF-8, with credentials and long opaque runs (hex or
// base64 of 32 characters or more: signatures, keys) replaced.
std::string scrub(std::string_view text, size_t limit) {
  std::string cut(text.substr(0, limit));
  std::string out;
  out.reserve(cut.size());
  for (size_t i = 0; i < cut.size();) {
    bool replaced = false;
    for (std::string_view prefix : kSecretPrefixes) {
      if (cut.compare(i, prefix.size(), prefix) != 0) continue;
      size_t end = i + prefix.size();
      while (end < cut.size() && isTokenByte(static_cast<unsigned char>(cut[end]))) ++end;
      out += "[redacted]";
      i = end;
      replaced = true;
      break;
    }
    if (replaced) continue;

    // A run of token bytes long enough to be a key or a signature.
    size_t end = i;
    while (end < cut.size() && isTokenByte(static_cast<unsigned char>(cut[end]))) ++end;
    if (end - i >= 32) {
      out += "[redacted]";
      i = end;
      continue;
    }
    if (end > i) {
      out.append(cut, i, end - i);
      i = end;
      continue;
    }
    out.push_back(cut[i]);
    ++i;
  }

  // The JSON writer needs valid UTF-8; a cut may have split a character.
  std::string valid;
  valid.reserve(out.size());
  for (size_t i = 0; i < out.size();) {
    const size_t length = utf8SequenceLength(out, i);
    if (length == 0) {
      valid += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    valid.append(out, i, length);
    i += length;
  }
  return valid;
}

// The query's keys, in order, without their values.
JsonArray::Ptr queryKeys(std::string_view query) {
  JsonArray::Ptr keys = new JsonArray;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) keys->add(scrub(pair.substr(0, pair.find('=')), kQuotedTextBytes));
    if (end == query.size()) break;
    start = end + 1;
  }
  return keys;
}

std::string stringify(const JsonObject& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

// The model's answer checked against the shape asked for.
Explanation parseAnswer(const std::string& body, const std::string& model) {
  Poco::JSON::Parser parser;
  JsonObject::Ptr reply;
  try {
    reply = parser.parse(body).extract<JsonObject::Ptr>();
  } catch (const std::exception&) {
    throw ExplainError(502, "the model endpoint's answer is not JSON");
  }
  const auto choices = reply ? reply->getArray("choices") : nullptr;
  if (!choices || choices->size() == 0) {
    throw ExplainError(502, "the model endpoint's answer has no choices");
  }
  const auto first = choices->getObject(0);
  const auto message = first ? first->getObject("message") : nullptr;
  if (!message || !message->has("content") || !message->get("content").isString()) {
    throw ExplainError(502, "the model endpoint's answer has no message content");
  }

  JsonObject::Ptr content;
  try {
    content = parser.parse(message->getValue<std::string>("content")).extract<JsonObject::Ptr>();
  } catch (const std::exception&) {
    throw ExplainError(502, "the model did not answer with the JSON object it was asked for");
  }
  Explanation out;
  out.model = model;
  const auto text = [&](const char* key) {
    if (!content->has(key) || !content->get(key).isString()) {
      throw ExplainError(502, std::string("the model's answer lacks \"") + key + "\"");
    }
    return scrub(content->getValue<std::string>(key), 4000);
  };
  out.summary = text("summary");
  out.cause = text("cause");
  out.fix = text("fix");
  if (const auto evidence = content->getArray("evidence")) {
    for (size_t i = 0; i < evidence->size() && i < 20; ++i) {
      const auto item = evidence->get(static_cast<unsigned>(i));
      if (item.isString()) out.evidence.push_back(scrub(item.extract<std::string>(), 500));
    }
  }
  if (!content->has("confidence") || !content->get("confidence").isNumeric()) {
    throw ExplainError(502, "the model's answer lacks a numeric \"confidence\"");
  }
  out.confidence = std::clamp(content->getValue<double>("confidence"), 0.0, 1.0);
  return out;
}

}  // namespace

struct Explainer::Impl {
  explicit Impl(ExplainConfig config) : config(std::move(config)) {}

  // A budget of `perHour` answers that refills continuously, one key per account or hook.
  struct Bucket {
    double tokens = 0;
    Clock::time_point refilledAt;
  };

  // True when the key may ask the model now; else `retryAfterS` says when it may.
  bool take(const std::string& key, int64_t& retryAfterS) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto now = Clock::now();
    const double perSecond = static_cast<double>(config.perHour) / 3600.0;
    auto [it, fresh] = buckets.try_emplace(key);
    Bucket& bucket = it->second;
    if (fresh) {
      bucket.tokens = static_cast<double>(config.perHour);
      bucket.refilledAt = now;
    }
    const double elapsed = std::chrono::duration<double>(now - bucket.refilledAt).count();
    bucket.tokens =
        std::min<double>(static_cast<double>(config.perHour), bucket.tokens + elapsed * perSecond);
    bucket.refilledAt = now;
    if (bucket.tokens >= 1.0) {
      bucket.tokens -= 1.0;
      return true;
    }
    retryAfterS = static_cast<int64_t>((1.0 - bucket.tokens) / perSecond) + 1;
    return false;
  }

  std::optional<Explanation> cached(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = cache.find(key);
    if (it == cache.end()) return std::nullopt;
    order.splice(order.begin(), order, it->second.second);
    Explanation out = it->second.first;
    out.cached = true;
    return out;
  }

  void remember(const std::string& key, const Explanation& answer) {
    std::lock_guard<std::mutex> lock(mutex);
    if (cache.count(key) != 0) return;
    order.push_front(key);
    cache.emplace(key, std::make_pair(answer, order.begin()));
    while (cache.size() > kExplainCacheEntries) {
      cache.erase(order.back());
      order.pop_back();
    }
  }

  // One POST to <url>/chat/completions; the body of a 200, else ExplainError.
  std::string ask(const std::string& summary) {
    JsonObject request(Poco::JSON_PRESERVE_KEY_ORDER);
    request.set("model", config.model);
    request.set("temperature", 0);
    JsonObject::Ptr format = new JsonObject;
    format->set("type", "json_object");
    request.set("response_format", format);
    JsonArray::Ptr messages = new JsonArray;
    JsonObject::Ptr system = new JsonObject(Poco::JSON_PRESERVE_KEY_ORDER);
    system->set("role", "system");
    system->set("content", kInstructions);
    JsonObject::Ptr user = new JsonObject(Poco::JSON_PRESERVE_KEY_ORDER);
    user->set("role", "user");
    user->set("content", summary);
    messages->add(system);
    messages->add(user);
    request.set("messages", messages);
    const std::string body = stringify(request);

    try {
      const Poco::URI uri(config.url + "/chat/completions");
      std::unique_ptr<Poco::Net::HTTPClientSession> session;
      if (uri.getScheme() == "https") {
        // The system's CAs and the host's name, as any client that sends a key must check.
        Poco::Net::Context::Params params;
        params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
        params.loadDefaultCAs = true;
        Poco::Net::Context::Ptr context =
            new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
        session =
            std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(), context);
      } else {
        session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
      }
      session->setTimeout(Poco::Timespan(config.timeout.count() * 1000));

      Poco::Net::HTTPRequest post(Poco::Net::HTTPRequest::HTTP_POST, uri.getPathEtc(),
                                  Poco::Net::HTTPMessage::HTTP_1_1);
      post.setContentType("application/json");
      post.setContentLength(static_cast<std::streamsize>(body.size()));
      post.set("Accept", "application/json");
      if (!config.key.empty()) post.set("Authorization", "Bearer " + config.key);
      session->sendRequest(post) << body;

      Poco::Net::HTTPResponse response;
      std::istream& in = session->receiveResponse(response);
      std::string answer;
      char buffer[8192];
      while (answer.size() < kMaxAnswerBytes && in.read(buffer, sizeof(buffer)).gcount() > 0) {
        answer.append(buffer, static_cast<size_t>(in.gcount()));
      }
      if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
        throw ExplainError(502, "the model endpoint answered " +
                                    std::to_string(static_cast<int>(response.getStatus())));
      }
      return answer;
    } catch (const ExplainError&) {
      throw;
    } catch (const Poco::Exception& e) {
      throw ExplainError(502, "could not reach the model endpoint: " + e.displayText());
    }
  }

  ExplainConfig config;
  std::mutex mutex;
  std::map<std::string, Bucket> buckets;
  std::list<std::string> order;  ///< cache keys, most recently used first
  std::map<std::string, std::pair<Explanation, std::list<std::string>::iterator>> cache;
};

Explainer::Explainer(ExplainConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Explainer::~Explainer() = default;

bool Explainer::enabled() const { return impl_->config.enabled(); }

Explanation Explainer::explain(const std::string& quotaKey, const ExplainSubject& subject) {
  if (!enabled()) throw ExplainError(404, "model explanations are off on this edge");

  // The same event with the same findings gets the same answer without asking again.
  std::string cacheKey = subject.hook->id + "|" + std::to_string(subject.event->id) + "|" +
                         impl_->config.model + (subject.bodyExcerptAllowed ? "|body" : "|");
  for (const auto& finding : *subject.findings) cacheKey += "|" + finding.code;
  for (const auto& delivery : *subject.deliveries) {
    cacheKey += "|" + std::to_string(delivery.reportedAtMs);
  }
  if (auto answer = impl_->cached(cacheKey)) return *answer;

  int64_t retryAfterS = 0;
  if (!impl_->take(quotaKey, retryAfterS)) {
    throw ExplainError(429,
                       "the model-based explanation allows " +
                           std::to_string(impl_->config.perHour) + " per hour; try again later",
                       retryAfterS);
  }

  const std::string summary = redactedSummary(subject);
  Explanation answer = parseAnswer(impl_->ask(summary), impl_->config.model);
  impl_->remember(cacheKey, answer);
  explainLog().information("event explained hook=%s event_id=%s model=%s", subject.hook->id,
                           std::to_string(subject.event->id), impl_->config.model);
  return answer;
}

std::string Explainer::redactedSummary(const ExplainSubject& subject) {
  const store::HookRecord& hook = *subject.hook;
  const store::EventRecord& event = *subject.event;

  JsonObject::Ptr hookOut = new JsonObject(Poco::JSON_PRESERVE_KEY_ORDER);
  hookOut->set("provider", hook.provider.empty() ? std::string("none") : hook.provider);
  hookOut->set("standard_webhooks", hook.standardWebhooks);
  hookOut->set("tolerance_s", static_cast<Poco::Int64>(hook.toleranceS));

  // The request: its shape, without what could be a secret.
  JsonObject::Ptr eventOut = new JsonObject(Poco::JSON_PRESERVE_KEY_ORDER);
  eventOut->set("id", static_cast<Poco::Int64>(event.id));
  eventOut->set("method", scrub(event.method, 32));
  eventOut->set("path", scrub(event.pathSuffix, kQuotedTextBytes));
  eventOut->set("query_keys", queryKeys(event.rawQuery));
  JsonArray::Ptr headers = new JsonArray;
  for (const auto& header : event.headers) {
    JsonArray::Ptr field = new JsonArray;
    field->add(scrub(header.name, 64));
    const std::string name = lowerCase(header.name);
    const bool shown =
        std::find(kShownHeaders.begin(), kShownHeaders.end(), name) != kShownHeaders.end();
    field->add(shown ? scrub(header.value, kQuotedTextBytes)
                     : "<left out, " + std::to_string(header.value.size()) + " bytes>");
    headers->add(field);
  }
  eventOut->set("headers", headers);
  eventOut->set("body_size", static_cast<Poco::Int64>(event.bodySize));
  if (subject.bodyExcerptAllowed) {
    eventOut->set("body_excerpt", scrub(event.body, kExplainExcerptBytes));
  }
  eventOut->set("verdict", std::string(verdictName(event.verdict)));
  eventOut->set("reason", std::string(plugin::reasonName(event.reason)));
  eventOut->set("reason_message", scrub(event.reasonMessage, kQuotedTextBytes));
  eventOut->set("event_type", scrub(event.eventType, 100));
  eventOut->set("replay_of", static_cast<Poco::Int64>(event.replayOf));

  JsonArray::Ptr deliveries = new JsonArray;
  for (const auto& delivery : *subject.deliveries) {
    JsonObject::Ptr out = new JsonObject(Poco::JSON_PRESERVE_KEY_ORDER);
    out->set("relay", scrub(delivery.relayId, 64));
    out->set("status", delivery.status);
    out->set("duration_ms", static_cast<Poco::Int64>(delivery.durationMs));
    out->set("error", scrub(delivery.error, kQuotedTextBytes));
    if (delivery.phase != store::DeliveryPhase::kUnknown) {
      out->set("phase", std::string(phaseName(delivery.phase)));
    }
    if (delivery.timeoutMs > 0) {
      out->set("timeout_ms", static_cast<Poco::Int64>(delivery.timeoutMs));
    }
    out->set("target_https", delivery.targetHttps);

    // What the local server answered may echo the request: it leaves as the body does.
    if (subject.bodyExcerptAllowed) {
      if (!delivery.responseExcerpt.empty()) {
        out->set("response_excerpt", scrub(delivery.responseExcerpt, kExplainExcerptBytes));
      }
      if (!delivery.location.empty()) out->set("location", scrub(delivery.location, 200));
    }
    deliveries->add(out);
  }

  // The edge's own findings: codes, titles and numbers; quoted text only with excerpts allowed.
  JsonArray::Ptr findings = new JsonArray;
  for (const auto& finding : *subject.findings) {
    JsonObject::Ptr out = new JsonObject(Poco::JSON_PRESERVE_KEY_ORDER);
    out->set("code", finding.code);
    out->set("title", finding.title);
    if (subject.bodyExcerptAllowed) out->set("detail", scrub(finding.detail, 600));
    JsonObject::Ptr evidence = new JsonObject(Poco::JSON_PRESERVE_KEY_ORDER);
    for (const auto& item : finding.evidence) {
      if (item.number || subject.bodyExcerptAllowed) {
        evidence->set(item.name, scrub(item.value, kQuotedTextBytes));
      }
    }
    out->set("evidence", evidence);
    findings->add(out);
  }

  JsonObject summary(Poco::JSON_PRESERVE_KEY_ORDER);
  summary.set("hook", hookOut);
  summary.set("event", eventOut);
  summary.set("deliveries", deliveries);
  summary.set("findings", findings);
  return stringify(summary);
}

std::string explanationJson(const Explanation& explanation) {
  JsonObject out(Poco::JSON_PRESERVE_KEY_ORDER);
  out.set("summary", explanation.summary);
  out.set("cause", explanation.cause);
  JsonArray::Ptr evidence = new JsonArray;
  for (const auto& item : explanation.evidence) evidence->add(item);
  out.set("evidence", evidence);
  out.set("fix", explanation.fix);
  out.set("confidence", explanation.confidence);
  out.set("model", explanation.model);
  out.set("cached", explanation.cached);
  return stringify(out);
}

}  // namespace anm::edge
