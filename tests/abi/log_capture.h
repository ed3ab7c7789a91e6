// tests/abi/log_capture.h: collects the plugin host's log lines through a Poco channel.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>

#include <mutex>
#include <string>
#include <vector>

namespace anm::test {

/// Installs itself on "anm.plugin" and every logger below it for its lifetime.
class LogCapture {
 public:
  struct Line {
    std::string logger;
    Poco::Message::Priority priority;
    std::string text;
  };

  LogCapture() : channel_(new Channel) {
    Poco::Logger::get("anm.plugin");
    Poco::Logger::setChannel("anm.plugin", channel_);
    Poco::Logger::setLevel("anm.plugin", Poco::Message::PRIO_INFORMATION);
  }

  ~LogCapture() { Poco::Logger::setChannel("anm.plugin", nullptr); }

  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<Line> lines() const { return channel_->lines(); }

  /// Lines at exactly this priority.
  std::vector<Line> at(Poco::Message::Priority priority) const {
    std::vector<Line> out;
    for (auto& line : lines()) {
      if (line.priority == priority) out.push_back(line);
    }
    return out;
  }

  void clear() { channel_->clear(); }

 private:
  class Channel : public Poco::Channel {
   public:
    void log(const Poco::Message& msg) override {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back({msg.getSource(), msg.getPriority(), msg.getText()});
    }
    std::vector<Line> lines() const {
      std::lock_guard<std::mutex> lock(mutex_);
      return lines_;
    }
    void clear() {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.clear();
    }

   private:
    mutable std::mutex mutex_;
    std::vector<Line> lines_;
  };

  Poco::AutoPtr<Channel> channel_;
};

}  // namespace anm::test
