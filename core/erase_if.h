// eraseIf: erases the elements of a map or set for which `pred` holds and returns how many went,
// as C++20's std::erase_if does for the associative containers.
#pragma once

#include <cstddef>

namespace fanpull {

template <typename Container, typename Pred>
size_t eraseIf(Container& container, Pred pred) {
  size_t erased = 0;
  for (auto it = container.begin(); it != container.end();) {
    if (pred(*it)) {
      it = container.erase(it);
      ++erased;
    } else {
      ++it;
    }
  }
  return erased;
}

}  // namespace fanpull
