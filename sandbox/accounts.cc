#include "sandbox/accounts.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "sandbox/openids.h"

namespace fanpull::sandbox {
namespace {

using nlohmann::json;

std::string describe(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::number_float:
      return "a number with a fraction";
    default:
      return "a number";
  }
}

// Reads one JSON document's values, naming the file and the key in every error.
class Reader {
 public:
  explicit Reader(const std::string& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& key, const std::string& reason) const {
    throw SandboxFileError(file_, key, reason);
  }

  void checkKeys(const json& obj, const std::string& where,
                 const std::set<std::string>& allowed) const {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (allowed.count(it.key()) == 0) fail(join(where, it.key()), "unknown key");
    }
  }

  const json& object(const json& v, const std::string& key) const {
    if (!v.is_object()) fail(key, "expected an object, got " + describe(v));
    return v;
  }

  std::string string(const json& v, const std::string& key, bool nonEmpty) const {
    if (!v.is_string()) fail(key, "expected a string, got " + describe(v));
    std::string s = v.get<std::string>();
    if (nonEmpty && s.empty()) fail(key, "expected a non-empty string");
    return s;
  }

  int64_t integer(const json& v, const std::string& key, int64_t min, int64_t max) const {
    if (!v.is_number_integer()) fail(key, "expected an integer, got " + describe(v));
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max)) {
      fail(key, "expected an integer <= " + std::to_string(max));
    }
    const auto n = v.get<int64_t>();
    if (n < min || n > max) {
      fail(key, "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                    "], got " + std::to_string(n));
    }
    return n;
  }

  double probability(const json& v, const std::string& key) const {
    if (!v.is_number()) fail(key, "expected a probability (number 0..1), got " + describe(v));
    const double p = v.get<double>();
    if (!(p >= 0.0 && p <= 1.0)) fail(key, "expected a probability between 0 and 1");
    return p;
  }

  static std::string join(const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
  }

 private:
  const std::string& file_;
};

FaultKind parseFaultKind(const Reader& r, const json& v, const std::string& key) {
  static const std::unordered_map<std::string, FaultKind> kKinds = {
      {"ok", FaultKind::kOk},           {"busy", FaultKind::kBusy},
      {"http502", FaultKind::kHttp502}, {"truncated", FaultKind::kTruncated},
      {"reset", FaultKind::kReset},     {"delay", FaultKind::kDelay}};
  const std::string s = r.string(v, key, true);
  auto it = kKinds.find(s);
  if (it == kKinds.end()) {
    r.fail(key, "expected one of ok, busy, http502, truncated, reset, delay, got \"" + s + "\"");
  }
  return it->second;
}

FaultSpec parseFaults(const Reader& r, const json& v, const std::string& where) {
  r.object(v, where);
  r.checkKeys(v, where, {"busy", "http502", "truncated", "reset", "delay", "delay_ms", "script"});
  FaultSpec f;
  auto prob = [&](const char* key, double& out) {
    if (v.contains(key)) out = r.probability(v.at(key), Reader::join(where, key));
  };
  prob("busy", f.busy);
  prob("http502", f.http502);
  prob("truncated", f.truncated);
  prob("reset", f.reset);
  prob("delay", f.delay);
  if (f.busy + f.http502 + f.truncated + f.reset + f.delay > 1.0 + 1e-9) {
    r.fail(where, "the fault probabilities add up to more than 1");
  }
  if (v.contains("delay_ms")) {
    f.delay_ms =
        static_cast<int>(r.integer(v.at("delay_ms"), Reader::join(where, "delay_ms"), 0, 600000));
  }
  if (v.contains("script")) {
    const std::string key = Reader::join(where, "script");
    const json& s = v.at("script");
    if (!s.is_array()) r.fail(key, "expected an array of fault names, got " + describe(s));
    for (std::size_t i = 0; i < s.size(); ++i) {
      f.script.push_back(parseFaultKind(r, s[i], key + "[" + std::to_string(i) + "]"));
    }
  }
  return f;
}

