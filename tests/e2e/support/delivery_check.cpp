// tests/e2e/support/delivery_check.cpp: compares what the target received with what was sent.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/support/delivery_check.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/e2e/support/digest.h"

namespace anm::e2e {

namespace {

const char* const kHopByHop[] = {"Connection", "Keep-Alive",        "Proxy-Connection", "TE",
                                 "Trailer",    "Transfer-Encoding", "Upgrade"};

std::string render(const HeaderList& headers) {
  std::ostringstream out;
  for (const auto& [name, value] : headers) out << "\n    " << name << ": " << value;
  return out.str();
}

HeaderList withoutHostAndLength(const HeaderList& headers) {
  HeaderList out;
  for (const auto& header : headers) {
    if (sameName(header.first, "Host") || sameName(header.first, "Content-Length")) continue;
    out.push_back(header);
  }
  return out;
}

}  // namespace

bool isHopByHop(const std::string& name, const HeaderList& sent) {
  for (const char* hop : kHopByHop) {
    if (sameName(name, hop)) return true;
  }

  // Connection may name further per-hop fields, separated by commas.
  for (const auto& [field, value] : sent) {
    if (!sameName(field, "Connection")) continue;
    std::istringstream tokens(value);
    std::string token;
    while (std::getline(tokens, token, ',')) {
      size_t b = token.find_first_not_of(" \t");
      size_t e = token.find_last_not_of(" \t");
      if (b != std::string::npos && sameName(token.substr(b, e - b + 1), name)) return true;
    }
  }
  return false;
}

HeaderList endToEndHeaders(const HeaderList& sent) {
  HeaderList out;
  for (const auto& header : withoutHostAndLength(sent)) {
    if (!isHopByHop(header.first, sent)) out.push_back(header);
  }
  return out;
}

std::string expectedTarget(const SentRequest& sent) {
  std::string path = sent.suffix.empty() ? "/" : sent.suffix;
  return sent.query.empty() ? path : path + "?" + sent.query;
}

void expectDeliveredUnchanged(const SentRequest& sent, const RecordedRequest& got,
                              uint16_t targetPort) {
  EXPECT_EQ(got.method, sent.method);
  EXPECT_EQ(got.target, expectedTarget(sent));
  EXPECT_EQ(got.version, "HTTP/1.1");

  // Body: exact bytes; the hash keeps binary bodies out of the failure text.
  EXPECT_EQ(got.message.body.size(), sent.body.size());
  EXPECT_EQ(sha256Hex(got.message.body), sha256Hex(sent.body));
  EXPECT_FALSE(got.message.chunked) << "the relay re-chunked the body";

  // Every end-to-end field, with its spelling, value and position among the others.
  HeaderList expected = endToEndHeaders(sent.headers);
  HeaderList received = withoutHostAndLength(got.message.headers);
  EXPECT_EQ(received, expected) << "headers differ\n  expected:" << render(expected)
                                << "\n  received:" << render(received);

  auto hosts = got.message.values("Host");
  ASSERT_EQ(hosts.size(), 1u) << "target must get exactly one Host";
  EXPECT_EQ(hosts[0], "127.0.0.1:" + std::to_string(targetPort));

  auto lengths = got.message.values("Content-Length");
  bool sentLength = false;
  for (const auto& header : sent.headers) sentLength |= sameName(header.first, "Content-Length");
  if (lengths.empty()) {
    EXPECT_TRUE(sent.body.empty() && !sentLength)
        << "Content-Length missing for a body of " << sent.body.size() << " bytes";
    return;
  }
  ASSERT_EQ(lengths.size(), 1u) << "several Content-Length fields";
  EXPECT_EQ(lengths[0], std::to_string(sent.body.size()));
}

std::string seqOf(const SentRequest& sent) {
  for (const auto& [name, value] : sent.headers) {
    if (sameName(name, kSeqHeader)) return value;
  }
  return "";
}

std::vector<RecordedRequest> withSeq(const std::vector<RecordedRequest>& all,
                                     const std::string& seq) {
  std::vector<RecordedRequest> out;
  for (const auto& request : all) {
    auto value = request.message.value(kSeqHeader);
    if (value && *value == seq) out.push_back(request);
  }
  return out;
}

}  // namespace anm::e2e
