// core/edge/config.h: the edge's settings, read from a properties file and the command line.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/store/mysql_store.h"

namespace anm::edge {

/// A setting that cannot be used. The message names the key and the value; the edge prints it
/// and exits with 78 (EX_CONFIG).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bounds of the numeric settings, also listed by `anonymily-edge --help`.
inline constexpr size_t kMaxBodyBytesLimit = 256u << 20;
inline constexpr int kMaxThreadsLimit = 1024;
inline constexpr int kMaxQueuedLimit = 100000;
inline constexpr int64_t kMinHeartbeatMs = 100;
inline constexpr int64_t kMaxHeartbeatMs = 3600000;
/// Bounds of http.timeout_ms, the limit on each read and write while a request is in flight.
inline constexpr int64_t kMinHttpTimeoutMs = 100;
inline constexpr int64_t kMaxHttpTimeoutMs = 600000;
/// Bounds of store.pool_size, the read connections of a mysql store (it opens 2 more of its own).
inline constexpr int64_t kMinStorePoolSize = 1;
inline constexpr int64_t kMaxStorePoolSize = 256;
/// Bounds of store.poll_interval_ms, how often a mysql store looks for other edges' events.
inline constexpr int64_t kMinStorePollMs = 1;
inline constexpr int64_t kMaxStorePollMs = 1000;
/// The variable a mysql store's password is read from when neither the URL nor
/// store.password_file gives one and store.password_env names no other.
inline constexpr char kDefaultStorePasswordEnv[] = "ANONYMILY_STORE_PASSWORD";

/// Bounds of auth.jwt_ttl_s: access tokens live at most 15 minutes.
inline constexpr int64_t kMinJwtTtlS = 60;
inline constexpr int64_t kMaxJwtTtlS = 900;
/// Bounds of auth.session_max_s: how long a dashboard session may be renewed after its sign-in.
inline constexpr int64_t kMinSessionMaxS = 60;
inline constexpr int64_t kMaxSessionMaxS = 30 * 24 * 3600;
/// Bounds of hooks.anonymous_ttl_s, how long an anonymous hook outlives its last relay stream.
inline constexpr int64_t kMinAnonymousTtlS = 1;
inline constexpr int64_t kMaxAnonymousTtlS = 30 * 86400;
/// Upper bound of the ingest rate settings (webhooks per second, and bursts).
inline constexpr int64_t kMaxIngestRate = 1000000;
/// Bounds of http.request_timeout_ms, the whole time a request may take to arrive.
inline constexpr int64_t kMinRequestTimeoutMs = 1000;
inline constexpr int64_t kMaxRequestTimeoutMs = 3600000;
/// Bounds of shutdown.timeout_ms, the longest an edge takes to stop once asked to.
inline constexpr int64_t kMinShutdownTimeoutMs = 100;
inline constexpr int64_t kMaxShutdownTimeoutMs = 600000;
/// The variable the encryption key ring is read from when encryption.key_file is not set and
/// encryption.keys_env names no other.
inline constexpr char kDefaultKeysEnv[] = "ANONYMILY_ENCRYPTION_KEYS";

/// Bounds of explain.per_hour and explain.timeout_ms (the model-based explanation).
inline constexpr int64_t kMaxExplainPerHour = 100000;
inline constexpr int64_t kMinExplainTimeoutMs = 1000;
inline constexpr int64_t kMaxExplainTimeoutMs = 300000;

/// The optional model-based explanation of failed events (docs/diagnosis.md): off until the
/// operator names an OpenAI-compatible endpoint.
struct ExplainConfig {
  std::string url;  ///< base URL, e.g. https://api.example.com/v1; "" is off
  std::string model = "gpt-4o-mini";
  std::string key;       ///< the API key, from explain.key_file or explain.key_env
  int64_t perHour = 30;  ///< explanations asked of the model per account (or hook)
  std::chrono::milliseconds timeout{20000};

  bool enabled() const { return !url.empty(); }
};

/// Which backend `store` names.
enum class StoreKind { kSqlite, kMySql };

/// Everything the edge needs to start, already checked.
struct EdgeConfig {
  std::string listenHost = "127.0.0.1";
  uint16_t listenPort = 8080;
  std::string dataDir = "./anonymily-data";
  std::string pluginDir;        ///< empty: no plugins are loaded
  bool pluginDirGiven = false;  ///< set explicitly, so a missing directory is an error
  std::string publicUrl;        ///< empty: http://<bound address>
  /// "sqlite:<path>", or the mysql URL with any password in it replaced by ***: the text
  /// for messages and logs.
  std::string store;
  std::string sqlitePath;  ///< the path part of a sqlite `store`
  StoreKind storeKind = StoreKind::kSqlite;
  /// With a mysql store: the endpoint (password included, from the URL, store.password_file or
  /// the environment), store.pool_size and store.poll_interval_ms; the rest keep
  /// store::MySqlOptions' defaults. Unused with a sqlite store.
  store::MySqlOptions mysql;
  size_t maxBodyBytes = 10485760;
  int maxThreads = 64;
  int maxQueued = 64;
  /// A request whose client sends or reads nothing for this long is answered 408 and closed.
  std::chrono::milliseconds httpTimeout{10000};
  std::chrono::milliseconds heartbeat{15000};
  std::string logLevel = "information";

