#include "core/user_list_parser.h"

#include <array>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__SSE2__) && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define FANPULL_OPENID_AVX2 1
#endif

#include "core/error_class.h"

namespace fanpull {
namespace {

constexpr size_t kMaxOpenIdLength = 64;
constexpr int kMaxDepth = 64;

constexpr std::array<bool, 256> makeUrlSafeTable() {
  std::array<bool, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  t['-'] = true;
  t['_'] = true;
  return t;
}
constexpr std::array<bool, 256> kUrlSafe = makeUrlSafeTable();

#if defined(__SSE2__)
// Bit i set where byte i of the 16 is in [A-Za-z0-9_-]. Bytes >= 0x80 are negative as signed
// chars and fall outside every range.
inline unsigned urlSafeMask16(__m128i v) {
  auto in = [&](char lo, char hi) {
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))));
  };
  __m128i ok = _mm_or_si128(_mm_or_si128(in('0', '9'), in('A', 'Z')), in('a', 'z'));
  ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
  ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
  return static_cast<unsigned>(_mm_movemask_epi8(ok));
}

inline unsigned quoteMask16(__m128i v) {
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"'))));
}

// What the vector code reads of the 32 bytes at p: bit i of `quotes` set where byte i is '"',
// bit i of `unsafe` where it is outside [A-Za-z0-9_-]. One function per instruction set; what is
// done with them is written once below.
struct Masks32 {
  uint32_t quotes;
  uint32_t unsafe;
};

inline Masks32 sse2Masks(const char* p) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
  return {quoteMask16(a) | (quoteMask16(b) << 16), ~(urlSafeMask16(a) | (urlSafeMask16(b) << 16))};
}
#endif

#if defined(FANPULL_OPENID_AVX2)
// With one 32-byte load. The bytes that are not URL-safe are found by two table lookups (low
// and high nibble): a byte is URL-safe when its two entries share a bit. Bit 0: digits (high 3),
// bit 1: 'A'-'O' and 'a'-'o' (high 4 and 6, low 1-F), bit 2: 'P'-'Z' and 'p'-'z' (high 5 and 7,
// low 0-A), bit 3: '_' (0x5F), bit 4: '-' (0x2D). High nibbles 8-F match nothing.
__attribute__((target("avx2"))) inline Masks32 avx2Masks(const char* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i low_table = _mm256_setr_epi8(5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 2, 2, 18, 2, 10,  //
                                             5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 2, 2, 18, 2, 10);
  const __m256i high_table = _mm256_setr_epi8(0, 0, 16, 1, 2, 12, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                              0, 0, 16, 1, 2, 12, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  const __m256i low = _mm256_and_si256(v, nibble);
  const __m256i high = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
  const __m256i both = _mm256_and_si256(_mm256_shuffle_epi8(low_table, low),
                                        _mm256_shuffle_epi8(high_table, high));
  return {static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('"')))),
          static_cast<uint32_t>(
              _mm256_movemask_epi8(_mm256_cmpeq_epi8(both, _mm256_setzero_si256())))};
}
#endif

// Which vector code reads the OpenIDs (detail::setOpenIdScan); chosen once from the CPU.
detail::OpenIdScan detectedScan() {
#if defined(FANPULL_OPENID_AVX2)
  __builtin_cpu_init();  // runs from a static initializer, before libgcc's own may have run
  if (__builtin_cpu_supports("avx2")) return detail::OpenIdScan::kAvx2;
#endif
#if defined(__SSE2__)
  return detail::OpenIdScan::kSse2;
#else
  return detail::OpenIdScan::kScalar;
#endif
}
detail::OpenIdScan g_scan = detectedScan();

#if defined(__SSE2__)
// The functions below are inlined into their callers, so that Load is inlined with the vector
// code of the caller (compactRunAvx2 is compiled for AVX2).
using LoadMasks = Masks32 (*)(const char*);

// Length of the OpenID that starts at p (the byte after its opening quote) when it is 1-31
// URL-safe bytes closed by a quote, all within the next 32 bytes; 0 otherwise (the caller then
// takes the byte-by-byte path, which also reports the problem).
template <LoadMasks Load>
__attribute__((always_inline)) inline size_t openIdLength(const char* p, const char* end) {
  if (end - p < 32) return 0;
  const Masks32 m = Load(p);
  if (m.quotes == 0) return 0;
  const unsigned len = static_cast<unsigned>(__builtin_ctz(m.quotes));
  const uint32_t before = (1u << len) - 1;  // len <= 31
  if (len == 0 || (m.unsafe & before) != 0) return 0;
  return len;
}

