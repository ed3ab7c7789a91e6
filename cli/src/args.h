// cli/src/args.h: a small "--name value" command-line parser with clear usage errors.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace anm::cli {

struct OptionSpec {
  std::string name;  ///< without the leading "--"
  bool takesValue = true;
  bool repeatable = false;
};

/// The parsed command line of one command.
class Args {
 public:
  /// Parses `argv` (after the command words) against `specs`. "--name value" and
  /// "--name=value" are both accepted; "--" ends the options. Returns false and sets `error`
  /// for an unknown option, a missing value, or an option given twice that may not be.
  bool parse(const std::vector<std::string>& argv, const std::vector<OptionSpec>& specs,
             std::string& error);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const;
  std::vector<std::string> values(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

/// Parses a decimal integer within [min, max]; false for anything else.
bool parseInteger(const std::string& text, long long min, long long max, long long& out);

}  // namespace anm::cli
