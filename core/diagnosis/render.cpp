// core/diagnosis/render.cpp: HTML and JSON forms of pages, the index and findings.
// SPDX-License-Identifier: Apache-2.0
#include <openssl/evp.h>

#include <string>

#include "core/diagnosis/pages.h"
#include "core/diagnosis/safe_text.h"

namespace anm::diagnosis {
namespace {

constexpr std::string_view kPagesRoot = "/diagnosis/";

// The one style element of every document. Its hash goes into the Content-Security-Policy, so
// any change here changes the policy with it; nothing else may be inline.
constexpr std::string_view kStyle =
    ":root{color-scheme:light dark;--bg:#fff;--fg:#1b1b1b;--muted:#4d4d4d;--link:#0645ad;"
    "--code:#f0f0f0;--line:#d0d0d0}"
    "@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#e8e8e8;--muted:#b5b5b5;"
    "--link:#8ab4f8;--code:#262626;--line:#3a3a3a}}"
    "body{margin:0;background:var(--bg);color:var(--fg);"
    "font:1rem/1.55 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}"
    "nav,main{max-width:46rem;margin:0 auto;padding:1rem 1.25rem}"
    "a{color:var(--link)}a:focus-visible{outline:3px solid var(--link);outline-offset:2px}"
    "code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.95em;"
    "background:var(--code);padding:0 .2em;border-radius:3px;overflow-wrap:anywhere}"
    "h1{font-size:1.6rem;line-height:1.25}"
    "h2{font-size:1.15rem;margin-top:1.75rem;padding-bottom:.2rem;border-bottom:1px solid "
    "var(--line)}"
    ".meta{color:var(--muted)}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid "
    "var(--line)}"
    "dt{font-weight:600}dd{margin:0 0 .5rem 1rem;overflow-wrap:anywhere}";

/// Appends text whose `code spans` become <code> elements; everything is escaped, and a
/// backtick without its partner is shown as it is.
void appendMarkedUp(std::string& out, std::string_view text) {
  while (!text.empty()) {
    const size_t open = text.find('`');
    const size_t close = open == std::string_view::npos ? open : text.find('`', open + 1);
    if (close == std::string_view::npos) {
      appendHtmlText(out, text);
      return;
    }
    appendHtmlText(out, text.substr(0, open));
    out.append("<code>");
    appendHtmlText(out, text.substr(open + 1, close - open - 1));
    out.append("</code>");
    text.remove_prefix(close + 1);
  }
}

/// Appends `before`, the escaped `text`, then `after`: one element around untrusted text.
void appendTagged(std::string& out, std::string_view before, std::string_view text,
                  std::string_view after) {
  out.append(before);
  appendHtmlText(out, text);
  out.append(after);
}

void openDocument(std::string& out, std::string_view title) {
  out.append(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"color-scheme\" content=\"light dark\">\n"
      "<meta name=\"referrer\" content=\"no-referrer\">\n<title>");
  appendHtmlText(out, title);
  out.append(" - Anonymily diagnosis</title>\n<style>");
  out.append(kStyle);
  out.append("</style>\n</head>\n<body>\n");
}

void closeDocument(std::string& out) { out.append("</main>\n</body>\n</html>\n"); }

void appendIndexLink(std::string& out) {
  out.append("<nav aria-label=\"Diagnosis\"><a href=\"");
  out.append(kPagesRoot);
  out.append("\">All diagnosis codes</a></nav>\n<main>\n");
}

void appendPageLink(std::string& out, std::string_view code) {
  out.append("<a href=\"");
  appendHtmlText(out, pagePath(code));
  out.append("\"><code>");
  appendHtmlText(out, code);
  out.append("</code></a>");
}

/// A titled section with a list of marked-up items; `id` names the heading for the section's
/// accessible name.
void appendListSection(std::string& out, std::string_view id, std::string_view heading,
                       std::string_view listTag, const std::vector<std::string_view>& items) {
  if (items.empty()) return;
  out.append("<section aria-labelledby=\"").append(id).append("\">\n<h2 id=\"");
  out.append(id).append("\">");
  appendHtmlText(out, heading);
  out.append("</h2>\n<").append(listTag).append(">\n");
  for (const auto item : items) {
    out.append("<li>");
    appendMarkedUp(out, item);
    out.append("</li>\n");
  }
  out.append("</").append(listTag).append(">\n</section>\n");
}

void appendJsonKey(std::string& out, std::string_view key, bool first = false) {
  if (!first) out.push_back(',');
  appendJsonString(out, key);
  out.push_back(':');
}

void appendStringField(std::string& out, std::string_view key, std::string_view value,
                       bool first = false) {
  appendJsonKey(out, key, first);
  appendJsonString(out, value);
}

/// The members every JSON form of a code starts with: "code", "severity", "title".
void appendCodeMembers(std::string& out, std::string_view code, Severity severity,
                       std::string_view title) {
  appendStringField(out, "code", code, true);
  appendStringField(out, "severity", severityName(severity));
  appendStringField(out, "title", title);
}

void appendJsonStrings(std::string& out, const std::vector<std::string_view>& items) {
  out.push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    appendJsonString(out, items[i]);
  }
  out.push_back(']');
}

/// True for "0" and for an optional '-' followed by digits without a leading zero.
bool isJsonInteger(std::string_view text) {
  if (!text.empty() && text.front() == '-') text.remove_prefix(1);
  if (text.empty() || (text.front() == '0' && text.size() > 1)) return false;
  return text.find_first_not_of("0123456789") == std::string_view::npos;
}

std::string sha256Base64(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    return {};
  }
  std::string out(4 * ((length + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), digest,
                                      static_cast<int>(length));
  out.resize(written < 0 ? 0 : static_cast<size_t>(written));
  return out;
}

}  // namespace

