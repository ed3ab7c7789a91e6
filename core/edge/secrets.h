// core/edge/secrets.h: random hook ids and relay tokens, and how tokens are checked.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace anm::edge {

/// A new hook id: 160 bits from the CSPRNG as 32 lower-case base32 characters.
std::string newHookId();

/// A new relay token: 256 bits from the CSPRNG as 64 lower-case hex characters.
std::string newRelayToken();

/// `length` lower-case base32 characters (a-z 2-7) from the CSPRNG, 5 random bits each: the
/// text of account, member and token ids and of personal access tokens. (Appended.)
std::string randomBase32(size_t length);

/// `count` raw bytes from the CSPRNG (signing keys, JWT ids). (Appended.)
std::string randomSecretBytes(size_t count);

/// Lower-case hex SHA-256 of `text`: the form in which relay tokens are stored.
std::string sha256Hex(std::string_view text);

/// The token of an `Authorization: Bearer <token>` value, or nothing when the value is not of
/// that form. The scheme is matched ignoring case (RFC 9110 section 11.1); spaces and tabs
/// around the value and between scheme and token are allowed. The token itself must hold no
/// blank. The result points into `header`.
std::optional<std::string_view> bearerToken(std::string_view header);

/// True when a presented token hashes to `storedHash`, compared in constant time.
bool tokenMatches(std::string_view token, std::string_view storedHash);

/// True when `a` and `b` hold the same bytes. For secrets (key bytes, hashes): the time taken
/// depends only on the lengths, never on where the bytes differ.
bool equalConstantTime(std::string_view a, std::string_view b);

}  // namespace anm::edge
