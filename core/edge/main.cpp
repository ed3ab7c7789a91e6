// core/edge/main.cpp: the anonymily-edge program: options, logging, start, wait, stop.
// SPDX-License-Identifier: Apache-2.0
#include <Poco/Logger.h>
#include <Poco/NullChannel.h>
#include <Poco/Util/Application.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionCallback.h>
#include <Poco/Util/OptionException.h>
#include <Poco/Util/OptionSet.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "core/edge/admin.h"
#include "core/edge/config.h"
#include "core/edge/edge_server.h"
#include "core/edge/log_setup.h"
#include "core/edge/service_notify.h"

#ifndef ANM_VERSION
#define ANM_VERSION "0.0.0"
#endif

namespace anm::edge {
namespace {

using Poco::Util::Application;
using Poco::Util::Option;
using Poco::Util::OptionCallback;

// Written beside the target and renamed, so a reader never sees a half-written port.
bool writePortFile(const std::string& path, uint16_t port) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << port << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(temp.c_str(), path.c_str()) == 0;
}

// The signals the edge acts on; blocked in every thread from the start of main and taken by
// serveUntilStopped.
sigset_t handledSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGQUIT);
  sigaddset(&signals, SIGHUP);
  return signals;
}

// Serves until SIGTERM, SIGINT or SIGQUIT: SIGHUP reloads the plugins between the service
// manager's RELOADING=1 and READY=1, and the watchdog is fed while the main thread is alive.
void serveUntilStopped(EdgeServer& server, ServiceNotifier& notifier, Poco::Logger& log) {
  const sigset_t signals = handledSignals();
  const auto watchdog = notifier.watchdogInterval();
  for (;;) {
    int signal = 0;
    if (watchdog) {
      timespec wait{};
      wait.tv_sec = static_cast<time_t>(watchdog->count() / 1000);
      wait.tv_nsec = static_cast<long>(watchdog->count() % 1000) * 1000000L;
      signal = sigtimedwait(&signals, nullptr, &wait);
      if (signal < 0) {
        notifier.notify("WATCHDOG=1");
        continue;
      }
    } else if (sigwait(&signals, &signal) != 0) {
      continue;
    }

    if (signal != SIGHUP) {
      log.information("edge stopping signal=%s", std::string(strsignal(signal)));
      return;
    }
    notifier.notify("RELOADING=1\n" + monotonicUsecField());
    const plugin::SyncResult result = server.reloadPlugins();
    log.information("plugins reloaded loaded=%z removed=%z refused=%z plugins=%z not_loaded=%z",
                    result.loaded.size(), result.removed.size(), result.refused.size(),
                    server.pluginCount(), result.notLoaded);
    notifier.notify("READY=1\nSTATUS=serving, plugins reloaded");
  }
}

/// The edge as a POCO application. Not a ServerApplication: on Unix that one adds --daemon,
/// --umask and --pidfile, and forks away with stderr on /dev/null whenever "--daemon" is among
/// the arguments, defined or not, so every log line would be lost (#5). The edge runs in the
/// foreground under its service manager and speaks the notify protocol itself.
class EdgeApp : public Poco::Util::Application {
 public:
  /// Reads the command line and runs the edge; a command line that cannot be read is a usage
  /// error, said in one log line like every other.
  int runCommandLine(int argc, char** argv) {
    setUpLogging("information");
    Poco::Logger& log = Poco::Logger::get("anm.edge");
    try {
      init(argc, argv);
    } catch (const Poco::Util::UnknownOptionException& e) {
      log.error("unknown option %s (see --help)", asTyped(argc, argv, e.message()));
      return EXIT_USAGE;
    } catch (const Poco::Util::DuplicateOptionException& e) {
      log.error("option --%s is given twice (see --help)", e.message());
      return EXIT_USAGE;
    } catch (const Poco::Util::OptionException& e) {
      log.error("invalid command line: %s (see --help)", e.message());
      return EXIT_USAGE;
    }
    return run();
  }

