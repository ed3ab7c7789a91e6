// cli/src/config_store.h: private files under $XDG_CONFIG_HOME/anonymily (hooks, credentials).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace anm::cli {

/// $XDG_CONFIG_HOME/anonymily, or $HOME/.config/anonymily. Throws std::runtime_error when
/// neither variable is set.
std::string configDir();

/// Hook ids name files, so only URL-safe ids (letters, digits, '-', '_', 1..128) are accepted.
bool isValidHookId(const std::string& id);

/// Writes <config>/hooks/<id>.token with mode 0600, creating the directories with mode 0700.
/// The file is replaced atomically. Throws std::runtime_error with the path and reason.
void saveToken(const std::string& hookId, const std::string& token);

std::optional<std::string> loadToken(const std::string& hookId);

/// The id of the last event forwarded for a hook to one target (the --to URL as given), so that
/// `relay --hook` resumes after it. Two relays of one hook on one machine, forwarding to two
/// local services, each keep their own place. A position saved before positions were kept per
/// target (<id>.cursor) is read when there is none for the target yet.
void saveCursor(const std::string& hookId, const std::string& target, int64_t lastEventId);
std::optional<int64_t> loadCursor(const std::string& hookId, const std::string& target);

/// The file name of that position in the hooks directory: <id>.<12 hex digits of the
/// target's SHA-256>.cursor.
std::string cursorFileName(const std::string& hookId, const std::string& target);

std::string tokenPath(const std::string& hookId);

/// Writes dir/name atomically with mode 0600 (private from its first byte), creating missing
/// directories with mode 0700 and setting `dir` itself to 0700. Throws std::runtime_error with
/// the path and reason. Token, position and credential files all go through it.
void writePrivateFile(const std::string& dir, const std::string& name, const std::string& data);

/// The whole file, or nothing when it cannot be read.
std::optional<std::string> readFileText(const std::string& path);

}  // namespace anm::cli
