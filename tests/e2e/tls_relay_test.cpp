// tests/e2e/tls_relay_test.cpp: the relay against an edge that speaks TLS: webhooks arrive byte
// for byte with --ca-file, and every bad certificate is refused with its sentence.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/Net/Context.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/support/child_process.h"
#include "tests/e2e/support/delivery_check.h"
#include "tests/e2e/support/http_wire.h"
#include "tests/e2e/support/product.h"
#include "tests/e2e/support/target_server.h"
#include "tests/e2e/support/temp_dir.h"
#include "tests/integration/test_certs.h"

namespace anm::e2e {
namespace {

using namespace std::chrono_literals;

// A test client that checks nothing: the tests look at the edge's certificate through the
// relay; this one only has to create hooks and send webhooks whatever the certificate.
Poco::Net::Context::Ptr anyCertificate() {
  static Poco::Net::Context::Ptr context = [] {
    Poco::Net::initializeSSL();
    Poco::Net::Context::Params params;
    params.verificationMode = Poco::Net::Context::VERIFY_NONE;
    params.loadDefaultCAs = false;
    return Poco::Net::Context::Ptr(
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params));
  }();
  return context;
}

// Sends raw request bytes over TLS on a new connection and reads one response.
WireResponse tlsExchange(uint16_t port, const std::string& bytes) {
  Poco::Net::SecureStreamSocket socket(anyCertificate());
  socket.connect(Poco::Net::SocketAddress("127.0.0.1", port), Poco::Timespan(10, 0));
  sendAll(socket, bytes);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  WireReader reader(socket);
  WireResponse response;
  response.message = reader.readHead(deadline);
  response.status = std::stoi(response.message.startLine.substr(9, 3));
  reader.readResponseBody(response.message, false, deadline);
  return response;
}

class TlsRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<test::TestPki>(dir_.sub("pki"));
    target_ = std::make_unique<TargetServer>();
  }

  void TearDown() override {
    if (HasFailure()) {
      if (relay_) std::cerr << "relay: " << relay_->process().describe();
      if (child_) std::cerr << "relay: " << child_->describe();
      if (edge_) std::cerr << "edge: " << edge_->process().describe();
    }
    child_.reset();
    relay_.reset();
    edge_.reset();
    target_.reset();
  }

  // An edge whose every listener speaks TLS with the named certificate of the test PKI.
  void startEdge(const std::string& cert) {
    EdgeProcess::Options options;
    options.binary = ANM_E2E_EDGE_BIN;
    options.pluginDir = ANM_E2E_PLUGIN_DIR;
    options.workDir = dir_.sub("edge-" + cert);
    options.home = dir_.sub("edge-home");
    options.settings = {{"tls.cert", pki_->cert(cert)}, {"tls.key", pki_->key(cert)}};
    edge_ = std::make_unique<EdgeProcess>(options);
  }

  std::string edgeUrl() const { return "https://127.0.0.1:" + std::to_string(edge_->port()); }

  std::unique_ptr<test::TestPki> pki_;
  TempDir dir_;
  std::unique_ptr<TargetServer> target_;
  std::unique_ptr<EdgeProcess> edge_;
  std::unique_ptr<RelayProcess> relay_;
  std::unique_ptr<ChildProcess> child_;
};

TEST_F(TlsRelayTest, WebhookTravelsByteForByteOverTlsWithCaFile) {
  ASSERT_NO_FATAL_FAILURE(startEdge("leaf"));
  RelayProcess::Options options;
  options.binary = ANM_E2E_RELAY_BIN;
  options.edgeUrl = edgeUrl();
  options.targetUrl = target_->url();
  options.home = dir_.sub("relay-home");
  options.extraArgs = {"--ca-file", pki_->cert("ca")};
  relay_ = std::make_unique<RelayProcess>(options);
  EXPECT_EQ(relay_->ingestUrl().rfind("https://127.0.0.1:", 0), 0u) << relay_->ingestUrl();

  // Odd spacing, repeated fields and every byte value: whatever TLS carries must be unchanged.
  std::string body = "{ \"tls\" : 1.0 }\n";
  for (int b = 0; b < 256; ++b) body += static_cast<char>(b);
  const SentRequest sent = makeRequest("POST", "/over/tls", "a=1&a=2", edge_->port(),
                                       {{"Content-Type", "application/octet-stream"},
                                        {"X-Repeat", "one"},
                                        {"X-Other", "two"},
                                        {"X-Repeat", "three"},
                                        {kSeqHeader, "1"}},
                                       body);
  const WireResponse answer = tlsExchange(edge_->port(), sent.serialize(relay_->hookId()));
  ASSERT_EQ(answer.status, 200) << answer.message.body;

  ASSERT_TRUE(target_->waitForCount(1, 10000ms));
  expectDeliveredUnchanged(sent, target_->requests().at(0), target_->port());
  ASSERT_TRUE(relay_->waitForReports(1, 10000ms));
  EXPECT_EQ(jsonInt(relay_->reports().at(0), "status"), 200);
}

struct BadCase {
  const char* cert;     ///< the edge's certificate
  bool caFile;          ///< the relay trusts the test CA
  const char* refusal;  ///< what the relay must say
};