  /// TLS: with both set, every listener speaks TLS 1.3 only. Without, plain HTTP is allowed
  /// only on a loopback listen address or with behindProxy.
  std::string tlsCert;
  std::string tlsKey;
  /// A TLS-terminating proxy sits in front: plain HTTP on any address, and the client address
  /// of audit entries and rate limits is the last X-Forwarded-For entry.
  bool behindProxy = false;

  /// Where the encryption key ring comes from: a key file (mode 0600), else the variable
  /// keysEnv names, else <data_dir>/encryption.keys (generated on the first start).
  std::string keyFile;
  std::string keysEnv = kDefaultKeysEnv;
  bool keysEnvGiven = false;  ///< encryption.keys_env was set, so the variable must exist

  /// Access tokens (JWTs) issued for personal access tokens.
  std::chrono::seconds jwtTtl{900};
  /// A dashboard session is renewed up to this long after its sign-in, then signed in again.
  std::chrono::seconds sessionMax{12 * 3600};
  std::string jwtIssuer = "anonymily";
  /// Whether anyone may create an anonymous hook (POST /api/v1/hooks without signing in).
  bool anonymousHooks = true;
  /// An anonymous hook is deleted this long after its last relay stream closed.
  std::chrono::seconds anonymousTtl{3600};

  /// Ingest rate limits, as token buckets: sustained webhooks per second and burst size, per
  /// hook and per client address. A rate of 0 turns that limit off.
  int64_t ratePerHook = 500;
  int64_t burstPerHook = 1000;
  int64_t ratePerAddress = 1000;
  int64_t burstPerAddress = 2000;

  /// The whole time a request's head and body may take to arrive, however steadily a slow
  /// sender trickles bytes; past it the request gets 408.
  std::chrono::milliseconds requestTimeout{60000};

  /// On SIGTERM the edge stops accepting, lets the requests in flight finish and tells relays
  /// to reconnect; whatever is still running when this time is up is cut off. Kept below the
  /// service manager's stop timeout (TimeoutStopSec=) so that the edge exits on its own.
  std::chrono::milliseconds shutdownTimeout{15000};
  /// Whether the plugin directory is watched, so that plugin files copied in, replaced or
  /// removed take effect without a restart. Either way SIGHUP reloads them.
  bool watchPlugins = true;

  /// The model-based explanation; off by default.
  ExplainConfig explain;
};

/// The keys a configuration file may hold, with their values as text.
using ConfigValues = std::map<std::string, std::string>;

/// Reads a configuration file: one `key = value` per line (blanks around key and value are
/// dropped; the value is the rest of the line), blank lines and lines whose first non-blank
/// character is `#` or `!` are comments. Throws ConfigError, naming the line, when the file
/// cannot be read, a line has no '=' or no key, a key is unknown (a typo must not be ignored
/// silently) or a key is given twice. With `lineOfKey`, also says on which line each key was.
ConfigValues readConfigFile(const std::string& path,
                            std::map<std::string, size_t>* lineOfKey = nullptr);

/// `message` of a ConfigError, with the file and line of the value it refused when that value
/// came from the file: the line of the key in `lineOfKey` that the message names first.
std::string placeConfigError(const std::string& message, const std::string& path,
                             const std::map<std::string, size_t>& lineOfKey);

/// Builds the configuration from `values` (file values overlaid with command-line values).
/// `exeDir` is the directory of the running executable; the default plugin directory is
/// `<exeDir>/../lib/anonymily/plugins`. Throws ConfigError for any value that is out of range
/// or malformed. `public_url` must be http:// or https:// with a host, an optional port 1..65535
/// and path, and no user information, query or fragment; trailing slashes are dropped.
///
/// `store` is `sqlite:PATH` or `mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (optionally
/// `?socket=/path/mysqld.sock`, see store::parseMySqlUrl). A mysql password comes from exactly
/// one place: the URL, `store.password_file` (a file of mode 0600 or stricter, non-empty, one
/// trailing newline dropped), the variable `store.password_env` names, or, when none of these
/// is set, kDefaultStorePasswordEnv if it is set. Two of the first three at once are refused as
/// ambiguous, and so are the mysql-only keys (`store.pool_size`, `store.poll_interval_ms`,
/// `store.password_file`, `store.password_env`) with a sqlite store. No message repeats a
/// password.
///
/// `use` kAdmin is for `anonymily-edge admin`: every value is checked as for the server, but
/// what only a serving edge reads is not looked up (the model explanation's API key from
/// `explain.key_file` or `explain.key_env`), so that an admin command needs no setting it never
/// uses (#4).
enum class ConfigUse { kServer, kAdmin };
EdgeConfig parseConfig(const ConfigValues& values, const std::string& exeDir,
                       ConfigUse use = ConfigUse::kServer);

/// `store` as it may be shown: a URL's password (between the user's ':' and the last '@')
/// becomes ***; anything else is returned unchanged.
std::string redactStore(const std::string& store);

/// True when `host` (a listen address) is a loopback address or "localhost".
bool isLoopbackHost(const std::string& host);

/// True for the keys parseConfig understands.
bool isKnownConfigKey(const std::string& key);

/// Every key parseConfig understands, so that what describes them (the installed edge.conf) can
/// be checked against the parser.
std::vector<std::string> knownConfigKeys();

}  // namespace anm::edge
