// core/search/parser.cpp: turns the text of a search query into its tree, or a QueryError.
// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/search/query.h"
#include "core/search/query_tree.h"
#include "core/search/time_value.h"

namespace anm::search {
namespace {

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool isLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 9110 section 5.6.2: the characters of methods and header names.
bool isTokenChar(char c) {
  if (isLetter(c) || isDigit(c)) return true;
  static constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return kSymbols.find(c) != std::string_view::npos;
}

/// `text` in double quotes for a message, cut to 40 bytes (on a UTF-8 boundary) with "...".
std::string quoted(std::string_view text) {
  constexpr size_t kMostBytes = 40;
  if (text.size() <= kMostBytes) return "\"" + std::string(text) + "\"";
  size_t cut = kMostBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + std::string(text.substr(0, cut)) + "...\"";
}

std::string listOf(const std::vector<std::string_view>& names) {
  std::string list;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) list += i + 1 == names.size() ? " or " : ", ";
    list += names[i];
  }
  return list;
}

enum class TokenKind { kEnd, kOpen, kClose, kAnd, kOr, kNot, kMinus, kWord };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  size_t start = 0;
  size_t length = 0;
};

/// A value as typed, split at its unescaped `*` wildcards into literal runs (see TextPattern).
struct Value {
  std::vector<std::string> parts;
  size_t start = 0;   ///< of the value's first byte, its opening quote for a quoted one
  size_t length = 0;  ///< quotes included
  bool quoted = false;

  bool hasWildcard() const { return parts.size() > 1; }
  bool isLoneStar() const {
    if (!hasWildcard()) return false;
    for (const auto& part : parts) {
      if (!part.empty()) return false;
    }
    return true;
  }
  /// The text of a value without wildcards.
  const std::string& text() const { return parts.front(); }
  /// Where the text starts, past an opening quote.
  size_t textStart() const { return quoted ? start + 1 : start; }
};

/// The field a term or a field group applies to.
struct FieldSpec {
  Field field = Field::kText;
  std::string spelled;     ///< as typed ("Status", "header.X-Foo"), for messages
  TextPattern headerName;  ///< Field::kHeaderValue
};

Node termNode(Term term) {
  Node node;
  node.kind = Node::Kind::kTerm;
  node.term = std::move(term);
  return node;
}

/// Joins children under AND or OR, merging nested nodes of the same kind and `*` (kAll):
/// `x AND *` is x, `x OR *` is *.
Node joined(Node::Kind kind, std::vector<Node> children) {
  Node node;
  node.kind = kind;
  for (auto& child : children) {
    if (child.kind == Node::Kind::kAll) {
      if (kind == Node::Kind::kOr) return Node{};
      continue;
    }
    if (child.kind == kind) {
      for (auto& grandchild : child.children) node.children.push_back(std::move(grandchild));
      continue;
    }
    node.children.push_back(std::move(child));
  }
  if (node.children.empty()) return Node{};
  if (node.children.size() == 1) return std::move(node.children.front());
  return node;
}

Node negated(Node child) {
  if (child.kind == Node::Kind::kNot) return std::move(child.children.front());
  Node node;
  node.kind = Node::Kind::kNot;
  node.children.push_back(std::move(child));
  return node;
}

class Parser {
 public:
  Parser(std::string_view text, int64_t nowMs) : text_(text), nowMs_(nowMs) {}

  Node parse() {
    if (text_.size() > kMaxQueryBytes) {
      fail(kMaxQueryBytes, text_.size() - kMaxQueryBytes,
           "query is " + std::to_string(text_.size()) + " bytes long",
           "the limit is " + std::to_string(kMaxQueryBytes) + " bytes");
    }
    if (peek().kind == TokenKind::kEnd) return Node{};

    Node root = parseOr(nullptr);
    const Token rest = peek();
    if (rest.kind == TokenKind::kClose) fail(rest.start, 1, "unmatched \")\"", "remove it");
    return root;
  }

 private:
  [[noreturn]] void fail(size_t at, size_t length, const std::string& problem,
                         const std::string& hint = "") const {
    throw QueryError(at, length, problem, hint);
  }

