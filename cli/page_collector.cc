#include "cli/page_collector.h"

#include <exception>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/follower_page.h"
#include "worker/messages.h"

namespace fanpull {
namespace {

using Json = nlohmann::json;

// The first header named `name`, or nullopt.
std::optional<std::string_view> findHeader(const kafka::Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.key == name) return std::string_view(h.value);
  }
  return std::nullopt;
}

// A JSON integer that fits int64_t, or nullopt (floats, booleans and the rest included).
std::optional<int64_t> integerOf(const Json& j) {
  if (j.is_number_unsigned()) {
    auto v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(v);
  }
  if (j.is_number_integer()) return j.get<int64_t>();
  return std::nullopt;
}

// The decimal text of `text` as int64_t, or nullopt.
std::optional<int64_t> parseDecimal(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// A split page has at least one OpenID a part, and a page at most WeChat's 10000 OpenIDs.
constexpr int64_t kMaxParts = 10000;

// A page's fields once checked.
struct Page {
  std::string appid;
  int64_t seq = 0;
  int64_t part = -1;  // -1: unsplit
  int64_t parts = 0;  // 0: unsplit
  int64_t total = 0;
  bool last = false;
  std::vector<std::string> openids;
};

// The page in `j`, or the reason it is not a valid page message.
std::optional<std::string> readPage(const Json& j, Page* page) {
  auto appid = j.find("appid");
  if (appid == j.end() || !appid->is_string() || appid->get_ref<const std::string&>().empty()) {
    return "appid: missing or not a non-empty string";
  }
  page->appid = appid->get<std::string>();

  auto readInt = [&j](const char* name, int64_t min, int64_t* out) -> std::optional<std::string> {
    auto it = j.find(name);
    if (it == j.end()) return std::string(name) + ": missing";
    auto v = integerOf(*it);
    if (!v || *v < min) {
      return std::string(name) + ": expected an integer >= " + std::to_string(min) + ", got " +
             it->dump(-1, ' ', false, Json::error_handler_t::replace).substr(0, 40);
    }
    *out = *v;
    return std::nullopt;
  };
  if (auto e = readInt("seq", 0, &page->seq)) return e;
  if (auto e = readInt("total", 0, &page->total)) return e;
  int64_t count = 0;
  if (auto e = readInt("count", 0, &count)) return e;

  bool has_part = j.contains("part");
  bool has_parts = j.contains("parts");
  if (has_part != has_parts) return std::string("part and parts: one without the other");
  if (has_parts) {
    if (auto e = readInt("parts", 1, &page->parts)) return e;
    if (auto e = readInt("part", 0, &page->part)) return e;
    if (page->parts > kMaxParts) {
      return "parts " + std::to_string(page->parts) + " over " + std::to_string(kMaxParts);
    }
    if (page->part >= page->parts) {
      return "part " + std::to_string(page->part) + " not below parts " +
             std::to_string(page->parts);
    }
  }

  auto last = j.find("last");
  if (last == j.end() || !last->is_boolean()) return std::string("last: missing or not a boolean");
  page->last = last->get<bool>();

  auto next = j.find("next_openid");
  if (next != j.end() && !next->is_string()) return std::string("next_openid: not a string");

  auto openids = j.find("openids");
  if (openids == j.end() || !openids->is_array()) {
    return std::string("openids: missing or not an array");
  }
  if (static_cast<int64_t>(openids->size()) != count) {
    return "count " + std::to_string(count) + " but " + std::to_string(openids->size()) +
           " openids";
  }
  page->openids.reserve(openids->size());
  for (size_t i = 0; i < openids->size(); ++i) {
    const Json& id = (*openids)[i];
    if (!id.is_string() || !isValidOpenId(id.get_ref<const std::string&>())) {
      return "openids[" + std::to_string(i) + "]: not an OpenID (1-64 of A-Z a-z 0-9 _ -)";
    }
    page->openids.push_back(id.get<std::string>());
  }
  return std::nullopt;
}

std::string identityName(int64_t seq, int64_t part) {
  std::string out = "seq " + std::to_string(seq);
  if (part >= 0) out += " part " + std::to_string(part);
  return out;
}

std::string range(int64_t from, int64_t to) {
  return from == to ? std::to_string(from) : std::to_string(from) + "-" + std::to_string(to);
}

}  // namespace

