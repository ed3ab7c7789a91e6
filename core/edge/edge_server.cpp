// core/edge/edge_server.cpp: the edge as one object: store, plugins, stream hub and HTTP server.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/edge_server.h"

#include <Poco/Exception.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timespan.h>
#include <Poco/Util/Application.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <system_error>

#include "core/edge/account_cache.h"
#include "core/edge/auth.h"
#include "core/edge/bootstrap.h"
#include "core/edge/connection.h"
#include "core/edge/explainer.h"
#include "core/edge/handlers.h"
#include "core/edge/hook_lifecycle.h"
#include "core/edge/metrics.h"
#include "core/edge/ops_routes.h"
#include "core/edge/rate_limit.h"
#include "core/edge/recording_socket.h"
#include "core/edge/replay_jobs.h"
#include "core/edge/stream_hub.h"
#include "core/edge/tls.h"
#include "core/plugin/directory_watcher.h"
#include "core/plugin/registry.h"
#include "core/store/mysql_store.h"
#include "core/store/store.h"

#ifndef ANM_VERSION
#define ANM_VERSION "0.0.0"
#endif

namespace anm::edge {
namespace {

Poco::Logger& edgeLog() { return Poco::Logger::get("anm.edge"); }

// Seconds an idle pool thread waits for work before it ends.
constexpr int kThreadIdleSeconds = 60;
constexpr int kListenBacklog = 128;

void createDataDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    // A directory made beforehand is the operator's to set; what the edge writes in it is its
    // own user's only (the umask main() sets), but its names and any other files are not.
    const auto perms = fs::status(dir, ec).permissions();
    const auto open = perms & (fs::perms::group_all | fs::perms::others_all);
    if (!ec && open != fs::perms::none) {
      char mode[8];
      std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(perms & fs::perms::mask));
      edgeLog().warning("data directory accessible by group or others path=%s mode=%s", dir,
                        std::string(mode));
    }
    return;
  }
  if (!fs::create_directories(dir, ec) || ec) {
    throw ConfigError("could not create data_dir " + dir + ": " + ec.message());
  }
  // Events hold other people's webhooks: only the edge's own user may read them.
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) throw ConfigError("could not restrict data_dir " + dir + ": " + ec.message());
}

// EX_TEMPFAIL: another edge holds the data directory; trying later (after it stopped) works.
constexpr int kExitDataDirBusy = 75;

/// An exclusive flock held for as long as the edge runs on a SQLite store. The kernel drops it
/// when the process dies, so a crash never leaves a stale lock behind.
class ExclusiveLock {
 public:
  /// Opens (creating) and locks `path`; a lock another process holds is refused with
  /// `whenBusy(holder's PID or "")` and exit 75, anything else with the system's reason.
  ExclusiveLock(const std::string& path,
                const std::function<std::string(const std::string&)>& whenBusy) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      throw StartError("could not open " + path + ": " + std::strerror(errno),
                       Poco::Util::Application::EXIT_IOERR);
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;

    const int error = errno;
    std::string holder;
    if (error == EWOULDBLOCK) holder = readHolder(path);
    ::close(fd_);
    fd_ = -1;
    if (error != EWOULDBLOCK) {
      throw StartError("could not lock " + path + ": " + std::strerror(error),
                       Poco::Util::Application::EXIT_IOERR);
    }
    throw StartError(whenBusy(holder), kExitDataDirBusy);
  }
  ~ExclusiveLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  ExclusiveLock(const ExclusiveLock&) = delete;
  ExclusiveLock& operator=(const ExclusiveLock&) = delete;

  /// Writes this process's PID into the file, for a lock file of its own only.
  void recordPid(const std::string& path) {
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
      edgeLog().warning("could not write the pid to the lock file path=%s", path);
    }
  }

 private:
  // The first line of a lock file when it is a PID; a database file yields nothing.
  static std::string readHolder(const std::string& path) {
    std::string holder;
    std::ifstream(path) >> holder;
    const bool digits = !holder.empty() && holder.size() <= 10 &&
                        holder.find_first_not_of("0123456789") == std::string::npos;
    return digits ? holder : std::string();
  }

  int fd_ = -1;
};