  char charAt(size_t at) const { return at < text_.size() ? text_[at] : '\0'; }
  bool atEnd(size_t at) const { return at >= text_.size(); }

  void skipSpaces() {
    while (!atEnd(at_) && isSpace(text_[at_])) ++at_;
  }

  /// The bytes from `at` up to a space, a parenthesis, a quote or the end: what is compared
  /// with the operator words.
  std::string_view runAt(size_t at) const {
    size_t end = at;
    while (!atEnd(end) && !isSpace(text_[end]) && text_[end] != '(' && text_[end] != ')' &&
           text_[end] != '"') {
      ++end;
    }
    return text_.substr(at, end - at);
  }

  /// The next token, after skipping spaces (which consumes only the spaces).
  Token peek() {
    skipSpaces();
    if (atEnd(at_)) return {TokenKind::kEnd, at_, 0};
    const char c = text_[at_];
    if (c == '(') return {TokenKind::kOpen, at_, 1};
    if (c == ')') return {TokenKind::kClose, at_, 1};

    const std::string_view run = runAt(at_);
    if (run == "AND" || run == "&&") return {TokenKind::kAnd, at_, run.size()};
    if (run == "OR" || run == "||") return {TokenKind::kOr, at_, run.size()};
    if (run == "NOT") return {TokenKind::kNot, at_, run.size()};

    // `-` right before a term negates it; a `-` on its own is left for parseTerm to refuse.
    const char next = charAt(at_ + 1);
    if (c == '-' && !atEnd(at_ + 1) && !isSpace(next) && next != ')') {
      return {TokenKind::kMinus, at_, 1};
    }
    return {TokenKind::kWord, at_, run.size()};
  }

  static bool endsOperand(TokenKind kind) {
    return kind == TokenKind::kEnd || kind == TokenKind::kClose || kind == TokenKind::kAnd ||
           kind == TokenKind::kOr;
  }

  std::string operatorName(const Token& token) const {
    return "\"" + std::string(text_.substr(token.start, token.length)) + "\"";
  }

  void enterLevel(size_t at, size_t length) {
    if (++depth_ > kMaxDepth) {
      fail(at, length, "nested too deeply",
           "at most " + std::to_string(kMaxDepth) +
               " levels of parentheses and NOT may stand inside one another");
    }
  }

  void leaveLevel() { --depth_; }

  void countTerm(size_t at, size_t length) {
    if (++terms_ > kMaxTerms) {
      fail(at, length, "too many terms",
           "a query may hold at most " + std::to_string(kMaxTerms) + " terms");
    }
  }

  // --- The grammar: or := and (OR and)*; and := unary ([AND] unary)*;
  // unary := (NOT | -) unary | primary; primary := ( or ) | term.

  Node parseOr(const FieldSpec* group) {
    std::vector<Node> children;
    children.push_back(parseAnd(group));
    for (Token token = peek(); token.kind == TokenKind::kOr; token = peek()) {
      at_ = token.start + token.length;
      if (endsOperand(peek().kind)) {
        fail(token.start, token.length, operatorName(token) + " needs a term after it");
      }
      children.push_back(parseAnd(group));
    }
    return joined(Node::Kind::kOr, std::move(children));
  }

  Node parseAnd(const FieldSpec* group) {
    std::vector<Node> children;
    children.push_back(parseUnary(group));
    for (Token token = peek(); !endsOperand(token.kind) || token.kind == TokenKind::kAnd;
         token = peek()) {
      // Terms side by side are joined by AND as if it were written.
      if (token.kind == TokenKind::kAnd) {
        at_ = token.start + token.length;
        if (endsOperand(peek().kind)) {
          fail(token.start, token.length, operatorName(token) + " needs a term after it");
        }
      }
      children.push_back(parseUnary(group));
    }
    return joined(Node::Kind::kAnd, std::move(children));
  }

