#include "core/secret_box.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cassert>
#include <memory>

namespace fanpull {
namespace {

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherContext newContext() { return CipherContext(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free); }

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

}  // namespace

SecretBox::SecretBox(std::string key) : key_(std::move(key)) {
  assert(key_.size() == kKeySize);
  std::string labelled = "fanpull state key id\n" + key_;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes(labelled), labelled.size(), digest);
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    key_id_.push_back(kHex[digest[i] >> 4]);
    key_id_.push_back(kHex[digest[i] & 0xF]);
  }
}

std::string SecretBox::seal(std::string_view plaintext, std::string_view associated) const {
  std::string out(kNonceSize + plaintext.size() + kTagSize, '\0');
  if (RAND_bytes(bytes(out), static_cast<int>(kNonceSize)) != 1) return {};
  CipherContext ctx = newContext();
  int len = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceSize),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(out)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(associated),
                        static_cast<int>(associated.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), bytes(out) + kNonceSize, &len, bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), bytes(out) + kNonceSize + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                          bytes(out) + kNonceSize + plaintext.size()) != 1) {
    return {};
  }
  return out;
}

std::optional<std::string> SecretBox::open(std::string_view sealed,
                                           std::string_view associated) const {
  if (sealed.size() < kNonceSize + kTagSize) return std::nullopt;
  const size_t text_size = sealed.size() - kNonceSize - kTagSize;
  std::string out(text_size, '\0');
  std::string tag(sealed.substr(kNonceSize + text_size));
  CipherContext ctx = newContext();
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceSize),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key_), bytes(sealed)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(associated),
                        static_cast<int>(associated.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), bytes(out), &len, bytes(sealed) + kNonceSize,
                        static_cast<int>(text_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize),
                          bytes(tag)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), bytes(out) + len, &len) != 1) {
    return std::nullopt;
  }
  return out;
}

std::string encodeBase64(std::string_view in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) |
                 uint32_t(uint8_t(in[i + 2]));
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 0x3F]);
  }
  if (i < in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out.push_back(kAlphabet[(v >> 18) & 0x3F]);
    out.push_back(kAlphabet[(v >> 12) & 0x3F]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 0x3F] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace fanpull
