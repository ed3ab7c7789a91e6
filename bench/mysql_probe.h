// bench/mysql_probe.h: the bench's own look into the MariaDB the edges share.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace anm::bench {

/// What a hook's events in the database hold, compared with what the edges acknowledged.
struct StoredCheck {
  int64_t rows = 0;           ///< events of the hook in the database
  int64_t ackedMissing = 0;   ///< acknowledged webhooks with no row: lost
  int64_t storedUnacked = 0;  ///< rows whose webhook got no 2xx (unanswered at the end)
  int64_t duplicates = 0;     ///< rows for a webhook that already has one
  int64_t corrupted = 0;      ///< rows whose body differs from what was sent, or carry no number
  std::string error;          ///< set when the check itself could not run
};

/// Server counters and the time they were read, for rates over a span.
struct StatusSnapshot {
  int64_t atNs = 0;
  std::map<std::string, int64_t> values;
};

/// One connection over TCP to the database named by a mysql:// URL. Used from one thread.
class MySqlProbe {
 public:
  /// Connects to mysql://USER:PASSWORD@HOST:PORT/DATABASE; returns null and says why otherwise.
  static std::unique_ptr<MySqlProbe> connect(const std::string& url, std::string& why);
  ~MySqlProbe();
  MySqlProbe(const MySqlProbe&) = delete;
  MySqlProbe& operator=(const MySqlProbe&) = delete;

  /// Version and durability settings, as "name=value" pairs in a fixed order.
  std::vector<std::pair<std::string, std::string>> settings();

  /// The server's global counters that show where commit time goes.
  StatusSnapshot status();

  /// Reads every event of the hook, page by page, and checks it against the acknowledged
  /// sequence numbers: each must be there once, with the body that was sent. Bodies are
  /// encrypted at rest, so they are read through the store's own code under the edges' key
  /// ring in `keyFile`.
  StoredCheck check(const std::string& hookId, const std::vector<int64_t>& ackedSeqs,
                    const std::string& keyFile);

 private:
  struct Impl;
  explicit MySqlProbe(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// value(after) - value(before) for a counter, 0 when either lacks it.
int64_t counterDelta(const StatusSnapshot& before, const StatusSnapshot& after,
                     const std::string& name);

}  // namespace anm::bench
