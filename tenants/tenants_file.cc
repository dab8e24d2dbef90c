#include "tenants/tenants_file.h"

#include <set>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "core/rate_limiter.h"
#include "core/redactor.h"

namespace fanpull {
namespace {

using nlohmann::json;

bool validAppid(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// func_info as WeChat's authorization API gives it ([{"funcscope_category":{"id":2}}, ...]) or
// as plain ids ([2, 15]).
bool readFuncInfo(const json& v, std::vector<int>* out, std::string* why) {
  if (!v.is_array()) {
    *why = "expected an array of permission set ids, got " + std::string(v.type_name());
    return false;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const json& item = v[i];
    const json* id = &item;
    if (item.is_object()) {
      auto scope = item.find("funcscope_category");
      if (scope == item.end() || !scope->is_object() || !scope->contains("id")) {
        *why = "element " + std::to_string(i) + " is an object without funcscope_category.id";
        return false;
      }
      id = &(*scope)["id"];
    }
    if (!id->is_number_integer() || id->get<int64_t>() < 1 || id->get<int64_t>() > 100000) {
      *why = "element " + std::to_string(i) + " is not a permission set id (a positive integer)";
      return false;
    }
    out->push_back(static_cast<int>(id->get<int64_t>()));
  }
  return true;
}

}  // namespace

std::string TenantProblem::describe() const {
  std::string out = file + ": ";
  if (!tenant.empty()) out += tenant + ": ";
  if (!key.empty()) out += key + ": ";
  return out + reason;
}

std::shared_ptr<const Tenant> TenantSet::find(const std::string& appid) const {
  auto it = tenants_.find(appid);
  return it == tenants_.end() ? nullptr : it->second;
}

namespace {

// Reads tenants[i] (`t`) into `tenants`, or adds what is wrong with it to `problems`.
void readTenant(const json& t, size_t i, const std::string& file, const TenantsOptions& options,
                std::map<std::string, std::shared_ptr<const Tenant>>& tenants,
                std::vector<TenantProblem>& problems) {
  auto problem = [&](const std::string& tenant, const std::string& key, const std::string& why) {
    problems.push_back({file, tenant, key, why});
  };
  static const std::set<std::string> kKeys = {"appid", "authorizer_access_token",
                                              "authorizer_refresh_token", "func_info",
                                              "rate_limit"};
  std::string name = "tenants[" + std::to_string(i) + "]";
  if (!t.is_object()) {
    problem(name, "", "expected an object");
    return;
  }
  auto tenant = std::make_shared<Tenant>();
  auto appid = t.find("appid");
  if (appid == t.end()) {
    problem(name, "appid", "required");
  } else if (!appid->is_string() || !validAppid(appid->get<std::string>())) {
    problem(name, "appid", "expected 1-64 characters of [A-Za-z0-9_-]");
  } else {
    tenant->appid = appid->get<std::string>();
    name = tenant->appid;
    if (tenants.count(tenant->appid)) problem(name, "appid", "duplicate appid");
  }
  for (const auto& item : t.items()) {
    if (!kKeys.count(item.key())) {
      problem(name, item.key(),
              "unknown key (allowed: appid, authorizer_access_token, "
              "authorizer_refresh_token, func_info, rate_limit)");
    }
  }
  for (auto [key, out] : {std::pair<const char*, std::string*>{"authorizer_access_token",
                                                                &tenant->authorizer_access_token},
                          {"authorizer_refresh_token", &tenant->authorizer_refresh_token}}) {
    auto v = t.find(key);
    if (v == t.end()) continue;
    if (!v->is_string() || v->get<std::string>().empty()) {
      problem(name, key, "expected a non-empty string");
    } else {
      *out = v->get<std::string>();
      Redactor::global().addSecret(*out);
    }
  }
  if (tenant->authorizer_access_token.empty() && tenant->authorizer_refresh_token.empty() &&
      !t.contains("authorizer_access_token") && !t.contains("authorizer_refresh_token")) {
    problem(name, "authorizer_access_token",
            "missing: give an authorizer_access_token, or an authorizer_refresh_token with the "
            "component configured");
  } else if (tenant->authorizer_access_token.empty() && !tenant->authorizer_refresh_token.empty() &&
             !options.component_configured) {
    problem(name, "authorizer_refresh_token",
            "a refresh token needs the \"component\" section in the worker config; without it "
            "give an authorizer_access_token");
  }
  if (auto fi = t.find("func_info"); fi != t.end()) {
    std::vector<int> ids;
    std::string why;
    if (readFuncInfo(*fi, &ids, &why)) {
      tenant->func_info = ids;
    } else {
      problem(name, "func_info", why);
    }
  }
  if (auto rl = t.find("rate_limit"); rl != t.end()) {
    if (!rl->is_object()) {
      problem(name, "rate_limit", "expected an object");
    } else {
      for (const auto& item : rl->items()) {
        const std::string& k = item.key();
        const json& v = item.value();
        if (k == "requests_per_second") {
          if (!v.is_number() || !RateLimit::validRequestsPerSecond(v.get<double>())) {
            problem(name, "rate_limit.requests_per_second",
                    RateLimit::kRequestsPerSecondRange);
          } else {
            tenant->requests_per_second = v.get<double>();
          }
        } else if (k == "burst") {
          if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1000000) {
            problem(name, "rate_limit.burst", "expected an integer from 1 to 1000000");
          } else {
            tenant->burst = static_cast<int>(v.get<int64_t>());
          }
        } else if (k == "daily_calls") {
          if (!v.is_number_integer() || v.get<int64_t>() < 0) {
            problem(name, "rate_limit.daily_calls", "expected an integer >= 0 (0: no budget)");
          } else {
            tenant->daily_calls = v.get<int64_t>();
          }
        } else {
          problem(name, "rate_limit." + k,
                  "unknown key (allowed: requests_per_second, burst, daily_calls)");
        }
      }
    }
  }
  if (!tenant->appid.empty() && !tenants.count(tenant->appid)) {
    tenants.emplace(tenant->appid, tenant);
  }
}

}  // namespace

TenantsLoad parseTenants(const std::string& text, const std::string& file,
                         const TenantsOptions& options) {
  std::vector<TenantProblem> problems;
  auto problem = [&](const std::string& tenant, const std::string& key, const std::string& why) {
    problems.push_back({file, tenant, key, why});
  };
  // Each tenant is read as soon as the parser has it and then dropped from the document, so a
  // file of ten thousand merchants never stands whole in memory as JSON values (about a
  // kilobyte each) beside the tenants read from it.
  std::map<std::string, std::shared_ptr<const Tenant>> tenants;
  size_t index = 0;
  bool in_list = false;  // inside the top-level "tenants" array
  std::string key;       // the top-level key being read
  json root;
  try {
    root = json::parse(text, [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key) {
        key = parsed.get<std::string>();
      } else if (depth == 1 && event == json::parse_event_t::array_start) {
        in_list = key == "tenants";
      } else if (depth == 1 && event == json::parse_event_t::array_end) {
        in_list = false;
      } else if (depth == 2 && in_list &&
                 (event == json::parse_event_t::object_end ||
                  event == json::parse_event_t::array_end ||
                  event == json::parse_event_t::value)) {
        readTenant(parsed, index++, file, options, tenants, problems);
        return false;
      }
      return true;
    });
  } catch (const json::exception& ex) {
    problems.clear();
    problem("", "", std::string("not valid JSON: ") + ex.what());
    return problems;
  }
  if (!root.is_object()) {
    problem("", "", "expected a JSON object with a \"tenants\" array");
    return problems;
  }
  for (const auto& item : root.items()) {
    if (item.key() != "tenants") problem("", item.key(), "unknown key (allowed: tenants)");
  }
  auto list = root.find("tenants");
  if (list == root.end() || !list->is_array()) {
    problem("", "tenants", "required: an array of tenants");
    return problems;
  }
  if (!problems.empty()) return problems;
  return std::make_shared<const TenantSet>(std::move(tenants));
}

TenantsLoad loadTenants(const std::string& path, const TenantsOptions& options) {
  std::optional<std::string> text = readFile(path);
  if (!text) return std::vector<TenantProblem>{{path, "", "", "cannot read the file"}};
  return parseTenants(*text, path, options);
}

}  // namespace fanpull
