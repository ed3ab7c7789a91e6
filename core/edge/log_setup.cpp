// core/edge/log_setup.cpp: stderr logging, in the journal's own format when under systemd.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/log_setup.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace anm::edge {

bool stderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long device = 0;
  unsigned long long inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;

  // The variable is inherited by children whose stderr may go elsewhere: compare identities.
  struct stat info {};
  if (::fstat(2, &info) != 0) return false;
  return static_cast<unsigned long long>(info.st_dev) == device &&
         static_cast<unsigned long long>(info.st_ino) == inode;
}

int JournalFormatter::syslogPriority(Poco::Message::Priority priority) {
  switch (priority) {
    case Poco::Message::PRIO_FATAL:
    case Poco::Message::PRIO_CRITICAL:
      return 2;
    case Poco::Message::PRIO_ERROR:
      return 3;
    case Poco::Message::PRIO_WARNING:
      return 4;
    case Poco::Message::PRIO_NOTICE:
      return 5;
    case Poco::Message::PRIO_INFORMATION:
      return 6;
    case Poco::Message::PRIO_DEBUG:
    case Poco::Message::PRIO_TRACE:
      return 7;
  }
  return 6;
}

void JournalFormatter::format(const Poco::Message& msg, std::string& text) {
  text = "<" + std::to_string(syslogPriority(msg.getPriority())) + ">" + msg.getSource() + ": " +
         msg.getText();
}

void setUpLogging(const std::string& level) {
  Poco::AutoPtr<Poco::Formatter> formatter;
  if (stderrIsJournal()) {
    formatter = new JournalFormatter;
  } else {
    formatter = new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%i %p %s: %t");
  }
  Poco::AutoPtr<Poco::FormattingChannel> channel(
      new Poco::FormattingChannel(formatter, new Poco::ConsoleChannel(std::cerr)));
  Poco::Logger::root().setChannel(channel);
  Poco::Logger::setLevel("", Poco::Logger::parseLevel(level));
}

}  // namespace anm::edge
