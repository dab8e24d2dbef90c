// The state key's sealing (AES-256-GCM): what opens, what does not, and that nothing sealed
// shows the secret.
#include <catch2/catch.hpp>

#include "core/secret_box.h"

using fanpull::encodeBase64;
using fanpull::SecretBox;

namespace {

std::string keyOf(char fill) { return std::string(SecretBox::kKeySize, fill); }

}  // namespace

TEST_CASE("a sealed secret opens with its key and appid, and shows nothing of itself",
          "[unit][core]") {
  SecretBox box(keyOf('k'));
  const std::string secret = "refreshtoken@@@SECRET-VALUE";
  const std::string sealed = box.seal(secret, "wxA");
  REQUIRE(sealed.size() == SecretBox::kNonceSize + secret.size() + SecretBox::kTagSize);
  CHECK(sealed.find("SECRET") == std::string::npos);
  CHECK(encodeBase64(sealed).find("SECRET") == std::string::npos);
  auto opened = box.open(sealed, "wxA");
  REQUIRE(opened.has_value());
  CHECK(*opened == secret);
  // A fresh nonce each time: the same secret never seals to the same bytes.
  CHECK(box.seal(secret, "wxA") != sealed);
  CHECK(box.seal(secret, "wxA").substr(0, SecretBox::kNonceSize) !=
        sealed.substr(0, SecretBox::kNonceSize));
}

TEST_CASE("a sealed secret does not open with another key, another appid or a changed byte",
          "[unit][core]") {
  SecretBox box(keyOf('k'));
  const std::string sealed = box.seal("access-token-1", "wxA");
  CHECK_FALSE(SecretBox(keyOf('j')).open(sealed, "wxA").has_value());
  CHECK_FALSE(box.open(sealed, "wxB").has_value());  // copied under another merchant's key
  for (size_t at : {size_t{0}, SecretBox::kNonceSize, sealed.size() - 1}) {
    std::string changed = sealed;
    changed[at] = static_cast<char>(changed[at] ^ 1);
    CHECK_FALSE(box.open(changed, "wxA").has_value());
  }
  CHECK_FALSE(box.open(sealed.substr(0, 10), "wxA").has_value());
}

TEST_CASE("a key id tells keys apart and is the same for the same key", "[unit][core]") {
  SecretBox a(keyOf('k'));
  CHECK(a.keyId().size() == 16);
  CHECK(a.keyId() == SecretBox(keyOf('k')).keyId());
  CHECK(a.keyId() != SecretBox(keyOf('j')).keyId());
  CHECK(a.keyId().find("kkkk") == std::string::npos);
}

TEST_CASE("base64 encodes with padding", "[unit][core]") {
  CHECK(encodeBase64("") == "");
  CHECK(encodeBase64("f") == "Zg==");
  CHECK(encodeBase64("fo") == "Zm8=");
  CHECK(encodeBase64("foo") == "Zm9v");
  CHECK(encodeBase64("foobar") == "Zm9vYmFy");
  CHECK(encodeBase64(std::string("\xff\x00\x10", 3)) == "/wAQ");
}