// How many OpenIDs from `at` (after an opening quote) are, one after the other, exactly `len`
// URL-safe bytes closed by a quote and followed by ,": the common case of a page, where every
// OpenID has the length of the first. At most `max`. Each OpenID is checked with one 32-byte
// load at a fixed stride from the one before, so the CPU reads ahead instead of waiting for
// each one's length.
template <LoadMasks Load>
__attribute__((always_inline)) inline size_t sameLengthRun(const char* at, const char* end,
                                                           size_t len, size_t max) {
  if (len == 0 || len > 29) return 0;  // the closing quote and ," within the 32 bytes
  const size_t stride = len + 3;
  const uint32_t window = static_cast<uint32_t>((uint64_t{1} << (len + 3)) - 1);  // <= 32 bits
  const uint32_t quotes_wanted = (1u << len) | (1u << (len + 2));
  const uint32_t before = (1u << len) - 1;
  size_t k = 0;
  while (k < max && end - at >= 32) {
    const Masks32 m = Load(at);
    if ((m.quotes & window) != quotes_wanted || at[len + 1] != ',' || (m.unsafe & before) != 0) {
      break;
    }
    ++k;
    at += stride;
  }
  return k;
}

// The OpenIDs WeChat sends back to back as "id","id",...: from p (after an opening quote), as
// many as `room` allows while each is 1-31 URL-safe bytes closed by a quote and followed by ,"
// (then the next one). Each is handed to keep(start, length); returns how many, and leaves *p
// after the last one's closing quote (unchanged when none). The general loop takes what is left,
// so a byte this refuses is only read again, byte by byte.
template <LoadMasks Load, class Keep>
__attribute__((always_inline)) inline size_t compactRun(const char** p, const char* end,
                                                        size_t room, Keep&& keep) {
  const char* at = *p;
  size_t n = 0;
  while (n < room) {
    const size_t len = openIdLength<Load>(at, end);
    if (len == 0) break;
    keep(at, len);
    ++n;
    const char* after = at + len + 1;
    *p = after;
    if (n == room || end - after < 2 || after[0] != ',' || after[1] != '"') break;
    at = after + 2;
    // Then those of the same length, checked first and taken after.
    const size_t same = sameLengthRun<Load>(at, end, len, room - n);
    for (size_t k = 0; k < same; ++k, at += len + 3) keep(at, len);
    n += same;
    if (same > 0) *p = at - 2;  // after the last one's closing quote; `at` is the next one
  }
  return n;
}
#endif

#if defined(FANPULL_OPENID_AVX2)
template <class Keep>
__attribute__((target("avx2"))) size_t compactRunAvx2(const char** p, const char* end, size_t room,
                                                      Keep&& keep) {
  return compactRun<avx2Masks>(p, end, room, keep);
}
#endif

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A single-pass JSON reader over the answer's bytes. Every method returns false on the first
// problem and leaves its description in error_.
class Scanner {
 public:
  // in_place: OpenIDs are kept where they lie in s (FollowerPage::addInText), not copied.
  Scanner(std::string_view s, bool in_place)
      : begin_(s.data()), p_(s.data()), end_(s.data() + s.size()), in_place_(in_place) {}

  const std::string& error() const { return error_; }

