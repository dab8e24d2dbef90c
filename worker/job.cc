#include "worker/job.h"

#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>

namespace fanpull {
namespace {

Error badJob(std::string cause) {
  return Error::of(ErrorClass::kBadJob, std::move(cause));
}

// At most 24 bytes of `text`, printable ASCII kept, anything else as \xNN, in quotes.
std::string sanitizedPrefix(std::string_view text) {
  constexpr size_t kMax = 24;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  out += text.size() > kMax ? "\"..." : "\"";
  return out;
}

// The offset of the first byte that is not part of valid UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF), or nullopt.
std::optional<size_t> invalidUtf8At(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return i;
    }
    if (i + len > n) return i;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      auto ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xbf) return i;
    }
    i += len;
  }
  return std::nullopt;
}

bool isIdChar(char c, bool allow_dot_colon) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  if (c == '_' || c == '-') return true;
  return allow_dot_colon && (c == '.' || c == ':');
}

std::optional<Error> checkField(std::string_view field, std::string_view value, size_t max_len,
                                bool allow_dot_colon, const char* allowed) {
  if (value.empty()) return badJob(std::string(field) + ": empty");
  if (value.size() > max_len) {
    return badJob(std::string(field) + ": " + std::to_string(value.size()) + " bytes, at most " +
                  std::to_string(max_len) + " allowed");
  }
  for (size_t i = 0; i < value.size(); ++i) {
    if (!isIdChar(value[i], allow_dot_colon)) {
      return badJob(std::string(field) + ": character " + sanitizedPrefix(value.substr(i, 1)) +
                    " at offset " + std::to_string(i) + " is not allowed (only " + allowed +
                    "): " + sanitizedPrefix(value));
    }
  }
  return std::nullopt;
}

const char* typeName(nlohmann::json::value_t t) {
  using V = nlohmann::json::value_t;
  switch (t) {
    case V::null:
      return "null";
    case V::object:
      return "an object";
    case V::array:
      return "an array";
    case V::string:
      return "a string";
    case V::boolean:
      return "a boolean";
    case V::number_integer:
    case V::number_unsigned:
    case V::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

// Reads the top-level object's fields through nlohmann's SAX interface (iterative: hostile
// nesting cannot overflow the stack), keeping only the known fields, refusing deep nesting.
class JobSax : public nlohmann::json_sax<nlohmann::json> {
 public:
  using json = nlohmann::json;

  struct Field {
    bool seen = false;
    json::value_t type = json::value_t::null;
    std::string text;
  };
  Field job_id, appid, next_openid;
  std::optional<Error> error;
  bool top_is_object = false;

  bool null() override { return scalar(json::value_t::null, nullptr); }
  bool boolean(bool) override { return scalar(json::value_t::boolean, nullptr); }
  bool number_integer(number_integer_t) override {
    return scalar(json::value_t::number_integer, nullptr);
  }
  bool number_unsigned(number_unsigned_t) override {
    return scalar(json::value_t::number_unsigned, nullptr);
  }
  bool number_float(number_float_t, const string_t&) override {
    return scalar(json::value_t::number_float, nullptr);
  }
  bool string(string_t& val) override { return scalar(json::value_t::string, &val); }
  bool binary(binary_t&) override { return scalar(json::value_t::binary, nullptr); }

  bool start_object(std::size_t) override { return open(json::value_t::object); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(json::value_t::array); }
  bool end_array() override { return close(); }

  bool key(string_t& val) override {
    if (depth_ != 1) return true;
    current_ = nullptr;
    if (val == "job_id") current_ = &job_id;
    if (val == "appid") current_ = &appid;
    if (val == "next_openid") current_ = &next_openid;
    if (current_ != nullptr && current_->seen) {
      error = badJob(val + ": appears more than once");
      return false;
    }
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*ex*/) override {
    if (!error) error = badJob("not JSON (syntax error at byte " + std::to_string(position) + ")");
    return false;
  }

 private:
  bool value(json::value_t type, string_t* text) {
    if (depth_ == 0) {
      error = badJob(std::string("not a JSON object but ") + typeName(type));
      return false;
    }
    if (depth_ == 1 && current_ != nullptr) {
      current_->seen = true;
      current_->type = type;
      if (text != nullptr) current_->text = std::move(*text);
      current_ = nullptr;
    }
    return true;
  }
  bool scalar(json::value_t type, string_t* text) { return value(type, text); }
  bool open(json::value_t type) {
    if (depth_ == 0 && type == json::value_t::object) {
      top_is_object = true;
    } else if (!value(type, nullptr)) {
      return false;
    }
    if (++depth_ > kMaxJobNesting) {
      error = badJob("nested deeper than " + std::to_string(kMaxJobNesting) + " levels");
      return false;
    }
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  Field* current_ = nullptr;
};

std::optional<Error> requireString(const char* name, const JobSax::Field& f, bool optional) {
  if (!f.seen) {
    if (optional) return std::nullopt;
    return badJob(std::string(name) + ": missing");
  }
  if (f.type == nlohmann::json::value_t::null && optional) return std::nullopt;
  if (f.type != nlohmann::json::value_t::string) {
    return badJob(std::string(name) + ": must be a string, got " + typeName(f.type));
  }
  return std::nullopt;
}

}  // namespace

Result<Job> validateJob(Job job) {
  if (auto e = checkField("job_id", job.job_id, 128, true, "A-Z a-z 0-9 . _ : -")) return *e;
  if (auto e = checkField("appid", job.appid, 64, false, "A-Z a-z 0-9 _ -")) return *e;
  if (!job.next_openid.empty()) {
    if (auto e = checkField("next_openid", job.next_openid, 64, false, "A-Z a-z 0-9 _ -")) {
      return *e;
    }
  }
  return job;
}

Result<Job> parseJob(std::string_view bytes) {
  if (bytes.size() > kMaxJobBytes) {
    return badJob("job of " + std::to_string(bytes.size()) + " bytes, at most " +
                  std::to_string(kMaxJobBytes) + " allowed");
  }
  if (auto at = invalidUtf8At(bytes)) {
    return badJob("invalid UTF-8 at byte " + std::to_string(*at) + ": " +
                  sanitizedPrefix(bytes.substr(*at)));
  }
  JobSax sax;
  bool parsed = false;
  try {
    parsed = nlohmann::json::sax_parse(bytes.begin(), bytes.end(), &sax);
  } catch (const std::exception&) {
    parsed = false;
  }
  if (!parsed || sax.error) {
    if (sax.error) {
      if (sax.error->cause.rfind("not JSON", 0) == 0) {
        sax.error->cause += ": " + sanitizedPrefix(bytes);
      }
      return *sax.error;
    }
    return badJob("not JSON: " + sanitizedPrefix(bytes));
  }
  if (!sax.top_is_object) return badJob("not a JSON object");
  if (auto e = requireString("job_id", sax.job_id, false)) return *e;
  if (auto e = requireString("appid", sax.appid, false)) return *e;
  if (auto e = requireString("next_openid", sax.next_openid, true)) return *e;
  Job job{std::move(sax.job_id.text), std::move(sax.appid.text),
          sax.next_openid.type == nlohmann::json::value_t::string ? sax.next_openid.text : ""};
  return validateJob(std::move(job));
}

std::string encodeJob(const Job& job) {
  nlohmann::ordered_json j;
  j["job_id"] = job.job_id;
  j["appid"] = job.appid;
  j["next_openid"] = job.next_openid;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fanpull
