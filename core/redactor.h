// Redactor: the one place every log line, event, dead letter, error message and metric passes
// through before it leaves fanpull. Tokens, refresh tokens, app secrets and verify tickets are
// registered as they are loaded or issued; redact() replaces each whole occurrence with
// "[redacted]". Thread-safe.
#pragma once

#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace fanpull {

class Redactor {
 public:
  // The process-wide redactor.
  static Redactor& global();

  // Registers a secret. Empty strings are ignored.
  void addSecret(std::string_view secret);
  // Forgets every secret (tests only).
  void clear();
  // text with every registered secret replaced by "[redacted]". A secret made of [A-Za-z0-9_-]
  // is replaced where it stands as a whole run of those characters; any other secret wherever
  // it appears.
  std::string redact(std::string_view text) const;
  size_t size() const;

 private:
  mutable std::shared_mutex mutex_;          // guards the two sets
  std::unordered_set<std::string> runs_;     // secrets of [A-Za-z0-9_-]
  std::vector<std::string> others_;          // secrets with other characters
  size_t shortest_run_ = SIZE_MAX;
};

}  // namespace fanpull