std::string_view pageStatusName(PageCollector::Status status) {
  switch (status) {
    case PageCollector::Status::kComplete: return "complete";
    case PageCollector::Status::kIncomplete: return "incomplete";
    case PageCollector::Status::kInconsistent: return "inconsistent";
  }
  return "inconsistent";
}

PageCollector::PageCollector(std::string job_id) : job_id_(std::move(job_id)) {}

void PageCollector::inconsistent(std::string problem) {
  if (inconsistencies_.size() < kMaxListed) {
    inconsistencies_.push_back(std::move(problem));
  } else {
    ++inconsistencies_dropped_;
  }
}

PageCollector::Added PageCollector::add(std::string_view value, const kafka::Headers& headers,
                                        std::string_view origin) {
  auto header_job = findHeader(headers, kHeaderJobId);
  if (header_job && *header_job != job_id_) return Added::kOtherJob;
  const std::string where = origin.empty() ? std::string() : " (" + std::string(origin) + ")";

  Json j;
  try {
    j = Json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const std::exception&) {
    j = Json(Json::value_t::discarded);
  }
  // Without the header, a message is this job's only by its job_id field.
  if (!j.is_object()) {
    if (!header_job) return Added::kOtherJob;
    inconsistent("a page with header " + std::string(kHeaderJobId) + " " + job_id_ +
                 " is not a JSON object" + where);
    return Added::kRejected;
  }
  auto field_job = j.find("job_id");
  bool field_matches = field_job != j.end() && field_job->is_string() &&
                       field_job->get_ref<const std::string&>() == job_id_;
  if (!field_matches) {
    if (!header_job) return Added::kOtherJob;
    inconsistent("a page with header " + std::string(kHeaderJobId) + " " + job_id_ +
                 " has another job_id field" + where);
    return Added::kRejected;
  }

  Page page;
  if (auto reason = readPage(j, &page)) {
    inconsistent("a malformed page" + where + ": " + *reason);
    return Added::kRejected;
  }
  const std::string name = identityName(page.seq, page.part);
  if (auto h = findHeader(headers, kHeaderSeq); h && parseDecimal(*h) != page.seq) {
    inconsistent(name + where + ": header " + kHeaderSeq + " says " + std::string(*h));
    return Added::kRejected;
  }
  if (auto h = findHeader(headers, kHeaderPart); h && parseDecimal(*h) != page.part) {
    inconsistent(name + where + ": header " + kHeaderPart + " says " + std::string(*h));
    return Added::kRejected;
  }

  const Identity identity{page.seq, page.part};
  if (auto it = kept_.find(identity); it != kept_.end()) {
    if (it->second.value == value) {
      ++duplicates_;
      return Added::kDuplicate;
    }
    inconsistent(name + where + ": a different message with the same identity arrived before");
    return Added::kRejected;
  }
  if (!appid_.empty() && page.appid != appid_) {
    inconsistent(name + where + ": appid " + page.appid + ", other pages have " + appid_);
    return Added::kRejected;
  }
  // Parts of one seq must agree on what the page is.
  auto same_seq = kept_.lower_bound({page.seq, std::numeric_limits<int64_t>::min()});
  if (same_seq != kept_.end() && same_seq->first.first == page.seq) {
    const Kept& other = same_seq->second;
    const std::string other_name = identityName(page.seq, same_seq->first.second);
    if (other.parts != page.parts) {
      inconsistent(name + where + ": parts " + std::to_string(page.parts) + ", but " +
                   other_name + " has " + std::to_string(other.parts));
      return Added::kRejected;
    }
    if (other.last != page.last || other.total != page.total) {
      inconsistent(name + where + ": last or total differ from " + other_name);
      return Added::kRejected;
    }
  }
  if (page.last) {
    if (last_seq_ && *last_seq_ != page.seq) {
      inconsistent(name + where + ": marked last, but seq " + std::to_string(*last_seq_) +
                   " is marked last too");
      return Added::kRejected;
    }
    if (!kept_.empty() && kept_.rbegin()->first.first > page.seq) {
      inconsistent(name + where + ": marked last, but seq " +
                   std::to_string(kept_.rbegin()->first.first) + " exists");
      return Added::kRejected;
    }
  } else if (last_seq_ && page.seq > *last_seq_) {
    inconsistent(name + where + ": after the last page, seq " + std::to_string(*last_seq_));
    return Added::kRejected;
  }

  if (appid_.empty()) appid_ = page.appid;
  if (page.last) {
    last_seq_ = page.seq;
    last_total_ = page.total;
  }
  openid_count_ += page.openids.size();
  kept_.emplace(identity,
                Kept{std::string(value), page.parts, page.total, page.last, std::move(page.openids)});
  return Added::kNew;
}

