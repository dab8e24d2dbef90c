// JsonSchema: a small JSON Schema validator (draft 2020-12, and draft-07's "definitions") for
// tests, supporting exactly the keywords fanpull's published schemas use (docs/schemas): type,
// enum, const, required, properties, additionalProperties, dependentRequired, pattern (std::regex,
// ECMAScript, unanchored as the spec says), minLength/maxLength (in code points), minimum/maximum,
// items (one schema), minItems/maxItems, allOf, if/then/else and $ref to "#/$defs/..." (or
// "#/definitions/..."). Any other keyword is refused when the schema is loaded, so a schema can
// never rely on a keyword this checker would silently ignore. Immutable once built; validate()
// is thread-safe.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fanpull::testing {

class JsonSchema {
 public:
  using json = nlohmann::json;

  // Throws std::invalid_argument naming the schema path of an unsupported keyword, a keyword
  // with a value of the wrong shape, a pattern std::regex cannot compile or a $ref that does not
  // resolve.
  explicit JsonSchema(json schema) : root_(std::move(schema)) { compile(root_, "#"); }

  // The schema in `path`. Throws std::invalid_argument when it cannot be read, is not JSON or is
  // refused by the constructor (the message names the file).
  static JsonSchema fromFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::invalid_argument(path + ": cannot read the file");
    std::stringstream text;
    text << in.rdbuf();
    json parsed = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) throw std::invalid_argument(path + ": not JSON");
    try {
      return JsonSchema(std::move(parsed));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(path + ": " + e.what());
    }
  }

  // Every violation as "POINTER: REASON" (POINTER is the instance's JSON pointer, "/" for the
  // root); empty when `instance` is valid.
  std::vector<std::string> validate(const json& instance) const {
    std::vector<std::string> errors;
    check(root_, instance, "", errors, 0);
    return errors;
  }
  bool accepts(const json& instance) const { return validate(instance).empty(); }

 private:
  static constexpr int kMaxDepth = 64;  // $ref chains deeper than this are a cycle

  // ----- Loading: refuse what is not supported, compile the patterns, resolve the $refs. -----

  [[noreturn]] static void refuse(const std::string& where, const std::string& why) {
    throw std::invalid_argument("schema " + where + ": " + why);
  }

  static bool isNonNegativeInteger(const json& v) {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  }

  void compileMap(const json& map, const std::string& where) {
    if (!map.is_object()) refuse(where, "expected an object of schemas");
    for (const auto& item : map.items()) compile(item.value(), where + "/" + item.key());
  }

  void compile(const json& schema, const std::string& where) {
    if (schema.is_boolean()) return;
    if (!schema.is_object()) refuse(where, "a schema must be an object or a boolean");
    static const std::set<std::string> kAnnotations = {
        "$schema", "$id",      "$comment", "title",    "description",
        "examples", "default", "deprecated", "readOnly", "writeOnly"};
    for (const auto& item : schema.items()) {
      const std::string& key = item.key();
      const json& v = item.value();
      const std::string at = where + "/" + key;
      if (kAnnotations.count(key)) continue;
      if (key == "$defs" || key == "definitions" || key == "properties") {
        compileMap(v, at);
      } else if (key == "items" && v.is_array()) {
        // draft-07's tuple form (prefixItems in 2020-12) is not supported.
        refuse(at, "the array form of items is not supported");
      } else if (key == "additionalProperties" || key == "items" || key == "if" ||
                 key == "then" || key == "else") {
        compile(v, at);
      } else if (key == "allOf") {
        if (!v.is_array() || v.empty()) refuse(at, "expected a non-empty array of schemas");
        for (size_t i = 0; i < v.size(); ++i) compile(v[i], at + "/" + std::to_string(i));
      } else if (key == "type") {
        static const std::set<std::string> kTypes = {"object",  "array",   "string", "integer",
                                                     "number",  "boolean", "null"};
        std::vector<json> names = v.is_array() ? v.get<std::vector<json>>() : std::vector<json>{v};
        if (names.empty()) refuse(at, "expected a type name or a non-empty array of them");
        for (const auto& n : names) {
          if (!n.is_string() || !kTypes.count(n.get<std::string>())) {
            refuse(at, "unknown type " + n.dump());
          }
        }
      } else if (key == "required") {
        requireStrings(v, at);
      } else if (key == "dependentRequired") {
        if (!v.is_object()) refuse(at, "expected an object of string arrays");
        for (const auto& dep : v.items()) requireStrings(dep.value(), at + "/" + dep.key());
      } else if (key == "enum") {
        if (!v.is_array() || v.empty()) refuse(at, "expected a non-empty array");
      } else if (key == "const") {
        // Any value.
      } else if (key == "pattern") {
        if (!v.is_string()) refuse(at, "expected a string");
        try {
          patterns_.emplace(v.get<std::string>(),
                            std::regex(v.get<std::string>(), std::regex::ECMAScript));
        } catch (const std::regex_error& e) {
          refuse(at, std::string("not a regular expression std::regex accepts: ") + e.what());
        }
      } else if (key == "minimum" || key == "maximum") {
        if (!v.is_number()) refuse(at, "expected a number");
      } else if (key == "minLength" || key == "maxLength" || key == "minItems" ||
                 key == "maxItems") {
        if (!isNonNegativeInteger(v)) refuse(at, "expected a non-negative integer");
      } else if (key == "$ref") {
        resolve(v, at);
      } else {
        refuse(at, "keyword \"" + key + "\" is not supported by this validator");
      }
    }
  }

  static void requireStrings(const json& v, const std::string& at) {
    if (!v.is_array()) refuse(at, "expected an array of strings");
    std::set<std::string> seen;
    for (const auto& s : v) {
      if (!s.is_string()) refuse(at, "expected an array of strings");
      if (!seen.insert(s.get<std::string>()).second) refuse(at, "repeats " + s.dump());
    }
  }

  const json& resolve(const json& ref, const std::string& at) const {
    if (!ref.is_string()) refuse(at, "expected a string");
    const std::string r = ref.get<std::string>();
    if (r.rfind("#/$defs/", 0) != 0 && r.rfind("#/definitions/", 0) != 0) {
      refuse(at, "only references to #/$defs/NAME or #/definitions/NAME are supported, not " + r);
    }
    try {
      const json& target = root_.at(json::json_pointer(r.substr(1)));
      if (!target.is_object() && !target.is_boolean()) refuse(at, r + " is not a schema");
      return target;
    } catch (const json::exception&) {
      refuse(at, "the reference " + r + " does not resolve");
    }
  }

  // ----- Validating. -----

  static std::string show(const std::string& pointer) { return pointer.empty() ? "/" : pointer; }

  static std::string escapePointer(const std::string& key) {
    std::string out;
    for (char c : key) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
    return out;
  }

  // A short, printable rendering of a value for messages (invalid UTF-8 replaced).
  static std::string brief(const json& v) {
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    return s.size() > 80 ? s.substr(0, 77) + "..." : s;
  }

  static bool hasType(const json& v, const std::string& type) {
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "string") return v.is_string();
    if (type == "boolean") return v.is_boolean();
    if (type == "null") return v.is_null();
    if (type == "number") return v.is_number();
    if (type == "integer") {
      if (v.is_number_integer()) return true;  // signed or unsigned
      if (v.is_number_float()) {
        double d = v.get<double>();
        return std::isfinite(d) && std::floor(d) == d;
      }
    }
    return false;
  }

  // Code points of a UTF-8 string (bytes that do not continue a sequence).
  static size_t codePoints(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
    return n;
  }

  static double asDouble(const json& v) { return v.get<double>(); }

  // a < b for JSON numbers, exact for integers of either signedness.
  static bool less(const json& a, const json& b) {
    if (a.is_number_float() || b.is_number_float()) return asDouble(a) < asDouble(b);
    bool a_neg = a.is_number_integer() && !a.is_number_unsigned() && a.get<int64_t>() < 0;
    bool b_neg = b.is_number_integer() && !b.is_number_unsigned() && b.get<int64_t>() < 0;
    if (a_neg != b_neg) return a_neg;
    if (a_neg) return a.get<int64_t>() < b.get<int64_t>();
    return a.get<uint64_t>() < b.get<uint64_t>();
  }

  void check(const json& schema, const json& v, const std::string& ptr,
             std::vector<std::string>& errors, int depth) const {
    if (depth > kMaxDepth) {
      errors.push_back(show(ptr) + ": $ref nesting deeper than " + std::to_string(kMaxDepth));
      return;
    }
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) errors.push_back(show(ptr) + ": no value is allowed here");
      return;
    }
    if (auto ref = schema.find("$ref"); ref != schema.end()) {
      check(resolve(*ref, "$ref"), v, ptr, errors, depth + 1);
    }
    if (auto type = schema.find("type"); type != schema.end()) {
      std::vector<std::string> names;
      if (type->is_array()) {
        for (const auto& n : *type) names.push_back(n.get<std::string>());
      } else {
        names.push_back(type->get<std::string>());
      }
      bool any = false;
      for (const auto& n : names) any = any || hasType(v, n);
      if (!any) {
        errors.push_back(show(ptr) + ": expected type " + type->dump() + ", got " +
                         v.type_name() + " " + brief(v));
        return;  // the other keywords would only repeat the mismatch
      }
    }
    if (auto e = schema.find("enum"); e != schema.end()) {
      bool found = false;
      for (const auto& allowed : *e) found = found || allowed == v;
      if (!found) errors.push_back(show(ptr) + ": " + brief(v) + " is not one of " + brief(*e));
    }
    if (auto c = schema.find("const"); c != schema.end() && !(*c == v)) {
      errors.push_back(show(ptr) + ": expected " + brief(*c) + ", got " + brief(v));
    }
    if (v.is_string()) checkString(schema, v.get_ref<const std::string&>(), ptr, errors);
    if (v.is_number()) checkNumber(schema, v, ptr, errors);
    if (v.is_array()) checkArray(schema, v, ptr, errors, depth);
    if (v.is_object()) checkObject(schema, v, ptr, errors, depth);
    if (auto all = schema.find("allOf"); all != schema.end()) {
      for (const auto& sub : *all) check(sub, v, ptr, errors, depth + 1);
    }
    if (auto cond = schema.find("if"); cond != schema.end()) {
      std::vector<std::string> scratch;
      check(*cond, v, ptr, scratch, depth + 1);
      const char* branch = scratch.empty() ? "then" : "else";
      if (auto b = schema.find(branch); b != schema.end()) check(*b, v, ptr, errors, depth + 1);
    }
  }

  void checkString(const json& schema, const std::string& s, const std::string& ptr,
                   std::vector<std::string>& errors) const {
    size_t length = codePoints(s);
    if (auto m = schema.find("minLength"); m != schema.end() && length < m->get<size_t>()) {
      errors.push_back(show(ptr) + ": " + std::to_string(length) + " characters, at least " +
                       m->dump() + " required");
    }
    if (auto m = schema.find("maxLength"); m != schema.end() && length > m->get<size_t>()) {
      errors.push_back(show(ptr) + ": " + std::to_string(length) + " characters, at most " +
                       m->dump() + " allowed");
    }
    if (auto p = schema.find("pattern"); p != schema.end()) {
      const std::regex& re = patterns_.at(p->get<std::string>());
      if (!std::regex_search(s, re)) {
        errors.push_back(show(ptr) + ": " + brief(json(s)) + " does not match " + p->dump());
      }
    }
  }

  static void checkNumber(const json& schema, const json& v, const std::string& ptr,
                          std::vector<std::string>& errors) {
    if (auto m = schema.find("minimum"); m != schema.end() && less(v, *m)) {
      errors.push_back(show(ptr) + ": " + v.dump() + " is below the minimum " + m->dump());
    }
    if (auto m = schema.find("maximum"); m != schema.end() && less(*m, v)) {
      errors.push_back(show(ptr) + ": " + v.dump() + " is above the maximum " + m->dump());
    }
  }

  void checkArray(const json& schema, const json& v, const std::string& ptr,
                  std::vector<std::string>& errors, int depth) const {
    if (auto m = schema.find("minItems"); m != schema.end() && v.size() < m->get<size_t>()) {
      errors.push_back(show(ptr) + ": " + std::to_string(v.size()) + " items, at least " +
                       m->dump() + " required");
    }
    if (auto m = schema.find("maxItems"); m != schema.end() && v.size() > m->get<size_t>()) {
      errors.push_back(show(ptr) + ": " + std::to_string(v.size()) + " items, at most " +
                       m->dump() + " allowed");
    }
    if (auto items = schema.find("items"); items != schema.end()) {
      for (size_t i = 0; i < v.size(); ++i) {
        check(*items, v[i], ptr + "/" + std::to_string(i), errors, depth + 1);
      }
    }
  }

  void checkObject(const json& schema, const json& v, const std::string& ptr,
                   std::vector<std::string>& errors, int depth) const {
    if (auto req = schema.find("required"); req != schema.end()) {
      for (const auto& name : *req) {
        if (!v.contains(name.get<std::string>())) {
          errors.push_back(show(ptr) + ": required property " + name.dump() + " is missing");
        }
      }
    }
    if (auto deps = schema.find("dependentRequired"); deps != schema.end()) {
      for (const auto& dep : deps->items()) {
        if (!v.contains(dep.key())) continue;
        for (const auto& name : dep.value()) {
          if (!v.contains(name.get<std::string>())) {
            errors.push_back(show(ptr) + ": property \"" + dep.key() + "\" requires " +
                             name.dump() + ", which is missing");
          }
        }
      }
    }
    const json* properties = nullptr;
    if (auto p = schema.find("properties"); p != schema.end()) properties = &*p;
    const json* additional = nullptr;
    if (auto a = schema.find("additionalProperties"); a != schema.end()) additional = &*a;
    for (const auto& item : v.items()) {
      const std::string child = ptr + "/" + escapePointer(item.key());
      if (properties != nullptr && properties->contains(item.key())) {
        check(properties->at(item.key()), item.value(), child, errors, depth + 1);
      } else if (additional != nullptr) {
        if (additional->is_boolean() && !additional->get<bool>()) {
          errors.push_back(show(ptr) + ": property \"" + item.key() + "\" is not allowed");
        } else {
          check(*additional, item.value(), child, errors, depth + 1);
        }
      }
    }
  }

  json root_;
  std::map<std::string, std::regex> patterns_;  // by pattern text; built once by compile()
};

}  // namespace fanpull::testing
