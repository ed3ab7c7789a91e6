// core/edge/explainer.h: the optional model-based explanation of a failed event, from an
// OpenAI-compatible endpoint the operator chose, with a redacted summary, a cache and a budget.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/diagnosis/diagnosis.h"
#include "core/edge/config.h"
#include "core/store/store.h"

namespace anm::edge {

/// Most bytes of a body, or of a local server's answer, a summary may carry when the hook
/// allows excerpts.
inline constexpr size_t kExplainExcerptBytes = 1024;

/// Answers kept per edge; the oldest goes first.
inline constexpr size_t kExplainCacheEntries = 1000;

/// Why an explanation could not be given; the status and message go back to the client.
class ExplainError : public std::runtime_error {
 public:
  ExplainError(int status, const std::string& what, int64_t retryAfterS = 0)
      : std::runtime_error(what), status_(status), retryAfterS_(retryAfterS) {}
  int status() const { return status_; }
  int64_t retryAfterS() const { return retryAfterS_; }

 private:
  int status_;
  int64_t retryAfterS_;
};

/// What the model said, in the shape the edge asks for.
struct Explanation {
  std::string summary;
  std::string cause;
  std::vector<std::string> evidence;
  std::string fix;
  double confidence = 0;  ///< 0..1, as the model rated itself
  std::string model;
  bool cached = false;  ///< answered from the cache, without asking the model
};

/// One event to explain with everything the edge knows about it.
struct ExplainSubject {
  const store::HookRecord* hook = nullptr;
  const store::EventRecord* event = nullptr;  ///< with its body when excerpts are allowed
  const std::vector<store::DeliveryRecord>* deliveries = nullptr;
  const std::vector<diagnosis::Finding>* findings = nullptr;
  bool bodyExcerptAllowed = false;  ///< the hook lets a body excerpt leave the edge
};

/// Thread-safe.
class Explainer {
 public:
  explicit Explainer(ExplainConfig config);
  ~Explainer();
  Explainer(const Explainer&) = delete;
  Explainer& operator=(const Explainer&) = delete;

  bool enabled() const;

  /// The explanation of the subject: from the cache, or asked of the model within the budget
  /// of `quotaKey` (the account, or the hook of an anonymous one). Throws ExplainError: 404 when
  /// explanations are off, 429 over the budget, 502 when the model failed or answered off form.
  Explanation explain(const std::string& quotaKey, const ExplainSubject& subject);

  /// The summary that leaves the edge, as JSON: no secret, no signature, no header value
  /// outside a short list of harmless ones, no query value, and no body or answer bytes unless
  /// the hook allows an excerpt. Public so that tests read exactly what would be sent.
  static std::string redactedSummary(const ExplainSubject& subject);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The explanation as the API's JSON.
std::string explanationJson(const Explanation& explanation);

}  // namespace anm::edge
