// core/edge/bootstrap.cpp: what an edge sets up around its store: keys, the owner account.
// SPDX-License-Identifier: Apache-2.0
#include "core/edge/bootstrap.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/Logger.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/edge/auth.h"
#include "core/edge/config.h"
#include "core/edge/secrets.h"

namespace anm::edge {
namespace {

Poco::Logger& keyLog() { return Poco::Logger::get("anm.edge.keys"); }

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string keyIds(const crypto::KeyRing& ring) {
  std::string ids;
  for (const auto& key : ring.keys()) ids += (ids.empty() ? "" : ", ") + key.id;
  return ids;
}

std::string checkAad(const std::string& keyId) { return std::string("encryption.check|") + keyId; }

/// Writes `text` to a new file `path` (mode 0600) that appears whole or not at all and never
/// replaces an existing one: a temporary file, synced, then hard-linked to its name (link fails
/// when the name exists, where rename would overwrite). Returns false when `path` exists;
/// throws std::runtime_error naming the path for every other failure.
bool writeNewFile(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  ::unlink(temp.c_str());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error("could not create " + temp + ": " + std::strerror(errno));
  }

  // The whole text reaches the disk before the name points at it.
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      throw std::runtime_error("could not write " + temp + ": " + std::strerror(error));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error("could not write " + temp + ": " + std::strerror(error));
  }

  // Publish under the final name unless something is there already.
  const int linked = ::link(temp.c_str(), path.c_str());
  const int error = errno;
  ::unlink(temp.c_str());
  if (linked == 0) return true;
  if (error == EEXIST) return false;
  throw std::runtime_error("could not create " + path + ": " + std::strerror(error));
}

bool fileExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

crypto::KeyRing loadKeyFile(const std::string& path) {
  try {
    return crypto::KeyRing::loadFile(path);
  } catch (const crypto::KeyError& e) {
    throw ConfigError(e.what());
  }
}

/// The first key of a new data directory, written so that it never replaces one that exists:
/// when two processes race, both end up with the file the winner wrote.
crypto::KeyRing generateKeyFile(const std::string& path) {
  std::string line = crypto::KeyRing::newKeyLine(kFirstKeyId);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  const std::string text =
      "# Encryption keys of this anonymily edge's store, one ID:BASE64 per line; the last one\n"
      "# is used for new records unless the store names another. Back this file up apart\n"
      "# from the data: without it no stored webhook can be read.\n" +
      line + "\n";
  bool created = false;
  try {
    created = writeNewFile(path, text);
  } catch (const std::exception& e) {
    throw ConfigError(std::string("could not generate the encryption key: ") + e.what());
  }
  if (created) {
    keyLog().information("encryption key generated path=%s key_id=%s", path,
                         std::string(kFirstKeyId));
    keyLog().warning(
        "back up the encryption key apart from the data: losing it loses every stored webhook "
        "path=%s",
        path);
  }
  return loadKeyFile(path);
}

void requireCheck(store::Store& store, const crypto::Key& key, const std::string& source,
                  bool writeWhenMissing) {
  const std::string name = kKeyCheckSettingPrefix + key.id;
  std::optional<std::string> stored = store.getSetting(name);
  if (!stored && writeWhenMissing) stored = store.putSettingIfAbsent(name, keyCheckValue(key));
  if (!stored || keyCheckMatches(key, *stored)) return;
  throw ConfigError("encryption key " + key.id + " from " + source + " is not the key " + key.id +
                    " this store was encrypted with; give the edge the store's key ring");
}

// Key bytes are compared in constant time: how long a comparison takes must not tell anyone
// how much of a key they guessed.
bool sameRing(const crypto::KeyRing& a, const crypto::KeyRing& b) {
  if (a.keys().size() != b.keys().size() || a.active().id != b.active().id) return false;
  for (size_t i = 0; i < a.keys().size(); ++i) {
    if (a.keys()[i].id != b.keys()[i].id) return false;
    if (!equalConstantTime(a.keys()[i].bytes, b.keys()[i].bytes)) return false;
  }
  return true;
}

