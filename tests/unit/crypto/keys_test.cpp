// tests/unit/crypto/keys_test.cpp: the key ring's text form, key files and AES-256-GCM sealing.
// SPDX-License-Identifier: Apache-2.0
#include "core/crypto/keys.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>

namespace anm::crypto {
namespace {

/// A fresh directory, removed with its files when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "anm-keys-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void writeWithMode(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

std::string messageOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const KeyError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no KeyError was thrown";
  return "";
}

// Base64 of 32 bytes 0x00..0x1f, and of 31 bytes (one short).
constexpr const char* kKeyA = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
constexpr const char* kShortKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==";

TEST(Seal, RoundTripsAnyBytesAndEachSealDiffers) {
  KeyRing ring = KeyRing::parse(KeyRing::newKeyLine("k1"), "test");
  const std::string plaintext("body\0with nul \xff\xfe", 17);

  const std::string first = seal(ring.active(), plaintext, "aad");
  const std::string second = seal(ring.active(), plaintext, "aad");
  EXPECT_EQ(first.size(), kNonceBytes + plaintext.size() + kTagBytes);
  EXPECT_NE(first, second) << "two seals of one value must use different nonces";
  EXPECT_EQ(first.find("body"), std::string::npos) << "the plaintext shows in the seal";

  EXPECT_EQ(open(ring.active(), first, "aad"), plaintext);
  EXPECT_EQ(open(ring.active(), second, "aad"), plaintext);
  EXPECT_EQ(open(ring.active(), seal(ring.active(), "", "x"), "x"), "");
}

TEST(Seal, WrongAadWrongKeyAndFlippedBytesAreIntegrityErrors) {
  KeyRing ring =
      KeyRing::parse(KeyRing::newKeyLine("k1") + "\n" + KeyRing::newKeyLine("k2"), "test");
  const Key& k1 = *ring.find("k1");
  const Key& k2 = *ring.find("k2");
  const std::string sealed = seal(k1, "secret text", "events|h|body");

  EXPECT_THROW(open(k1, sealed, "events|h|headers"), IntegrityError);
  EXPECT_THROW(open(k1, sealed, ""), IntegrityError);
  EXPECT_THROW(open(k2, sealed, "events|h|body"), IntegrityError);

  // Every single flipped byte, in the nonce, the ciphertext or the tag, is caught.
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string changed = sealed;
    changed[i] = static_cast<char>(changed[i] ^ 0x01);
    EXPECT_THROW(open(k1, changed, "events|h|body"), IntegrityError) << "byte " << i;
  }
  EXPECT_THROW(open(k1, sealed.substr(0, kNonceBytes + kTagBytes - 1), "events|h|body"),
               IntegrityError);
  EXPECT_THROW(open(k1, sealed.substr(0, sealed.size() - 1), "events|h|body"), IntegrityError);

  // A failure message never holds the plaintext.
  try {
    open(k2, sealed, "events|h|body");
  } catch (const IntegrityError& e) {
    EXPECT_EQ(std::string(e.what()).find("secret text"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("k2"), std::string::npos) << e.what();
  }
}

TEST(Seal, OpenerOpensManyValuesUnderOneKeyAndGoesOnAfterAFailure) {
  KeyRing ring =
      KeyRing::parse(KeyRing::newKeyLine("k1") + "\n" + KeyRing::newKeyLine("k2"), "test");
  const Key& k1 = *ring.find("k1");
  Opener opener(k1);

  // Each value has its own nonce and AAD; one context opens them all, as open() would.
  for (int i = 0; i < 20; ++i) {
    const std::string value =
        "value " + std::to_string(i) + std::string(static_cast<size_t>(i), 'x');
    const std::string aad = "event|h|field" + std::to_string(i);
    EXPECT_EQ(opener.open(seal(k1, value, aad), aad), value);
  }
  EXPECT_EQ(opener.open(seal(k1, "", "x"), "x"), "");

  // A value that fails (changed byte, other AAD, other key) leaves the opener usable.
  const std::string sealed = seal(k1, "secret text", "event|h|body");
  std::string changed = sealed;
  changed[kNonceBytes] = static_cast<char>(changed[kNonceBytes] ^ 0x01);
  EXPECT_THROW(opener.open(changed, "event|h|body"), IntegrityError);
  EXPECT_THROW(opener.open(sealed, "event|h|headers"), IntegrityError);
  EXPECT_THROW(opener.open(seal(*ring.find("k2"), "other", "a"), "a"), IntegrityError);
  EXPECT_THROW(opener.open(sealed.substr(0, kNonceBytes + kTagBytes - 1), "event|h|body"),
               IntegrityError);
  EXPECT_EQ(opener.open(sealed, "event|h|body"), "secret text");
}

TEST(Seal, RandomBytesAreFreshEveryCall) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(randomBytes(16));
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(randomBytes(kKeyBytes).size(), kKeyBytes);
}

