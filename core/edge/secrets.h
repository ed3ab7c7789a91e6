// core/edge/secrets.h: random hook ids and relay tokens, and how tokens are checked.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

namespace anm::edge {

/// A new hook id: 160 bits from the CSPRNG as 32 lower-case base32 characters.
std::string newHookId();

/// A new relay token: 256 bits from the CSPRNG as 64 lower-case hex characters.
std::string newRelayToken();

/// Lower-case hex SHA-256 of `text`: the form in which relay tokens are stored.
std::string sha256Hex(std::string_view text);

/// True when a presented token hashes to `storedHash`, compared in constant time.
bool tokenMatches(std::string_view token, std::string_view storedHash);

}  // namespace anm::edge