/// The owner account of a new store, so that someone can sign in at all.
void createOwnerAccount(store::Store& store, const EdgeConfig& config) {
  if (!store.listAccounts().empty()) return;

  // A token file left from an earlier store is never replaced: whoever holds it may still need
  // it, and the admin command can make a token for any account.
  const std::string path = config.dataDir + "/" + kOwnerTokenFileName;
  if (fileExists(path)) {
    keyLog().warning(
        "store has no account but the owner token file exists, not creating the owner account; "
        "move the file away and restart, or use anonymily-edge admin accounts create path=%s",
        path);
    return;
  }

  const int64_t now = nowMs();
  store::AccountRecord account;
  account.id = newRecordId("acc_");
  account.name = kOwnerName;
  account.plan = store::Plan::kPro;
  account.createdAtMs = now;
  try {
    store.createAccount(account);
  } catch (const store::ConflictError&) {
    // Another edge on the same database won the race and wrote its own token file.
    return;
  }

  // This account is the operator's: edge-wide admin entries go to its audit log.
  store.putSettingIfAbsent(kOperatorAccountSetting, account.id);

  store::MemberRecord member;
  member.id = newRecordId("mem_");
  member.accountId = account.id;
  member.name = kOwnerName;
  member.owner = true;
  member.createdAtMs = now;
  store.createMember(member);

  const std::string pat = newPersonalToken();
  store::TokenRecord token;
  token.id = newRecordId("tok_");
  token.memberId = member.id;
  token.accountId = account.id;
  token.name = kOwnerName;
  token.hash = sha256Hex(pat);
  token.createdAtMs = now;
  store.createToken(token);

  store::AuditRecord audit;
  audit.atMs = now;
  audit.accountId = account.id;
  audit.actor = "edge";
  audit.action = "account.create";
  audit.detail = "owner account of a new store, plan=pro member=owner";
  audit.remote = "local";
  store.appendAudit(audit);

  // The token exists only in memory until this file holds it.
  const std::string recovery =
      "; the owner account exists: make a token with anonymily-edge admin tokens create owner";
  try {
    if (!writeNewFile(path, pat + "\n")) {
      throw std::runtime_error(path + " appeared while the owner account was created");
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("could not write the owner token: ") + e.what() +
                             recovery);
  }
  Poco::Logger::get("anm.edge")
      .information("owner account created account=%s token_file=%s", account.name, path);
}

}  // namespace

std::string KeySource::describe() const {
  switch (kind) {
    case Kind::kKeyFile:
      return "key file " + path;
    case Kind::kVariable:
      return "variable " + variable;
    default:
      return "key file " + path + " (generated on the first start)";
  }
}

KeySource keySource(const EdgeConfig& config) {
  KeySource source;
  if (!config.keyFile.empty()) {
    source.kind = KeySource::Kind::kKeyFile;
    source.path = config.keyFile;
    return source;
  }
  if (std::getenv(config.keysEnv.c_str()) != nullptr) {
    source.kind = KeySource::Kind::kVariable;
    source.variable = config.keysEnv;
    return source;
  }
  if (config.keysEnvGiven) {
    throw ConfigError("encryption.keys_env names the variable " + config.keysEnv +
                      ", which is not set");
  }
  source.kind = KeySource::Kind::kGenerated;
  source.path = config.dataDir + "/" + kGeneratedKeyFileName;
  return source;
}

std::shared_ptr<crypto::KeyHolder> loadKeys(const EdgeConfig& config) {
  return loadKeys(config, true);
}

std::shared_ptr<crypto::KeyHolder> loadKeys(const EdgeConfig& config, bool generateMissing) {
  const KeySource source = keySource(config);
  switch (source.kind) {
    case KeySource::Kind::kKeyFile:
      return std::make_shared<crypto::KeyHolder>(loadKeyFile(source.path));
    case KeySource::Kind::kVariable:
      try {
        const char* text = std::getenv(source.variable.c_str());
        return std::make_shared<crypto::KeyHolder>(
            crypto::KeyRing::parse(text ? text : "", source.describe()));
      } catch (const crypto::KeyError& e) {
        throw ConfigError(e.what());
      }
    default:
      break;
  }
  if (fileExists(source.path)) {
    return std::make_shared<crypto::KeyHolder>(loadKeyFile(source.path));
  }
  if (!generateMissing) {
    throw ConfigError("no encryption keys at " + source.path +
                      ": start the edge once to generate them, or set encryption.key_file or " +
                      config.keysEnv);
  }
  return std::make_shared<crypto::KeyHolder>(generateKeyFile(source.path));
}