  Node parseUnary(const FieldSpec* group) {
    const Token token = peek();
    if (token.kind != TokenKind::kNot && token.kind != TokenKind::kMinus) {
      return parsePrimary(group);
    }
    at_ = token.start + token.length;
    if (endsOperand(peek().kind)) {
      fail(token.start, token.length, operatorName(token) + " needs a term after it");
    }
    enterLevel(token.start, token.length);
    Node child = parseUnary(group);
    leaveLevel();
    return negated(std::move(child));
  }

  Node parsePrimary(const FieldSpec* group) {
    const Token token = peek();
    switch (token.kind) {
      case TokenKind::kOpen:
        return parseParenthesized(group, token.start);
      case TokenKind::kClose:
        fail(token.start, 1, "unmatched \")\"", "remove it or add \"(\" before it");
      case TokenKind::kAnd:
      case TokenKind::kOr:
        fail(token.start, token.length, operatorName(token) + " needs a term before it");
      case TokenKind::kEnd:
        fail(token.start, 0, "expected a term");
      default:
        return parseTerm(group);
    }
  }

  /// `( or )`, at_ on the "(".
  Node parseParenthesized(const FieldSpec* group, size_t open) {
    at_ = open + 1;
    enterLevel(open, 1);
    if (peek().kind == TokenKind::kClose) fail(open, at_ + 1 - open, "empty parentheses");
    Node inner = parseOr(group);
    if (peek().kind != TokenKind::kClose) {
      fail(open, 1, "unclosed \"(\"", "add \")\" where the group ends");
    }
    ++at_;
    leaveLevel();
    return inner;
  }

  // --- Terms.

  Node parseTerm(const FieldSpec* group) {
    const size_t start = at_;

    // `field:` starts with a letter and holds token characters up to the colon.
    size_t nameEnd = start;
    if (group == nullptr && isLetter(charAt(start))) {
      while (!atEnd(nameEnd) && isTokenChar(text_[nameEnd])) ++nameEnd;
    }
    if (nameEnd > start && charAt(nameEnd) == ':') {
      const FieldSpec spec = fieldSpec(text_.substr(start, nameEnd - start), start);
      at_ = nameEnd + 1;
      if (charAt(at_) == '(') return parseFieldGroup(spec, start);
      return parseValueTerm(spec, start);
    }

    refuseLoneWords(start);
    return parseValueTerm(group != nullptr ? *group : FieldSpec{}, start);
  }

  /// Words that look like a slip rather than a search: operators in lower case and a `-` on
  /// its own.
  void refuseLoneWords(size_t start) const {
    const std::string_view run = runAt(start);
    for (const std::string_view word : {"AND", "OR", "NOT"}) {
      if (equalsFolded(run, foldAscii(word))) {
        fail(start, run.size(), quoted(run) + " is not an operator",
             "write " + std::string(word) + " in capitals, or quote it (\"" + std::string(run) +
                 "\") to search for the word");
      }
    }
    if (run == "-") {
      fail(start, 1, "\"-\" must stand right before the term it excludes",
           "write -term, or quote it (\"-\") to search for it");
    }
  }

  FieldSpec fieldSpec(std::string_view spelled, size_t start) const {
    FieldSpec spec;
    spec.spelled = std::string(spelled);
    const size_t dot = spelled.find('.');
    const std::string_view base = spelled.substr(0, dot);
    const auto field = fieldNamed(base);
    if (!field || (dot != std::string_view::npos && *field != Field::kHeader)) {
      failUnknownField(spelled, base, dot, start);
    }
    spec.field = *field;
    if (dot == std::string_view::npos) return spec;

    // header.NAME: the name may hold `*` wildcards like any whole-value pattern.
    const std::string_view name = spelled.substr(dot + 1);
    if (name.empty()) {
      fail(start, spelled.size() + 1, "missing header name after \"header.\"",
           "write header.x-github-event:push, or header:x-github-event for any value");
    }
    spec.field = Field::kHeaderValue;
    spec.headerName = TextPattern(splitWildcards(foldAscii(name)), PatternScope::kWhole);
    return spec;
  }

