// cli/src/replay_edit.cpp: edit options, the editable text of an event and the replay's JSON.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/replay_edit.h"

#include "cli/src/event_output.h"
#include "cli/src/stream_event.h"

namespace anm::cli {

namespace {

bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string trimBlanks(const std::string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && isBlank(text[begin])) ++begin;
  while (end > begin && isBlank(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

bool isVisibleAscii(const std::string& text) {
  for (unsigned char c : text) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

bool sameHeaders(const std::vector<HeaderField>& a, const std::vector<HeaderField>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].value != b[i].value) return false;
  }
  return true;
}

// One header entry as the event form writes it: text when it is UTF-8, else base64 with a
// marker saying which part is encoded.
std::string headerJson(const HeaderField& field) {
  if (isValidUtf8(field.name) && isValidUtf8(field.value)) {
    return "[" + jsonQuote(field.name) + "," + jsonQuote(field.value) + "]";
  }
  if (isValidUtf8(field.name)) {
    return "[" + jsonQuote(field.name) + ",\"" + encodeBase64(field.value) + "\",\"b64\"]";
  }
  return "[\"" + encodeBase64(field.name) + "\",\"" + encodeBase64(field.value) + "\",\"b64name\"]";
}

}  // namespace

bool parseHeaderOption(const std::string& text, HeaderField& field, std::string& error) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos || colon == 0) {
    error = "--header must be 'Name: value', got '" + printableText(text) + "'";
    return false;
  }
  field.name = text.substr(0, colon);
  if (!isToken(field.name)) {
    error = "--header name '" + printableText(field.name) + "' is not an RFC 9110 token";
    return false;
  }
  field.value = trimBlanks(text.substr(colon + 1));
  return true;
}

std::string editableText(const ForwardRequest& request) {
  std::string target = request.pathSuffix;
  if (!request.rawQuery.empty()) target += "?" + request.rawQuery;
  std::string text = request.method;
  if (!target.empty()) text += " " + target;
  text += "\n";
  for (const HeaderField& field : request.headers) text += field.name + ": " + field.value + "\n";
  text += "\n";
  text += request.body;
  text += "\n";
  return text;
}

bool parseEditedText(const std::string& text, ForwardRequest& request, std::string& error) {
  ForwardRequest parsed;
  size_t at = 0;
  size_t number = 0;
  bool bodyFollows = false;
  while (at < text.size()) {
    // One line of the head, without its LF or CRLF.
    size_t end = text.find('\n', at);
    const bool last = end == std::string::npos;
    if (last) end = text.size();
    std::string line = text.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    at = last ? text.size() : end + 1;
    ++number;
    const std::string where = "line " + std::to_string(number) + ": ";

    if (number == 1) {
      // METHOD [TARGET]
      const size_t space = line.find(' ');
      parsed.method = line.substr(0, space);
      const std::string target = space == std::string::npos ? "" : line.substr(space + 1);
      if (!isToken(parsed.method)) {
        error = where + "the request line must be METHOD [TARGET] with a method such as POST";
        return false;
      }
      if (!target.empty() && (!isVisibleAscii(target) || (target[0] != '/' && target[0] != '?'))) {
        error = where +
                "the target must start with '/' or '?' and hold visible ASCII only (no spaces; "
                "percent-encode other bytes)";
        return false;
      }
      const size_t question = target.find('?');
      parsed.pathSuffix = target.substr(0, question);
      parsed.rawQuery = question == std::string::npos ? "" : target.substr(question + 1);
      continue;
    }

    if (line.empty()) {
      bodyFollows = true;
      break;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0 || !isToken(line.substr(0, colon))) {
      error = where + "a header line must be 'Name: value' with a name such as Content-Type";
      return false;
    }
    parsed.headers.push_back(
        HeaderField{line.substr(0, colon), trimBlanks(line.substr(colon + 1))});
  }
  if (number == 0) {
    error = "line 1: the file is empty; the request line is METHOD [TARGET]";
    return false;
  }

  // The body as saved, less the line feed that ends the file.
  if (bodyFollows) {
    parsed.body = text.substr(at);
    if (!parsed.body.empty() && parsed.body.back() == '\n') parsed.body.pop_back();
  }
  request = std::move(parsed);
  return true;
}

ReplayEdit differences(const ForwardRequest& original, const ForwardRequest& edited) {
  ReplayEdit edit;
  if (edited.method != original.method) edit.method = edited.method;
  if (edited.pathSuffix != original.pathSuffix) edit.path = edited.pathSuffix;
  if (edited.rawQuery != original.rawQuery) edit.query = edited.rawQuery;
  if (!sameHeaders(edited.headers, original.headers)) edit.headers = edited.headers;
  if (edited.body != original.body) edit.body = edited.body;
  return edit;
}

std::string replayEditJson(const ReplayEdit& edit) {
  std::string json;
  const auto member = [&json](const char* name, const std::string& value) {
    json += json.empty() ? "{" : ",";
    json += "\"" + std::string(name) + "\":" + value;
  };
  if (edit.method) member("method", jsonQuote(*edit.method));
  if (edit.path) member("path", jsonQuote(*edit.path));
  if (edit.query) member("query", jsonQuote(*edit.query));
  if (edit.headers) {
    std::string headers = "[";
    for (size_t i = 0; i < edit.headers->size(); ++i) {
      if (i > 0) headers += ",";
      headers += headerJson((*edit.headers)[i]);
    }
    member("headers", headers + "]");
  }
  if (edit.body) member("body_base64", "\"" + encodeBase64(*edit.body) + "\"");
  return json.empty() ? "{}" : json + "}";
}

}  // namespace anm::cli
