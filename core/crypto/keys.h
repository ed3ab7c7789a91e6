// core/crypto/keys.h: encryption keys at rest: the key ring, AES-256-GCM sealing, key files.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct evp_cipher_ctx_st;  // OpenSSL's EVP_CIPHER_CTX

namespace anm::crypto {

inline constexpr size_t kKeyBytes = 32;    ///< AES-256
inline constexpr size_t kNonceBytes = 12;  ///< GCM's 96-bit nonce, random for every seal
inline constexpr size_t kTagBytes = 16;
/// Longest key id: 1..32 of A-Z a-z 0-9 - _ (it is stored beside every record).
inline constexpr size_t kMaxKeyIdBytes = 32;

/// A sealed value failed its integrity check (wrong key, changed bytes, wrong record), or
/// names a key the ring does not hold. The message says which, never the contents.
class IntegrityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A key ring, key file or key text that cannot be used; the message names the source.
class KeyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Key {
  std::string id;
  std::string bytes;  ///< kKeyBytes raw bytes
};

/// The keys an edge can decrypt with, and the one it encrypts with (the active key).
///
/// Text form (key files and the environment variable): one key per line, `ID:BASE64`, where
/// BASE64 is the standard encoding of 32 bytes; blank lines and lines starting with `#` are
/// ignored; in an environment variable, keys may also be separated by commas. The last key
/// listed is the active one unless setActive() chose another.
class KeyRing {
 public:
  /// Parses the text form. `source` names where it came from in error messages ("key file
  /// /etc/anonymily/keys", "ANONYMILY_ENCRYPTION_KEYS"). Throws KeyError for a malformed line
  /// (naming its number, never its contents), a duplicate id or an empty ring.
  static KeyRing parse(std::string_view text, const std::string& source);

  /// Reads a key file. Refused (KeyError) unless it is a regular file that only its owner can
  /// read or write (mode 0600 or stricter).
  static KeyRing loadFile(const std::string& path);

  /// One line of the text form for a new random key with this id.
  static std::string newKeyLine(const std::string& id);

  /// Writes `text` to `path` with mode 0600 through a temporary file and a rename, so that a
  /// reader never sees half a ring. Throws KeyError.
  static void writeFile(const std::string& path, const std::string& text);

  const Key& active() const;
  const Key* find(std::string_view id) const;  ///< null when the ring lacks it
  const std::vector<Key>& keys() const { return keys_; }

  /// Makes `id` the active key; throws KeyError when the ring lacks it.
  void setActive(std::string_view id);

 private:
  std::vector<Key> keys_;
  size_t active_ = 0;
};

/// AES-256-GCM with a fresh random nonce: returns nonce | ciphertext | tag. `aad` is
/// authenticated, not stored: open() must be given the same, so a sealed value copied to
/// another record fails.
std::string seal(const Key& key, std::string_view plaintext, std::string_view aad);

/// The plaintext of a seal() result; throws IntegrityError when anything differs.
std::string open(const Key& key, std::string_view sealed, std::string_view aad);

/// Opens several values sealed under one key, as open() does, with one cipher context and one
/// key schedule for all of them: a list opens up to seven values of each event under its data
/// key, most of them small, and setting up a context costs more than opening one of those. Not
/// for concurrent use.
class Opener {
 public:
  explicit Opener(const Key& key);
  ~Opener();
  Opener(const Opener&) = delete;
  Opener& operator=(const Opener&) = delete;

  /// Like open(key, sealed, aad).
  std::string open(std::string_view sealed, std::string_view aad);

 private:
  std::string keyId_;
  evp_cipher_ctx_st* context_ = nullptr;  ///< set up with the key
};

/// `count` bytes from the operating system's CSPRNG (OpenSSL RAND_bytes); throws on failure.
std::string randomBytes(size_t count);

/// The ring an edge uses, replaceable while it runs (after a rotation added a key). Readers
/// take a snapshot and keep it for one operation.
class KeyHolder {
 public:
  explicit KeyHolder(KeyRing ring) : ring_(std::make_shared<const KeyRing>(std::move(ring))) {}

  std::shared_ptr<const KeyRing> ring() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ring_;
  }
  void replace(KeyRing ring) {
    auto next = std::make_shared<const KeyRing>(std::move(ring));
    std::lock_guard<std::mutex> lock(mutex_);
    ring_ = std::move(next);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const KeyRing> ring_;
};

}  // namespace anm::crypto