  [[noreturn]] void failUnknownField(std::string_view spelled, std::string_view base, size_t dot,
                                     size_t start) const {
    const std::string problem = "unknown field " + quoted(spelled);
    const size_t length = spelled.size();
    if (fieldNamed(base)) {
      fail(start, length, problem,
           "only header has named parts (header.NAME); write " + foldAscii(base) + ":VALUE");
    }
    const std::string_view close = closestName(base, fieldNames());
    if (!close.empty()) {
      const std::string rest =
          dot == std::string_view::npos ? "" : std::string(spelled.substr(dot));
      fail(start, length, problem, "did you mean \"" + std::string(close) + rest + "\"?");
    }
    fail(start, length, problem,
         "fields are " + listOf(fieldNames()) + "; quote text with \":\" to search for it");
  }

  static std::vector<std::string> splitWildcards(const std::string& text) {
    std::vector<std::string> parts(1);
    for (char c : text) {
      if (c == '*') {
        parts.emplace_back();
        continue;
      }
      parts.back().push_back(c);
    }
    return parts;
  }

  /// `field:( ... )`: every bare value inside is a value of that field.
  Node parseFieldGroup(const FieldSpec& spec, size_t start) {
    const size_t open = at_;
    at_ = open + 1;
    enterLevel(open, 1);
    if (peek().kind == TokenKind::kClose) {
      fail(start, at_ + 1 - start, "empty field group", "write " + spec.spelled + ":(a OR b)");
    }
    Node inner = parseOr(&spec);
    if (peek().kind != TokenKind::kClose) {
      fail(open, 1, "unclosed \"(\" of " + quoted(spec.spelled + ":"),
           "add \")\" where its values end");
    }
    ++at_;
    leaveLevel();
    return inner;
  }

  Node parseValueTerm(const FieldSpec& spec, size_t termStart) {
    countTerm(termStart, std::max<size_t>(runAt(termStart).size(), 1));
    const char c = charAt(at_);
    const bool hasField = spec.field != Field::kText;
    if (atEnd(at_) || isSpace(c) || c == ')') {
      fail(termStart, at_ - termStart, "missing value after " + quoted(spec.spelled + ":"),
           isSpace(c) ? "remove the space after the colon" : "");
    }

    const bool rangeOrComparison = c == '[' || c == '{' || c == '>' || c == '<';
    if (rangeOrComparison && hasField && !takesRanges(spec.field)) {
      fail(at_, 1, std::string(fieldName(spec.field)) + " takes no range or comparison",
           "quote the value to search for text starting with \"" + std::string(1, c) + "\"");
    }
    if (c == '[' || c == '{') {
      if (!hasField) {
        fail(at_, 1, "a range needs a field",
             "write status:[500 TO 599]; quote text to search for it");
      }
      return termNode(rangeTerm(spec));
    }
    if (c == '>' || c == '<') {
      if (!hasField) {
        fail(at_, 1, "a comparison needs a field",
             "write status:>=500; quote text to search for it");
      }
      return termNode(comparisonTerm(spec));
    }

    const Value value = c == '"' ? readQuoted(false) : readWord(false);
    if (!hasField && !value.quoted && value.isLoneStar()) return Node{};
    if (!hasField && value.quoted && value.text().empty()) return Node{};
    return termNode(valueTerm(spec, value));
  }

  static bool takesRanges(Field field) {
    return field == Field::kTime || field == Field::kStatus || field == Field::kId ||
           field == Field::kSize;
  }

  // --- Values.

  static bool endsWord(char c, bool inRange) {
    return isSpace(c) || c == '(' || c == ')' || (inRange && (c == ']' || c == '}'));
  }

