// tests/e2e/support/digest.h: hashes, signatures and gzip for building and checking bodies.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

namespace anm::e2e {

/// Lower-case hex SHA-256 of the bytes.
std::string sha256Hex(const std::string& bytes);

/// Lower-case hex HMAC-SHA256 of data under key.
std::string hmacSha256Hex(const std::string& key, const std::string& data);

/// The bytes in gzip format (RFC 1952), as a provider compressing its body would send them.
std::string gzipBytes(const std::string& plain);

/// Inflates a gzip member; throws when the bytes are not valid gzip.
std::string gunzipBytes(const std::string& compressed);

}  // namespace anm::e2e