std::string operatorAccountId(store::Store& store) {
  if (auto recorded = store.getSetting(kOperatorAccountSetting)) return *recorded;

  // A store whose first start came before the setting: that start named its account `owner`.
  const auto owner = store.findAccountByName(kOwnerName);
  if (!owner) return "";
  return store.putSettingIfAbsent(kOperatorAccountSetting, owner->id);
}

std::string keyCheckValue(const crypto::Key& key) {
  const std::string sealed = crypto::seal(key, kKeyCheckText, checkAad(key.id));
  std::ostringstream out;
  Poco::Base64Encoder encoder(out);
  encoder.rdbuf()->setLineLength(0);
  encoder << sealed;
  encoder.close();
  return out.str();
}

bool keyCheckMatches(const crypto::Key& key, const std::string& value) {
  try {
    std::istringstream in(value);
    Poco::Base64Decoder decoder(in);
    const std::string sealed((std::istreambuf_iterator<char>(decoder)),
                             std::istreambuf_iterator<char>());
    return crypto::open(key, sealed, checkAad(key.id)) == kKeyCheckText;
  } catch (const std::exception&) {
    return false;
  }
}

std::string alignActiveKey(store::Store& store, crypto::KeyHolder& keys, const EdgeConfig& config) {
  const std::string source = keySource(config).describe();
  crypto::KeyRing ring = *keys.ring();

  // The first edge of a store records its active key; every later one adopts the recorded id.
  std::string active;
  try {
    active = store.putSettingIfAbsent(kActiveKeySetting, ring.active().id);
  } catch (const std::exception& e) {
    // The backends report a seal that does not open as a StoreError like any other; a store
    // that answers a query on plain columns is reachable, so then the keys are what is wrong.
    if (dynamic_cast<const crypto::IntegrityError*>(&e) == nullptr) {
      bool reachable = true;
      try {
        store.listAccounts();
      } catch (const std::exception&) {
        reachable = false;
      }
      if (!reachable) throw;
    }
    throw ConfigError(std::string("could not read the store's active encryption key with the "
                                  "keys ") +
                      keyIds(ring) + " from " + source + " (" + e.what() +
                      "); give the edge the key ring the store was encrypted with");
  }
  if (ring.find(active) == nullptr) {
    throw ConfigError("the store encrypts with key " + active +
                      ", which this edge does not hold (it has " + keyIds(ring) + " from " +
                      source + "); add key " + active + " there");
  }
  ring.setActive(active);

  // Same id, other bytes: refused before the edge writes a record nobody else can read.
  requireCheck(store, ring.active(), source, true);
  for (const auto& key : ring.keys()) {
    if (key.id != active) requireCheck(store, key, source, false);
  }
  keys.replace(std::move(ring));
  return active;
}

void prepareStore(store::Store& store, crypto::KeyHolder& keys, const EdgeConfig& config) {
  alignActiveKey(store, keys, config);
  createOwnerAccount(store, config);
}

class KeyWatcher::Impl {
 public:
  Impl(store::Store& store, std::shared_ptr<crypto::KeyHolder> keys, const EdgeConfig& config)
      : store_(store), keys_(std::move(keys)), source_(keySource(config)) {}