  /// A bare value: up to a space or a parenthesis (and `]`/`}` in a range). A backslash makes
  /// the next byte literal, `*` is a wildcard, a quote must be escaped.
  Value readWord(bool inRange) {
    Value value;
    value.start = at_;
    value.parts.emplace_back();
    while (!atEnd(at_) && !endsWord(text_[at_], inRange)) {
      const char c = text_[at_];
      if (c == '\\') {
        if (atEnd(at_ + 1)) fail(at_, 1, "nothing to escape after \"\\\"", "write \\\\");
        value.parts.back().push_back(text_[at_ + 1]);
        at_ += 2;
        continue;
      }
      if (c == '"') {
        fail(at_, 1, "quote inside a value",
             "quote the whole value (\"...\"), or write \\\" for the quote itself");
      }
      if (c == '*') {
        value.parts.emplace_back();
      } else {
        value.parts.back().push_back(c);
      }
      ++at_;
    }
    value.length = at_ - value.start;
    return value;
  }

  /// A quoted value: literal bytes, `\"` and `\\` the only escapes, no wildcards.
  Value readQuoted(bool inRange) {
    Value value;
    value.start = at_;
    value.quoted = true;
    value.parts.emplace_back();
    std::string& text = value.parts.back();
    for (size_t at = at_ + 1;; ++at) {
      if (atEnd(at)) {
        fail(value.start, text_.size() - value.start, "unterminated quote",
             "end the value with \"");
      }
      const char c = text_[at];
      if (c == '\\') {
        const char escaped = charAt(at + 1);
        if (escaped != '"' && escaped != '\\') {
          fail(at, atEnd(at + 1) ? 1 : 2, "unknown escape in quotes",
               "inside quotes only \\\" and \\\\ are escapes; write \\\\ for a backslash");
        }
        text.push_back(escaped);
        ++at;
        continue;
      }
      if (c == '"') {
        at_ = at + 1;
        break;
      }
      text.push_back(c);
    }
    value.length = at_ - value.start;
    if (!atEnd(at_) && !endsWord(text_[at_], inRange)) {
      fail(at_, 1, "missing space after the closing quote");
    }
    return value;
  }

  /// The value of a field given whole (`field:value`), as a term.
  Term valueTerm(const FieldSpec& spec, const Value& value) {
    Term term;
    term.field = spec.field;
    switch (spec.field) {
      case Field::kMethod:
      case Field::kHeader:
        requireTokenChars(spec, value);
        term.pattern = textPattern(value, PatternScope::kWhole);
        return term;
      case Field::kPath:
      case Field::kType:
        term.pattern = textPattern(value, PatternScope::kWhole);
        return term;
      case Field::kHeaderValue:
        term.pattern = spec.headerName;
        term.value = textPattern(value, PatternScope::kWhole);
        return term;
      case Field::kQuery:
      case Field::kBody:
      case Field::kText:
        term.pattern = textPattern(value, PatternScope::kContains);
        return term;
      case Field::kVerdict:
        term.verdict = *namedValue(spec, value, verdictNamed, verdictNames());
        return term;
      case Field::kReason:
        term.reason = *namedValue(spec, value, reasonNamed, reasonNames());
        return term;
      case Field::kReplay:
        return replayTerm(spec, value);
      case Field::kStatus:
        if (value.isLoneStar()) {
          term.status = StatusCheck::kAny;
          return term;
        }
        if (!value.hasWildcard() && equalsFolded(value.text(), "none")) {
          term.status = StatusCheck::kNone;
          return term;
        }
        if (!value.hasWildcard() && equalsFolded(value.text(), "failed")) {
          term.status = StatusCheck::kFailed;
          return term;
        }
        break;
      case Field::kTime:
      case Field::kId:
      case Field::kSize:
        break;
    }

    // The numeric fields: a value stands for the span it names (a day, a status class).
    const Span span = spanOf(spec, value);
    if (span.relative) {
      const std::string typed(text_.substr(value.start, value.length));
      fail(value.start, value.length, typed + " is a single instant",
           "use a range such as time:[" + typed + " TO now] or time:>=" + typed);
    }
    term.bounds = {span.first, span.last};
    return term;
  }

  static TextPattern textPattern(const Value& value, PatternScope scope) {
    std::vector<std::string> parts;
    parts.reserve(value.parts.size());
    for (const auto& part : value.parts) parts.push_back(foldAscii(part));
    return TextPattern(std::move(parts), scope);
  }

