// core/search/query.cpp: matching parsed search queries, their prefilter and canonical text.
// SPDX-License-Identifier: Apache-2.0
#include "core/search/query.h"

#include <algorithm>
#include <set>
#include <utility>

#include "core/search/query_tree.h"
#include "core/search/time_value.h"

namespace anm::search {

struct Query::Parsed {
  Node tree;  ///< as parsed: what toString prints and the prefilter is drawn from
  Node plan;  ///< the same tree with the cheapest terms of every AND and OR first
  Prefilter prefilter;
  Needs needs;
};

namespace {

// --- Matching.

bool anyHeader(const Candidate& event, const TextPattern& name, const TextPattern* value) {
  if (event.headers == nullptr) return false;
  for (const auto& header : *event.headers) {
    if (name.matches(header.name) && (value == nullptr || value->matches(header.value))) {
      return true;
    }
  }
  return false;
}

bool matchesStatus(const Term& term, const DeliveryStatuses& deliveries) {
  switch (term.status) {
    case StatusCheck::kNone:
      return deliveries.empty();
    case StatusCheck::kAny:
      return !deliveries.empty();
    case StatusCheck::kFailed:
      for (size_t i = 0; i < deliveries.size(); ++i) {
        if (deliveries[i] == 0) return true;
      }
      return false;
    case StatusCheck::kCode:
      for (size_t i = 0; i < deliveries.size(); ++i) {
        if (deliveries[i] != 0 && term.bounds.contains(deliveries[i])) return true;
      }
      return false;
  }
  return false;
}

bool matchesText(const TextPattern& pattern, const Candidate& event) {
  // The clear, short fields first; the body, usually the longest, last.
  if (pattern.matches(event.path) || pattern.matches(event.query) || pattern.matches(event.type)) {
    return true;
  }
  if (event.headers != nullptr) {
    for (const auto& header : *event.headers) {
      if (pattern.matches(header.name) || pattern.matches(header.value)) return true;
    }
  }
  return pattern.matches(event.body);
}

bool matchesTerm(const Term& term, const Candidate& event) {
  switch (term.field) {
    case Field::kMethod:
      return term.pattern.matches(event.method);
    case Field::kPath:
      return term.pattern.matches(event.path);
    case Field::kQuery:
      return term.pattern.matches(event.query);
    case Field::kType:
      return term.pattern.matches(event.type);
    case Field::kBody:
      return term.pattern.matches(event.body);
    case Field::kHeader:
      return anyHeader(event, term.pattern, nullptr);
    case Field::kHeaderValue:
      return anyHeader(event, term.pattern, &term.value);
    case Field::kText:
      return matchesText(term.pattern, event);
    case Field::kVerdict:
      return event.verdict == term.verdict;
    case Field::kReason:
      return event.reason == term.reason;
    case Field::kStatus:
      return matchesStatus(term, event.deliveries);
    case Field::kTime:
      return term.bounds.contains(event.receivedAtMs);
    case Field::kId:
      return term.bounds.contains(event.id);
    case Field::kSize:
      return term.bounds.contains(event.bodySize);
    case Field::kReplay:
      switch (term.replay) {
        case ReplayCheck::kIsReplay:
          return event.replayOf != 0;
        case ReplayCheck::kIsOriginal:
          return event.replayOf == 0;
        case ReplayCheck::kReplayOf:
          return event.replayOf == term.replayOf;
      }
  }
  return false;
}

bool matchesNode(const Node& node, const Candidate& event) {
  switch (node.kind) {
    case Node::Kind::kAll:
      return true;
    case Node::Kind::kTerm:
      return matchesTerm(node.term, event);
    case Node::Kind::kNot:
      return !matchesNode(node.children.front(), event);
    case Node::Kind::kAnd:
      for (const auto& child : node.children) {
        if (!matchesNode(child, event)) return false;
      }
      return true;
    case Node::Kind::kOr:
      for (const auto& child : node.children) {
        if (matchesNode(child, event)) return true;
      }
      return false;
  }
  return false;
}

/// A rough cost of matching, in units of "compare a few bytes": scans of the body and of every
/// header cost most.
size_t costOf(const Node& node) {
  if (node.kind != Node::Kind::kTerm) {
    size_t sum = 0;
    for (const auto& child : node.children) sum += costOf(child);
    return sum;
  }
  switch (node.term.field) {
    case Field::kText:
      return 100;
    case Field::kBody:
      return 50;
    case Field::kHeader:
    case Field::kHeaderValue:
      return 10;
    case Field::kQuery:
    case Field::kPath:
    case Field::kType:
    case Field::kStatus:
      return 3;
    default:
      return 1;
  }
}

/// The tree with every AND's and OR's children in order of cost, so that a cheap term that
/// decides settles the node before a body is scanned. Order never changes the result: terms
/// have no side effects.
Node planned(Node node) {
  for (auto& child : node.children) child = planned(std::move(child));
  if (node.kind == Node::Kind::kAnd || node.kind == Node::Kind::kOr) {
    std::stable_sort(node.children.begin(), node.children.end(),
                     [](const Node& a, const Node& b) { return costOf(a) < costOf(b); });
  }
  return node;
}

// --- What to load.

void collectNeeds(const Node& node, Needs& needs) {
  for (const auto& child : node.children) collectNeeds(child, needs);
  if (node.kind != Node::Kind::kTerm) return;
  switch (node.term.field) {
    case Field::kText:
      needs.rawQuery = needs.headers = needs.body = true;
      break;
    case Field::kQuery:
      needs.rawQuery = true;
      break;
    case Field::kHeader:
    case Field::kHeaderValue:
      needs.headers = true;
      break;
    case Field::kBody:
      needs.body = true;
      break;
    case Field::kStatus:
      needs.deliveries = true;
      break;
    default:
      break;
  }
}

// --- The prefilter: for every node, a superset of the events it can match, described by the
// columns in the clear. AND intersects, OR unites, NOT is pushed down to the terms (De
// Morgan) where a term's complement can be described exactly.

constexpr uint8_t verdictBit(store::Verdict verdict) {
  return static_cast<uint8_t>(1u << static_cast<unsigned>(verdict));
}

constexpr uint8_t kEveryVerdict = verdictBit(store::Verdict::kValid) |
                                  verdictBit(store::Verdict::kInvalid) |
                                  verdictBit(store::Verdict::kUnsigned);

struct Constraint {
  Bounds time;
  Bounds id;
  Bounds size;
  uint8_t verdicts = kEveryVerdict;
  std::optional<std::set<int32_t>> reasons;
  std::optional<std::set<std::string>> methods;
  std::optional<bool> replay;
  bool nothing = false;
};

Constraint nothingMatches() {
  Constraint constraint;
  constraint.nothing = true;
  return constraint;
}

template <typename T>
std::optional<std::set<T>> intersected(const std::optional<std::set<T>>& a,
                                       const std::optional<std::set<T>>& b) {
  if (!a) return b;
  if (!b) return a;
  std::set<T> both;
  std::set_intersection(a->begin(), a->end(), b->begin(), b->end(),
                        std::inserter(both, both.end()));
  return both;
}

template <typename T>
std::optional<std::set<T>> united(const std::optional<std::set<T>>& a,
                                  const std::optional<std::set<T>>& b) {
  if (!a || !b) return std::nullopt;
  std::set<T> either = *a;
  either.insert(b->begin(), b->end());
  return either;
}

Constraint both(const Constraint& a, const Constraint& b) {
  if (a.nothing || b.nothing) return nothingMatches();
  Constraint result;
  const auto intersect = [&](Bounds x, Bounds y) {
    const Bounds meet{std::max(x.low, y.low), std::min(x.high, y.high)};
    if (meet.low > meet.high) result.nothing = true;
    return meet;
  };
  result.time = intersect(a.time, b.time);
  result.id = intersect(a.id, b.id);
  result.size = intersect(a.size, b.size);
  result.verdicts = a.verdicts & b.verdicts;
  result.reasons = intersected(a.reasons, b.reasons);
  result.methods = intersected(a.methods, b.methods);
  if (a.replay && b.replay && *a.replay != *b.replay) result.nothing = true;
  result.replay = a.replay ? a.replay : b.replay;
  if (result.verdicts == 0 || (result.reasons && result.reasons->empty()) ||
      (result.methods && result.methods->empty())) {
    result.nothing = true;
  }
  return result.nothing ? nothingMatches() : result;
}

Constraint either(const Constraint& a, const Constraint& b) {
  if (a.nothing) return b;
  if (b.nothing) return a;
  Constraint result;
  const auto hull = [](Bounds x, Bounds y) {
    return Bounds{std::min(x.low, y.low), std::max(x.high, y.high)};
  };
  result.time = hull(a.time, b.time);
  result.id = hull(a.id, b.id);
  result.size = hull(a.size, b.size);
  result.verdicts = a.verdicts | b.verdicts;
  result.reasons = united(a.reasons, b.reasons);
  result.methods = united(a.methods, b.methods);
  if (a.replay && b.replay && *a.replay == *b.replay) result.replay = a.replay;
  return result;
}

/// The complement of a range of one number: exact when one end is open, else anything.
std::optional<Bounds> outside(Bounds bounds) {
  if (bounds.low == kOpenLow && bounds.high == kOpenHigh) return std::nullopt;
  if (bounds.low == kOpenLow) return Bounds{bounds.high + 1, kOpenHigh};
  if (bounds.high == kOpenHigh) return Bounds{kOpenLow, bounds.low - 1};
  return Bounds{};
}

Constraint termConstraint(const Term& term, bool negate) {
  Constraint constraint;
  Bounds* bounds = nullptr;
  switch (term.field) {
    case Field::kTime:
      bounds = &constraint.time;
      break;
    case Field::kId:
      bounds = &constraint.id;
      break;
    case Field::kSize:
      bounds = &constraint.size;
      break;
    case Field::kVerdict:
      constraint.verdicts =
          negate ? kEveryVerdict & ~verdictBit(term.verdict) : verdictBit(term.verdict);
      return constraint.verdicts == 0 ? nothingMatches() : constraint;
    case Field::kReason:
      if (!negate) constraint.reasons = std::set<int32_t>{term.reason};
      return constraint;
    case Field::kMethod:
      if (!negate && !term.pattern.hasWildcard()) {
        std::string method = term.pattern.parts().front();
        for (char& c : method) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        constraint.methods = std::set<std::string>{method};
      }
      return constraint;
    case Field::kReplay:
      if (term.replay == ReplayCheck::kReplayOf) {
        if (!negate) constraint.replay = true;
        return constraint;
      }
      constraint.replay = (term.replay == ReplayCheck::kIsReplay) != negate;
      return constraint;
    default:
      return constraint;
  }

  if (!negate) {
    *bounds = term.bounds;
    return constraint;
  }
  const auto complement = outside(term.bounds);
  if (!complement) return nothingMatches();
  *bounds = *complement;
  return constraint;
}

Constraint constraintOf(const Node& node, bool negate) {
  switch (node.kind) {
    case Node::Kind::kAll:
      return negate ? nothingMatches() : Constraint{};
    case Node::Kind::kTerm:
      return termConstraint(node.term, negate);
    case Node::Kind::kNot:
      return constraintOf(node.children.front(), !negate);
    case Node::Kind::kAnd:
    case Node::Kind::kOr: {
      // NOT (a AND b) is NOT a OR NOT b, and the other way round.
      const bool intersect = (node.kind == Node::Kind::kAnd) != negate;
      Constraint result = constraintOf(node.children.front(), negate);
      for (size_t i = 1; i < node.children.size(); ++i) {
        const Constraint next = constraintOf(node.children[i], negate);
        result = intersect ? both(result, next) : either(result, next);
      }
      return result;
    }
  }
  return Constraint{};
}

// Known limit: type and path are in the clear as well; handing their whole-value patterns on (as
// exact values or LIKE prefixes) would let a store narrow a scan by event type too. The stores
// keep both as BLOBs compared byte for byte, while the language ignores ASCII case, so this
// waits for a case-folded column or index.
Prefilter prefilterOf(const Node& tree) {
  const Constraint constraint = constraintOf(tree, false);
  Prefilter prefilter;
  if (constraint.nothing) {
    prefilter.matchesNothing = true;
    return prefilter;
  }
  const auto bound = [](int64_t value, int64_t open) {
    return value == open ? std::nullopt : std::optional<int64_t>(value);
  };
  prefilter.fromMs = bound(constraint.time.low, kOpenLow);
  prefilter.toMs = bound(constraint.time.high, kOpenHigh);
  prefilter.minId = bound(constraint.id.low, kOpenLow);
  prefilter.maxId = bound(constraint.id.high, kOpenHigh);
  prefilter.minSize = bound(constraint.size.low, kOpenLow);
  prefilter.maxSize = bound(constraint.size.high, kOpenHigh);
  if (constraint.verdicts != kEveryVerdict) {
    prefilter.verdicts.emplace();
    for (const auto verdict :
         {store::Verdict::kValid, store::Verdict::kInvalid, store::Verdict::kUnsigned}) {
      if (constraint.verdicts & verdictBit(verdict)) prefilter.verdicts->push_back(verdict);
    }
  }
  if (constraint.reasons) {
    prefilter.reasons.emplace(constraint.reasons->begin(), constraint.reasons->end());
  }
  if (constraint.methods) {
    prefilter.methods.emplace(constraint.methods->begin(), constraint.methods->end());
  }
  prefilter.replay = constraint.replay;
  return prefilter;
}

// --- The canonical text.

bool isSpaceByte(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/// Whether a byte must be escaped in a bare value at position `at`. `bare` is a term without
/// a field, where a leading `-` would negate and a colon would name a field.
bool needsEscape(char c, size_t at, bool bare) {
  if (isSpaceByte(c) || c == '(' || c == ')' || c == '"' || c == '\\' || c == '*') return true;
  if (at == 0 && (c == '[' || c == '{' || c == '<' || c == '>')) return true;
  return bare && (c == ':' || (at == 0 && c == '-'));
}

std::string quotedValue(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

/// A value as the parser reads it back: bare when it can be, quoted when it has no wildcard,
/// else bare with backslash escapes (quotes would make the wildcards literal).
std::string renderValue(const std::vector<std::string>& parts, bool bare) {
  if (parts.size() == 1) {
    const std::string& text = parts.front();
    bool plain = !text.empty();
    for (size_t i = 0; plain && i < text.size(); ++i) plain = !needsEscape(text[i], i, bare);
    const bool looksLikeOperator = equalsFolded(text, "and") || equalsFolded(text, "or") ||
                                   equalsFolded(text, "not") || text == "&&" || text == "||";
    if (plain && !(bare && looksLikeOperator)) return text;
    return quotedValue(text);
  }

  std::string out;
  size_t at = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) {
      out.push_back('*');
      ++at;
    }
    for (char c : parts[i]) {
      if (needsEscape(c, at, bare)) out.push_back('\\');
      out.push_back(c);
      ++at;
    }
  }
  return out;
}

std::string joinedWithStars(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out.push_back('*');
    out += parts[i];
  }
  return out.empty() ? "\"\"" : out;
}

/// Whether the parser takes `value` as a value of the field: status codes are 100..599.
bool typable(Field field, int64_t value) {
  if (field == Field::kStatus) return value >= 100 && value <= 599;
  return value >= 0;
}

std::string renderNumberBounds(Field field, Bounds bounds) {
  const std::string prefix = std::string(fieldName(field)) + ":";
  if (bounds.low == kOpenLow && bounds.high == kOpenHigh) return prefix + "[* TO *]";
  if (bounds.low == bounds.high) return prefix + std::to_string(bounds.low);

  // One open end: a comparison, exclusive where the inclusive value could not be typed
  // (status:>599 rather than status:>=600).
  if (bounds.high == kOpenHigh) {
    return typable(field, bounds.low) ? prefix + ">=" + std::to_string(bounds.low)
                                      : prefix + ">" + std::to_string(bounds.low - 1);
  }
  if (bounds.low == kOpenLow) {
    return typable(field, bounds.high) ? prefix + "<=" + std::to_string(bounds.high)
                                       : prefix + "<" + std::to_string(bounds.high + 1);
  }
  return prefix + "[" + std::to_string(bounds.low) + " TO " + std::to_string(bounds.high) + "]";
}

std::string renderTimeBounds(Bounds bounds) {
  if (bounds.low == kOpenLow && bounds.high == kOpenHigh) return "time:[* TO *]";
  if (bounds.high == kOpenHigh) return "time:>=" + formatTimeBound(bounds.low, false);
  if (bounds.low == kOpenLow) return "time:<=" + formatTimeBound(bounds.high, true);
  const std::string single = formatTimeSpan(bounds.low, bounds.high);
  if (!single.empty()) return "time:" + single;
  return "time:[" + formatTimeBound(bounds.low, false) + " TO " +
         formatTimeBound(bounds.high, true) + "]";
}

std::string renderTerm(const Term& term) {
  const std::string prefix = std::string(fieldName(term.field)) + ":";
  switch (term.field) {
    case Field::kText:
      return renderValue(term.pattern.parts(), true);
    case Field::kMethod: {
      std::vector<std::string> upper = term.pattern.parts();
      for (auto& part : upper) {
        for (char& c : part) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
      }
      return prefix + renderValue(upper, false);
    }
    case Field::kPath:
    case Field::kQuery:
    case Field::kType:
    case Field::kBody:
      return prefix + renderValue(term.pattern.parts(), false);
    case Field::kHeader:
      return prefix + joinedWithStars(term.pattern.parts());
    case Field::kHeaderValue:
      return "header." + joinedWithStars(term.pattern.parts()) + ":" +
             renderValue(term.value.parts(), false);
    case Field::kVerdict:
      return prefix + std::string(verdictLabel(term.verdict));
    case Field::kReason:
      return prefix + std::string(reasonLabel(term.reason));
    case Field::kReplay:
      switch (term.replay) {
        case ReplayCheck::kIsReplay:
          return prefix + "true";
        case ReplayCheck::kIsOriginal:
          return prefix + "false";
        case ReplayCheck::kReplayOf:
          return prefix + std::to_string(term.replayOf);
      }
      return prefix;
    case Field::kStatus:
      switch (term.status) {
        case StatusCheck::kNone:
          return prefix + "none";
        case StatusCheck::kFailed:
          return prefix + "failed";
        case StatusCheck::kAny:
          return prefix + "*";
        case StatusCheck::kCode:
          return renderNumberBounds(term.field, term.bounds);
      }
      return prefix;
    case Field::kTime:
      return renderTimeBounds(term.bounds);
    case Field::kId:
    case Field::kSize:
      return renderNumberBounds(term.field, term.bounds);
  }
  return prefix;
}

/// Binding strength: a node needs parentheses inside a parent that binds tighter.
int precedenceOf(Node::Kind kind) {
  switch (kind) {
    case Node::Kind::kOr:
      return 1;
    case Node::Kind::kAnd:
      return 2;
    case Node::Kind::kNot:
      return 3;
    default:
      return 4;
  }
}

std::string render(const Node& node, int parentPrecedence) {
  std::string text;
  switch (node.kind) {
    case Node::Kind::kAll:
      return "*";
    case Node::Kind::kTerm:
      return renderTerm(node.term);
    case Node::Kind::kNot:
      text = "NOT " + render(node.children.front(), precedenceOf(Node::Kind::kNot));
      break;
    case Node::Kind::kAnd:
    case Node::Kind::kOr: {
      const char* joiner = node.kind == Node::Kind::kAnd ? " AND " : " OR ";
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (i > 0) text += joiner;
        text += render(node.children[i], precedenceOf(node.kind));
      }
      break;
    }
  }
  return precedenceOf(node.kind) < parentPrecedence ? "(" + text + ")" : text;
}

