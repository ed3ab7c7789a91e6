// cli/src/account_commands.h: the commands of a signed-in member: login, logout, account,
// tokens, hooks and audit (docs: README "The CLI").
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

namespace anm::cli {

/// Each takes the words after its command name and returns the process exit code: 0 ok,
/// 1 refused or failed, 2 usage.
int loginCommand(const std::vector<std::string>& argv);
int logoutCommand(const std::vector<std::string>& argv);
int accountCommand(const std::vector<std::string>& argv);
int tokensCommand(const std::vector<std::string>& argv);
int hooksCommand(const std::vector<std::string>& argv);
int auditCommand(const std::vector<std::string>& argv);

}  // namespace anm::cli