  bool fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at byte " + std::to_string(p_ - begin_);
    return false;
  }
  bool truncated() { return fail("truncated JSON"); }

  void skipWs() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool atEnd() const { return p_ >= end_; }
  char peek() const { return *p_; }

  bool expect(char c) {
    skipWs();
    if (atEnd()) return truncated();
    if (*p_ != c) return fail(std::string("expected '") + c + "'");
    ++p_;
    return true;
  }

  // A JSON string, decoded into *out when out is not null. Rejects control characters, bad
  // escapes, lone surrogates and invalid UTF-8.
  bool parseString(std::string* out) {
    skipWs();
    if (atEnd()) return truncated();
    if (*p_ != '"') return fail("expected a string");
    ++p_;
    while (true) {
      const char* run = p_;
      while (p_ < end_ && static_cast<unsigned char>(*p_) >= 0x20 && *p_ != '"' && *p_ != '\\' &&
             static_cast<unsigned char>(*p_) < 0x80) {
        ++p_;
      }
      if (out) out->append(run, p_ - run);
      if (atEnd()) return truncated();
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (!parseEscape(out)) return false;
      } else if (c < 0x20) {
        return fail("control character in a string");
      } else if (!parseUtf8(out)) {
        return false;
      }
    }
  }

  // A JSON number that is an integer (no fraction, no exponent) within int64.
  bool parseInteger(int64_t* v, const char* what) {
    skipWs();
    if (atEnd()) return truncated();
    bool negative = false;
    if (*p_ == '-') {
      negative = true;
      ++p_;
    }
    if (atEnd()) return truncated();
    if (*p_ < '0' || *p_ > '9') return fail(std::string(what) + " is not an integer");
    uint64_t n = 0;
    const char* digits = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      if (p_ - digits >= 18) return fail(std::string(what) + " is out of range");
      n = n * 10 + static_cast<uint64_t>(*p_ - '0');
      ++p_;
    }
    if (p_ - digits > 1 && *digits == '0') return fail(std::string(what) + " has a leading zero");
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) {
      return fail(std::string(what) + " is not an integer");
    }
    *v = negative ? -static_cast<int64_t>(n) : static_cast<int64_t>(n);
    return true;
  }

  bool skipValue(int depth) {
    if (depth > kMaxDepth) return fail("JSON nested too deeply");
    skipWs();
    if (atEnd()) return truncated();
    switch (*p_) {
      case '"':
        return parseString(nullptr);
      case '{': {
        ++p_;
        skipWs();
        if (!atEnd() && *p_ == '}') {
          ++p_;
          return true;
        }
        while (true) {
          if (!parseString(nullptr) || !expect(':') || !skipValue(depth + 1)) return false;
          skipWs();
          if (atEnd()) return truncated();
          if (*p_ == ',') {
            ++p_;
            continue;
          }
          if (*p_ == '}') {
            ++p_;
            return true;
          }
          return fail("expected ',' or '}'");
        }
      }
      case '[': {
        ++p_;
        skipWs();
        if (!atEnd() && *p_ == ']') {
          ++p_;
          return true;
        }
        while (true) {
          if (!skipValue(depth + 1)) return false;
          skipWs();
          if (atEnd()) return truncated();
          if (*p_ == ',') {
            ++p_;
            continue;
          }
          if (*p_ == ']') {
            ++p_;
            return true;
          }
          return fail("expected ',' or ']'");
        }
      }
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return skipNumber();
    }
  }

  // One OpenID byte by byte from `start` (after its opening quote), escapes decoded; p_ ends
  // after its closing quote.
  bool scanOpenId(FollowerPage& page, const char* start, size_t index, std::string& slow) {
    while (p_ < end_ && kUrlSafe[static_cast<unsigned char>(*p_)]) ++p_;
    if (atEnd()) return truncated();
    if (*p_ == '"') {
      size_t len = static_cast<size_t>(p_ - start);
      if (len == 0 || len > kMaxOpenIdLength) {
        return fail("openid " + std::to_string(index) + " has length " + std::to_string(len));
      }
      keep(page, std::string_view(start, len));
      ++p_;
      return true;
    }
    if (*p_ == '\\') {
      // Escapes are legal JSON: decode, then hold the result to the same rule.
      p_ = start - 1;
      slow.clear();
      if (!parseString(&slow)) return false;
      if (!isValidOpenId(slow)) return fail("openid " + std::to_string(index) + " is malformed");
      page.add(slow);
      return true;
    }
    return fail("openid " + std::to_string(index) + " has a character outside [A-Za-z0-9_-]");
  }

  // The "openid" array of "data": appended to page, each checked to be an OpenID.
  bool parseOpenIds(FollowerPage& page) {
    if (!expect('[')) return false;
    skipWs();
    if (atEnd()) return truncated();
    if (*p_ == ']') {
      ++p_;
      return true;
    }
    std::string slow;
    while (true) {
      skipWs();
      if (atEnd()) return truncated();
      size_t index = page.size();
      if (index >= static_cast<size_t>(kMaxOpenIdsPerPage)) {
        return fail("more than " + std::to_string(kMaxOpenIdsPerPage) + " openids");
      }
      if (*p_ != '"') return fail("openid " + std::to_string(index) + " is not a string");
      const char* start = ++p_;
      // As a rule every OpenID from here on in one run; otherwise this one, byte by byte.
      if (compactOpenIds(page, static_cast<size_t>(kMaxOpenIdsPerPage) - index) == 0 &&
          !scanOpenId(page, start, index, slow)) {
        return false;
      }
      skipWs();
      if (atEnd()) return truncated();
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      return fail("expected ',' or ']' after openid " + std::to_string(page.size() - 1));
    }
  }

 private:
  bool literal(const char* word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n) return truncated();
    if (std::memcmp(p_, word, n) != 0) return fail("invalid JSON value");
    p_ += n;
    return true;
  }

  bool skipNumber() {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    auto digits = [&] {
      const char* d = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      return p_ > d;
    };
    if (!digits()) return atEnd() ? truncated() : fail("invalid JSON value");
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return atEnd() ? truncated() : fail("invalid number");
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return atEnd() ? truncated() : fail("invalid number");
    }
    return p_ > start;
  }

  bool hex4(uint32_t* v) {
    if (end_ - p_ < 4) return truncated();
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) {
      char c = *p_++;
      r <<= 4;
      if (c >= '0' && c <= '9') r |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') r |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') r |= static_cast<uint32_t>(c - 'A' + 10);
      else return fail("invalid \\u escape");
    }
    *v = r;
    return true;
  }

  bool parseEscape(std::string* out) {
    ++p_;  // the backslash
    if (atEnd()) return truncated();
    char c = *p_++;
    char decoded;
    switch (c) {
      case '"': decoded = '"'; break;
      case '\\': decoded = '\\'; break;
      case '/': decoded = '/'; break;
      case 'b': decoded = '\b'; break;
      case 'f': decoded = '\f'; break;
      case 'n': decoded = '\n'; break;
      case 'r': decoded = '\r'; break;
      case 't': decoded = '\t'; break;
      case 'u': {
        uint32_t cp = 0;
        if (!hex4(&cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate in \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end_ - p_ < 2) return truncated();
          if (p_[0] != '\\' || p_[1] != 'u') return fail("lone high surrogate in \\u escape");
          p_ += 2;
          uint32_t lo = 0;
          if (!hex4(&lo)) return false;
          if (lo < 0xDC00 || lo > 0xDFFF) return fail("invalid surrogate pair");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (out) appendUtf8(*out, cp);
        return true;
      }
      default:
        return fail("invalid escape");
    }
    if (out) out->push_back(decoded);
    return true;
  }

  // One multi-byte UTF-8 sequence, validated (no overlongs, no surrogates, <= U+10FFFF).
  bool parseUtf8(std::string* out) {
    const unsigned char* s = reinterpret_cast<const unsigned char*>(p_);
    size_t avail = static_cast<size_t>(end_ - p_);
    unsigned char c = s[0];
    size_t n;
    uint32_t min;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2; min = 0x80; cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3; min = 0x800; cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4; min = 0x10000; cp = c & 0x07;
    } else {
      return fail("invalid UTF-8");
    }
    if (avail < n) return truncated();
    for (size_t i = 1; i < n; ++i) {
      if ((s[i] & 0xC0) != 0x80) return fail("invalid UTF-8");
      cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return fail("invalid UTF-8");
    if (out) out->append(p_, n);
    p_ += n;
    return true;
  }

  // The run of back-to-back OpenIDs from p_ (compactRun) with the chosen vector code; 0 when
  // the next one is not in that shape, or without vector code.
  size_t compactOpenIds(FollowerPage& page, size_t room) {
    auto take = [&](const char* at, size_t len) { keep(page, std::string_view(at, len)); };
    switch (g_scan) {
#if defined(FANPULL_OPENID_AVX2)
      case detail::OpenIdScan::kAvx2:
        return compactRunAvx2(&p_, end_, room, take);
#endif
#if defined(__SSE2__)
      case detail::OpenIdScan::kSse2:
        return compactRun<sse2Masks>(&p_, end_, room, take);
#endif
      default:
        return 0;
    }
  }

  void keep(FollowerPage& page, std::string_view id) {
    if (in_place_) {
      page.addInText(begin_, id);
    } else {
      page.add(id);
    }
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  bool in_place_;
  std::string error_;
};

enum Seen : unsigned {
  kErrcode = 1,
  kErrmsg = 2,
  kTotal = 4,
  kCount = 8,
  kData = 16,
  kNext = 32,
  kOpenIds = 64,
};

Result<FollowerPage> parse(std::string_view body, bool in_place) {
  Scanner in(body, in_place);
  in.skipWs();
  if (in.atEnd()) return malformedAnswerError("empty body");
  if (in.peek() == '<') return malformedAnswerError("not JSON (an HTML or XML page)");
  if (in.peek() != '{') return malformedAnswerError("not a JSON object");

  FollowerPage page;
  int64_t errcode = 0;
  std::string errmsg;
  unsigned seen = 0;
  std::string key;
  auto once = [&](unsigned bit) {
    if (seen & bit) return in.fail("duplicate key \"" + key + "\"");
    seen |= bit;
    return true;
  };

  bool ok = in.expect('{');
  in.skipWs();
  if (ok && !in.atEnd() && in.peek() == '}') {
    ok = in.expect('}');
  } else {
    while (ok) {
      key.clear();
      if (!in.parseString(&key) || !in.expect(':')) {
        ok = false;
        break;
      }
      if (key == "errcode") {
        ok = once(kErrcode) && in.parseInteger(&errcode, "errcode");
      } else if (key == "errmsg") {
        ok = once(kErrmsg) && in.parseString(&errmsg);
      } else if (key == "total") {
        ok = once(kTotal) && in.parseInteger(&page.total, "total");
        if (ok && page.total < 0) ok = in.fail("total is negative");
      } else if (key == "count") {
        ok = once(kCount) && in.parseInteger(&page.count, "count");
        if (ok && page.count < 0) ok = in.fail("count is negative");
        if (ok && page.count > kMaxOpenIdsPerPage) {
          ok = in.fail("count " + std::to_string(page.count) + " is over " +
                       std::to_string(kMaxOpenIdsPerPage));
        }
      } else if (key == "next_openid") {
        ok = once(kNext) && in.parseString(&page.next_openid);
      } else if (key == "data") {
        ok = once(kData) && in.expect('{');
        page.has_data = true;
        if (ok) {
          size_t n = page.count > 0 ? static_cast<size_t>(page.count) : body.size() / 31 + 1;
          page.reserve(n, in_place ? 0 : n * 28);
        }
        in.skipWs();
        if (ok && !in.atEnd() && in.peek() == '}') {
          ok = in.expect('}');
        } else {
          while (ok) {
            key.clear();
            if (!in.parseString(&key) || !in.expect(':')) {
              ok = false;
              break;
            }
            if (key == "openid") {
              ok = once(kOpenIds) && in.parseOpenIds(page);
            } else {
              ok = in.skipValue(2);
            }
            if (!ok) break;
            in.skipWs();
            if (in.atEnd()) {
              ok = in.truncated();
            } else if (in.peek() == ',') {
              ok = in.expect(',');
            } else {
              ok = in.expect('}');
              break;
            }
          }
        }
      } else {
        ok = in.skipValue(1);
      }
      if (!ok) break;
      in.skipWs();
      if (in.atEnd()) {
        ok = in.truncated();
      } else if (in.peek() == ',') {
        ok = in.expect(',');
      } else {
        ok = in.expect('}');
        break;
      }
    }
  }
  if (ok) {
    in.skipWs();
    if (!in.atEnd()) ok = in.fail("trailing characters after the JSON object");
  }
  if (!ok) return malformedAnswerError(in.error());

  if (seen & kErrcode) {
    if (errcode != 0) return errcodeError(static_cast<long>(errcode), std::move(errmsg));
    if (!(seen & (kTotal | kCount | kData))) {
      return malformedAnswerError("errcode 0 without a follower list");
    }
  }
  if (!(seen & kTotal)) return malformedAnswerError("no total");
  if (!(seen & kCount)) return malformedAnswerError("no count");
  if (page.has_data && !(seen & kOpenIds) && page.count > 0) {
    return malformedAnswerError("data without an openid array");
  }
  if (page.count > 0 && !page.has_data) {
    return malformedAnswerError("count " + std::to_string(page.count) + " without data");
  }
  if (static_cast<size_t>(page.count) != page.size()) {
    return malformedAnswerError("count " + std::to_string(page.count) + " disagrees with " +
                                std::to_string(page.size()) + " openids");
  }
  if (page.count > 0 && !(seen & kNext)) return malformedAnswerError("no next_openid");
  if (!page.next_openid.empty() && !isValidOpenId(page.next_openid)) {
    return malformedAnswerError("next_openid is not an OpenID");
  }
  return page;
}

}  // namespace

namespace detail {
OpenIdScan openIdScan() { return g_scan; }

bool setOpenIdScan(OpenIdScan scan) {
  if (scan > detectedScan()) return false;
  g_scan = scan;
  return true;
}
}  // namespace detail

Result<FollowerPage> parseUserListAnswer(std::string_view body) { return parse(body, false); }

Result<FollowerPage> parseUserListAnswer(std::string&& body) {
  Result<FollowerPage> page = parse(body, true);
  if (page.ok()) page->adoptText(std::move(body));
  return page;
}

}  // namespace fanpull