TEST(KeyRing, ParsesLinesCommentsAndBlankLinesAndTheLastKeyIsActive) {
  const std::string text = std::string("# keys of the edge\n\nk1:") + kKeyA +
                           "\r\n  k2 : " + KeyRing::newKeyLine("x").substr(2) + "  \n";
  KeyRing ring = KeyRing::parse(text, "test");
  ASSERT_EQ(ring.keys().size(), 2u);
  EXPECT_EQ(ring.keys()[0].id, "k1");
  EXPECT_EQ(ring.keys()[1].id, "k2");
  EXPECT_EQ(ring.active().id, "k2");
  ASSERT_NE(ring.find("k1"), nullptr);
  EXPECT_EQ(ring.find("k1")->bytes.size(), kKeyBytes);
  EXPECT_EQ(static_cast<unsigned char>(ring.find("k1")->bytes[31]), 0x1fu);
  EXPECT_EQ(ring.find("k3"), nullptr);
}

TEST(KeyRing, EnvironmentFormSeparatesKeysWithCommas) {
  const std::string text = std::string("old:") + kKeyA + "," + KeyRing::newKeyLine("new") + ",";
  KeyRing ring = KeyRing::parse(text, "ANONYMILY_ENCRYPTION_KEYS");
  ASSERT_EQ(ring.keys().size(), 2u);
  EXPECT_EQ(ring.keys()[0].id, "old");
  EXPECT_EQ(ring.active().id, "new");
}

TEST(KeyRing, SetActiveChoosesAHeldKeyAndRefusesAnUnknownOne) {
  KeyRing ring =
      KeyRing::parse(KeyRing::newKeyLine("k1") + "\n" + KeyRing::newKeyLine("k2"), "test");
  ring.setActive("k1");
  EXPECT_EQ(ring.active().id, "k1");

  // What is sealed under the active key opens with that key only.
  const std::string sealed = seal(ring.active(), "v", "a");
  EXPECT_EQ(open(*ring.find("k1"), sealed, "a"), "v");
  EXPECT_THROW(open(*ring.find("k2"), sealed, "a"), IntegrityError);

  std::string message = messageOf([&] { ring.setActive("k9"); });
  EXPECT_NE(message.find("k9"), std::string::npos) << message;
  EXPECT_EQ(ring.active().id, "k1");
}

TEST(KeyRing, MalformedLinesAreNamedByNumberWithoutTheirContents) {
  const std::string secretLooking = "k2:SECRETSECRETSECRET";
  const std::string text = std::string("# comment\nk1:") + kKeyA + "\n" + secretLooking + "\n";
  std::string message = messageOf([&] { KeyRing::parse(text, "key file /x/keys"); });
  EXPECT_NE(message.find("key file /x/keys line 3"), std::string::npos) << message;
  EXPECT_EQ(message.find("SECRET"), std::string::npos) << message;

  message = messageOf([&] { KeyRing::parse(std::string("k1") + kKeyA, "env"); });
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;
  EXPECT_EQ(message.find(kKeyA), std::string::npos) << message;

  message = messageOf([&] { KeyRing::parse(std::string("k1:") + kShortKey, "env"); });
  EXPECT_NE(message.find("32 bytes"), std::string::npos) << message;
  EXPECT_EQ(message.find(kShortKey), std::string::npos) << message;

  message = messageOf([&] { KeyRing::parse(std::string("bad id!:") + kKeyA, "env"); });
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;

  message =
      messageOf([&] { KeyRing::parse(std::string(kMaxKeyIdBytes + 1, 'a') + ":" + kKeyA, "env"); });
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;
  EXPECT_NO_THROW(KeyRing::parse(std::string(kMaxKeyIdBytes, 'a') + ":" + kKeyA, "env"));

  // Not base64 at all, and base64 with a character outside the alphabet.
  message = messageOf([&] { KeyRing::parse("k1:not base64 at all", "env"); });
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;
  std::string broken = kKeyA;
  broken[5] = '*';
  EXPECT_THROW(KeyRing::parse("k1:" + broken, "env"), KeyError);

  // An entry of the comma form is named by its place on the line.
  message =
      messageOf([&] { KeyRing::parse(std::string("k1:") + kKeyA + ",k2:" + kShortKey, "env"); });
  EXPECT_NE(message.find("line 1 entry 2"), std::string::npos) << message;
}

