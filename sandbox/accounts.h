// The merchants ("authorizer accounts") and third-party-platform credentials the sandbox emulates,
// how to load them from a JSON accounts file, and a ready-made demo set.
// Plain values and free functions: thread-safe (loadSandboxFile only reads its file).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fanpull::sandbox {

// ---------------------------------------------------------------------------------------------
// Accounts file format (JSON, UTF-8). Unknown keys anywhere are an error.
//
// {
//   "component": {                      optional; default: demoComponent()
//     "appid": "wx...",                 required, the third-party platform's component_appid
//     "appsecret": "...",               required
//     "verify_ticket": "..."            required, the current component_verify_ticket
//   },
//   "accounts": [                       required, may be empty
//     {
//       "appid": "wx...",               required, non-empty, unique in the file
//       "followers": 23000,             int >= 0 (default 0); follower i is sandboxOpenId(appid, i)
//       "func_info": [2, 100],          int array of granted permission sets (default [2]);
//                                       user/get needs 2 or 100, else 48001 "api unauthorized"
//       "access_tokens": ["tok"],       static access tokens valid for this account (default none;
//                                       unique across accounts); they never expire with time
//       "refresh_token": "...",         the initial authorizer_refresh_token (default none: every
//                                       api_authorizer_token call answers 61023)
//       "daily_quota": 500,             user/get calls per Beijing day (UTC+8); 0/absent means
//                                       unlimited; past it 45009 (refused calls do not count)
//       "minute_limit": 60,             user/get calls per wall-clock minute; 0/absent = unlimited;
//                                       past it 45011 (refused calls do not count)
//       "last_page_variant": "repeat",  "repeat" (default): the last data page repeats its last
//                                       openid as next_openid and the next call answers count 0;
//                                       "empty": the last data page has next_openid ""
//       "errcode": 40013,               if set (non-zero), every user/get and api_authorizer_token
//                                       call for this account answers this errcode (e.g. 61003)
//       "quota_get_errcode": 76022,     if set (non-zero), openapi/quota/get for this account
//                                       answers this errcode (76022: may not query the path)
//       "token_expires_after_calls": 3, each access token answers 42001 after this many successful
//                                       user/get calls with it (0/absent = never)
//       "latency_ms": 0, "jitter_ms": 0,  per-account override of the server's answer latency
//       "faults": {                     per user/get call; probabilities 0..1 (sum <= 1)
//         "busy": 0.1,                  {"errcode":-1,"errmsg":"system error"}
//         "http502": 0.1,               HTTP 502 with an HTML body
//         "truncated": 0.05,            the JSON body cut in the middle (Content-Length of the cut)
//         "reset": 0.05,                the connection is aborted without an answer
//         "delay": 0.05, "delay_ms": 2000,  answer normally after delay_ms
//         "script": ["ok", "busy", "http502", "truncated", "reset", "delay"]
//                                       consumed one per user/get call before probabilities apply
//       }
//     }
//   ]
// }
// ---------------------------------------------------------------------------------------------

enum class LastPageVariant { kRepeat, kEmpty };

enum class FaultKind { kOk, kBusy, kHttp502, kTruncated, kReset, kDelay };

struct FaultSpec {
  double busy = 0, http502 = 0, truncated = 0, reset = 0, delay = 0;  // probabilities 0..1
  int delay_ms = 0;
  std::vector<FaultKind> script;  // consumed one per user/get call, then probabilities apply
};

struct Account {
  std::string appid;
  int64_t followers = 0;
  std::vector<int> func_info{2};
  std::vector<std::string> access_tokens;
  std::string refresh_token;  // empty = cannot be refreshed (61023)
  int64_t daily_quota = 0;    // 0 = unlimited
  int64_t minute_limit = 0;   // 0 = unlimited
  LastPageVariant last_page_variant = LastPageVariant::kRepeat;
  int errcode = 0;                        // non-zero: every call for this account answers it
  int quota_get_errcode = 0;              // non-zero: openapi/quota/get answers it
  int64_t token_expires_after_calls = 0;  // 0 = never
  FaultSpec faults;
  std::optional<int> latency_ms, jitter_ms;  // override SandboxOptions' when set
};

struct ComponentCredentials {
  std::string appid;
  std::string appsecret;
  std::string verify_ticket;
};

struct SandboxFile {
  ComponentCredentials component;
  std::vector<Account> accounts;
};

// Thrown by loadSandboxFile/parseSandboxJson; what() is "FILE: KEY: REASON".
class SandboxFileError : public std::runtime_error {
 public:
  SandboxFileError(std::string file, std::string key, std::string reason);
  const std::string& file() const { return file_; }
  const std::string& key() const { return key_; }  // e.g. "accounts[2].followers"; "" for the file
  const std::string& reason() const { return reason_; }

 private:
  std::string file_, key_, reason_;
};

// Reads and validates an accounts file. Throws SandboxFileError when the file cannot be read, is
// not JSON, has an unknown key, a missing or wrongly typed value, or a duplicate appid/token.
SandboxFile loadSandboxFile(const std::string& path);

// Same as loadSandboxFile on text already read; `file` only names the source in errors.
SandboxFile parseSandboxJson(const std::string& text, const std::string& file);

// Checks a set of accounts built in code (the rules loadSandboxFile applies). Throws
// SandboxFileError naming `file` (e.g. "<options>") on the first problem.
void validateAccounts(const std::vector<Account>& accounts, const std::string& file);

// The demo platform credentials (component appid "wxdemocomponent001").
ComponentCredentials demoComponent();

// About 20 demo merchants, appids "wxdemo000000000001".. (see accounts.cc for the list): 0 to
// 250,000 followers; one answering 40013, one without set 2/100, one with a small daily quota,
// one whose tokens expire mid-walk, one with random faults, one with the "empty" last page.
// Each has the static token "demo-token-<appid>" and refresh token "demo-refresh-<appid>".
std::vector<Account> demoAccounts();

// Name of a fault kind as used in the file ("ok", "busy", "http502", ...).
const char* faultKindName(FaultKind kind);

}  // namespace fanpull::sandbox