Account parseAccount(const Reader& r, const json& v, const std::string& where) {
  r.object(v, where);
  r.checkKeys(v, where,
              {"appid", "followers", "func_info", "access_tokens", "refresh_token", "daily_quota",
               "minute_limit", "last_page_variant", "errcode", "quota_get_errcode",
               "token_expires_after_calls", "faults", "latency_ms", "jitter_ms"});
  Account a;
  auto key = [&](const char* k) { return Reader::join(where, k); };
  if (!v.contains("appid")) r.fail(key("appid"), "missing (every account needs an appid)");
  a.appid = r.string(v.at("appid"), key("appid"), true);
  if (v.contains("followers")) {
    a.followers = r.integer(v.at("followers"), key("followers"), 0, kMaxOpenIdIndex - 1);
  }
  if (v.contains("func_info")) {
    const json& fi = v.at("func_info");
    if (!fi.is_array())
      r.fail(key("func_info"), "expected an array of integers, got " + describe(fi));
    a.func_info.clear();
    for (std::size_t i = 0; i < fi.size(); ++i) {
      a.func_info.push_back(static_cast<int>(
          r.integer(fi[i], key("func_info") + "[" + std::to_string(i) + "]", 0, 1000000)));
    }
  }
  if (v.contains("access_tokens")) {
    const json& t = v.at("access_tokens");
    if (!t.is_array())
      r.fail(key("access_tokens"), "expected an array of strings, got " + describe(t));
    for (std::size_t i = 0; i < t.size(); ++i) {
      a.access_tokens.push_back(
          r.string(t[i], key("access_tokens") + "[" + std::to_string(i) + "]", true));
    }
  }
  if (v.contains("refresh_token"))
    a.refresh_token = r.string(v.at("refresh_token"), key("refresh_token"), false);
  const int64_t kBig = int64_t{1} << 40;
  if (v.contains("daily_quota"))
    a.daily_quota = r.integer(v.at("daily_quota"), key("daily_quota"), 0, kBig);
  if (v.contains("minute_limit"))
    a.minute_limit = r.integer(v.at("minute_limit"), key("minute_limit"), 0, kBig);
  if (v.contains("last_page_variant")) {
    const std::string s = r.string(v.at("last_page_variant"), key("last_page_variant"), true);
    if (s == "repeat") {
      a.last_page_variant = LastPageVariant::kRepeat;
    } else if (s == "empty") {
      a.last_page_variant = LastPageVariant::kEmpty;
    } else {
      r.fail(key("last_page_variant"), "expected \"repeat\" or \"empty\", got \"" + s + "\"");
    }
  }
  if (v.contains("errcode")) {
    a.errcode = static_cast<int>(r.integer(v.at("errcode"), key("errcode"), -1000000, 1000000));
  }
  if (v.contains("quota_get_errcode")) {
    a.quota_get_errcode = static_cast<int>(
        r.integer(v.at("quota_get_errcode"), key("quota_get_errcode"), -1000000, 1000000));
  }
  if (v.contains("token_expires_after_calls")) {
    a.token_expires_after_calls =
        r.integer(v.at("token_expires_after_calls"), key("token_expires_after_calls"), 0, kBig);
  }
  if (v.contains("faults")) a.faults = parseFaults(r, v.at("faults"), key("faults"));
  if (v.contains("latency_ms")) {
    a.latency_ms = static_cast<int>(r.integer(v.at("latency_ms"), key("latency_ms"), 0, 600000));
  }
  if (v.contains("jitter_ms")) {
    a.jitter_ms = static_cast<int>(r.integer(v.at("jitter_ms"), key("jitter_ms"), 0, 600000));
  }
  return a;
}

}  // namespace

SandboxFileError::SandboxFileError(std::string file, std::string key, std::string reason)
    : std::runtime_error(file + ": " + (key.empty() ? std::string() : key + ": ") + reason),
      file_(std::move(file)),
      key_(std::move(key)),
      reason_(std::move(reason)) {}

void validateAccounts(const std::vector<Account>& accounts, const std::string& file) {
  Reader r(file);
  std::unordered_map<std::string, std::size_t> appids;
  std::unordered_map<std::string, std::size_t> tokens;
  for (std::size_t i = 0; i < accounts.size(); ++i) {
    const Account& a = accounts[i];
    const std::string where = "accounts[" + std::to_string(i) + "]";
    if (a.appid.empty()) r.fail(where + ".appid", "expected a non-empty string");
    auto [it, fresh] = appids.emplace(a.appid, i);
    if (!fresh) {
      r.fail(where + ".appid", "duplicate appid \"" + a.appid + "\" (already used by accounts[" +
                                   std::to_string(it->second) + "])");
    }
    if (a.followers < 0 || a.followers >= kMaxOpenIdIndex) {
      r.fail(where + ".followers", "expected an integer in [0, 2^42)");
    }
    for (std::size_t t = 0; t < a.access_tokens.size(); ++t) {
      const std::string key = where + ".access_tokens[" + std::to_string(t) + "]";
      if (a.access_tokens[t].empty()) r.fail(key, "expected a non-empty string");
      auto [tit, tfresh] = tokens.emplace(a.access_tokens[t], i);
      if (!tfresh) {  // never print the token itself
        r.fail(key, "duplicate access token (already used by accounts[" +
                        std::to_string(tit->second) + "])");
      }
    }
  }
}

