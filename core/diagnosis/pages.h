// core/diagnosis/pages.h: the page of every diagnosis code, as data and as HTML and JSON.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/diagnosis/diagnosis.h"

namespace anm::diagnosis {

// Each code has one page, written once here as data and rendered for people (a small standalone
// HTML document) and for API clients (JSON). The edge serves them without a sign-in, since they
// hold nothing of any hook:
//   GET /diagnosis/            the index (renderIndexHtml), /diagnosis/index.json its JSON
//   GET /diagnosis/<code>      a page (renderPageHtml), /diagnosis/<code>.json its JSON
// Text fields may hold `code spans` between backticks, which the HTML shows as <code>; JSON keeps
// the backticks. Pages link to each other with absolute paths under /diagnosis/.

/// One code's page.
struct Page {
  std::string_view code;
  Severity severity = Severity::kError;
  std::string_view title;                ///< one line; also every finding's title
  std::string_view meaning;              ///< what the code means, one paragraph
  std::vector<std::string_view> causes;  ///< common causes, most likely first
  std::vector<std::string_view> fixes;   ///< how to fix it
  std::vector<std::string_view> checks;  ///< how to confirm the cause (or tell causes apart)
};

/// Every page, in the order of code:: in diagnosis.h (signature codes, then delivery codes).
const std::vector<Page>& catalog();

/// The page of `code`, or nullptr for a code that has none.
const Page* findPage(std::string_view code);

/// A complete HTML document for the page: no script, no external resource, one inline style
/// element allowed by pageContentSecurityPolicy(), light and dark colours by
/// prefers-color-scheme, every text escaped. The same page always renders to the same bytes.
std::string renderPageHtml(const Page& page);

/// The page as a JSON object {"code","severity","title","meaning","causes","fixes","checks",
/// "page"}.
std::string renderPageJson(const Page& page);

/// The index of `pages` as HTML (a table of codes linking to their pages) and as JSON
/// {"codes":[{"code","severity","title","page"},...]}.
std::string renderIndexHtml(const std::vector<Page>& pages);
std::string renderIndexJson(const std::vector<Page>& pages);

/// The findings of one event as an HTML document in the pages' style, each linking to its code's
/// page; every detail, fix and evidence value is escaped.
std::string renderFindingsHtml(int64_t eventId, const std::vector<Finding>& findings);

/// The Content-Security-Policy to send with every document above: nothing may load or run but
/// the one inline style element, allowed by its SHA-256 hash.
const std::string& pageContentSecurityPolicy();

}  // namespace anm::diagnosis
