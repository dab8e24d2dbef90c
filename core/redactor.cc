#include "core/redactor.h"

#include <algorithm>

namespace fanpull {
namespace {

constexpr std::string_view kMark = "[redacted]";

bool isRunChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

Redactor& Redactor::global() {
  static Redactor redactor;
  return redactor;
}

void Redactor::addSecret(std::string_view secret) {
  if (secret.empty()) return;
  std::unique_lock lock(mutex_);
  if (std::all_of(secret.begin(), secret.end(), isRunChar)) {
    runs_.emplace(secret);
    shortest_run_ = std::min(shortest_run_, secret.size());
  } else if (std::find(others_.begin(), others_.end(), secret) == others_.end()) {
    others_.emplace_back(secret);
  }
}

void Redactor::clear() {
  std::unique_lock lock(mutex_);
  runs_.clear();
  others_.clear();
  shortest_run_ = SIZE_MAX;
}

size_t Redactor::size() const {
  std::shared_lock lock(mutex_);
  return runs_.size() + others_.size();
}

std::string Redactor::redact(std::string_view text) const {
  std::shared_lock lock(mutex_);
  std::string out;
  if (runs_.empty()) {
    out.assign(text);
  } else {
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
      if (!isRunChar(text[i])) {
        out.push_back(text[i++]);
        continue;
      }
      size_t j = i;
      while (j < text.size() && isRunChar(text[j])) ++j;
      std::string_view run = text.substr(i, j - i);
      if (run.size() >= shortest_run_ && runs_.count(std::string(run))) {
        out += kMark;
      } else {
        out += run;
      }
      i = j;
    }
  }
  for (const auto& secret : others_) {
    for (size_t pos = out.find(secret); pos != std::string::npos;
         pos = out.find(secret, pos + kMark.size())) {
      out.replace(pos, secret.size(), kMark);
    }
  }
  return out;
}

}  // namespace fanpull
