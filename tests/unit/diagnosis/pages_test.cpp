// tests/unit/diagnosis/pages_test.cpp: every code has a page; pages render safely and stably.
// SPDX-License-Identifier: Apache-2.0
#include "core/diagnosis/pages.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/diagnosis/signing.h"

namespace anm::diagnosis {
namespace {

/// Every code diagnosis.h declares, spelled out so that a new constant without a page, or a
/// page without a constant, fails here.
const std::vector<std::string_view> kDeclaredCodes = {
    code::kSignatureUnchecked,
    code::kSignatureSecretMissing,
    code::kSignatureHeaderMissing,
    code::kSignatureWrongProvider,
    code::kSignatureHeaderMalformed,
    code::kSignatureTimestampMissing,
    code::kSignatureTimestampOutside,
    code::kSignatureAlgorithmRefused,
    code::kSignaturePreviousSecret,
    code::kSignatureBodyChanged,
    code::kSignatureMismatch,
    code::kSignaturePluginFailed,
    code::kSignatureRefused,
    code::kDeliveryNotRelayed,
    code::kDeliveryNothingListening,
    code::kDeliveryHostNotFound,
    code::kDeliveryTimeout,
    code::kDeliveryTlsFailure,
    code::kDeliveryConnectionClosed,
    code::kDeliveryBodyTooLarge,
    code::kDeliveryInvalidResponse,
    code::kDeliveryRedirect,
    code::kDeliveryLocalVerificationFailed,
    code::kDeliveryLocalTimestampOutside,
    code::kDeliveryEditedReplayRefused,
    code::kDeliveryClientError,
    code::kDeliveryServerError,
    code::kDeliveryRelayError,
    code::kDeliveryFailed,
};

Poco::Dynamic::Var parseJson(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text);
}

/// The content of the document's one style element.
std::string styleOf(const std::string& html) {
  const size_t open = html.find("<style>");
  const size_t close = html.find("</style>");
  if (open == std::string::npos || close == std::string::npos) return {};
  return html.substr(open + 7, close - open - 7);
}

size_t countOf(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++count;
  }
  return count;
}

const Page kInjected{"x.injected",
                     Severity::kWarning,
                     "<script>alert(1)</script> & \"title\"",
                     "Meaning with `<b>code</b>` and an odd ` backtick",
                     {"cause <img src=x onerror=alert(1)>"},
                     {"fix 'quoted'"},
                     {}};

TEST(PagesTest, EveryDeclaredCodeHasExactlyOnePageAndNoPageIsUndeclared) {
  std::set<std::string_view> declared(kDeclaredCodes.begin(), kDeclaredCodes.end());
  ASSERT_EQ(declared.size(), kDeclaredCodes.size()) << "a code is declared twice";

  std::set<std::string_view> paged;
  for (const auto& page : catalog()) {
    EXPECT_TRUE(paged.insert(page.code).second) << "two pages for " << page.code;
    EXPECT_TRUE(declared.count(page.code)) << "page without a declared code: " << page.code;
  }
  for (const auto code : kDeclaredCodes) {
    const Page* page = findPage(code);
    ASSERT_NE(page, nullptr) << "no page for " << code;
    EXPECT_EQ(page->code, code);
  }
  EXPECT_EQ(findPage("signature.nonsense"), nullptr);
}

TEST(PagesTest, EveryPageIsComplete) {
  const std::regex codeForm("(signature|delivery)\\.[a-z_]+");
  for (const auto& page : catalog()) {
    SCOPED_TRACE(std::string(page.code));
    EXPECT_TRUE(std::regex_match(std::string(page.code), codeForm));
    EXPECT_FALSE(page.title.empty());
    EXPECT_EQ(page.title.find('\n'), std::string_view::npos);
    EXPECT_LT(page.title.size(), 90u);
    EXPECT_GT(page.meaning.size(), 60u);
    EXPECT_FALSE(page.causes.empty());
    EXPECT_FALSE(page.fixes.empty());
    EXPECT_FALSE(page.checks.empty());

    // Code spans are paired in every text, so that nothing shows a stray backtick.
    std::vector<std::string_view> texts = {page.title, page.meaning};
    for (const auto& list : {page.causes, page.fixes, page.checks}) {
      texts.insert(texts.end(), list.begin(), list.end());
    }
    for (const auto text : texts) {
      EXPECT_EQ(countOf(std::string(text), "`") % 2, 0u) << text;
    }
  }
}

