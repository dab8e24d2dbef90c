#include "core/url.h"

namespace fanpull {

std::string percentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string buildTarget(std::string_view path,
                        std::initializer_list<std::pair<std::string_view, std::string_view>> query) {
  std::string out(path);
  char sep = '?';
  for (const auto& [key, value] : query) {
    out.push_back(sep);
    out += percentEncode(key);
    out.push_back('=');
    out += percentEncode(value);
    sep = '&';
  }
  return out;
}

}  // namespace fanpull