/// <data_dir>/edge.lock, naming its holder's PID: two edges writing one SQLite file would each
/// hand out event ids and streams the other never sees. A MySQL store takes no lock: its ids
/// come from the database and every edge hears of every event through the store's notices, so
/// sharing it is the point.
std::unique_ptr<ExclusiveLock> lockDataDir(const std::string& dir) {
  const std::string path = dir + "/edge.lock";
  auto lock = std::make_unique<ExclusiveLock>(path, [&dir](const std::string& holder) {
    return "data_dir " + dir + " is in use by another edge" +
           (holder.empty() ? std::string() : " (pid " + holder + ")") +
           "; stop it or choose another data_dir";
  });
  lock->recordPid(path);
  return lock;
}

/// The SQLite database file itself, for two edges whose data directories differ but whose
/// `store` names the same file. flock and the POSIX locks SQLite takes do not touch each other
/// on Linux; the descriptor stays open until the store has closed, since closing any descriptor
/// of the file would drop SQLite's own locks.
std::unique_ptr<ExclusiveLock> lockStoreFile(const std::string& path) {
  return std::make_unique<ExclusiveLock>(path, [&path](const std::string&) {
    return "store " + path + " is in use by another edge; stop it or give this one its own store";
  });
}

// Bytes a body may need beyond its own size in one packet to the server.
constexpr int64_t kPacketOverheadBytes = 64 << 10;

/// A body larger than the server's max_allowed_packet is refused by the server after it was
/// accepted here, so such a limit would turn valid webhooks into 503s. Said at start instead.
void requirePacketRoom(const store::MySqlStore& store, size_t maxBodyBytes) {
  const int64_t packet = store.maxPacketBytes();
  const int64_t needed = static_cast<int64_t>(maxBodyBytes) + kPacketOverheadBytes;
  if (packet >= needed) return;
  throw ConfigError("ingest.max_body_bytes = " + std::to_string(maxBodyBytes) +
                    " needs a database max_allowed_packet of at least " + std::to_string(needed) +
                    " bytes, but the server's is " + std::to_string(packet) +
                    "; raise max_allowed_packet on the server or lower ingest.max_body_bytes");
}

}  // namespace

struct EdgeServer::Parts {
  // Declared first, so destroyed last: the locks outlive the store.
  std::unique_ptr<ExclusiveLock> lock;
  std::unique_ptr<ExclusiveLock> storeLock;
  std::shared_ptr<crypto::KeyHolder> keys;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<KeyWatcher> keyWatcher;
  std::unique_ptr<plugin::Registry> registry;
  std::unique_ptr<plugin::DirectoryWatcher> pluginWatcher;
  std::unique_ptr<StreamHub> hub;       ///< relays' streams
  std::unique_ptr<StreamHub> watchHub;  ///< dashboards' streams of summaries
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<AccountCache> accounts;
  std::unique_ptr<HookLifecycle> lifecycle;
  std::unique_ptr<IngestLimiter> limiter;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<EdgeStatus> status;
  std::unique_ptr<ReplayJobs> replayJobs;
  std::unique_ptr<Explainer> explainer;
  EdgeServices services;
  std::unique_ptr<Router> router;
  ConnectionSet connections;
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::TCPServer> server;
  uint16_t port = 0;
  bool running = false;
};

EdgeServer::EdgeServer(EdgeConfig config)
    : config_(std::move(config)), parts_(std::make_unique<Parts>()) {}

EdgeServer::~EdgeServer() {
  try {
    stop();
  } catch (...) {
    // A destructor must not throw; stop() already logged what went wrong.
  }
}