std::vector<std::string> PageCollector::missing() const {
  std::vector<std::string> out;
  auto full = [&out] { return out.size() >= kMaxListed; };
  int64_t expected = 0;  // the next seq expected
  auto it = kept_.begin();
  while (it != kept_.end() && !full()) {
    const int64_t seq = it->first.first;
    if (seq > expected) out.push_back("missing seq " + range(expected, seq - 1));
    const int64_t parts = it->second.parts;
    std::vector<bool> have(static_cast<size_t>(parts), false);
    for (; it != kept_.end() && it->first.first == seq; ++it) {
      if (it->first.second >= 0 && it->first.second < parts) {
        have[static_cast<size_t>(it->first.second)] = true;
      }
    }
    for (int64_t p = 0; p < parts && !full(); ++p) {
      if (!have[static_cast<size_t>(p)]) {
        out.push_back("missing seq " + std::to_string(seq) + " part " + std::to_string(p) +
                      " of " + std::to_string(parts));
      }
    }
    expected = seq + 1;
  }
  if (!last_seq_ && !full()) {
    out.push_back(kept_.empty() ? "no page of this job yet"
                                : "no page marked last yet (highest seq " +
                                      std::to_string(kept_.rbegin()->first.first) + ")");
  }
  return out;
}

std::vector<int64_t> PageCollector::missingSeqs() const {
  std::vector<int64_t> out;
  int64_t expected = 0;
  for (const auto& [identity, kept] : kept_) {
    for (; expected < identity.first && out.size() < kMaxListed; ++expected) {
      out.push_back(expected);
    }
    if (out.size() >= kMaxListed) break;
    expected = identity.first + 1;
  }
  return out;
}

PageCollector::Status PageCollector::status() const {
  if (!inconsistencies_.empty()) return Status::kInconsistent;
  if (!last_seq_) return Status::kIncomplete;
  return missing().empty() ? Status::kComplete : Status::kIncomplete;
}

std::vector<std::string> PageCollector::problems() const {
  std::vector<std::string> out = inconsistencies_;
  if (inconsistencies_dropped_ > 0) {
    out.push_back("... and " + std::to_string(inconsistencies_dropped_) + " more");
  }
  for (auto& m : missing()) out.push_back(std::move(m));
  return out;
}

std::vector<std::string> PageCollector::openids() const {
  std::vector<std::string> out;
  out.reserve(openid_count_);
  for (const auto& [identity, kept] : kept_) {
    out.insert(out.end(), kept.openids.begin(), kept.openids.end());
  }
  return out;
}

size_t PageCollector::pages() const {
  size_t n = 0;
  std::optional<int64_t> previous;
  for (const auto& [identity, kept] : kept_) {
    if (previous != identity.first) ++n;
    previous = identity.first;
  }
  return n;
}

}  // namespace fanpull
