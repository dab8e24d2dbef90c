// Building request targets for WeChat: every query value is percent-encoded, so a cursor holding
// `&`, `#`, `%`, spaces or CR/LF can never change the request. Pure functions; thread-safe.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace fanpull {

// RFC 3986 percent-encoding: everything but the unreserved characters A-Z a-z 0-9 - . _ ~.
std::string percentEncode(std::string_view s);

// "path?k1=v1&k2=v2" with every key and value percent-encoded.
std::string buildTarget(std::string_view path,
                        std::initializer_list<std::pair<std::string_view, std::string_view>> query);

}  // namespace fanpull
