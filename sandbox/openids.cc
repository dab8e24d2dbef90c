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

// Writes the id into out[0..28): 'o', 5 hash chars, the 7 index chars (most significant first),
// then 15 hash chars.
void writeOpenId(char* out, uint64_t appHash, int64_t index) {
  const uint64_t masked = (static_cast<uint64_t>(index) ^ appHash) & ((uint64_t{1} << 42) - 1);
  const uint64_t h1 = splitmix64(appHash ^ static_cast<uint64_t>(index));
  const uint64_t h2 = splitmix64(h1);
  static_assert(kIndexPos == 6 && kIndexChars == 7 && kHashChars == 20 && kOpenIdLength == 28,
                "layout below");
  out[0] = 'o';
  for (std::size_t i = 0; i < 5; ++i) out[1 + i] = kAlphabet[(h1 >> (6 * i)) & 63];
  for (std::size_t d = 0; d < kIndexChars; ++d) {
    out[kIndexPos + d] = kAlphabet[(masked >> (6 * (kIndexChars - 1 - d))) & 63];
  }
  for (std::size_t i = 5; i < 10; ++i) out[8 + i] = kAlphabet[(h1 >> (6 * i)) & 63];
  for (std::size_t i = 0; i < 10; ++i) out[18 + i] = kAlphabet[(h2 >> (6 * i)) & 63];
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

void appendSandboxOpenIdList(std::string& out, std::string_view appid, int64_t begin,
                             int64_t end) {
  if (begin >= end) return;
  const uint64_t appHash = appidHash(appid);
  const std::size_t at = out.size();
  const auto count = static_cast<std::size_t>(end - begin);
  out.resize(at + count * (kOpenIdLength + 3) - 1);
  char* p = out.data() + at;
  for (int64_t i = begin; i < end; ++i) {
    if (i != begin) *p++ = ',';
    *p++ = '"';
    writeOpenId(p, appHash, i);
    p += kOpenIdLength;
    *p++ = '"';
  }
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
