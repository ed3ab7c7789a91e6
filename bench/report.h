// bench/report.h: the summary table of figures, references, ratios and goals.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace anm::bench {

/// One line of the summary. A figure that could not be measured keeps its goal and says why.
struct Row {
  std::string figure;
  std::string value;
  std::string reference;
  std::string ratio;
  std::string goal;
  std::string met;  ///< "yes", "no" or "n/a"
};

class Report {
 public:
  void add(Row row) { rows_.push_back(std::move(row)); }
  void notRun(const std::string& figure, const std::string& goal, const std::string& why);
  void print() const;
  bool anyNotRun() const;

 private:
  std::vector<Row> rows_;
};

/// Formats with a fixed number of decimals.
std::string fixed(double v, int decimals);

/// Percentile by nearest rank of sorted values (0 < p <= 100).
int64_t percentile(const std::vector<int64_t>& sorted, double p);

}  // namespace anm::bench