TEST(PagesTest, HtmlIsStandaloneAccessibleAndScriptFree) {
  for (const auto& page : catalog()) {
    SCOPED_TRACE(std::string(page.code));
    const std::string html = renderPageHtml(page);
    EXPECT_EQ(html.rfind("<!DOCTYPE html>\n<html lang=\"en\">", 0), 0u);
    EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
    EXPECT_NE(html.find("<meta name=\"color-scheme\" content=\"light dark\">"), std::string::npos);
    EXPECT_NE(html.find("@media (prefers-color-scheme:dark)"), std::string::npos);
    EXPECT_EQ(countOf(html, "<h1>"), 1u);
    EXPECT_EQ(countOf(html, "<main>"), 1u);
    EXPECT_NE(html.find("<nav aria-label=\"Diagnosis\"><a href=\"/diagnosis/\">"),
              std::string::npos);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_EQ(html.find("href=\"http"), std::string::npos);
    EXPECT_EQ(html.find(" src="), std::string::npos);
    EXPECT_EQ(html.find(" style="), std::string::npos);
    EXPECT_EQ(countOf(html, "<style>"), 1u);
    EXPECT_EQ(renderPageHtml(page), html) << "rendering is not stable";
  }
}

TEST(PagesTest, HtmlEscapesInjectedText) {
  const std::string html = renderPageHtml(kInjected);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_NE(html.find("<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;title&quot; - "),
            std::string::npos);
  EXPECT_NE(html.find("<code>&lt;b&gt;code&lt;/b&gt;</code>"), std::string::npos);
  EXPECT_NE(html.find("and an odd ` backtick"), std::string::npos);
  EXPECT_NE(html.find("cause &lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  EXPECT_NE(html.find("fix &#39;quoted&#39;"), std::string::npos);
}

TEST(PagesTest, RendererOutputIsPinned) {
  // The whole document but the style, whose bytes the policy test pins by their hash.
  std::string html = renderPageHtml(kInjected);
  const std::string style = styleOf(html);
  html.replace(html.find(style), style.size(), "STYLE");
  EXPECT_EQ(html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<meta name=\"color-scheme\" content=\"light dark\">\n"
            "<meta name=\"referrer\" content=\"no-referrer\">\n"
            "<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;title&quot; - Anonymily "
            "diagnosis</title>\n<style>STYLE</style>\n</head>\n<body>\n"
            "<nav aria-label=\"Diagnosis\"><a href=\"/diagnosis/\">All diagnosis codes</a></nav>\n"
            "<main>\n<h1>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;title&quot;</h1>\n"
            "<p class=\"meta\">Code <code>x.injected</code>, severity warning</p>\n"
            "<section aria-labelledby=\"meaning\">\n<h2 id=\"meaning\">What it means</h2>\n"
            "<p>Meaning with <code>&lt;b&gt;code&lt;/b&gt;</code> and an odd ` backtick</p>\n"
            "</section>\n"
            "<section aria-labelledby=\"causes\">\n<h2 id=\"causes\">Common causes</h2>\n<ul>\n"
            "<li>cause &lt;img src=x onerror=alert(1)&gt;</li>\n</ul>\n</section>\n"
            "<section aria-labelledby=\"fixes\">\n<h2 id=\"fixes\">How to fix it</h2>\n<ol>\n"
            "<li>fix &#39;quoted&#39;</li>\n</ol>\n</section>\n"
            "</main>\n</body>\n</html>\n");
}

TEST(PagesTest, PolicyAllowsExactlyTheInlineStyle) {
  const std::string style = styleOf(renderPageHtml(catalog().front()));
  ASSERT_FALSE(style.empty());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  ASSERT_EQ(EVP_Digest(style.data(), style.size(), digest, &size, EVP_sha256(), nullptr), 1);
  const std::string hash =
      test::base64(std::string_view(reinterpret_cast<const char*>(digest), size));

  EXPECT_EQ(pageContentSecurityPolicy(),
            "default-src 'none'; style-src 'sha256-" + hash +
                "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");

  // Every document carries the same style, so one policy fits them all.
  EXPECT_EQ(styleOf(renderIndexHtml(catalog())), style);
  EXPECT_EQ(styleOf(renderFindingsHtml(1, {})), style);
}

TEST(PagesTest, IndexListsEveryCode) {
  const std::string html = renderIndexHtml(catalog());
  const auto index = parseJson(renderIndexJson(catalog())).extract<Poco::JSON::Object::Ptr>();
  const auto codes = index->getArray("codes");
  ASSERT_EQ(codes->size(), catalog().size());
  for (size_t i = 0; i < catalog().size(); ++i) {
    const Page& page = catalog()[i];
    EXPECT_NE(html.find("<a href=\"/diagnosis/" + std::string(page.code) + "\"><code>" +
                        std::string(page.code) + "</code></a>"),
              std::string::npos);
    const auto entry = codes->getObject(static_cast<unsigned>(i));
    EXPECT_EQ(entry->getValue<std::string>("code"), page.code);
    EXPECT_EQ(entry->getValue<std::string>("page"), "/diagnosis/" + std::string(page.code));
    EXPECT_EQ(entry->getValue<std::string>("severity"), severityName(page.severity));
  }
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(PagesTest, JsonFormHoldsTheWholePage) {
  for (const auto& page : catalog()) {
    SCOPED_TRACE(std::string(page.code));
    const auto object = parseJson(renderPageJson(page)).extract<Poco::JSON::Object::Ptr>();
    EXPECT_EQ(object->getValue<std::string>("code"), page.code);
    EXPECT_EQ(object->getValue<std::string>("title"), page.title);
    EXPECT_EQ(object->getValue<std::string>("meaning"), page.meaning);
    EXPECT_EQ(object->getArray("causes")->size(), page.causes.size());
    EXPECT_EQ(object->getArray("fixes")->size(), page.fixes.size());
    EXPECT_EQ(object->getArray("checks")->size(), page.checks.size());
  }
  const auto injected = parseJson(renderPageJson(kInjected)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(injected->getValue<std::string>("title"), kInjected.title);
}

TEST(PagesTest, FindingsRenderEscapedAndLinkTheirPages) {
  Finding finding;
  finding.code = std::string(code::kDeliveryServerError);
  finding.severity = Severity::kError;
  finding.title = "The local server failed with a server error";
  finding.detail = "The local server answered 500 with \"<script>x</script>\".";
  finding.fix = "Fix <it>.";
  finding.status = 500;
  finding.atMs = 7;
  finding.relayId = "r1";
  finding.evidence = {{"excerpt", "<script>x</script>", false},
                      {"status", "500", true},
                      {"bogus_number", "12abc", true}};

  const std::string html = renderFindingsHtml(17, {finding});
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<it>"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"/diagnosis/delivery.server_error\">"), std::string::npos);
  EXPECT_NE(html.find("<dt>excerpt</dt><dd><code>&lt;script&gt;x&lt;/script&gt;</code></dd>"),
            std::string::npos);
  EXPECT_NE(html.find("Diagnosis of event 17"), std::string::npos);

  const auto array = parseJson(findingsJson({finding})).extract<Poco::JSON::Array::Ptr>();
  ASSERT_EQ(array->size(), 1u);
  const auto object = array->getObject(0);
  EXPECT_EQ(object->getValue<std::string>("page"), "/diagnosis/delivery.server_error");
  EXPECT_EQ(object->getValue<int>("status"), 500);
  const auto evidence = object->getObject("evidence");
  EXPECT_EQ(evidence->getValue<std::string>("excerpt"), "<script>x</script>");
  EXPECT_TRUE(evidence->get("status").isInteger());
  EXPECT_TRUE(evidence->get("bogus_number").isString());
  EXPECT_EQ(findingsJson({}), "[]");
}

}  // namespace
}  // namespace anm::diagnosis
