#include "worker/messages.h"

#include <nlohmann/json.hpp>

#include "core/page_message.h"
#include "core/redactor.h"

namespace fanpull {
namespace {

using nlohmann::json;

}  // namespace

std::string encodeEvent(const JobEvent& event, TimePoint now) {
  Redactor& r = Redactor::global();
  std::string out = "{\"job_id\":";
  appendJsonString(out, event.job_id);
  out += ",\"appid\":";
  appendJsonString(out, event.appid);
  out += ",\"status\":";
  appendJsonString(out, event.status);
  out += ",\"pages\":" + std::to_string(event.pages);
  out += ",\"openids\":" + std::to_string(event.openids);
  if (event.error) {
    const Error& e = *event.error;
    out += ",\"error\":{\"class\":";
    appendJsonString(out, errorClassName(e.error_class));
    if (e.errcode) out += ",\"errcode\":" + std::to_string(*e.errcode);
    out += ",\"errmsg\":";
    appendJsonString(out, r.redact(e.errmsg));
    out += ",\"message\":";
    appendJsonString(out, r.redact(e.describe()));
    out += "}";
  }
  if (event.retry_at) {
    out += ",\"retry_at\":";
    appendJsonString(out, formatBeijing(*event.retry_at));
  }
  if (event.pages_affordable_today) {
    out += ",\"pages_affordable_today\":" + std::to_string(*event.pages_affordable_today);
  }
  out += ",\"ts\":";
  appendJsonString(out, formatBeijing(now));
  out += "}";
  return out;
}

// Written field by field (two of these per page): the bytes nlohmann::json's dump() gives for
// the same object, keys in its (sorted) order, so that records written before and after read
// alike (StateStore reads "state" and "updated_ms" without parsing).
std::string encodeProgress(const ProgressRecord& p) {
  std::string out;
  out.reserve(192 + p.job_id.size() + p.appid.size() + p.cursor.size() + p.source_topic.size() +
              p.end_event.size() + p.end_event.size() / 8);
  out += "{\"appid\":";
  appendJsonString(out, p.appid);
  out += ",\"cursor\":";
  appendJsonString(out, p.cursor);
  if (!p.end_event.empty()) {
    out += ",\"end_event\":";
    appendJsonString(out, p.end_event);
  }
  if (p.events_partition >= 0 && p.events_offset >= 0) {
    out += ",\"events\":{\"offset\":" + std::to_string(p.events_offset) +
           ",\"partition\":" + std::to_string(p.events_partition) + "}";
  }
  out += ",\"job_id\":";
  appendJsonString(out, p.job_id);
  out += ",\"openids\":" + std::to_string(p.openids);
  out += ",\"retry_at_ms\":" + std::to_string(p.retry_at_ms);
  out += ",\"seq\":" + std::to_string(p.seq);
  out += ",\"source\":{\"offset\":" + std::to_string(p.source_offset) +
         ",\"partition\":" + std::to_string(p.source_partition) + ",\"topic\":";
  appendJsonString(out, p.source_topic);
  out += "},\"state\":";
  appendJsonString(out, p.state);
  out += ",\"updated_ms\":" + std::to_string(p.updated_ms) + "}";
  return out;
}

std::optional<ProgressRecord> parseProgress(std::string_view value) {
  json j = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  try {
    ProgressRecord p;
    p.job_id = j.at("job_id").get<std::string>();
    p.appid = j.at("appid").get<std::string>();
    p.state = j.at("state").get<std::string>();
    p.seq = j.at("seq").get<int64_t>();
    p.cursor = j.at("cursor").get<std::string>();
    p.openids = j.at("openids").get<int64_t>();
    const json& src = j.at("source");
    p.source_topic = src.at("topic").get<std::string>();
    p.source_partition = src.at("partition").get<int32_t>();
    p.source_offset = src.at("offset").get<int64_t>();
    p.retry_at_ms = j.value("retry_at_ms", int64_t{0});
    p.updated_ms = j.value("updated_ms", int64_t{0});
    if (auto events = j.find("events"); events != j.end() && events->is_object()) {
      p.events_partition = events->value("partition", int32_t{-1});
      p.events_offset = events->value("offset", int64_t{-1});
    }
    p.end_event = j.value("end_event", std::string());
    if (p.state == kProgressEnding && p.end_event.empty()) return std::nullopt;
    return p;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

kafka::Headers deadLetterHeaders(const Error& error, const std::string& topic, int32_t partition,
                                 int64_t offset) {
  kafka::Headers h = {
      {kHeaderErrorClass, std::string(errorClassName(error.error_class))},
      {kHeaderErrorMessage, Redactor::global().redact(error.describe())},
      {kHeaderOriginalTopic, topic},
      {kHeaderOriginalPartition, std::to_string(partition)},
      {kHeaderOriginalOffset, std::to_string(offset)},
  };
  if (error.errcode) h.push_back({kHeaderErrorErrcode, std::to_string(*error.errcode)});
  return h;
}

void fitDeadLetter(std::string* value, kafka::Headers* headers, size_t key_bytes,
                   size_t max_message_bytes) {
  // The record's own framing and a batch's header take well under 1 KiB.
  constexpr size_t kOverhead = 1024;
  size_t header_bytes = 64;  // fanpull-original-size and its value
  for (const auto& [name, v] : *headers) header_bytes += name.size() + v.size() + 16;
  const size_t fixed = kOverhead + header_bytes + key_bytes;
  const size_t room = max_message_bytes > fixed ? max_message_bytes - fixed : 0;
  if (value->size() <= room) return;
  headers->push_back({kHeaderOriginalSize, std::to_string(value->size())});
  value->resize(room);
}

}  // namespace fanpull