void collectFields(const Node& node, std::vector<bool>& used) {
  if (node.kind == Node::Kind::kTerm) used[static_cast<size_t>(node.term.field)] = true;
  for (const auto& child : node.children) collectFields(child, used);
}

}  // namespace

// --- Public API.

Candidate Candidate::of(const store::EventRecord& event, DeliveryStatuses deliveries) {
  Candidate candidate;
  candidate.id = event.id;
  candidate.receivedAtMs = event.receivedAtMs;
  candidate.method = event.method;
  candidate.path = event.pathSuffix;
  candidate.query = event.rawQuery;
  candidate.headers = &event.headers;
  candidate.body = event.body;
  candidate.bodySize = event.bodySize;
  candidate.type = event.eventType;
  candidate.verdict = event.verdict;
  candidate.reason = event.reason;
  candidate.replayOf = event.replayOf;
  candidate.deliveries = deliveries;
  return candidate;
}

bool Prefilter::admits(const Candidate& candidate) const {
  if (matchesNothing) return false;
  const auto within = [](int64_t value, const std::optional<int64_t>& low,
                         const std::optional<int64_t>& high) {
    return (!low || value >= *low) && (!high || value <= *high);
  };
  if (!within(candidate.receivedAtMs, fromMs, toMs) || !within(candidate.id, minId, maxId) ||
      !within(candidate.bodySize, minSize, maxSize)) {
    return false;
  }
  if (verdicts &&
      std::find(verdicts->begin(), verdicts->end(), candidate.verdict) == verdicts->end()) {
    return false;
  }
  if (reasons && std::find(reasons->begin(), reasons->end(), candidate.reason) == reasons->end()) {
    return false;
  }
  if (methods) {
    const bool listed = std::any_of(methods->begin(), methods->end(), [&](const auto& method) {
      return method.size() == candidate.method.size() &&
             std::equal(method.begin(), method.end(), candidate.method.begin(),
                        [](char a, char b) { return foldByte(a) == foldByte(b); });
    });
    if (!listed) return false;
  }
  return !replay || *replay == (candidate.replayOf != 0);
}