std::string pagePath(std::string_view code) {
  std::string path(kPagesRoot);
  path.append(code);
  return path;
}

std::string renderPageHtml(const Page& page) {
  std::string out;
  openDocument(out, page.title);
  appendIndexLink(out);
  appendTagged(out, "<h1>", page.title, "</h1>\n");
  appendTagged(out, "<p class=\"meta\">Code <code>", page.code, "</code>, severity ");
  appendTagged(out, "", severityName(page.severity), "</p>\n");
  out.append("<section aria-labelledby=\"meaning\">\n<h2 id=\"meaning\">What it means</h2>\n<p>");
  appendMarkedUp(out, page.meaning);
  out.append("</p>\n</section>\n");
  appendListSection(out, "causes", "Common causes", "ul", page.causes);
  appendListSection(out, "fixes", "How to fix it", "ol", page.fixes);
  appendListSection(out, "checks", "How to confirm", "ul", page.checks);
  closeDocument(out);
  return out;
}

std::string renderPageJson(const Page& page) {
  std::string out = "{";
  appendCodeMembers(out, page.code, page.severity, page.title);
  appendStringField(out, "meaning", page.meaning);
  appendJsonKey(out, "causes");
  appendJsonStrings(out, page.causes);
  appendJsonKey(out, "fixes");
  appendJsonStrings(out, page.fixes);
  appendJsonKey(out, "checks");
  appendJsonStrings(out, page.checks);
  appendStringField(out, "page", pagePath(page.code));
  out.push_back('}');
  return out;
}

std::string renderIndexHtml(const std::vector<Page>& pages) {
  std::string out;
  openDocument(out, "Diagnosis codes");
  out.append(
      "<main>\n<h1>Diagnosis codes</h1>\n<p>Each finding of the edge's diagnosis carries "
      "one of these codes. A code never changes its meaning.</p>\n"
      "<table>\n<caption class=\"meta\">Codes, their severity and what they "
      "mean</caption>\n<thead><tr><th scope=\"col\">Code</th><th scope=\"col\">Severity"
      "</th><th scope=\"col\">Title</th></tr></thead>\n<tbody>\n");
  for (const auto& page : pages) {
    out.append("<tr><td>");
    appendPageLink(out, page.code);
    appendTagged(out, "</td><td>", severityName(page.severity), "</td>");
    appendTagged(out, "<td>", page.title, "</td></tr>\n");
  }
  out.append("</tbody>\n</table>\n");
  closeDocument(out);
  return out;
}

