#include "core/page_message.h"

#include <cstdio>
#include <cstring>
#include <utility>

namespace fanpull {
namespace {

void appendInt(std::string& out, int64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  out.append(buf, static_cast<size_t>(n));
}

struct PartInfo {
  int64_t part;
  int64_t parts;
};

// Everything before the OpenIDs.
void appendHead(std::string& out, const PageIdentity& id, const FollowerPage& page, size_t count,
                const PartInfo* part) {
  out += "{\"job_id\":";
  appendJsonString(out, id.job_id);
  out += ",\"appid\":";
  appendJsonString(out, id.appid);
  out += ",\"seq\":";
  appendInt(out, id.seq);
  if (part) {
    out += ",\"part\":";
    appendInt(out, part->part);
    out += ",\"parts\":";
    appendInt(out, part->parts);
  }
  out += ",\"total\":";
  appendInt(out, page.total);
  out += ",\"count\":";
  appendInt(out, static_cast<int64_t>(count));
  out += ",\"openids\":[";
}

// Everything after the OpenIDs.
void appendTail(std::string& out, const PageIdentity& id, const FollowerPage& page) {
  out += "],\"next_openid\":";
  appendJsonString(out, page.next_openid);
  out += id.last ? ",\"last\":true}" : ",\"last\":false}";
}

// OpenIDs [begin, end): valid OpenIDs need no escaping, and the page holds them as the array
// writes them.
void appendOpenIds(std::string& out, const FollowerPage& page, size_t begin, size_t end) {
  if (begin == end) return;
  std::string_view ids = page.quotedOpenIds(begin, end);
  out.append(ids.data(), ids.size());
}

std::string encodeRange(const PageIdentity& id, const FollowerPage& page, size_t begin, size_t end,
                        const PartInfo* part) {
  std::string out;
  out.reserve(256 + id.job_id.size() + id.appid.size() + page.next_openid.size() +
              (page.openidBytes() * (end - begin)) / (page.size() ? page.size() : 1) +
              3 * (end - begin));
  appendHead(out, id, page, end - begin, part);
  appendOpenIds(out, page, begin, end);
  appendTail(out, id, page);
  return out;
}

}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

std::string encodePageMessage(const PageIdentity& id, const FollowerPage& page) {
  return encodeRange(id, page, 0, page.size(), nullptr);
}

Result<std::vector<std::string>> encodePageMessages(const PageIdentity& id, FollowerPage&& page,
                                                   size_t max_bytes) {
  if (page.empty()) return encodePageMessages(id, static_cast<const FollowerPage&>(page), max_bytes);
  std::string head;
  appendHead(head, id, page, page.size(), nullptr);
  std::string tail;
  appendTail(tail, id, page);
  const size_t ids = page.quotedOpenIds(0, page.size()).size();
  const size_t size = head.size() + ids + tail.size();
  if (size > max_bytes) {
    return encodePageMessages(id, static_cast<const FollowerPage&>(page), max_bytes);
  }
  size_t from = 0;
  std::string out = page.takeText(&from);
  // The OpenIDs move to just after the head (a few bytes either way within the buffer), then
  // the head and tail are written around them. Growing stays within the capacity the HTTP client
  // reserved past the body, so the buffer is not reallocated.
  if (out.size() < size) out.resize(size);
  std::memmove(&out[head.size()], &out[from], ids);
  std::memcpy(&out[0], head.data(), head.size());
  std::memcpy(&out[head.size() + ids], tail.data(), tail.size());
  out.resize(size);
  std::vector<std::string> one;
  one.push_back(std::move(out));
  return one;
}

Result<std::vector<std::string>> encodePageMessages(const PageIdentity& id, const FollowerPage& page,
                                                   size_t max_bytes) {
  std::vector<std::string> out;
  std::string whole = encodePageMessage(id, page);
  if (whole.size() <= max_bytes) {
    out.push_back(std::move(whole));
    return out;
  }
  // The fixed part of a message, with the widest part numbers it could carry.
  std::string frame;
  PartInfo widest{static_cast<int64_t>(page.size()), static_cast<int64_t>(page.size())};
  appendHead(frame, id, page, page.size(), &widest);
  appendTail(frame, id, page);
  if (frame.size() >= max_bytes) {
    return Error::of(ErrorClass::kBadJob,
        "message.max.bytes " + std::to_string(max_bytes) + " cannot hold a page message");
  }
  size_t room = max_bytes - frame.size();
  // Greedy split into ranges that fit.
  std::vector<std::pair<size_t, size_t>> ranges;
  size_t begin = 0;
  while (begin < page.size()) {
    size_t used = 0;
    size_t end = begin;
    while (end < page.size()) {
      size_t cost = page.openid(end).size() + 2 + (end != begin ? 1 : 0);
      if (used + cost > room) break;
      used += cost;
      ++end;
    }
    if (end == begin) {
      return Error::of(ErrorClass::kBadJob,
          "message.max.bytes " + std::to_string(max_bytes) + " cannot hold one OpenID");
    }
    ranges.emplace_back(begin, end);
    begin = end;
  }
  int64_t parts = static_cast<int64_t>(ranges.size());
  for (int64_t i = 0; i < parts; ++i) {
    PartInfo info{i, parts};
    out.push_back(encodeRange(id, page, ranges[i].first, ranges[i].second, &info));
  }
  return out;
}

}  // namespace fanpull
