// core/edge/bootstrap.h: what an edge sets up around its store: keys, the owner account.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/crypto/keys.h"
#include "core/store/store.h"

namespace anm::edge {

struct EdgeConfig;

/// The store setting naming the key new records are encrypted with.
inline constexpr char kActiveKeySetting[] = "encryption.active_key";
/// Prefix of the settings `encryption.check.<key id>`: a seal of kKeyCheckText under that key,
/// so that a different key under a known id is noticed before it writes anything.
inline constexpr char kKeyCheckSettingPrefix[] = "encryption.check.";
inline constexpr char kKeyCheckText[] = "anonymily encryption key check";
/// The key file generated in the data directory when no other source is configured.
inline constexpr char kGeneratedKeyFileName[] = "encryption.keys";
/// The id of the key generated on the first start.
inline constexpr char kFirstKeyId[] = "k1";
/// Where the first start writes the owner's personal access token.
inline constexpr char kOwnerTokenFileName[] = "owner.token";
/// Name of the account, member and token created on the first start.
inline constexpr char kOwnerName[] = "owner";
/// The store setting naming the operator's account: the `owner` account an edge creates on the
/// first start of a new store. Edge-wide admin commands (key rotations) are audited under it,
/// so that its owner reads them through the API.
inline constexpr char kOperatorAccountSetting[] = "operator.account";
/// How often a running edge rereads its key file and the store's active key id.
inline constexpr std::chrono::milliseconds kKeyReloadInterval{2000};

/// Where an edge's key ring comes from, decided from the configuration and the environment.
struct KeySource {
  enum class Kind {
    kKeyFile,    ///< encryption.key_file
    kVariable,   ///< the variable encryption.keys_env names
    kGenerated,  ///< <data_dir>/encryption.keys, generated on the first start
  };
  Kind kind = Kind::kGenerated;
  std::string path;      ///< the key file (kKeyFile, kGenerated)
  std::string variable;  ///< the variable's name (kVariable)

  bool isFile() const { return kind != Kind::kVariable; }
  /// For messages: "key file /etc/anonymily/keys", "variable ANONYMILY_ENCRYPTION_KEYS".
  std::string describe() const;
};

/// The source loadKeys reads. Throws ConfigError when encryption.keys_env was set explicitly
/// and names a variable that is not set.
KeySource keySource(const EdgeConfig& config);

/// The key ring from encryption.key_file, else the variable encryption.keys_env names, else
/// <data_dir>/encryption.keys, generated (mode 0600) and logged when missing. Throws
/// ConfigError (exit 78) for a key file that is not 0600, a malformed ring, or a variable named
/// by encryption.keys_env that is not set. The data directory exists already.
std::shared_ptr<crypto::KeyHolder> loadKeys(const EdgeConfig& config);

/// The same; with generateMissing false a missing <data_dir>/encryption.keys is a ConfigError
/// instead (the admin command never makes keys of its own).
std::shared_ptr<crypto::KeyHolder> loadKeys(const EdgeConfig& config, bool generateMissing);

/// Run once the store is open: makes the ring's active key the one the store names
/// (`encryption.active_key`, recorded on the first start), refusing (ConfigError) an edge that
/// lacks it or holds a different key under its id; and on a store without any account creates
/// the owner account and writes its token to <data_dir>/owner.token (mode 0600).
void prepareStore(store::Store& store, crypto::KeyHolder& keys, const EdgeConfig& config);

/// The key part of prepareStore alone (the admin command): records the ring's active key when
/// the store names none yet, else makes the store's the active one; checks it against
/// `encryption.check.<id>`. Returns the active key id. Throws ConfigError.
std::string alignActiveKey(store::Store& store, crypto::KeyHolder& keys, const EdgeConfig& config);

/// The id of the operator's account (kOperatorAccountSetting). A store from before that setting
/// has none recorded: its operator is then the account named `owner` (the one its first start
/// created), recorded from now on so that the choice never moves. Returns "" when there is
/// neither: edge-wide entries then keep the empty account id, which no owner reads.
std::string operatorAccountId(store::Store& store);

/// The value of `encryption.check.<id>` for `key` (base64 text).
std::string keyCheckValue(const crypto::Key& key);

/// True when `value` (a stored `encryption.check.<id>`) was made with this very key.
bool keyCheckMatches(const crypto::Key& key, const std::string& value);

/// Rereads the key file and the store's active key id every 2 s while the edge runs, so that a
/// rotation needs no restart.
class KeyWatcher {
 public:
  KeyWatcher(store::Store& store, std::shared_ptr<crypto::KeyHolder> keys,
             const EdgeConfig& config);
  ~KeyWatcher();  ///< stops

  void start();
  void stop();  ///< idempotent

  /// One reload step as the watcher thread runs it every kKeyReloadInterval (for tests).
  void reloadNowForTest();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anm::edge
