// cli/src/credentials.h: the personal access token saved per edge by `anonymily login`.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>

#include "cli/src/url.h"

namespace anm::cli {

/// The file holding the PAT for one edge:
/// $XDG_CONFIG_HOME/anonymily/credentials/<scheme>_<host>_<port>.pat. The scheme is part of the
/// name so that a token saved by an https login is never sent over plain http to the same host
/// and port (another listener may be there). Bytes of the host outside `A-Za-z0-9.-` (an IPv6
/// literal's colons) become '-', so the name is always one safe segment.
std::string credentialsPath(const Url& edge);

/// The name of the file before the scheme was part of it: <host>_<port>.pat. Such a file is
/// still read for an https edge (the edge's certificate is checked before the token goes out,
/// whichever login saved it), never for an http one, and a new login or logout of that https
/// edge removes it.
std::string legacyCredentialsPath(const Url& edge);

/// Saves the PAT (mode 0600, the directory 0700), replacing any earlier one for that edge.
/// Throws std::runtime_error with the path and reason.
void saveCredentials(const Url& edge, const std::string& pat);

/// The saved PAT for the edge, or nothing when there is none (or the file is empty).
std::optional<std::string> loadCredentials(const Url& edge);

/// Deletes the saved PAT. False when there was none; throws std::runtime_error when it exists
/// and could not be deleted.
bool deleteCredentials(const Url& edge);

/// Why a PAT must not be sent to `edge`, as the sentence to print: plain http to a host that is
/// not this machine's loopback (anyone on the way could read the token). "" when it may be sent.
std::string plainHttpRefusal(const Url& edge);

/// True for "localhost" and loopback IP literals (127.0.0.0/8, ::1).
bool isLoopbackHost(const std::string& host);

/// True for text shaped like a PAT: "anm_pat_" and lower-case letters and digits (today 52
/// base32 characters).
bool looksLikePersonalToken(const std::string& text);

}  // namespace anm::cli