  void start() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void tick() {
    // A changed key file (a rotation appended a key) is read whole; its new keys join the ring
    // at once, so that the store can open what was sealed under them (the active key id
    // itself, once a rotation switched), while the active key stays until the store names
    // another.
    if (source_.isFile()) reloadFile();
    const auto current = keys_->ring();

    // The store says which key new records go under.
    std::string desired = current->active().id;
    try {
      if (auto stored = store_.getSetting(kActiveKeySetting)) desired = *stored;
      clear("setting");
    } catch (const std::exception& e) {
      report("setting", std::string("could not read the active encryption key from the store ") +
                            "reason=\"" + e.what() + "\"");
      return;
    }
    if (desired == current->active().id) {
      clear("active");
      return;
    }

    // A key this edge lacks, or one whose check fails, is never made active.
    const crypto::Key* wanted = current->find(desired);
    if (wanted == nullptr) {
      report("active",
             "the store's active encryption key is not among this edge's keys, new "
             "records stay under the old key key_id=" +
                 desired + " active=" + current->active().id + " source=\"" + source_.describe() +
                 "\"");
      return;
    }
    try {
      const auto check = store_.getSetting(kKeyCheckSettingPrefix + desired);
      if (check && !keyCheckMatches(*wanted, *check)) {
        report("active",
               "encryption key differs from the store's, keeping the old key "
               "key_id=" +
                   desired + " active=" + current->active().id + " source=\"" + source_.describe() +
                   "\"");
        return;
      }
    } catch (const std::exception& e) {
      report("setting", std::string("could not read the key check from the store ") + "reason=\"" +
                            e.what() + "\"");
      return;
    }
    crypto::KeyRing next = *current;
    next.setActive(desired);
    keys_->replace(std::move(next));
    clear("active");
    keyLog().information("encryption key activated key_id=%s", desired);
  }

 private:
  void reloadFile() {
    const std::string signature = fileSignature();
    if (signature == signature_) return;
    const auto current = keys_->ring();
    crypto::KeyRing next = *current;
    try {
      next = crypto::KeyRing::loadFile(source_.path);
    } catch (const std::exception& e) {
      report("file", std::string("could not reload encryption keys, keeping the old ones ") +
                         "source=\"" + source_.describe() + "\" reason=\"" + e.what() + "\"");
      return;
    }
    signature_ = signature;

    // Records under a key whose bytes changed, or under the active key if it went, would
    // become unreadable: keep the old ring then.
    for (const auto& key : next.keys()) {
      const crypto::Key* known = current->find(key.id);
      if (known == nullptr || equalConstantTime(known->bytes, key.bytes)) continue;
      report("file",
             "the key file holds another key under a known id, keeping the old keys "
             "key_id=" +
                 key.id + " source=\"" + source_.describe() + "\"");
      return;
    }
    if (next.find(current->active().id) == nullptr) {
      report("file",
             "the key file no longer holds the active encryption key, keeping the old "
             "keys key_id=" +
                 current->active().id + " source=\"" + source_.describe() + "\"");
      return;
    }
    clear("file");
    next.setActive(current->active().id);
    if (!sameRing(next, *current)) keys_->replace(std::move(next));
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, kKeyReloadInterval, [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      try {
        tick();
      } catch (const std::exception& e) {
        report("tick", std::string("could not reload encryption keys reason=\"") + e.what() + "\"");
      }
      lock.lock();
    }
  }

  // Size, modification time and inode: a rename onto the name changes the inode even when
  // the size and the second match.
  std::string fileSignature() const {
    struct stat st {};
    if (::stat(source_.path.c_str(), &st) != 0) return "missing";
    return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  }

  // One error line per problem until it goes away, not one every 2 s.
  void report(const std::string& what, const std::string& message) {
    std::lock_guard<std::mutex> lock(problemsMutex_);
    auto& last = problems_[what];
    if (last == message) return;
    last = message;
    keyLog().error(message);
  }

  void clear(const std::string& what) {
    std::lock_guard<std::mutex> lock(problemsMutex_);
    problems_.erase(what);
  }

  store::Store& store_;
  std::shared_ptr<crypto::KeyHolder> keys_;
  KeySource source_;
  std::string signature_;  ///< "" until the first reload, which reads the file whatever it is
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
  std::mutex problemsMutex_;
  std::map<std::string, std::string> problems_;
};

KeyWatcher::KeyWatcher(store::Store& store, std::shared_ptr<crypto::KeyHolder> keys,
                       const EdgeConfig& config)
    : impl_(keys ? std::make_unique<Impl>(store, std::move(keys), config) : nullptr) {}

KeyWatcher::~KeyWatcher() { stop(); }

void KeyWatcher::start() {
  if (impl_) impl_->start();
}

void KeyWatcher::stop() {
  if (impl_) impl_->stop();
}

void KeyWatcher::reloadNowForTest() {
  if (impl_) impl_->tick();
}

}  // namespace anm::edge
