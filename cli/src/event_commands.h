// cli/src/event_commands.h: `anonymily events ...` and `anonymily diagnose`.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

namespace anm::cli {

/// Each takes the words after its command name and returns the process exit code: 0 ok,
/// 1 refused or failed, 2 usage.
int eventsCommand(const std::vector<std::string>& argv);
int diagnoseCommand(const std::vector<std::string>& argv);

}  // namespace anm::cli
