// SecretBox: seals the secrets fanpull keeps outside its own machine (tokens in the state topic)
// with AES-256-GCM under the state key: a fresh random 12-byte nonce per sealing, the caller's
// associated data (an appid) bound to the ciphertext, so a record copied under another merchant's
// key does not open. The key id names a key in records and errors without revealing it.
// Thread-safe (immutable after construction).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace fanpull {

class SecretBox {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;

  // `key` must be kKeySize bytes (the configuration checks it); another size is a programming error.
  explicit SecretBox(std::string key);

  // 16 hex digits of SHA-256 over a fixed label and the key: equal for equal keys, and no help
  // in guessing one.
  const std::string& keyId() const { return key_id_; }

  // nonce | ciphertext | tag. Empty only if OpenSSL cannot seal (no randomness): callers treat
  // that as a failed write.
  std::string seal(std::string_view plaintext, std::string_view associated) const;

  // The plaintext, or nullopt when `sealed` was not sealed by this key with this associated data
  // (or was changed since).
  std::optional<std::string> open(std::string_view sealed, std::string_view associated) const;

 private:
  std::string key_;
  std::string key_id_;
};

// Standard base64 with padding (the state topic's records carry sealed bytes as JSON strings).
std::string encodeBase64(std::string_view bytes);

}  // namespace fanpull
