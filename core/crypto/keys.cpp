// core/crypto/keys.cpp: encryption keys at rest: the key ring, AES-256-GCM sealing, key files.
// SPDX-License-Identifier: Apache-2.0
#include "core/crypto/keys.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace anm::crypto {
namespace {

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

bool validKeyId(std::string_view id) {
  if (id.empty() || id.size() > kMaxKeyIdBytes) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string encodeBase64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16) |
                       (static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                       static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(kBase64Alphabet[(n >> 18) & 63]);
    out.push_back(kBase64Alphabet[(n >> 12) & 63]);
    out.push_back(kBase64Alphabet[(n >> 6) & 63]);
    out.push_back(kBase64Alphabet[n & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest == 0) return out;
  uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
  if (rest == 2) n |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
  out.push_back(kBase64Alphabet[(n >> 18) & 63]);
  out.push_back(kBase64Alphabet[(n >> 12) & 63]);
  out.push_back(rest == 2 ? kBase64Alphabet[(n >> 6) & 63] : '=');
  out.push_back('=');
  return out;
}

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/// Strict standard base64 with padding; false for anything else (so that a typo in a key is
/// caught rather than decoded into a different key).
bool decodeBase64(std::string_view text, std::string& out) {
  out.clear();
  if (text.empty() || text.size() % 4 != 0) return false;
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;
      v[j] = base64Value(c);
      if (v[j] < 0) return false;
    }
    const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                       (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(n & 0xff));
  }
  return true;
}

/// Frees an OpenSSL cipher context however the function leaves.
struct CipherContext {
  CipherContext() : ctx(EVP_CIPHER_CTX_new()) {
    if (ctx == nullptr) throw std::runtime_error("could not allocate a cipher context");
  }
  ~CipherContext() { EVP_CIPHER_CTX_free(ctx); }
  CipherContext(const CipherContext&) = delete;
  CipherContext& operator=(const CipherContext&) = delete;

  EVP_CIPHER_CTX* ctx;
};

/// AES-256-GCM, looked up once: OpenSSL 3 otherwise looks the implementation up again in every
/// EVP_*Init_ex call, which costs as much as opening a small value.
const EVP_CIPHER* aes256Gcm() {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  static const EVP_CIPHER* const kCipher = [] {
    const EVP_CIPHER* fetched = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    return fetched != nullptr ? fetched : EVP_aes_256_gcm();
  }();
  return kCipher;
#else
  return EVP_aes_256_gcm();
#endif
}

const unsigned char* bytesOf(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

int intLength(std::string_view text, const char* what) {
  if (text.size() > static_cast<size_t>(INT_MAX)) {
    throw std::runtime_error(std::string("could not seal: ") + what + " exceeds 2 GiB");
  }
  return static_cast<int>(text.size());
}

void checkKey(const Key& key) {
  if (key.bytes.size() != kKeyBytes) {
    throw KeyError("key " + key.id + " is not " + std::to_string(kKeyBytes) + " bytes");
  }
}

}  // namespace

KeyRing KeyRing::parse(std::string_view text, const std::string& source) {
  KeyRing ring;
  size_t lineNumber = 0;
  while (!text.empty() || lineNumber == 0) {
    // One line at a time; the last one may lack its newline.
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++lineNumber;

    line = trim(line);
    if (line.empty() || line.front() == '#') {
      if (text.empty()) break;
      continue;
    }

    // Commas separate keys too (the environment form, where newlines are awkward).
    size_t entryNumber = 0;
    const bool several = line.find(',') != std::string_view::npos;
    while (!line.empty()) {
      const size_t comma = line.find(',');
      std::string_view entry = trim(line.substr(0, comma));
      line.remove_prefix(comma == std::string_view::npos ? line.size() : comma + 1);
      ++entryNumber;
      if (entry.empty()) continue;

      // Never the line's text in a message: it holds key material.
      const std::string where = source + " line " + std::to_string(lineNumber) +
                                (several ? " entry " + std::to_string(entryNumber) : "");
      const size_t colon = entry.find(':');
      if (colon == std::string_view::npos) {
        throw KeyError("malformed key at " + where + ": expected ID:BASE64");
      }
      std::string_view id = trim(entry.substr(0, colon));
      std::string_view encoded = trim(entry.substr(colon + 1));
      if (!validKeyId(id)) {
        throw KeyError("malformed key at " + where + ": the id must be 1.." +
                       std::to_string(kMaxKeyIdBytes) + " of A-Z a-z 0-9 - _");
      }
      Key key;
      key.id = std::string(id);
      if (!decodeBase64(encoded, key.bytes) || key.bytes.size() != kKeyBytes) {
        throw KeyError("malformed key at " + where + ": the key must be the base64 of " +
                       std::to_string(kKeyBytes) + " bytes");
      }
      if (ring.find(key.id) != nullptr) {
        throw KeyError("duplicate key id " + key.id + " at " + where);
      }
      ring.keys_.push_back(std::move(key));
    }
    if (text.empty()) break;
  }

  if (ring.keys_.empty()) throw KeyError(source + " holds no key");
  ring.active_ = ring.keys_.size() - 1;
  return ring;
}

KeyRing KeyRing::loadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw KeyError("could not open key file " + path + ": " + std::strerror(errno));
  }

  // The mode of what was opened, not of the path, so that a swap between the check and the
  // read cannot slip an open file in.
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    throw KeyError("could not read key file " + path + ": " + std::strerror(error));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw KeyError("key file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw KeyError("key file " + path + " has mode " + mode +
                   "; only its owner may read it (chmod 600 " + path + ")");
  }

  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw KeyError("could not read key file " + path + ": " + std::strerror(error));
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return parse(text, "key file " + path);
}

