// bench/report.cpp: the summary table of figures, references, ratios and goals.
// SPDX-License-Identifier: Apache-2.0
#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace anm::bench {

void Report::notRun(const std::string& figure, const std::string& goal, const std::string& why) {
  rows_.push_back({figure, "not run: " + why, "-", "-", goal, "n/a"});
}

bool Report::anyNotRun() const {
  // A figure without a goal is "n/a" too; only rows made by notRun say "not run".
  return std::any_of(rows_.begin(), rows_.end(),
                     [](const Row& r) { return r.value.rfind("not run: ", 0) == 0; });
}

void Report::print() const {
  const std::vector<std::string> head = {"figure", "value", "reference", "ratio", "goal", "met"};
  std::vector<size_t> width(head.size());
  for (size_t i = 0; i < head.size(); ++i) width[i] = head[i].size();
  auto cells = [](const Row& r) {
    return std::vector<std::string>{r.figure, r.value, r.reference, r.ratio, r.goal, r.met};
  };
  for (const auto& r : rows_) {
    auto c = cells(r);
    for (size_t i = 0; i < c.size(); ++i) width[i] = std::max(width[i], c[i].size());
  }
  auto line = [&](const std::vector<std::string>& c) {
    std::string out;
    for (size_t i = 0; i < c.size(); ++i) {
      out += c[i];
      if (i + 1 < c.size()) out += std::string(width[i] - c[i].size() + 2, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  line(head);
  std::string rule;
  for (size_t i = 0; i < width.size(); ++i) rule += std::string(width[i], '-') + "  ";
  std::printf("%s\n", rule.c_str());
  for (const auto& r : rows_) line(cells(r));
  std::fflush(stdout);
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

int64_t percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

}  // namespace anm::bench