TEST(KeyRing, DuplicateIdsAndEmptyRingsAreRefused) {
  std::string message = messageOf([&] {
    KeyRing::parse(std::string("k1:") + kKeyA + "\n" + KeyRing::newKeyLine("k1"), "env");
  });
  EXPECT_NE(message.find("duplicate key id k1"), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;

  message = messageOf([&] { KeyRing::parse("# only a comment\n\n", "key file /k"); });
  EXPECT_NE(message.find("key file /k holds no key"), std::string::npos) << message;
  EXPECT_THROW(KeyRing::parse("", "env"), KeyError);
}

TEST(KeyFile, WrittenWithMode0600AndReadBack) {
  TempDir dir;
  const std::string path = dir.file("encryption.keys");
  const std::string text = KeyRing::newKeyLine("k1") + "\n";
  KeyRing::writeFile(path, text);

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  KeyRing ring = KeyRing::loadFile(path);
  EXPECT_EQ(ring.active().id, "k1");

  // Rewriting replaces the whole ring, still 0600, and leaves no temporary behind.
  KeyRing::writeFile(path, text + KeyRing::newKeyLine("k2") + "\n");
  EXPECT_EQ(KeyRing::loadFile(path).active().id, "k2");
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.file(""))) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST(KeyFile, ReadableByOthersIsRefusedNamingTheModeAndTheFix) {
  TempDir dir;
  const std::string path = dir.file("keys");
  writeWithMode(path, KeyRing::newKeyLine("k1") + "\n", 0644);

  std::string message = messageOf([&] { KeyRing::loadFile(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("0644"), std::string::npos) << message;
  EXPECT_NE(message.find("chmod 600"), std::string::npos) << message;

  // Group-readable is refused too; owner-only read is fine.
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_THROW(KeyRing::loadFile(path), KeyError);
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  EXPECT_EQ(KeyRing::loadFile(path).active().id, "k1");
}

TEST(KeyFile, MissingFileAndDirectoryAreRefused) {
  TempDir dir;
  std::string message = messageOf([&] { KeyRing::loadFile(dir.file("none")); });
  EXPECT_NE(message.find(dir.file("none")), std::string::npos) << message;

  std::filesystem::create_directory(dir.file("d"));
  ::chmod(dir.file("d").c_str(), 0700);
  message = messageOf([&] { KeyRing::loadFile(dir.file("d")); });
  EXPECT_NE(message.find("not a regular file"), std::string::npos) << message;
}

TEST(KeyFile, MalformedFileNamesThePathAndLine) {
  TempDir dir;
  const std::string path = dir.file("keys");
  writeWithMode(path, KeyRing::newKeyLine("k1") + "\ngarbage\n", 0600);
  std::string message = messageOf([&] { KeyRing::loadFile(path); });
  EXPECT_NE(message.find("key file " + path + " line 2"), std::string::npos) << message;
  EXPECT_EQ(message.find("garbage"), std::string::npos) << message;
}

TEST(KeyHolder, ReplaceLeavesEarlierSnapshotsAsTheyWere) {
  KeyHolder holder(KeyRing::parse(KeyRing::newKeyLine("k1"), "test"));
  auto before = holder.ring();
  holder.replace(
      KeyRing::parse(KeyRing::newKeyLine("k1") + "\n" + KeyRing::newKeyLine("k2"), "test"));
  EXPECT_EQ(before->active().id, "k1");
  EXPECT_EQ(before->keys().size(), 1u);
  EXPECT_EQ(holder.ring()->active().id, "k2");
}

}  // namespace
}  // namespace anm::crypto
