#include "sandbox/openids.h"

namespace fanpull::sandbox {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::size_t kIndexChars = 7;
constexpr std::size_t kHashChars = kOpenIdLength - 1 - kIndexChars;  // 20
constexpr std::size_t kIndexPos = 6;  // index chars sit at [6, 13) so ids do not share a suffix

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

uint64_t appidHash(std::string_view appid) {
  uint64_t h = 0xCBF29CE484222325ULL;  // FNV-1a
  for (unsigned char c : appid) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return splitmix64(h);
}

int alphabetIndex(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Writes the id into out[0..28).
void writeOpenId(char* out, uint64_t appHash, int64_t index) {
  const uint64_t masked = (static_cast<uint64_t>(index) ^ appHash) & ((uint64_t{1} << 42) - 1);
  const uint64_t h1 = splitmix64(appHash ^ static_cast<uint64_t>(index));
  const uint64_t h2 = splitmix64(h1);
  char hashChars[kHashChars];
  for (std::size_t i = 0; i < 10; ++i) hashChars[i] = kAlphabet[(h1 >> (6 * i)) & 63];
  for (std::size_t i = 0; i < 10; ++i) hashChars[10 + i] = kAlphabet[(h2 >> (6 * i)) & 63];
  out[0] = 'o';
  std::size_t h = 0;
  for (std::size_t pos = 1; pos < kOpenIdLength; ++pos) {
    if (pos >= kIndexPos && pos < kIndexPos + kIndexChars) {
      const std::size_t digit = pos - kIndexPos;  // most significant first
      out[pos] = kAlphabet[(masked >> (6 * (kIndexChars - 1 - digit))) & 63];
    } else {
      out[pos] = hashChars[h++];
    }
  }
}

}  // namespace

std::string sandboxOpenId(std::string_view appid, int64_t index) {
  std::string out;
  out.reserve(kOpenIdLength);
  appendSandboxOpenId(out, appid, index);
  return out;
}

void appendSandboxOpenId(std::string& out, std::string_view appid, int64_t index) {
  const std::size_t at = out.size();
  out.resize(at + kOpenIdLength);
  writeOpenId(out.data() + at, appidHash(appid), index);
}

std::optional<int64_t> sandboxOpenIdIndex(std::string_view appid, std::string_view openid) {
  if (openid.size() != kOpenIdLength || openid[0] != 'o') return std::nullopt;
  uint64_t masked = 0;
  for (std::size_t i = 0; i < kIndexChars; ++i) {
    const int v = alphabetIndex(openid[kIndexPos + i]);
    if (v < 0) return std::nullopt;
    masked = (masked << 6) | static_cast<uint64_t>(v);
  }
  const uint64_t appHash = appidHash(appid);
  const auto index = static_cast<int64_t>((masked ^ appHash) & ((uint64_t{1} << 42) - 1));
  char expected[kOpenIdLength];
  writeOpenId(expected, appHash, index);
  if (std::string_view(expected, kOpenIdLength) != openid) return std::nullopt;
  return index;
}

}  // namespace fanpull::sandbox
