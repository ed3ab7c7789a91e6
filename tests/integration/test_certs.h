// tests/integration/test_certs.h: X.509 certificates made at test time for the TLS tests.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

namespace anm::test {

/// A certificate and its private key, both PEM.
struct TestCert {
  std::string cert;
  std::string key;
};

struct CertSpec {
  std::string commonName;
  std::string altNames;  ///< subjectAltName value, e.g. "DNS:localhost,IP:127.0.0.1"; "" none
  long notBeforeSeconds = -3600;  ///< relative to now
  long notAfterSeconds = 86400;
  bool ca = false;
};

namespace detail {

inline std::string bioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("could not make test certificate: ") + what);
}

inline void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

}  // namespace detail

/// A P-256 certificate for `spec`, signed by `issuer` (null: self-signed).
inline TestCert makeCert(const CertSpec& spec, const TestCert* issuer = nullptr) {
  using detail::check;
  EVP_PKEY* key = EVP_EC_gen("P-256");
  check(key != nullptr, "key");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  unsigned char serial[8];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* number = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert));
  BN_free(number);
  X509_gmtime_adj(X509_getm_notBefore(cert), spec.notBeforeSeconds);
  X509_gmtime_adj(X509_getm_notAfter(cert), spec.notAfterSeconds);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.commonName.c_str()), -1,
                             -1, 0);
  X509_set_pubkey(cert, key);

  // The issuer's certificate and key, or this one's own for a self-signed certificate.
  X509* issuerCert = cert;
  EVP_PKEY* issuerKey = key;
  if (issuer != nullptr) {
    BIO* certBio = BIO_new_mem_buf(issuer->cert.data(), static_cast<int>(issuer->cert.size()));
    issuerCert = PEM_read_bio_X509(certBio, nullptr, nullptr, nullptr);
    BIO_free(certBio);
    BIO* keyBio = BIO_new_mem_buf(issuer->key.data(), static_cast<int>(issuer->key.size()));
    issuerKey = PEM_read_bio_PrivateKey(keyBio, nullptr, nullptr, nullptr);
    BIO_free(keyBio);
    check(issuerCert != nullptr && issuerKey != nullptr, "issuer");
  }
  X509_set_issuer_name(cert, X509_get_subject_name(issuerCert));
  detail::addExtension(cert, issuerCert, NID_basic_constraints,
                       spec.ca ? "critical,CA:TRUE" : "CA:FALSE");
  detail::addExtension(cert, issuerCert, NID_subject_key_identifier, "hash");
  if (spec.ca)
    detail::addExtension(cert, issuerCert, NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!spec.altNames.empty()) {
    detail::addExtension(cert, issuerCert, NID_subject_alt_name, spec.altNames);
  }
  check(X509_sign(cert, issuerKey, EVP_sha256()) > 0, "sign");

  TestCert out;
  BIO* certOut = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(certOut, cert);
  out.cert = detail::bioText(certOut);
  BIO_free(certOut);
  BIO* keyOut = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(keyOut, key, nullptr, nullptr, 0, nullptr, nullptr);
  out.key = detail::bioText(keyOut);
  BIO_free(keyOut);

  if (issuer != nullptr) {
    X509_free(issuerCert);
    EVP_PKEY_free(issuerKey);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

inline void writeText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("could not write " + path.string());
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

/// The certificates the TLS tests use, written as <dir>/<name>.crt and .key: a CA, a leaf of
/// it for localhost and 127.0.0.1, a self-signed one, an expired leaf and a leaf for another
/// name, all of the same CA except the self-signed one.
struct TestPki {
  explicit TestPki(const std::filesystem::path& dir) : dir_(dir) {
    ca = makeCert({"anonymily test ca", "", -3600, 86400, true});
    leaf = makeCert({"localhost", "DNS:localhost,IP:127.0.0.1"}, &ca);
    selfSigned = makeCert({"localhost", "DNS:localhost,IP:127.0.0.1"});
    expired = makeCert({"localhost", "DNS:localhost,IP:127.0.0.1", -172800, -86400}, &ca);
    otherName = makeCert({"edge.example.org", "DNS:edge.example.org"}, &ca);
    for (const auto& [name, cert] : {std::pair<const char*, const TestCert*>{"ca", &ca},
                                     {"leaf", &leaf},
                                     {"self", &selfSigned},
                                     {"expired", &expired},
                                     {"other", &otherName}}) {
      writeText(dir_ / (std::string(name) + ".crt"), cert->cert);
      writeText(dir_ / (std::string(name) + ".key"), cert->key);
    }
  }

  std::string cert(const std::string& name) const { return (dir_ / (name + ".crt")).string(); }
  std::string key(const std::string& name) const { return (dir_ / (name + ".key")).string(); }

  TestCert ca, leaf, selfSigned, expired, otherName;

 private:
  std::filesystem::path dir_;
};

}  // namespace anm::test