  void requireTokenChars(const FieldSpec& spec, const Value& value) const {
    for (const auto& part : value.parts) {
      for (char c : part) {
        if (isTokenChar(c)) continue;
        const bool header = spec.field == Field::kHeader;
        std::string hint = header ? "header names hold letters, digits and !#$%&'*+-.^_`|~"
                                  : "methods hold letters, digits and !#$%&'*+-.^_`|~";
        if (header && (c == ':' || isSpace(c))) {
          hint = "to match a header's value, write header.NAME:VALUE";
        }
        const std::string_view typed =
            value.quoted ? std::string_view(value.text()) : text_.substr(value.start, value.length);
        fail(value.start, value.length,
             quoted(typed) + " is not a " + (header ? "header name" : "method"), hint);
      }
    }
  }

  /// The value of a field with named values (verdict, reason), looked up with `lookup`.
  template <typename Lookup>
  std::invoke_result_t<Lookup, std::string_view> namedValue(
      const FieldSpec& spec, const Value& value, Lookup lookup,
      const std::vector<std::string_view>& names) const {
    if (value.hasWildcard()) {
      fail(value.start, value.length,
           "wildcards do not apply to " + std::string(fieldName(spec.field)),
           "use one of " + listOf(names) + ", or several in " + std::string(fieldName(spec.field)) +
               ":(a OR b)");
    }
    auto found = lookup(value.text());
    if (found) return found;
    const std::string problem =
        "unknown " + std::string(fieldName(spec.field)) + " " + quoted(value.text());
    const std::string_view close = closestName(value.text(), names);
    if (!close.empty()) {
      fail(value.start, value.length, problem, "did you mean \"" + std::string(close) + "\"?");
    }
    fail(value.start, value.length, problem, "use " + listOf(names));
  }

  Term replayTerm(const FieldSpec& spec, const Value& value) const {
    Term term;
    term.field = spec.field;
    if (!value.hasWildcard() && equalsFolded(value.text(), "true")) {
      term.replay = ReplayCheck::kIsReplay;
      return term;
    }
    if (!value.hasWildcard() && equalsFolded(value.text(), "false")) {
      term.replay = ReplayCheck::kIsOriginal;
      return term;
    }
    const auto id = wholeNumber(value.text());
    if (value.hasWildcard() || !id || *id == 0) {
      fail(value.start, value.length, "replay takes true, false or an event id",
           "replay:true finds replays, replay:42 the replays of event 42");
    }
    term.replay = ReplayCheck::kReplayOf;
    term.replayOf = *id;
    return term;
  }

  /// Digits only, at most what int64 holds.
  static std::optional<int64_t> wholeNumber(std::string_view text) {
    if (text.empty()) return std::nullopt;
    int64_t number = 0;
    for (char c : text) {
      if (!isDigit(c) || __builtin_mul_overflow(number, 10, &number) ||
          __builtin_add_overflow(number, c - '0', &number)) {
        return std::nullopt;
      }
    }
    return number;
  }

  struct Span {
    int64_t first = 0;
    int64_t last = 0;
    bool relative = false;
  };

  /// What one value of a numeric field covers: a number itself, a status class (5xx) all its
  /// statuses, a date its whole day.
  Span spanOf(const FieldSpec& spec, const Value& value) const {
    const std::string field(fieldName(spec.field));
    if (value.hasWildcard()) {
      fail(value.start, value.length, "wildcards do not apply to " + field,
           "use a range such as " + field + ":[1 TO *]");
    }
    const std::string& text = value.text();
    switch (spec.field) {
      case Field::kTime: {
        const TimeSpan span = parseTime(text, value.textStart(), nowMs_);
        return {span.firstMs, span.lastMs, span.relative};
      }
      case Field::kId: {
        const auto id = wholeNumber(text);
        if (!id) fail(value.start, value.length, "an event id is a whole number");
        return {*id, *id};
      }
      case Field::kSize:
        return sizeSpan(value);
      case Field::kStatus:
        return statusSpan(value);
      default:
        fail(value.start, value.length, field + " cannot be compared or given a range",
             "ranges and comparisons apply to time, status, id and size");
    }
  }