TEST_F(TlsRelayTest, EachBadCertificateIsRefusedWithItsSentenceAndNothingIsForwarded) {
  const std::vector<BadCase> cases = {
      {"self", true,
       "the edge's certificate is not trusted (self-signed or unknown issuer); pass --ca-file "
       "with its CA, or fix the server's certificate"},
      {"leaf", false,
       "the edge's certificate is not trusted (self-signed or unknown issuer); pass --ca-file "
       "with its CA, or fix the server's certificate"},
      {"expired", true, "the edge's certificate expired on "},
      {"other", true, "the edge's certificate is for edge.example.org, not 127.0.0.1"},
  };
  int index = 0;
  for (const BadCase& bad : cases) {
    SCOPED_TRACE(std::string(bad.cert) + (bad.caFile ? " with --ca-file" : " without"));
    ASSERT_NO_FATAL_FAILURE(startEdge(bad.cert));

    // A hook with a stored webhook, so that a relay that got through would have work.
    const WireResponse created =
        tlsExchange(edge_->port(),
                    "POST /api/v1/hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                    "application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    ASSERT_EQ(created.status, 201) << created.message.body;
    const auto hook = parseObject(created.message.body);
    const SentRequest sent = makeRequest("POST", "", "", edge_->port(),
                                         {{"Content-Type", "text/plain"}, {kSeqHeader, "1"}}, "x");
    ASSERT_EQ(tlsExchange(edge_->port(), sent.serialize(jsonText(hook, "id"))).status, 200);

    // Both ways in: creating a new hook, and relaying the existing one.
    for (bool existing : {false, true}) {
      std::vector<std::string> args{"relay", "--edge", edgeUrl(), "--to", target_->url(), "--json"};
      if (existing) {
        args.insert(args.end(),
                    {"--hook", jsonText(hook, "id"), "--token", jsonText(hook, "token")});
      }
      if (bad.caFile) args.insert(args.end(), {"--ca-file", pki_->cert("ca")});
      child_ = std::make_unique<ChildProcess>(
          ANM_E2E_RELAY_BIN, args, productEnv(dir_.sub("relay-home-" + std::to_string(index++))));
      const auto line = child_->waitForAnyLine(
          [&](const std::string& text) { return text.find(bad.refusal) != std::string::npos; },
          kStartTimeout);
      EXPECT_TRUE(line.has_value()) << child_->describe();

      // The relay gives up: a certificate does not get better by retrying.
      for (int i = 0; i < 500 && child_->running(); ++i) std::this_thread::sleep_for(20ms);
      EXPECT_EQ(child_->exitCode().value_or(-1), 1) << child_->describe();
      child_.reset();
    }
    EXPECT_EQ(target_->count(), 0u) << "a relay forwarded through a refused certificate";
    edge_.reset();
  }
}

TEST_F(TlsRelayTest, PlainHttpToTheTlsEdgeSaysToUseHttps) {
  ASSERT_NO_FATAL_FAILURE(startEdge("leaf"));
  const std::string plain = "http://127.0.0.1:" + std::to_string(edge_->port());
  const std::string ownerToken = (dir_.path() / "edge-leaf" / "edge-data" / "owner.token").string();

  // A login and an anonymous relay, both with an http:// URL for the TLS port: each ends at
  // once with what the edge said, never as an edge that could not be reached.
  const std::vector<std::vector<std::string>> commands = {
      {"login", "--edge", plain, "--token-file", ownerToken},
      {"relay", "--edge", plain, "--to", target_->url()}};
  for (const auto& args : commands) {
    SCOPED_TRACE(args.front());
    child_ = std::make_unique<ChildProcess>(ANM_E2E_RELAY_BIN, args,
                                            productEnv(dir_.sub("cli-home-" + args.front())));
    for (int i = 0; i < 500 && child_->running(); ++i) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(child_->exitCode().value_or(-1), 1) << child_->describe();
    std::string err;
    for (const auto& text : child_->stderrLines()) err += text + "\n";
    EXPECT_NE(err.find("edge answered 400: this port of the edge speaks TLS only: use https://, "
                       "not http://"),
              std::string::npos)
        << err;
    EXPECT_EQ(err.find("reset"), std::string::npos) << err;
    EXPECT_EQ(err.find("refused"), std::string::npos) << err;
    child_.reset();
  }
}

TEST_F(TlsRelayTest, UnreadableCaFileIsAUsageErrorNamingIt) {
  const std::string missing = (dir_.path() / "no-such-ca.pem").string();
  const std::string notPem = (dir_.path() / "not-a-ca.pem").string();
  test::writeText(notPem, "hello\n");
  for (const auto& [file, why] : {std::pair<std::string, std::string>{missing, "could not read"},
                                  {notPem, "holds no PEM certificate"}}) {
    child_ = std::make_unique<ChildProcess>(
        ANM_E2E_RELAY_BIN,
        std::vector<std::string>{"relay", "--edge", "https://127.0.0.1:9", "--to", target_->url(),
                                 "--ca-file", file},
        productEnv(dir_.sub("relay-home")));
    for (int i = 0; i < 500 && child_->running(); ++i) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(child_->exitCode().value_or(-1), 2) << child_->describe();
    std::string err;
    for (const auto& text : child_->stderrLines()) err += text + "\n";
    EXPECT_NE(err.find(file), std::string::npos) << err;
    EXPECT_NE(err.find(why), std::string::npos) << err;
    child_.reset();
  }
}

}  // namespace
}  // namespace anm::e2e