Query::Query() : Query(std::make_shared<const Parsed>()) {}

Query::Query(std::shared_ptr<const Parsed> parsed) : parsed_(std::move(parsed)) {}

Query Query::parse(std::string_view text, int64_t nowMs) {
  auto parsed = std::make_shared<Parsed>();
  parsed->tree = parseQueryTree(text, nowMs);
  parsed->plan = planned(parsed->tree);
  parsed->prefilter = prefilterOf(parsed->tree);
  collectNeeds(parsed->tree, parsed->needs);
  return Query(std::move(parsed));
}

bool Query::matches(const Candidate& candidate) const {
  return matchesNode(parsed_->plan, candidate);
}

const Prefilter& Query::prefilter() const { return parsed_->prefilter; }

const Needs& Query::needs() const { return parsed_->needs; }

bool Query::matchesEverything() const { return parsed_->tree.kind == Node::Kind::kAll; }

std::string Query::toString() const { return render(parsed_->tree, 0); }

std::vector<std::string_view> Query::fields() const {
  std::vector<bool> used(static_cast<size_t>(Field::kText) + 1, false);
  collectFields(parsed_->tree, used);
  if (used[static_cast<size_t>(Field::kHeaderValue)])
    used[static_cast<size_t>(Field::kHeader)] = true;

  std::vector<std::string_view> out;
  for (const std::string_view name : fieldNames()) {
    const auto field = fieldNamed(name);
    if (field && used[static_cast<size_t>(*field)]) out.push_back(name);
  }
  if (used[static_cast<size_t>(Field::kText)]) out.push_back("text");
  return out;
}

}  // namespace anm::search
