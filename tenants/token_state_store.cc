#include "tenants/token_state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "core/redactor.h"

namespace fanpull {
namespace {

using nlohmann::json;

Error storeError(const std::string& what) {
  return Error::of(ErrorClass::kRetryable, what);
}

std::string folderOf(const std::string& file) {
  auto slash = file.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : file.substr(0, slash));
}

// An exclusive flock on FILE.lock for the life of the object.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open((path + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_UN);
      ::close(fd_);
    }
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// One merchant's state from its JSON object; `where` names it in an error.
Result<TokenState> stateOf(const json& v, const std::string& where) {
  TokenState s;
  if (!v.is_object()) return storeError(where + " is not an object");
  // A field of the wrong type is a broken file, named as such (never a value: it may be a
  // token).
  for (const char* key : {"refresh_token", "access_token", "file_refresh_token"}) {
    if (v.contains(key) && !v[key].is_string()) {
      return storeError(where + ": " + key + " is not a string");
    }
  }
  for (const char* key : {"expires_at_ms", "updated_at_ms"}) {
    if (v.contains(key) && !v[key].is_number_integer()) {
      return storeError(where + ": " + key + " is not an integer");
    }
  }
  s.refresh_token = v.value("refresh_token", "");
  s.access_token = v.value("access_token", "");
  s.expires_at_ms = v.value("expires_at_ms", int64_t{0});
  s.updated_at_ms = v.value("updated_at_ms", int64_t{0});
  s.file_refresh_token = v.value("file_refresh_token", "");
  Redactor::global().addSecret(s.refresh_token);
  Redactor::global().addSecret(s.access_token);
  Redactor::global().addSecret(s.file_refresh_token);
  return s;
}

json jsonOf(const TokenState& s) {
  return {{"refresh_token", s.refresh_token},
          {"access_token", s.access_token},
          {"expires_at_ms", s.expires_at_ms},
          {"updated_at_ms", s.updated_at_ms},
          {"file_refresh_token", s.file_refresh_token}};
}

Result<std::map<std::string, TokenState>> parseState(const std::string& text,
                                                     const std::string& path) {
  std::map<std::string, TokenState> out;
  if (text.empty()) return out;
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception&) {
    return storeError(path + ": not a token state file (invalid JSON)");
  }
  if (!root.is_object() || !root.contains("authorizers") || !root["authorizers"].is_object()) {
    return storeError(path + ": not a token state file (no \"authorizers\" object)");
  }
  for (const auto& item : root["authorizers"].items()) {
    Result<TokenState> s = stateOf(item.value(), path + ": entry " + item.key());
    if (!s.ok()) return s.error();
    out[item.key()] = std::move(s).value();
  }
  return out;
}

Result<std::string> readAll(const std::string& path) {
  std::optional<std::string> text = readFile(path);
  if (!text) {
    if (errno == ENOENT) return std::string();
    return storeError(path + ": cannot read: " + std::strerror(errno));
  }
  return std::move(*text);
}

}  // namespace

std::string encodeTokenState(const TokenState& state) { return jsonOf(state).dump(); }

Result<TokenState> parseTokenState(std::string_view text, const std::string& where) {
  json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) return storeError(where + " is not JSON");
  return stateOf(v, where);
}

TokenStateStore::Stamp TokenStateStore::Stamp::of(const struct ::stat& st) {
  return Stamp{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
               static_cast<int64_t>(st.st_size),
               static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

std::optional<TokenStateStore::Stamp> TokenStateStore::stampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return Stamp::of(st);
}

std::optional<std::map<std::string, TokenState>> TokenStateStore::cached(
    const std::optional<Stamp>& now) const {
  if (!now) return std::nullopt;
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (!cache_ || !(cache_->first == *now)) return std::nullopt;
  return cache_->second;
}

void TokenStateStore::remember(const Stamp& stamp, std::map<std::string, TokenState> states) const {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_.emplace(stamp, std::move(states));
}

Result<std::optional<TokenState>> TokenStore::find(const std::string& appid) const {
  Result<std::map<std::string, TokenState>> all = load();
  if (!all.ok()) return all.error();
  auto it = all->find(appid);
  if (it == all->end()) return std::optional<TokenState>();
  return std::optional<TokenState>(it->second);
}

Result<std::map<std::string, TokenState>> TokenStateStore::load() const {
  // Stamped before reading: a file replaced in between is read anew next time.
  const std::optional<Stamp> stamp = stampOf(path_);
  if (auto states = cached(stamp)) return *states;
  Result<std::string> text = readAll(path_);
  if (!text.ok()) return text.error();
  Result<std::map<std::string, TokenState>> parsed = parseState(*text, path_);
  if (parsed.ok() && stamp) remember(*stamp, *parsed);
  return parsed;
}

Result<bool> TokenStateStore::save(const std::string& appid, const TokenState& state) {
  FileLock lock(path_);
  if (!lock.ok()) return storeError(path_ + ".lock: cannot lock: " + std::strerror(errno));

  std::map<std::string, TokenState> all;
  if (auto states = cached(stampOf(path_))) {
    all = std::move(*states);
  } else {
    Result<std::string> text = readAll(path_);
    if (!text.ok()) return text.error();
    Result<std::map<std::string, TokenState>> current = parseState(*text, path_);
    if (current.ok()) {
      all = std::move(current).value();
    } else {
      // Keep the unreadable file for an operator instead of overwriting it.
      std::string aside = path_ + ".corrupt-" + std::to_string(::time(nullptr));
      ::rename(path_.c_str(), aside.c_str());
    }
  }
  auto it = all.find(appid);
  if (it != all.end() && it->second.updated_at_ms > state.updated_at_ms) return true;
  all[appid] = state;

  json root;
  root["version"] = 1;
  root["authorizers"] = json::object();
  for (const auto& [id, s] : all) {
    root["authorizers"][id] = jsonOf(s);
  }
  std::string body = root.dump(2) + "\n";

  std::ostringstream tmp_name;
  tmp_name << path_ << ".tmp-" << ::getpid() << "-" << std::this_thread::get_id();
  std::string tmp = tmp_name.str();
  int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return storeError(tmp + ": cannot create: " + std::strerror(errno));
  ::fchmod(fd, 0600);
  size_t written = 0;
  while (written < body.size()) {
    ssize_t n = ::write(fd, body.data() + written, body.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return storeError(tmp + ": cannot write: " + why);
    }
    written += static_cast<size_t>(n);
  }
  // The version written, stamped from the open file: rename keeps its inode and time, and a
  // stat after the rename could see another worker's version already.
  struct stat st {};
  const bool stamped = ::fstat(fd, &st) == 0;
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return storeError(tmp + ": cannot sync: " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return storeError(path_ + ": cannot replace: " + why);
  }
  int dir = ::open(folderOf(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  if (stamped) remember(Stamp::of(st), std::move(all));
  return true;
}

}  // namespace fanpull
