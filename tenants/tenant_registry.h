// TenantRegistry: the tenants file in force. The worker asks it to reload when the file changes
// (new jobs see new entries; work in flight keeps the Tenant it started with, held by shared_ptr);
// a broken edit is reported and the last good file stays in force. Also the admission check every
// job passes before any call to WeChat. Thread-safe.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "tenants/tenants_file.h"

namespace fanpull {

class TenantRegistry {
 public:
  TenantRegistry(std::string path, TenantsOptions options);

  // Reads the file. Returns its problems (empty on success); on problems nothing is in force
  // unless a previous load succeeded.
  std::vector<TenantProblem> load();

  enum class Reload { kUnchanged, kReloaded, kRejected };
  // Reloads when the file's size, modification time or content changed. kRejected: the new
  // content has problems (in *problems) and the last good set stays in force.
  Reload reloadIfChanged(std::vector<TenantProblem>* problems);

  // The set in force (never null: empty before the first good load).
  std::shared_ptr<const TenantSet> current() const;

  // The tenant a job for `appid` runs with, or: invalid_tenant when the appid is not in the file;
  // permission_denied when its func_info holds neither 2 nor 100. No call to WeChat is needed.
  Result<std::shared_ptr<const Tenant>> admit(const std::string& appid) const;

  const std::string& path() const { return path_; }

 private:
  struct Stamp {
    int64_t mtime_ns = -1;
    int64_t size = -1;
    uint64_t inode = 0;
    bool operator==(const Stamp& o) const {
      return mtime_ns == o.mtime_ns && size == o.size && inode == o.inode;
    }
  };
  Stamp stampOf() const;

  const std::string path_;
  const TenantsOptions options_;
  mutable std::mutex mutex_;  // guards current_, stamp_ and digest_
  std::shared_ptr<const TenantSet> current_;
  Stamp stamp_;
  struct Digest {
    size_t size = 0;
    size_t hash = 0;
    bool operator==(const Digest& o) const { return size == o.size && hash == o.hash; }
  };
  std::optional<Digest> digest_;  // of the content last read
};

}  // namespace fanpull