 protected:
  void defineOptions(Poco::Util::OptionSet& options) override {
    Application::defineOptions(options);
    auto valued = [this, &options](const char* name, const char* arg, const char* help) {
      options.addOption(Option(name, "", help)
                            .required(false)
                            .repeatable(false)
                            .argument(arg)
                            .callback(OptionCallback<EdgeApp>(this, &EdgeApp::onValue)));
    };
    valued("config", "FILE", "read settings from this properties file (key = value)");
    valued("listen", "HOST:PORT", "address to listen on (default 127.0.0.1:8080)");
    valued("data-dir", "DIR", "directory of the event store (default ./anonymily-data)");
    valued("plugin-dir", "DIR", "directory of provider plugins");
    valued("public-url", "URL", "base URL senders reach this edge at");
    valued("tls-cert", "FILE", "PEM certificate chain: every listener speaks TLS 1.3 only");
    valued("tls-key", "FILE", "PEM private key of --tls-cert (without a passphrase)");
    valued("port-file", "FILE", "write the bound port to FILE once listening");
    valued("log-level", "LEVEL",
           "fatal, critical, error, warning, notice, information, debug, trace");
    options.addOption(Option("help", "h", "show this help and exit")
                          .callback(OptionCallback<EdgeApp>(this, &EdgeApp::onHelp)));
    options.addOption(Option("version", "", "show the version and exit")
                          .callback(OptionCallback<EdgeApp>(this, &EdgeApp::onVersion)));
  }

  int main(const std::vector<std::string>& args) override {
    if (exitEarly_) return Application::EXIT_OK;

    // POCO's application framework logs its own subsystem steps through a console channel of
    // its own (unformatted, e.g. at shutdown); the edge's output is only its own lines, so what
    // it did not expect is said here rather than in POCO's silenced channel.
    logger().setChannel(new Poco::NullChannel);
    try {
      return serve(args);
    } catch (const std::exception& e) {
      Poco::Logger::get("anm.edge").critical("edge failed error=\"%s\"", std::string(e.what()));
      return Application::EXIT_SOFTWARE;
    }
  }

 private:
  int serve(const std::vector<std::string>& args) {
    Poco::Logger& log = Poco::Logger::get("anm.edge");
    if (!args.empty()) {
      log.error("unexpected argument %s (see --help)", args.front());
      return Application::EXIT_USAGE;
    }

    // Settings: built-in defaults, then the file, then the command line.
    EdgeConfig config;
    std::map<std::string, size_t> lineOfKey;
    try {
      ConfigValues values;
      if (!configFile_.empty()) values = readConfigFile(configFile_, &lineOfKey);
      for (const auto& [key, value] : overrides_) {
        values[key] = value;
        lineOfKey.erase(key);  // the command line's value is the one refused, if any
      }
      config = parseConfig(values, exeDir());
    } catch (const ConfigError& e) {
      log.error("invalid configuration: %s", placeConfigError(e.what(), configFile_, lineOfKey));
      return Application::EXIT_CONFIG;
    }
    setUpLogging(config.logLevel);

    // The signals the edge acts on have been blocked since main began (see there); every
    // thread inherits that mask, so serveUntilStopped takes each one, also one that arrived
    // before it ran.
    ServiceNotifier notifier;

    EdgeServer server(config);
    try {
      server.start();
    } catch (const ConfigError& e) {
      log.error("invalid configuration: %s", placeConfigError(e.what(), configFile_, lineOfKey));
      return Application::EXIT_CONFIG;
    } catch (const StartError& e) {
      log.error("could not start: %s", std::string(e.what()));
      return e.exitCode();
    }

    const std::string listen = config.listenHost + ":" + std::to_string(server.port());
    if (!portFile_.empty() && !writePortFile(portFile_, server.port())) {
      log.error("could not write port file path=%s", portFile_);
      server.stop();
      return Application::EXIT_CANTCREAT;
    }
    log.information("edge ready listen=%s public_url=%s plugins=%s store=%s", listen,
                    server.publicUrl(), std::to_string(server.pluginCount()), config.store);

    // Ready only now: the listener answers and the plugins are loaded.
    notifier.notify("READY=1\nSTATUS=serving on " + listen +
                    "\nMAINPID=" + std::to_string(::getpid()));

    serveUntilStopped(server, notifier, log);
    notifier.notify("STOPPING=1\nSTATUS=stopping");
    server.stop();
    return Application::EXIT_OK;
  }

