// tests/e2e/support/digest.cpp: hashes, signatures and gzip for building and checking bodies.
// SPDX-License-Identifier: Apache-2.0
#include "tests/e2e/support/digest.h"

#include <Poco/DeflatingStream.h>
#include <Poco/InflatingStream.h>
#include <Poco/StreamCopier.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <sstream>
#include <stdexcept>

namespace anm::e2e {

namespace {

std::string toHex(const unsigned char* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 0x0f];
  }
  return out;
}

}  // namespace

std::string sha256Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("could not hash");
  }
  return toHex(digest, size);
}

std::string hmacSha256Hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
           &size) == nullptr) {
    throw std::runtime_error("could not compute hmac");
  }
  return toHex(mac, size);
}

std::string gzipBytes(const std::string& plain) {
  std::ostringstream out;
  {
    Poco::DeflatingOutputStream deflater(out, Poco::DeflatingStreamBuf::STREAM_GZIP);
    deflater << plain;
    deflater.close();
  }
  return out.str();
}

std::string gunzipBytes(const std::string& compressed) {
  std::istringstream in(compressed);
  Poco::InflatingInputStream inflater(in, Poco::InflatingStreamBuf::STREAM_GZIP);
  std::string out;
  Poco::StreamCopier::copyToString(inflater, out);
  return out;
}

}  // namespace anm::e2e