SandboxFile parseSandboxJson(const std::string& text, const std::string& file) {
  Reader r(file);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    r.fail("", std::string("invalid JSON: ") + e.what());
  }
  r.object(doc, "(top level)");
  r.checkKeys(doc, "", {"component", "accounts"});
  SandboxFile out;
  out.component = demoComponent();
  if (doc.contains("component")) {
    const json& c = r.object(doc.at("component"), "component");
    r.checkKeys(c, "component", {"appid", "appsecret", "verify_ticket"});
    for (const char* k : {"appid", "appsecret", "verify_ticket"}) {
      if (!c.contains(k)) r.fail(std::string("component.") + k, "missing");
    }
    out.component.appid = r.string(c.at("appid"), "component.appid", true);
    out.component.appsecret = r.string(c.at("appsecret"), "component.appsecret", true);
    out.component.verify_ticket = r.string(c.at("verify_ticket"), "component.verify_ticket", true);
  }
  if (!doc.contains("accounts")) r.fail("accounts", "missing (expected an array of accounts)");
  const json& accounts = doc.at("accounts");
  if (!accounts.is_array()) r.fail("accounts", "expected an array, got " + describe(accounts));
  for (std::size_t i = 0; i < accounts.size(); ++i) {
    out.accounts.push_back(parseAccount(r, accounts[i], "accounts[" + std::to_string(i) + "]"));
  }
  validateAccounts(out.accounts, file);
  return out;
}

SandboxFile loadSandboxFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SandboxFileError(path, "", "cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw SandboxFileError(path, "", "cannot read the file");
  return parseSandboxJson(text.str(), path);
}

ComponentCredentials demoComponent() {
  return {"wxdemocomponent001", "demo-component-secret", "ticket@@@demo-verify-ticket"};
}

std::vector<Account> demoAccounts() {
  std::vector<Account> out;
  auto add = [&](int64_t followers) -> Account& {
    Account a;
    std::string n = std::to_string(out.size() + 1);
    a.appid = "wxdemo" + std::string(12 - n.size(), '0') + n;
    a.followers = followers;
    a.func_info = {1, 2, 3};
    a.access_tokens = {"demo-token-" + a.appid};
    a.refresh_token = "demo-refresh-" + a.appid;
    out.push_back(a);
    return out.back();
  };
  add(0);                                                 // 01: no followers
  add(1);                                                 // 02
  add(9999);                                              // 03
  add(10000);                                             // 04: exactly one full page
  add(10001);                                             // 05
  add(23000);                                             // 06: the documentation's example size
  add(100000);                                            // 07
  add(250000);                                            // 08: the largest
  add(57342);                                             // 09
  add(3210).last_page_variant = LastPageVariant::kEmpty;  // 10: empty next_openid on the last page
  add(5000).errcode = 40013;                              // 11: invalid appid for everything
  add(4000).func_info = {1, 3, 7};                        // 12: no permission set 2/100 -> 48001
  add(80000).daily_quota = 3;                             // 13: quota runs out mid-walk -> 45009
  add(60000).token_expires_after_calls = 3;               // 14: tokens expire mid-walk -> 42001
  {
    Account& a = add(45000);  // 15: flaky
    a.faults.busy = 0.10;
    a.faults.http502 = 0.10;
    a.faults.truncated = 0.05;
    a.faults.reset = 0.05;
    a.faults.delay = 0.05;
    a.faults.delay_ms = 1500;
  }
  add(120000).minute_limit = 5;  // 16: 45011 after 5 calls in a minute
  add(2500).errcode = 61003;     // 17: authorization revoked
  {
    Account& a = add(30000);  // 18: slow answers
    a.latency_ms = 150;
    a.jitter_ms = 100;
  }
  add(200000).last_page_variant = LastPageVariant::kEmpty;  // 19
  add(1234).func_info = {100};                              // 20: only set 100, which suffices
  return out;
}

const char* faultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kOk:
      return "ok";
    case FaultKind::kBusy:
      return "busy";
    case FaultKind::kHttp502:
      return "http502";
    case FaultKind::kTruncated:
      return "truncated";
    case FaultKind::kReset:
      return "reset";
    case FaultKind::kDelay:
      return "delay";
  }
  return "?";
}

}  // namespace fanpull::sandbox
