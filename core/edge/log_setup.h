// core/edge/log_setup.h: where the edge's log lines go and how they look.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/Formatter.h>
#include <Poco/Message.h>

#include <string>

namespace anm::edge {

/// Whether stderr is the journal's stream ($JOURNAL_STREAM names its device and inode), as it
/// is for a service that systemd starts with the default StandardError=journal.
bool stderrIsJournal();

/// Lines for the journal: "<N>" with the syslog priority, which journald turns into the
/// entry's priority, then the logger and the text. No time: journald stamps every entry.
class JournalFormatter : public Poco::Formatter {
 public:
  void format(const Poco::Message& msg, std::string& text) override;

  /// The syslog priority (0..7) of a POCO priority.
  static int syslogPriority(Poco::Message::Priority priority);
};

/// Sends every log line to stderr at `level` (a POCO level name): in the journal's format when
/// stderr is the journal, else with the time (UTC) to the millisecond in front.
void setUpLogging(const std::string& level);

}  // namespace anm::edge
