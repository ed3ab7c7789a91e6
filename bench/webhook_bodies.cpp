// bench/webhook_bodies.cpp: deterministic webhook bodies and the Stripe signatures over them.
// SPDX-License-Identifier: Apache-2.0
#include "webhook_bodies.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstdio>

namespace anm::bench {

namespace {

constexpr std::string_view kSeqKey = "\"id\":\"evt_bench_";
constexpr int kSeqDigits = 12;

}  // namespace

std::string makeBody(int64_t seq) {
  // The id carries the sequence number; the rest is padding whose bytes depend on seq too,
  // so a body delivered for the wrong event or altered on the way compares unequal.
  char head[160];
  int n = std::snprintf(head, sizeof(head),
                        "{\"id\":\"evt_bench_%0*lld\",\"object\":\"event\",\"type\":\"bench.ping\","
                        "\"data\":{\"object\":{\"pad\":\"",
                        kSeqDigits, static_cast<long long>(seq));
  std::string body(head, static_cast<size_t>(n));
  const std::string_view tail = "\"}}}";
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t i = 0;
  while (body.size() + tail.size() < kBodyBytes) {
    body.push_back(kAlphabet[(static_cast<uint64_t>(seq) * 31 + i * 7) % 62]);
    ++i;
  }
  body.append(tail);
  return body;
}

std::optional<int64_t> parseSeq(std::string_view body) {
  size_t at = body.find(kSeqKey);
  if (at == std::string_view::npos) return std::nullopt;
  at += kSeqKey.size();
  if (body.size() < at + kSeqDigits) return std::nullopt;
  int64_t seq = 0;
  for (int i = 0; i < kSeqDigits; ++i) {
    char c = body[at + static_cast<size_t>(i)];
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + (c - '0');
  }
  return seq;
}

std::string stripeSignature(const std::string& secret, int64_t t, std::string_view body) {
  // Stripe signs "<t>.<body>" and sends the MAC in lower-case hex.
  std::string signedPayload = std::to_string(t);
  signedPayload.push_back('.');
  signedPayload.append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int macLen = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signedPayload.data()), signedPayload.size(), mac,
       &macLen);
  static const char kHex[] = "0123456789abcdef";
  std::string out = "t=" + std::to_string(t) + ",v1=";
  for (unsigned int i = 0; i < macLen; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

std::string makeWebhookRequest(const std::string& hostPort, const std::string& target,
                               const std::string& secret, const std::string& body) {
  std::string req;
  req.reserve(body.size() + 400);
  req.append("POST ").append(target).append(" HTTP/1.1\r\nHost: ").append(hostPort);
  req.append("\r\nUser-Agent: Stripe/1.0 (anonymily-bench)");
  req.append("\r\nContent-Type: application/json; charset=utf-8");
  if (!secret.empty()) {
    // A fresh timestamp keeps the request inside any tolerance window the hook may have.
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    req.append("\r\nStripe-Signature: ").append(stripeSignature(secret, now, body));
  }
  req.append("\r\nContent-Length: ").append(std::to_string(body.size()));
  req.append("\r\n\r\n").append(body);
  return req;
}

}  // namespace anm::bench