std::string KeyRing::newKeyLine(const std::string& id) {
  if (!validKeyId(id)) {
    throw KeyError("invalid key id: it must be 1.." + std::to_string(kMaxKeyIdBytes) +
                   " of A-Z a-z 0-9 - _");
  }
  return id + ":" + encodeBase64(randomBytes(kKeyBytes));
}

void KeyRing::writeFile(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const auto fail = [&](const std::string& what, int error) {
    ::unlink(temp.c_str());
    throw KeyError("could not write key file " + path + ": " + what + ": " + std::strerror(error));
  };

  // O_EXCL: a stale temporary of a crashed run is not reused with its old mode.
  ::unlink(temp.c_str());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail("could not create " + temp, errno);

  // The umask may only narrow the mode; fchmod makes it exactly 0600 whatever it was.
  if (::fchmod(fd, 0600) != 0) {
    const int error = errno;
    ::close(fd);
    fail("could not set the mode of " + temp, error);
  }
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      fail("could not write " + temp, error);
    }
    written += static_cast<size_t>(n);
  }

  // On disk before the rename makes it the ring: a crash must not leave an empty key file.
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    fail("could not sync " + temp, error);
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("could not rename " + temp, errno);

  // The rename itself is durable once the directory is synced.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
}

const Key& KeyRing::active() const { return keys_.at(active_); }

const Key* KeyRing::find(std::string_view id) const {
  for (const auto& key : keys_) {
    if (key.id == id) return &key;
  }
  return nullptr;
}

void KeyRing::setActive(std::string_view id) {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].id == id) {
      active_ = i;
      return;
    }
  }
  throw KeyError("the key ring holds no key " + std::string(id));
}

std::string seal(const Key& key, std::string_view plaintext, std::string_view aad) {
  checkKey(key);
  const std::string nonce = randomBytes(kNonceBytes);
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  std::memcpy(out.data(), nonce.data(), kNonceBytes);

  CipherContext c;
  auto* outBytes = reinterpret_cast<unsigned char*>(out.data());
  int length = 0;
  bool ok = EVP_EncryptInit_ex(c.ctx, aes256Gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
            EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, bytesOf(key.bytes), bytesOf(nonce)) == 1;
  if (ok && !aad.empty()) {
    ok = EVP_EncryptUpdate(c.ctx, nullptr, &length, bytesOf(aad), intLength(aad, "AAD")) == 1;
  }
  int total = 0;
  if (ok && !plaintext.empty()) {
    ok = EVP_EncryptUpdate(c.ctx, outBytes + kNonceBytes, &length, bytesOf(plaintext),
                           intLength(plaintext, "a value")) == 1;
    total = length;
  }
  if (ok) ok = EVP_EncryptFinal_ex(c.ctx, outBytes + kNonceBytes + total, &length) == 1;
  if (ok) {
    ok = EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes,
                             outBytes + kNonceBytes + plaintext.size()) == 1;
  }
  if (!ok) throw std::runtime_error("could not seal a value with key " + key.id);
  return out;
}

std::string open(const Key& key, std::string_view sealed, std::string_view aad) {
  return Opener(key).open(sealed, aad);
}

Opener::Opener(const Key& key) : keyId_(key.id) {
  checkKey(key);
  context_ = EVP_CIPHER_CTX_new();
  if (context_ == nullptr) throw std::runtime_error("could not allocate a cipher context");

  // The key schedule is made once here; each open() sets only its own nonce.
  const bool ok =
      EVP_DecryptInit_ex(context_, aes256Gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(context_, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
      EVP_DecryptInit_ex(context_, nullptr, nullptr, bytesOf(key.bytes), nullptr) == 1;
  if (!ok) {
    EVP_CIPHER_CTX_free(context_);
    throw std::runtime_error("could not open a value with key " + key.id);
  }
}

Opener::~Opener() { EVP_CIPHER_CTX_free(context_); }

std::string Opener::open(std::string_view sealed, std::string_view aad) {
  EVP_CIPHER_CTX* ctx = context_;
  if (sealed.size() < kNonceBytes + kTagBytes) {
    throw IntegrityError("sealed value under key " + keyId_ + " is too short (" +
                         std::to_string(sealed.size()) + " bytes)");
  }
  const std::string_view nonce = sealed.substr(0, kNonceBytes);
  const std::string_view cipher =
      sealed.substr(kNonceBytes, sealed.size() - kNonceBytes - kTagBytes);
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  std::string out(cipher.size(), '\0');

  int length = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, bytesOf(nonce)) != 1) {
    throw std::runtime_error("could not open a value with key " + keyId_);
  }
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx, nullptr, &length, bytesOf(aad), intLength(aad, "AAD")) != 1) {
    throw std::runtime_error("could not open a value with key " + keyId_);
  }
  int total = 0;
  if (!cipher.empty()) {
    if (EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &length,
                          bytesOf(cipher), intLength(cipher, "a value")) != 1) {
      throw std::runtime_error("could not open a value with key " + keyId_);
    }
    total = length;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1) {
    throw std::runtime_error("could not open a value with key " + keyId_);
  }

  // The tag check happens here: any changed byte, other key or other AAD ends up failing it.
  if (EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + total, &length) !=
      1) {
    OPENSSL_cleanse(out.data(), out.size());
    throw IntegrityError("sealed value failed its integrity check under key " + keyId_);
  }
  return out;
}

std::string randomBytes(size_t count) {
  std::string out(count, '\0');
  if (count == 0) return out;
  if (count > static_cast<size_t>(INT_MAX) ||
      RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count)) != 1) {
    throw std::runtime_error("could not get random bytes from the operating system");
  }
  return out;
}

}  // namespace anm::crypto