  Span sizeSpan(const Value& value) const {
    // Bytes, or KiB and MiB (1024 and 1024 * 1024 bytes) for readability.
    const std::string& text = value.text();
    size_t digits = 0;
    while (digits < text.size() && isDigit(text[digits])) ++digits;
    const std::string_view unit = std::string_view(text).substr(digits);
    int64_t scale = 1;
    if (equalsFolded(unit, "kib")) {
      scale = 1024;
    } else if (equalsFolded(unit, "mib")) {
      scale = 1024 * 1024;
    } else if (!unit.empty()) {
      fail(value.start, value.length, "a size is a number of bytes",
           "write size:>=1024, size:>=1KiB or size:>=1MiB");
    }
    const auto number = wholeNumber(std::string_view(text).substr(0, digits));
    int64_t bytes = 0;
    if (!number || __builtin_mul_overflow(*number, scale, &bytes)) {
      fail(value.start, value.length, "a size is a number of bytes",
           "write size:>=1024, size:>=1KiB or size:>=1MiB");
    }
    return {bytes, bytes};
  }

  Span statusSpan(const Value& value) const {
    const std::string& text = value.text();
    constexpr const char* kHint =
        "use none for events never delivered and failed for deliveries without a response";
    if (equalsFolded(text, "none") || equalsFolded(text, "failed")) {
      fail(value.start, value.length, quoted(text) + " is not a status code",
           "status:none and status:failed stand alone, not in ranges or comparisons");
    }

    // A class such as 5xx: every status from 500 to 599.
    if (text.size() == 3 && text[0] >= '1' && text[0] <= '5' &&
        equalsFolded(text.substr(1), "xx")) {
      const int64_t low = (text[0] - '0') * 100;
      return {low, low + 99};
    }
    const auto status = wholeNumber(text);
    if (!status) fail(value.start, value.length, quoted(text) + " is not a status code", kHint);
    if (*status < 100 || *status > 599) {
      fail(value.start, value.length, "status " + text + " is outside 100..599", kHint);
    }
    return {*status, *status};
  }

  /// `[a TO b]`, `{a TO b}` or mixed, at_ on the opening bracket.
  Term rangeTerm(const FieldSpec& spec) {
    const size_t open = at_;
    const bool lowInclusive = text_[open] == '[';
    ++at_;
    skipSpaces();
    const auto unterminated = [&] {
      fail(open, text_.size() - open, "unterminated range", "end it with ] or }");
    };

    // The lower end, then TO, then the upper end; `*` leaves an end open.
    if (atEnd(at_)) unterminated();
    if (rangeRunAt(at_) == "TO" || text_[at_] == ']' || text_[at_] == '}') {
      fail(at_, std::max<size_t>(rangeRunAt(at_).size(), 1), "range has no lower end",
           "write * for an open end, as in [* TO 599]");
    }
    const std::optional<Value> low = readRangeEnd();
    skipSpaces();
    if (atEnd(at_)) unterminated();
    const std::string_view to = rangeRunAt(at_);
    if (to != "TO") {
      fail(at_, std::max<size_t>(to.size(), 1), "expected TO in the range",
           equalsFolded(to, "to") ? "write TO in capitals" : "write [low TO high]");
    }
    at_ += to.size();
    skipSpaces();
    if (atEnd(at_)) unterminated();
    if (text_[at_] == ']' || text_[at_] == '}') {
      fail(at_, 1, "range has no upper end", "write * for an open end, as in [500 TO *]");
    }
    const std::optional<Value> high = readRangeEnd();
    skipSpaces();
    if (atEnd(at_)) unterminated();
    if (text_[at_] != ']' && text_[at_] != '}') {
      fail(at_, std::max<size_t>(rangeRunAt(at_).size(), 1), "expected ] or } to end the range");
    }
    const bool highInclusive = text_[at_] == ']';
    ++at_;
    if (!atEnd(at_) && !endsWord(text_[at_], false)) {
      fail(at_, 1, "missing space after the range");
    }

    // Exclusive ends step past the whole span of their value: {2026-12-01 TO ...} starts on
    // 2026-12-02, and [... TO 2026-12-04] runs to the end of that day.
    Bounds bounds;
    std::optional<Span> lowSpan;
    std::optional<Span> highSpan;
    const size_t length = at_ - open;
    if (low) {
      lowSpan = spanOf(spec, *low);
      bounds.low = lowInclusive ? lowSpan->first : after(*lowSpan, open, length);
    }
    if (high) {
      highSpan = spanOf(spec, *high);
      bounds.high = highInclusive ? highSpan->last : before(*highSpan, open, length);
    }
    if (lowSpan && highSpan && lowSpan->first > highSpan->last) {
      fail(open, length, "range starts after it ends", "write the lower end first");
    }
    if (bounds.low > bounds.high) fail(open, length, "range holds no value");
    return boundsTerm(spec, bounds, open, length);
  }

