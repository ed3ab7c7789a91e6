// core/edge/diagnosis_routes.cpp: an event's findings and explanation, a hook's issues and
// their marks, and bulk replays of a search result or of an issue.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/diagnosis_routes.h"

#include <Poco/JSON/Object.h>
#include <Poco/URI.h>

#include <algorithm>
#include <limits>
#include <string_view>

#include "core/edge/api_handler.h"
#include "core/edge/api_support.h"
#include "core/edge/event_diagnosis.h"
#include "core/edge/event_search.h"
#include "core/edge/explainer.h"
#include "core/edge/replay_jobs.h"
#include "core/search/query.h"

namespace anm::edge {
namespace {

using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

/// GET .../events/<n>/diagnosis: what the rules found for the event.
class EventDiagnosisHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    const auto event = readableEvent(resp);
    if (!event) return;

    // Findings quote what the request and the local server said: a read of contents.
    audit(req, "event.read", hook.accountId, hook.id, event->id, "diagnosis");
    const auto findings =
        diagnoseEvent(*services_.store, hook, *event, services_.store->listDeliveries(event->id));
    sendJson(resp, 200, "{\"findings\":" + diagnosis::findingsJson(findings) + "}");
  }
};

/// POST .../events/<n>/explain: the model-based explanation, when the operator turned it on.
class ExplainHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);
    if (services_.explainer == nullptr || !services_.explainer->enabled()) {
      sendError(resp, 404, "model explanations are off on this edge");
      return;
    }
    const auto event = readableEvent(resp);
    if (!event) return;

    const auto deliveries = services_.store->listDeliveries(event->id);
    const auto findings = diagnoseEvent(*services_.store, hook, *event, deliveries);
    ExplainSubject subject;
    subject.hook = &hook;
    subject.event = &*event;
    subject.deliveries = &deliveries;
    subject.findings = &findings;
    subject.bodyExcerptAllowed = explainBodyExcerptAllowed(*services_.store, hook.id);

    // The budget is the account's; an anonymous hook has its own.
    const std::string quotaKey =
        hook.accountId.empty() ? "hook:" + hook.id : "account:" + hook.accountId;
    audit(req, "event.read", hook.accountId, hook.id, event->id,
          subject.bodyExcerptAllowed ? "explain with_excerpt" : "explain");
    try {
      sendJson(resp, 200, explanationJson(services_.explainer->explain(quotaKey, subject)));
    } catch (const ExplainError& e) {
      if (e.retryAfterS() > 0) resp.set("Retry-After", std::to_string(e.retryAfterS()));
      sendError(resp, e.status(), e.what());
    }
  }
};

/// GET .../issues[?state=open|resolved|all]: the hook's failures grouped per code and status.
class IssuesHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    std::string state = "open";
    for (const auto& [key, value] : Poco::URI(req.getURI()).getQueryParameters()) {
      if (key != "state") continue;
      if (value != "open" && value != "resolved" && value != "all") {
        throw BadRequest("state must be open, resolved or all");
      }
      state = value;
    }

    std::string out = "{\"issues\":[";
    bool first = true;
    for (const auto& issue : hookIssues(*services_.store, hook)) {
      const std::string_view name = diagnosis::issueStateName(issue.status.state);
      if (state != "all" && name != state) continue;
      if (!first) out += ',';
      first = false;
      out += hookIssueJson(issue);
    }
    out += "]}";
    sendJson(resp, 200, out);
  }
};

/// POST .../issues/<code>:<status>/(resolve|reopen|replay).
class IssueActionHandler : public HookApiHandler {
 public:
  IssueActionHandler(const EdgeServices& services, std::string hookId, std::string key,
                     std::string action)
      : HookApiHandler(services, std::move(hookId)),
        key_(std::move(key)),
        action_(std::move(action)) {}

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);
    const auto key = parseIssueUrlKey(key_);
    const auto issues = hookIssues(*services_.store, hook);
    const auto found = std::find_if(issues.begin(), issues.end(), [&](const HookIssue& issue) {
      return key && issue.issue.code == key->code && issue.issue.status == key->status;
    });
    if (found == issues.end()) {
      sendError(resp, 404, "unknown issue");
      return;
    }

    if (action_ == "replay") {
      if (services_.replayJobs == nullptr) {
        sendError(resp, 404, "not found");
        return;
      }
      std::vector<int64_t> ids = diagnosis::eventsToReplay(found->issue);
      if (ids.size() > kMaxBulkReplay) ids.resize(kMaxBulkReplay);
      const ReplayJobState job = services_.replayJobs->start(hook.id, std::move(ids));
      audit(req, "event.replay", hook.accountId, hook.id, 0,
            "issue=" + key_ + " job=" + job.id + " count=" + std::to_string(job.total));
      sendJson(resp, 202, replayJobJson(job));
      return;
    }

    // A resolve mark is the time the user saw the issue as fixed; reopen clears it.
    const int64_t mark = action_ == "resolve" ? nowMs() : 0;
    markIssue(*services_.store, hook.id, *key, mark);
    audit(req, "issue." + action_, hook.accountId, hook.id, 0, "issue=" + key_);
    HookIssue updated = *found;
    updated.resolvedAtMs = mark;
    updated.status = diagnosis::issueStatus(updated.issue,
                                            mark > 0 ? std::optional<int64_t>(mark) : std::nullopt);
    sendJson(resp, 200, hookIssueJson(updated));
  }

 private:
  std::string key_;
  std::string action_;
};