void EdgeServer::start() {
  auto& p = *parts_;
  if (p.running) return;

  // A relay that hangs up mid-write must cost an error code, not the process.
  ::signal(SIGPIPE, SIG_IGN);

  // Everything that can be checked without the store is checked before anything is created in
  // the data directory, so that a start that fails on its settings or its port leaves that
  // directory as it was (#5). First the plugin directory: a missing default one means a bare
  // edge until it appears, a missing chosen one a mistake.
  std::error_code ec;
  const bool pluginDirPresent = std::filesystem::is_directory(config_.pluginDir, ec);
  if (!pluginDirPresent && config_.pluginDirGiven) {
    throw ConfigError("plugin_dir " + config_.pluginDir + " is not a directory");
  }

  // A key ring from a file or a variable is read now; only the generated one lives in the data
  // directory.
  if (keySource(config_).kind != KeySource::Kind::kGenerated) p.keys = loadKeys(config_);

  // With a certificate every connection speaks TLS 1.3; files that do not load are a
  // configuration error.
  const bool tls = !config_.tlsCert.empty();
  Poco::Net::Context::Ptr tlsContext;
  if (tls) tlsContext = serverTlsContext(config_.tlsCert, config_.tlsKey);

  // The port is taken now and listened on once the edge can answer. SO_REUSEADDR lets a
  // restarted edge bind past old TIME_WAIT connections; SO_REUSEPORT (which POCO's two-argument
  // bind also sets) would let a second edge share the port and take half the traffic, so it
  // stays off and the second one fails "already in use".
  const auto cannotListen = [this](const Poco::Exception& e) {
    return StartError("could not listen on " + config_.listenHost + ":" +
                          std::to_string(config_.listenPort) + ": " + e.displayText(),
                      Poco::Util::Application::EXIT_UNAVAILABLE);
  };
  RecordingServerSocket socket(tlsContext);
  try {
    socket.bind(Poco::Net::SocketAddress(config_.listenHost, config_.listenPort), true, false);
  } catch (const Poco::Exception& e) {
    throw cannotListen(e);
  }

  // A SQLite file outside the data directory that another edge holds is refused before this
  // edge makes its data directory. One inside it is locked after the directory's own lock,
  // whose refusal names the other edge's PID.
  const bool mysql = config_.storeKind == StoreKind::kMySql;
  if (!mysql) {
    namespace fs = std::filesystem;
    const fs::path storeDir =
        fs::weakly_canonical(fs::absolute(config_.sqlitePath, ec), ec).parent_path();
    const fs::path dataDir = fs::weakly_canonical(fs::absolute(config_.dataDir, ec), ec);
    if (storeDir != dataDir && fs::is_directory(storeDir, ec)) {
      p.storeLock = lockStoreFile(config_.sqlitePath);
    }
  }

  // The data directory exists with either store: later features keep files in it.
  try {
    createDataDir(config_.dataDir);
    if (!mysql) {
      p.lock = lockDataDir(config_.dataDir);
      if (!p.storeLock) p.storeLock = lockStoreFile(config_.sqlitePath);
    }
  } catch (...) {
    p.storeLock.reset();
    p.lock.reset();
    throw;
  }

  // config_.store names the store without its password, and the backends' messages never
  // hold one.

  // Contents are encrypted at rest under the ring, which must be there before the store opens.
  try {
    if (!p.keys) p.keys = loadKeys(config_);
  } catch (...) {
    p.storeLock.reset();
    p.lock.reset();
    throw;
  }
  try {
    if (mysql) {
      store::MySqlOptions options = config_.mysql;
      options.keys = p.keys;
      auto shared = store::MySqlStore::open(options);
      requirePacketRoom(*shared, config_.maxBodyBytes);
      p.store = std::move(shared);
    } else {
      p.store = store::openSqliteStore(config_.sqlitePath, p.keys);
    }
  } catch (const ConfigError&) {
    p.storeLock.reset();
    p.lock.reset();
    throw;
  } catch (const std::exception& e) {
    p.storeLock.reset();
    p.lock.reset();

    // The backends' messages already say what could not be opened; name the store once.
    std::string reason = e.what();
    const std::string prefix = "could not open store ";
    if (reason.rfind(prefix, 0) == 0) reason = reason.substr(prefix.size());
    throw StartError("could not open store " + config_.store + ": " + reason,
                     Poco::Util::Application::EXIT_IOERR);
  }

  // The store must agree with the ring on the active key before anything is written, and a
  // first start gets its owner account.
  try {
    if (p.keys) prepareStore(*p.store, *p.keys, config_);
    p.auth = std::make_unique<Authenticator>(*p.store, config_);
  } catch (const ConfigError&) {
    p.store.reset();
    p.storeLock.reset();
    p.lock.reset();
    throw;
  } catch (const std::exception& e) {
    p.store.reset();
    p.storeLock.reset();
    p.lock.reset();
    throw StartError("could not prepare store " + config_.store + ": " + e.what(),
                     Poco::Util::Application::EXIT_IOERR);
  }

  p.registry = std::make_unique<plugin::Registry>();
  if (pluginDirPresent) {
    p.registry->loadDirectory(config_.pluginDir);
  } else {
    edgeLog().warning("plugin directory missing, no provider will verify signatures dir=%s",
                      config_.pluginDir);
  }

  StreamHub::Options hubOptions;
  hubOptions.heartbeat = config_.heartbeat;
  p.hub = std::make_unique<StreamHub>(*p.store, hubOptions);
  p.hub->start();

  // Dashboards watch on a hub of their own: summaries of every event, no contents.
  StreamHub::Options watchOptions = hubOptions;
  watchOptions.summaries = true;
  p.watchHub = std::make_unique<StreamHub>(*p.store, watchOptions);
  p.watchHub->start();

  // The hub needs every committed event once and in id order, which only the store knows;
  // request threads finish their appends in any order. SQLite's single writer hands over
  // whole events; a shared MySQL store announces every edge's events, which the hub then
  // reads. Each backend calls only its own listener.
  StreamHub* hub = p.hub.get();
  StreamHub* watchHub = p.watchHub.get();
  if (mysql) {
    p.store->setNoticeListener([hub, watchHub](const store::EventNotice& notice) {
      hub->notify(notice);
      watchHub->notify(notice);
    });
  } else {
    p.store->setCommitListener([hub, watchHub](const store::EventRecord& event) {
      hub->publish(event);
      watchHub->publish(event);
    });
  }

  // Listen before anything can announce the address, so that port 0 resolves to the real one.
  try {
    socket.listen(kListenBacklog);
  } catch (const Poco::Exception& e) {
    p.store->setCommitListener({});
    p.store->setNoticeListener({});
    p.hub->stop();
    p.watchHub->stop();
    p.store.reset();
    p.storeLock.reset();
    p.lock.reset();
    throw cannotListen(e);
  }
  p.port = socket.address().port();
  if (tls) edgeLog().information("tls enabled protocol=TLSv1.3 cert=%s", config_.tlsCert);

  // Background upkeep: key reloads, hook expiry, relay leases, revocations.
  p.keyWatcher = std::make_unique<KeyWatcher>(*p.store, p.keys, config_);
  p.keyWatcher->start();
  p.lifecycle = std::make_unique<HookLifecycle>(*p.store, *p.hub, config_, p.watchHub.get());
  p.lifecycle->start();
  p.accounts = std::make_unique<AccountCache>(*p.store);
  p.limiter = std::make_unique<IngestLimiter>(config_);
  p.metrics = std::make_unique<Metrics>(ANM_VERSION);
  p.status = std::make_unique<EdgeStatus>(*p.store, *p.registry, *p.hub);
  p.replayJobs = std::make_unique<ReplayJobs>(*p.store);
  p.explainer = std::make_unique<Explainer>(config_.explain);

  // Plugin files copied in, replaced or removed later take effect without a restart, and so
  // does a directory that appears later.
  if (config_.watchPlugins) {
    p.pluginWatcher = std::make_unique<plugin::DirectoryWatcher>(
        *p.registry, config_.pluginDir, plugin::DirectoryWatcher::Options{});
    p.pluginWatcher->start();
  }

  p.services.config = &config_;
  p.services.store = p.store.get();
  p.services.registry = p.registry.get();
  p.services.hub = p.hub.get();
  p.services.watchHub = p.watchHub.get();
  p.services.auth = p.auth.get();
  p.services.accounts = p.accounts.get();
  p.services.limiter = p.limiter.get();
  p.services.metrics = p.metrics.get();
  p.services.status = p.status.get();
  p.services.replayJobs = p.replayJobs.get();
  p.services.explainer = p.explainer.get();
  p.services.maxBodyBytes = config_.maxBodyBytes;
  p.services.publicUrl = config_.publicUrl;
  if (p.services.publicUrl.empty()) {
    const bool v6 = config_.listenHost.find(':') != std::string::npos;
    const std::string host = v6 ? "[" + config_.listenHost + "]" : config_.listenHost;
    p.services.publicUrl =
        std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(p.port);
  }
  p.router = std::make_unique<Router>(p.services);

  // NOTE: POCO's Ptr types take ownership of the raw `new`s below.
  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setKeepAlive(true);
  params->setMaxThreads(config_.maxThreads);
  params->setMaxQueued(config_.maxQueued);
  params->setTimeout(Poco::Timespan(config_.httpTimeout.count() * 1000));
  params->setSoftwareVersion(std::string("anonymily-edge/") + ANM_VERSION);
  p.pool = std::make_unique<Poco::ThreadPool>(1, config_.maxThreads, kThreadIdleSeconds);
  p.server = std::make_unique<Poco::Net::TCPServer>(
      new EdgeConnectionFactory(params, *p.router, p.connections, config_.requestTimeout), *p.pool,
      socket, params);
  p.connections.setServer(p.server.get());
  p.server->start();
  p.status->setPluginsLoaded();
  p.running = true;
}