  /// The bytes of a range's word at `at`: up to a space, a bracket or a parenthesis.
  std::string_view rangeRunAt(size_t at) const {
    size_t end = at;
    while (!atEnd(end) && !endsWord(text_[end], true)) ++end;
    return text_.substr(at, end - at);
  }

  /// One end of a range; nothing for `*`.
  std::optional<Value> readRangeEnd() {
    Value value = charAt(at_) == '"' ? readQuoted(true) : readWord(true);
    if (!value.quoted && value.isLoneStar()) return std::nullopt;
    return value;
  }

  /// `>x`, `>=x`, `<x`, `<=x`, at_ on the first sign.
  Term comparisonTerm(const FieldSpec& spec) {
    const size_t start = at_;
    const char sign = text_[at_++];
    const bool orEqual = charAt(at_) == '=';
    if (orEqual) ++at_;
    if (atEnd(at_) || endsWord(text_[at_], false)) {
      fail(start, at_ - start, "missing value after " + quoted(text_.substr(start, at_ - start)),
           "write " + std::string(fieldName(spec.field)) + ":>=500 with no space");
    }
    const Value value = charAt(at_) == '"' ? readQuoted(false) : readWord(false);
    const Span span = spanOf(spec, value);

    Bounds bounds;
    if (sign == '>') {
      bounds.low = orEqual ? span.first : after(span, start, at_ - start);
    } else {
      bounds.high = orEqual ? span.last : before(span, start, at_ - start);
    }
    return boundsTerm(spec, bounds, start, at_ - start);
  }

  /// The first number past a span, for an exclusive lower end; nothing is past int64's top.
  int64_t after(const Span& span, size_t at, size_t length) const {
    if (span.last == kOpenHigh) fail(at, length, "range holds no value");
    return span.last + 1;
  }

  int64_t before(const Span& span, size_t at, size_t length) const {
    if (span.first == kOpenLow) fail(at, length, "range holds no value");
    return span.first - 1;
  }

  Term boundsTerm(const FieldSpec& spec, Bounds bounds, size_t at, size_t length) const {
    // Times outside the years 0000..9999 cannot be printed back; no event has them anyway.
    if (spec.field == Field::kTime && ((bounds.low != kOpenLow && bounds.low > kMaxTimeMs) ||
                                       (bounds.high != kOpenHigh && bounds.high < kMinTimeMs))) {
      fail(at, length, "no time is within this range", "times run from 0000 to 9999");
    }
    if (spec.field == Field::kTime) {
      if (bounds.low != kOpenLow && bounds.low < kMinTimeMs) bounds.low = kOpenLow;
      if (bounds.high != kOpenHigh && bounds.high > kMaxTimeMs) bounds.high = kOpenHigh;
    }
    Term term;
    term.field = spec.field;
    term.bounds = bounds;
    return term;
  }

  std::string_view text_;
  int64_t nowMs_;
  size_t at_ = 0;
  size_t depth_ = 0;
  size_t terms_ = 0;
};

}  // namespace

Node parseQueryTree(std::string_view text, int64_t nowMs) { return Parser(text, nowMs).parse(); }

}  // namespace anm::search
