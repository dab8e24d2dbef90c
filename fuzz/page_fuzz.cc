// libFuzzer target: the getFans answer parser. Any bytes: a page whose count matches its OpenIDs
// (every one a valid OpenID), or a classified Error; the page message of a parsed page parses
// back to the same count, total, cursor and OpenIDs, whether the page copies the OpenIDs or keeps
// the body they lie in.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/page_message.h"
#include "core/user_list_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto page = fanpull::parseUserListAnswer(input);
  if (!page.ok()) return 0;
  if (static_cast<size_t>(page->count) != page->size()) std::abort();
  if (page->count > fanpull::kMaxOpenIdsPerPage) std::abort();
  for (size_t i = 0; i < page->size(); ++i) {
    if (!fanpull::isValidOpenId(page->openid(i))) std::abort();
  }
  std::string message = fanpull::encodePageMessage({"job", "wx", 0, false}, page.value());
  // The page message is JSON that says exactly what the answer said.
  nlohmann::json back = nlohmann::json::parse(message, nullptr, /*allow_exceptions=*/false);
  if (!back.is_object()) std::abort();
  if (back.value("count", int64_t{-1}) != page->count) std::abort();
  if (back.value("total", int64_t{-1}) != page->total) std::abort();
  if (back.value("next_openid", std::string("?")) != page->next_openid) std::abort();
  const auto& openids = back["openids"];
  if (!openids.is_array() || openids.size() != page->size()) std::abort();
  for (size_t i = 0; i < page->size(); ++i) {
    if (openids[i].get<std::string>() != page->openid(i)) std::abort();
  }
  // A page that keeps the body (the worker's path) says the same as one that copies.
  auto kept = fanpull::parseUserListAnswer(std::string(input));
  if (!kept.ok()) std::abort();
  if (fanpull::encodePageMessage({"job", "wx", 0, false}, kept.value()) != message) std::abort();
  // Written in the page's own buffer, the same bytes.
  auto in_place = fanpull::encodePageMessages({"job", "wx", 0, false}, std::move(kept).value(),
                                              message.size());
  if (!in_place.ok() || in_place->size() != 1 || in_place->front() != message) std::abort();
  return 0;
}
