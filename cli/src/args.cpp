// cli/src/args.cpp: command-line option parsing.
// SPDX-License-Identifier: Apache-2.0
#include "cli/src/args.h"

#include <cerrno>
#include <cstdlib>

namespace anm::cli {

bool Args::parse(const std::vector<std::string>& argv, const std::vector<OptionSpec>& specs,
                 std::string& error) {
  bool optionsEnded = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (optionsEnded || arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      if (!optionsEnded && arg.size() > 1 && arg[0] == '-' && arg != "-") {
        if (arg == "-h") {
          values_["help"].push_back("");
          continue;
        }
        error = "unknown option " + arg;
        return false;
      }
      positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      optionsEnded = true;
      continue;
    }

    // --name or --name=value
    std::string name = arg.substr(2);
    std::optional<std::string> inlineValue;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      inlineValue = name.substr(eq + 1);
      name.resize(eq);
    }
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& candidate : specs) {
      if (candidate.name == name) spec = &candidate;
    }
    if (spec == nullptr) {
      error = "unknown option --" + name;
      return false;
    }
    if (!spec->repeatable && values_.count(name) > 0) {
      error = "option --" + name + " given more than once";
      return false;
    }
    if (!spec->takesValue) {
      if (inlineValue) {
        error = "option --" + name + " takes no value";
        return false;
      }
      values_[name].push_back("");
      continue;
    }
    if (!inlineValue) {
      if (i + 1 >= argv.size()) {
        error = "option --" + name + " needs a value";
        return false;
      }
      inlineValue = argv[++i];
    }
    values_[name].push_back(*inlineValue);
  }
  return true;
}

std::optional<std::string> Args::value(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Args::values(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return {};
  return it->second;
}

bool parseInteger(const std::string& text, long long min, long long max, long long& out) {
  if (text.empty() || text.size() > 19) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '-' && i == 0 && text.size() > 1) continue;
    if (text[i] < '0' || text[i] > '9') return false;
  }
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || value < min || value > max) return false;
  out = value;
  return true;
}

}  // namespace anm::cli
