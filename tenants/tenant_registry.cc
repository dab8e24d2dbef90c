#include "tenants/tenant_registry.h"

#include <sys/stat.h>

#include <malloc.h>

#include <ctime>
#include <functional>
#include <string_view>

#include "core/file.h"
#include "tenants/permission.h"

namespace fanpull {

TenantRegistry::TenantRegistry(std::string path, TenantsOptions options)
    : path_(std::move(path)),
      options_(options),
      current_(std::make_shared<const TenantSet>(
          std::map<std::string, std::shared_ptr<const Tenant>>{})) {}

TenantRegistry::Stamp TenantRegistry::stampOf() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_size), static_cast<uint64_t>(st.st_ino)};
}

std::vector<TenantProblem> TenantRegistry::load() {
  std::vector<TenantProblem> problems;
  reloadIfChanged(&problems);
  return problems;
}

TenantRegistry::Reload TenantRegistry::reloadIfChanged(std::vector<TenantProblem>* problems) {
  Stamp stamp = stampOf();
  {
    // A file rewritten within the file system's timestamp granularity can keep its stamp: while
    // the stamp is recent, the content decides.
    int64_t now_ns = static_cast<int64_t>(::time(nullptr)) * 1000000000;
    bool recent = now_ns - stamp.mtime_ns < int64_t{3} * 1000000000;
    std::lock_guard<std::mutex> lock(mutex_);
    if (stamp.size >= 0 && stamp == stamp_ && !recent) return Reload::kUnchanged;
  }
  std::optional<std::string> content = readFile(path_);
  if (!content) {
    problems->push_back({path_, "", "", "cannot read the file"});
    return Reload::kRejected;
  }
  // The registry keeps a digest of what it last read, not a copy of the file (a few megabytes
  // for ten thousand merchants): its size and 64-bit hash, which an edit leaves equal by chance
  // once in 2^64.
  const Digest digest{content->size(), std::hash<std::string_view>{}(*content)};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (digest == digest_ && stamp_.size >= 0) {
      stamp_ = stamp;
      return Reload::kUnchanged;
    }
  }
  TenantsLoad loaded = parseTenants(*content, path_, options_);
  content.reset();
  // Reading and parsing took some bytes per merchant, freed now; hand them back to the system
  // rather than leave them in malloc's free lists.
  malloc_trim(0);
  if (auto* found = std::get_if<std::vector<TenantProblem>>(&loaded)) {
    *problems = std::move(*found);
    std::lock_guard<std::mutex> lock(mutex_);
    stamp_ = stamp;  // report a broken edit once, not on every poll
    digest_ = digest;
    return Reload::kRejected;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = std::get<std::shared_ptr<const TenantSet>>(loaded);
  stamp_ = stamp;
  digest_ = digest;
  return Reload::kReloaded;
}

std::shared_ptr<const TenantSet> TenantRegistry::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

Result<std::shared_ptr<const Tenant>> TenantRegistry::admit(const std::string& appid) const {
  std::shared_ptr<const Tenant> tenant = current()->find(appid);
  if (!tenant) {
    return Error::of(ErrorClass::kInvalidTenant, "appid " + appid + " is not in the tenants file");
  }
  if (tenant->func_info) {
    if (auto denied = checkUserListPermission(*tenant->func_info)) return *denied;
  }
  return tenant;
}

}  // namespace fanpull