void EdgeServer::stop() { stop(config_.shutdownTimeout); }

void EdgeServer::stop(std::chrono::milliseconds within) {
  auto& p = *parts_;
  if (!p.running) return;
  p.running = false;
  const auto deadline = std::chrono::steady_clock::now() + within;
  auto remaining = [deadline] {
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()),
                    std::chrono::milliseconds(0));
  };

  // Order matters: no new connections and no more readiness, then the relays are told to go,
  // then the requests in flight finish, and the store goes last so that every acknowledged
  // event is on disk.
  p.status->setStopping();
  p.server->stop();
  p.connections.stopAll();
  if (p.pluginWatcher) p.pluginWatcher->stop();
  const size_t streamsLeft = p.hub->drain(remaining());
  p.watchHub->drain(remaining());
  if (!p.connections.waitUntilEmpty(remaining())) {
    const size_t cut = p.connections.abortAll();
    edgeLog().warning(
        "requests still running at the shutdown deadline, cut off count=%z "
        "timeout_ms=%Ld",
        cut, static_cast<Poco::Int64>(within.count()));
  }
  p.pool->joinAll();
  p.connections.setServer(nullptr);
  p.server.reset();
  p.replayJobs.reset();
  p.lifecycle->stop();
  p.keyWatcher->stop();
  p.store->setCommitListener({});
  p.store->setNoticeListener({});
  p.hub->stop();
  p.watchHub->stop();
  p.pluginWatcher.reset();
  p.lifecycle.reset();
  p.keyWatcher.reset();
  p.hub.reset();
  p.watchHub.reset();
  p.limiter.reset();
  p.accounts.reset();
  p.auth.reset();
  p.store.reset();
  p.keys.reset();
  p.storeLock.reset();
  p.lock.reset();
  edgeLog().information("edge stopped streams_cut=%z", streamsLeft);
}

plugin::SyncResult EdgeServer::reloadPlugins() {
  auto& p = *parts_;
  if (!p.running) return {};

  // Read whenever it is there, also when it was missing at start (#5); a directory that is
  // gone leaves the plugins as they are, as the watcher does.
  std::error_code ec;
  if (!std::filesystem::is_directory(config_.pluginDir, ec)) {
    edgeLog().warning("plugin directory missing, plugins unchanged dir=%s plugins=%z",
                      config_.pluginDir, p.registry->list().size());
    return {};
  }
  return p.registry->sync(config_.pluginDir);
}

uint16_t EdgeServer::port() const { return parts_->port; }

const std::string& EdgeServer::publicUrl() const { return parts_->services.publicUrl; }

size_t EdgeServer::pluginCount() const {
  return parts_->registry ? parts_->registry->list().size() : 0;
}

}  // namespace anm::edge
