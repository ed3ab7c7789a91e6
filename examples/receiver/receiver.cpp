// receiver.cpp: a local webhook handler that verifies Stripe signatures with its real secret.
// SPDX-License-Identifier: Apache-2.0
//
// It stands for the developer's own server in the demo: the relay forwards each webhook byte
// for byte, so the signature the provider computed still verifies here.

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/StringTokenizer.h>
#include <Poco/Util/ServerApplication.h>

namespace {

constexpr long kToleranceSeconds = 300;

std::string hexHmacSha256(const std::string& key, const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);

  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

// Checks a Stripe-Signature header the way Stripe's own libraries do; returns "" when it
// verifies, else what is wrong.
std::string checkStripeSignature(const std::string& header, const std::string& body,
                                 const std::string& secret) {
  std::string timestamp;
  std::vector<std::string> signatures;
  Poco::StringTokenizer items(header, ",", Poco::StringTokenizer::TOK_TRIM);
  for (const auto& item : items) {
    if (item.rfind("t=", 0) == 0) timestamp = item.substr(2);
    if (item.rfind("v1=", 0) == 0) signatures.push_back(item.substr(3));
  }
  if (timestamp.empty() || signatures.empty()) return "malformed Stripe-Signature header";

  long age = static_cast<long>(std::time(nullptr)) - std::atol(timestamp.c_str());
  if (age > kToleranceSeconds || age < -kToleranceSeconds) return "timestamp outside tolerance";

  const std::string expected = hexHmacSha256(secret, timestamp + "." + body);
  for (const auto& candidate : signatures) {
    if (candidate.size() == expected.size() &&
        CRYPTO_memcmp(candidate.data(), expected.data(), expected.size()) == 0) {
      return "";
    }
  }
  return "no signature matches the secret";
}

class ReceiveHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit ReceiveHandler(std::string secret) : secret_(std::move(secret)) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    std::string body;
    Poco::StreamCopier::copyToString(request.stream(), body);

    std::string verdict = "not signed";
    bool ok = true;
    if (request.has("Stripe-Signature") && !secret_.empty()) {
      const std::string problem = checkStripeSignature(request.get("Stripe-Signature"), body,
                                                       secret_);
      ok = problem.empty();
      verdict = ok ? "stripe signature verified" : "stripe signature REJECTED: " + problem;
    }

    std::printf("receiver: %s %s  %zu bytes  %s\n", request.getMethod().c_str(),
                request.getURI().c_str(), body.size(), verdict.c_str());
    std::fflush(stdout);

    response.setStatus(ok ? Poco::Net::HTTPResponse::HTTP_OK
                          : Poco::Net::HTTPResponse::HTTP_BAD_REQUEST);
    response.setContentType("text/plain");
    response.send() << (ok ? "ok\n" : "bad signature\n");
  }

 private:
  std::string secret_;
};

class ReceiveHandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit ReceiveHandlerFactory(std::string secret) : secret_(std::move(secret)) {}

  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new ReceiveHandler(secret_);
  }

 private:
  std::string secret_;
};

class ReceiverApp : public Poco::Util::ServerApplication {
 protected:
  int main(const std::vector<std::string>& args) override {
    if (args.empty()) {
      std::cerr << "usage: anonymily-example-receiver PORT [STRIPE_SECRET]\n";
      return EXIT_USAGE;
    }
    const auto port = static_cast<Poco::UInt16>(std::stoi(args[0]));
    const std::string secret = args.size() > 1 ? args[1] : "";

    // The factory and the params are owned by the server once handed over.
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", port));
    Poco::Net::HTTPServer server(new ReceiveHandlerFactory(secret), socket,
                                 new Poco::Net::HTTPServerParams);
    server.start();
    std::printf("receiver: listening on http://127.0.0.1:%u\n", socket.address().port());
    std::fflush(stdout);

    waitForTerminationRequest();
    server.stop();
    return EXIT_OK;
  }
};

}  // namespace

POCO_SERVER_MAIN(ReceiverApp)