/// POST .../replays: replays every event a query matches, oldest first, after the caller saw
/// the count (dry_run) and confirmed it (expect).
class BulkReplayHandler : public HookApiHandler {
 public:
  using HookApiHandler::HookApiHandler;

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    const auto request = readJson(req);
    refuseUnknownFields(*request, {"q", "dry_run", "expect"});
    if (!request->has("q")) throw BadRequest("q is required: the query whose events to replay");
    const std::string text = stringMember(*request, "q", "");
    const auto query = parseQueryOrAnswer(text, resp);
    if (!query) return;
    const bool dryRun = request->has("dry_run") && request->get("dry_run").isBoolean() &&
                        request->getValue<bool>("dry_run");
    if (!dryRun && !request->has("expect")) {
      throw BadRequest("expect is required: the count a dry run showed, to confirm it");
    }

    // Every match of the hook, one more than a job may take so that too many is known.
    SearchScope scope;
    scope.limit = kMaxBulkReplay + 1;
    scope.maxScan = std::numeric_limits<size_t>::max();
    const SearchPage found = searchEvents(*services_.store, hook.id, *query, scope);
    const size_t count = found.events.size();
    if (dryRun) {
      sendJson(resp, 200,
               "{\"count\":" + std::to_string(count) +
                   ",\"over_limit\":" + (count > kMaxBulkReplay ? "true" : "false") + "}");
      return;
    }

    const int64_t expect = integerMember(*request, "expect", 0, 0, INT64_MAX);
    if (static_cast<size_t>(expect) != count) {
      sendJson(resp, 409,
               "{\"error\":" +
                   jsonText("the query now matches " + std::to_string(count) + " events, not " +
                            std::to_string(expect)) +
                   ",\"count\":" + std::to_string(count) + "}");
      return;
    }
    if (count > kMaxBulkReplay) {
      throw BadRequest("a bulk replay takes at most " + std::to_string(kMaxBulkReplay) +
                       " events; narrow the query");
    }

    // The search read newest first; replays go in the order the events first came.
    std::vector<int64_t> ids;
    ids.reserve(count);
    for (auto it = found.events.rbegin(); it != found.events.rend(); ++it) ids.push_back(it->id);
    const ReplayJobState job = services_.replayJobs->start(hook.id, std::move(ids));
    audit(req, "event.replay", hook.accountId, hook.id, 0,
          "job=" + job.id + " count=" + std::to_string(job.total) + " " +
              queryAuditDetail(*query, text.size()));
    sendJson(resp, 202, replayJobJson(job));
  }
};

/// GET and DELETE .../replays/<job id>: a job's progress, and its cancellation.
class ReplayJobHandler : public HookApiHandler {
 public:
  ReplayJobHandler(const EdgeServices& services, std::string hookId, std::string jobId, bool cancel)
      : HookApiHandler(services, std::move(hookId)), jobId_(std::move(jobId)), cancel_(cancel) {}

 protected:
  void handleHook(const store::HookRecord& hook, HTTPServerRequest& req,
                  HTTPServerResponse& resp) override {
    closeIfBodyUnread(req, resp);
    const auto state = cancel_ ? services_.replayJobs->cancel(hook.id, jobId_)
                               : services_.replayJobs->find(hook.id, jobId_);
    if (!state) {
      sendError(resp, 404, "unknown replay job; jobs are kept on the edge that runs them");
      return;
    }
    if (cancel_) audit(req, "replay.cancel", hook.accountId, hook.id, 0, "job=" + jobId_);
    sendJson(resp, 200, replayJobJson(*state));
  }

 private:
  std::string jobId_;
  bool cancel_;
};

}  // namespace

EdgeHandler* routeDiagnosisApi(const EdgeServices& services, const std::string& method,
                               const std::vector<std::string>& parts) {
  const size_t n = parts.size();
  if (n < 5 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "hooks") return nullptr;
  const std::string& hookId = parts[3];
  const auto only = [&method](const char* allowed) { return method == allowed; };

  if (n == 7 && parts[4] == "events" && (parts[6] == "diagnosis" || parts[6] == "explain")) {
    const auto eventId = parseId(parts[5]);
    if (!eventId || *eventId == 0) return nullptr;
    if (parts[6] == "diagnosis") {
      if (!only("GET")) return new MethodNotAllowedHandler("GET");
      return new EventDiagnosisHandler(services, hookId, *eventId);
    }
    if (!only("POST")) return new MethodNotAllowedHandler("POST");
    return new ExplainHandler(services, hookId, *eventId);
  }
  if (n == 5 && parts[4] == "issues") {
    if (!only("GET")) return new MethodNotAllowedHandler("GET");
    return new IssuesHandler(services, hookId);
  }
  if (n == 7 && parts[4] == "issues" &&
      (parts[6] == "resolve" || parts[6] == "reopen" || parts[6] == "replay")) {
    if (!only("POST")) return new MethodNotAllowedHandler("POST");
    return new IssueActionHandler(services, hookId, parts[5], parts[6]);
  }
  if (n == 5 && parts[4] == "replays") {
    if (!only("POST")) return new MethodNotAllowedHandler("POST");
    return new BulkReplayHandler(services, hookId);
  }
  if (n == 6 && parts[4] == "replays") {
    if (only("GET")) return new ReplayJobHandler(services, hookId, parts[5], false);
    if (only("DELETE")) return new ReplayJobHandler(services, hookId, parts[5], true);
    return new MethodNotAllowedHandler("GET, DELETE");
  }
  return nullptr;
}

}  // namespace anm::edge