  void onValue(const std::string& name, const std::string& value) {
    static const std::map<std::string, std::string> kKeys = {
        {"listen", "listen"},         {"data-dir", "data_dir"}, {"plugin-dir", "plugin_dir"},
        {"public-url", "public_url"}, {"tls-cert", "tls.cert"}, {"tls-key", "tls.key"},
        {"log-level", "log.level"}};
    if (name == "config") {
      configFile_ = value;
    } else if (name == "port-file") {
      portFile_ = value;
    } else {
      overrides_[kKeys.at(name)] = value;
    }
  }

  void onHelp(const std::string&, const std::string&) {
    Poco::Util::HelpFormatter help(options());
    help.setCommand(commandName());
    help.setUsage("[OPTIONS]\n       anonymily-edge admin [OPTIONS] COMMAND (see admin --help)");
    help.setHeader("Receives webhooks, verifies and stores them, and streams them to relays.");
    help.setFooter(
        "Every config key is described in the commented edge.conf that is installed beside the "
        "edge (/etc/anonymily/edge.conf) and in the README.\n"
        "SIGHUP reloads the plugins; SIGTERM stops within shutdown.timeout_ms.\n"
        "store is sqlite:PATH or mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?socket=PATH]; "
        "a mysql store also reads store.pool_size (" +
        std::to_string(kMinStorePoolSize) + ".." + std::to_string(kMaxStorePoolSize) +
        ", default " + std::to_string(store::MySqlOptions().poolSize) +
        "), store.poll_interval_ms (" + std::to_string(kMinStorePollMs) + ".." +
        std::to_string(kMaxStorePollMs) + ", default " +
        std::to_string(store::MySqlOptions().pollInterval.count()) +
        "), store.password_file (mode 0600) and store.password_env (default " +
        kDefaultStorePasswordEnv + ").");
    help.format(std::cout);
    exitEarly_ = true;
    stopOptionsProcessing();
  }

  void onVersion(const std::string&, const std::string&) {
    std::cout << "anonymily-edge " << ANM_VERSION << "\n";
    exitEarly_ = true;
    stopOptionsProcessing();
  }

  // POCO names an unknown option without its dashes and with any value; the argument as it was
  // typed is clearer, without the value (which may be a secret).
  static std::string asTyped(int argc, char** argv, const std::string& stripped) {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      const size_t dashes = arg.find_first_not_of('-');
      if (dashes == 0 || dashes == std::string::npos ||
          arg.compare(dashes, std::string::npos, stripped) != 0) {
        continue;
      }
      return arg.substr(0, arg.find('='));
    }
    return stripped;
  }

  std::string exeDir() const {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) return self.parent_path().string();
    return config().getString("application.dir", ".");
  }

  std::string configFile_;
  std::string portFile_;
  std::map<std::string, std::string> overrides_;
  bool exitEarly_ = false;
};

}  // namespace
}  // namespace anm::edge

int main(int argc, char** argv) {
  // Before any file is made: the store, its journal and the keys hold other people's webhooks,
  // so everything the edge (or admin) creates is its own user's only, whatever the data
  // directory's mode (#4).
  ::umask(077);

  // A service manager may ask for a reload as soon as the process exists, and SIGHUP's default
  // action ends it: from the first instruction on, the signals the edge acts on wait, pending,
  // until serveUntilStopped takes them, so an early SIGHUP is a reload once the edge serves
  // (#5).
  const sigset_t handled = anm::edge::handledSignals();
  sigset_t before;
  pthread_sigmask(SIG_BLOCK, &handled, &before);

  // `anonymily-edge admin ...` is a command of its own with its own options, so it is taken
  // before POCO's option parsing would refuse them. It keeps the signals' usual meaning.
  if (argc >= 2 && std::string(argv[1]) == "admin") {
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    return anm::edge::runAdmin(std::vector<std::string>(argv + 2, argv + argc));
  }
  anm::edge::EdgeApp app;
  return app.runCommandLine(argc, argv);
}
