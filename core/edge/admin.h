// core/edge/admin.h: `anonymily-edge admin`: accounts, tokens and keys of an edge's store.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

namespace anm::edge {

/// Exit codes of the admin command.
inline constexpr int kAdminOk = 0;
inline constexpr int kAdminRefused = 1;  ///< unknown account, taken name, store failure
inline constexpr int kAdminUsage = 2;
inline constexpr int kAdminConfig = 78;  ///< EX_CONFIG: settings, keys

/// Records re-encrypted per store call while `keys rotate` runs.
inline constexpr size_t kRotateBatch = 500;

/// Runs `anonymily-edge admin ARGS...` (`args` excludes "admin"): opens the store and key ring
/// the edge would from --config, --data-dir and --store, and runs one command on it. Plain
/// text goes to `out` (JSON with --json), refusals and errors to `err`. Returns the exit code.
int runAdmin(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

/// The same on std::cout and std::cerr, with the store's log lines on stderr (warnings and
/// worse).
int runAdmin(const std::vector<std::string>& args);

}  // namespace anm::edge
