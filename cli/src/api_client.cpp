// cli/src/api_client.cpp: REST calls through Poco's HTTP client, where header order is moot.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/api_client.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/URI.h>

#include <istream>
#include <ostream>

#include "cli/src/connection.h"
#include "cli/src/tls_trust.h"

namespace anm::cli {

std::string ApiResponse::errorText() const {
  try {
    Poco::JSON::Parser parser;
    const auto object = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    if (object && object->has("error")) {
      std::string text = object->getValue<std::string>("error");
      if (object->has("message")) text += ": " + object->getValue<std::string>("message");
      return text;
    }
  } catch (...) {
    // Not JSON: fall back to the status' meaning below.
  }
  return Poco::Net::HTTPResponse::getReasonForStatus(
      static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
}

ApiClient::ApiClient(Url edge, std::string token, std::chrono::milliseconds timeout)
    : edge_(std::move(edge)), token_(std::move(token)), timeout_(timeout) {}

ApiClient::~ApiClient() = default;

ApiResponse ApiClient::send(const std::string& method, const std::string& path,
                            const std::string& body) {
  // A failed request may leave the session half-used; two attempts on fresh sessions cover a
  // keep-alive connection that the edge closed while we were idle.
  for (int attempt = 0;; ++attempt) {
    try {
      if (!session_) {
        if (edge_.tls()) {
          session_ = std::make_unique<Poco::Net::HTTPSClientSession>(edge_.host, edge_.port,
                                                                     clientTlsContext(edge_.host));
        } else {
          session_ = std::make_unique<Poco::Net::HTTPClientSession>(edge_.host, edge_.port);
        }
        session_->setKeepAlive(true);
        session_->setTimeout(Poco::Timespan(timeout_.count() * 1000));
      }

      Poco::Net::HTTPRequest request(method, edge_.basePath() + path,
                                     Poco::Net::HTTPMessage::HTTP_1_1);
      request.setHost(edge_.host, edge_.port);
      request.set("User-Agent", "anonymily/0.1");
      request.set("Accept", "application/json");
      if (!token_.empty()) request.set("Authorization", "Bearer " + token_);
      if (!body.empty() || method == "POST" || method == "PUT") {
        request.setContentType("application/json");
        request.setContentLength(static_cast<std::streamsize>(body.size()));
      }
      std::ostream& out = session_->sendRequest(request);
      out.write(body.data(), static_cast<std::streamsize>(body.size()));

      Poco::Net::HTTPResponse response;
      std::istream& in = session_->receiveResponse(response);
      ApiResponse result;
      result.status = response.getStatus();
      char buffer[16384];
      while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
        result.body.append(buffer, static_cast<size_t>(in.gcount()));
        if (result.body.size() > kMaxApiResponseBytes) {
          session_.reset();
          throw NetError(NetErrorKind::kProtocol,
                         "edge answer larger than " + std::to_string(kMaxApiResponseBytes));
        }
      }
      if (!in.eof()) {
        session_.reset();
        throw NetError(NetErrorKind::kReset, "connection reset");
      }
      return result;
    } catch (const NetError&) {
      session_.reset();
      throw;
    } catch (const Poco::TimeoutException&) {
      session_.reset();
      throw NetError(NetErrorKind::kTimeout, "timeout");
    } catch (const Poco::Net::ConnectionRefusedException&) {
      session_.reset();
      throw NetError(NetErrorKind::kRefused, "connection refused");
    } catch (const Poco::Exception& e) {
      session_.reset();

      // A refused certificate says why in words; retrying would be refused the same way.
      if (edge_.tls()) {
        const std::string refusal = certificateRefusal(edge_.host);
        if (!refusal.empty()) throw NetError(NetErrorKind::kCertificate, refusal);
      }
      const bool dropped = dynamic_cast<const Poco::Net::NoMessageException*>(&e) != nullptr ||
                           dynamic_cast<const Poco::Net::ConnectionResetException*>(&e) != nullptr;
      if (attempt == 0 && dropped) continue;
      if (dynamic_cast<const Poco::Net::HostNotFoundException*>(&e) != nullptr) {
        throw NetError(NetErrorKind::kResolve, "could not resolve host " + edge_.host);
      }
      throw NetError(NetErrorKind::kOther, e.displayText());
    }
  }
}

std::string encodeSegment(const std::string& segment) {
  std::string out;
  Poco::URI::encode(segment, "/?#%&=+;:@ ", out);
  return out;
}

}  // namespace anm::cli