std::string renderIndexJson(const std::vector<Page>& pages) {
  std::string out = "{\"codes\":[";
  for (size_t i = 0; i < pages.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('{');
    appendCodeMembers(out, pages[i].code, pages[i].severity, pages[i].title);
    appendStringField(out, "page", pagePath(pages[i].code));
    out.push_back('}');
  }
  out.append("]}");
  return out;
}

std::string renderFindingsHtml(int64_t eventId, const std::vector<Finding>& findings) {
  const std::string title = "Diagnosis of event " + std::to_string(eventId);
  std::string out;
  openDocument(out, title);
  appendIndexLink(out);
  appendTagged(out, "<h1>", title, "</h1>\n");
  if (findings.empty()) {
    out.append("<p>Nothing went wrong with this event that the rules can see.</p>\n");
  }
  for (size_t i = 0; i < findings.size(); ++i) {
    const Finding& finding = findings[i];
    const std::string id = "finding-" + std::to_string(i + 1);
    out.append("<section aria-labelledby=\"").append(id).append("\">\n<h2 id=\"");
    out.append(id);
    appendTagged(out, "\">", finding.title, "</h2>\n<p class=\"meta\">");
    appendPageLink(out, finding.code);
    appendTagged(out, ", severity ", severityName(finding.severity), "</p>\n");
    appendTagged(out, "<p>", finding.detail, "</p>\n");
    appendTagged(out, "<p><strong>Fix:</strong> ", finding.fix, "</p>\n");
    if (!finding.evidence.empty()) {
      out.append("<dl>\n");
      for (const auto& fact : finding.evidence) {
        appendTagged(out, "<dt>", fact.name, "</dt>");
        appendTagged(out, "<dd><code>", fact.value, "</code></dd>\n");
      }
      out.append("</dl>\n");
    }
    out.append("</section>\n");
  }
  closeDocument(out);
  return out;
}

std::string findingsJson(const std::vector<Finding>& findings) {
  std::string out = "[";
  for (size_t i = 0; i < findings.size(); ++i) {
    const Finding& finding = findings[i];
    if (i > 0) out.push_back(',');
    out.push_back('{');
    appendCodeMembers(out, finding.code, finding.severity, finding.title);
    appendStringField(out, "detail", finding.detail);
    appendStringField(out, "fix", finding.fix);
    appendJsonKey(out, "evidence");
    out.push_back('{');
    for (size_t k = 0; k < finding.evidence.size(); ++k) {
      const Evidence& fact = finding.evidence[k];
      appendJsonKey(out, fact.name, k == 0);

      // A value marked as a number is written bare only if it really is one, so that a wrong
      // mark can never break the JSON.
      if (fact.number && isJsonInteger(fact.value)) {
        out.append(fact.value);
      } else {
        appendJsonString(out, fact.value);
      }
    }
    out.push_back('}');
    appendJsonKey(out, "status");
    out.append(std::to_string(finding.status));
    appendJsonKey(out, "at_ms");
    out.append(std::to_string(finding.atMs));
    appendStringField(out, "relay", finding.relayId);
    appendStringField(out, "page", pagePath(finding.code));
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

const std::string& pageContentSecurityPolicy() {
  static const std::string policy = "default-src 'none'; style-src 'sha256-" +
                                    sha256Base64(kStyle) +
                                    "'; base-uri 'none'; form-action 'none'; frame-ancestors "
                                    "'none'";
  return policy;
}

}  // namespace anm::diagnosis
