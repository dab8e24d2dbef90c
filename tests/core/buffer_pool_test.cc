#include "core/buffer_pool.h"

#include <catch2/catch.hpp>

#include <string>

namespace fanpull {
namespace {

constexpr size_t kPage = 310 * 1024;  // about one answer of 10,000 OpenIDs

TEST_CASE("a buffer given back is the next one taken, at the size asked, without a new allocation",
          "[core][unit][buffer_pool]") {
  BufferPool pool;
  std::string first = pool.take(kPage, kPage + 1024);
  REQUIRE(first.size() == kPage);
  REQUIRE(first.capacity() >= kPage + 1024);
  first.replace(0, 5, "hello");
  const char* bytes = first.data();
  pool.give(std::move(first));
  CHECK(first.empty());
  CHECK(pool.stats().kept == 1);

  std::string second = pool.take(kPage - 100, kPage + 1024 - 100);
  CHECK(second.data() == bytes);  // the same memory
  CHECK(second.size() == kPage - 100);
  CHECK(pool.stats().reused == 1);
  CHECK(pool.stats().allocated == 1);
  CHECK(pool.stats().kept == 0);
}

TEST_CASE("answers a few bytes apart share buffers: large ones are allocated in 16 KiB steps",
          "[core][unit][buffer_pool]") {
  BufferPool pool;
  // A last page (no next_openid) is 28 bytes shorter than the full page before it.
  std::string last = pool.take(kPage - 28, kPage - 28 + 1024);
  CHECK(last.capacity() % BufferPool::kGranularity == 0);
  pool.give(std::move(last));
  std::string full = pool.take(kPage, kPage + 1024);
  CHECK(pool.stats().reused == 1);
  CHECK(pool.stats().allocated == 1);
}

TEST_CASE("the smallest kept buffer that is large enough is taken", "[core][unit][buffer_pool]") {
  BufferPool pool;
  std::string big = pool.take(4 * kPage, 4 * kPage);
  std::string small = pool.take(kPage, kPage);
  const char* small_bytes = small.data();
  pool.give(std::move(big));
  pool.give(std::move(small));
  std::string taken = pool.take(kPage / 2, kPage / 2);
  CHECK(taken.data() == small_bytes);
  CHECK(pool.stats().kept_bytes >= 4 * kPage);  // the large one still waits
}

TEST_CASE("releaseKept frees every kept buffer; the next take allocates again",
          "[core][unit][buffer_pool]") {
  BufferPool pool;
  std::string a = pool.take(kPage, kPage);
  std::string b = pool.take(kPage, kPage);
  const size_t capacity = a.capacity() + b.capacity();
  pool.give(std::move(a));
  pool.give(std::move(b));
  REQUIRE(pool.stats().kept == 2);
  CHECK(pool.releaseKept() == capacity);
  CHECK(pool.stats().kept == 0);
  CHECK(pool.stats().kept_bytes == 0);
  CHECK(pool.releaseKept() == 0);
  std::string c = pool.take(kPage, kPage);
  CHECK(pool.stats().allocated == 3);
  CHECK(pool.stats().reused == 0);
}

TEST_CASE("small buffers are not kept: they are freed", "[core][unit][buffer_pool]") {
  BufferPool pool;
  std::string small = pool.take(100, 200);
  CHECK(small.size() == 100);
  pool.give(std::move(small));
  CHECK(pool.stats().kept == 0);
  CHECK(pool.stats().allocated == 0);  // counted only at min_capacity and above
}

TEST_CASE("kept buffers stay within max_kept_bytes; lowering it frees the excess", "[core][unit][buffer_pool]") {
  BufferPool pool(3 * kPage);
  std::string a = pool.take(kPage, kPage);
  std::string b = pool.take(kPage, kPage);
  std::string c = pool.take(kPage, kPage);
  pool.give(std::move(a));
  pool.give(std::move(b));
  pool.give(std::move(c));  // over 3 x 310 KiB once rounded up: freed
  CHECK(pool.stats().kept == 2);
  CHECK(pool.stats().dropped == 1);
  CHECK(pool.stats().kept_bytes <= 3 * kPage);

  pool.setMaxKeptBytes(kPage + BufferPool::kGranularity);
  CHECK(pool.stats().kept == 1);
  pool.setMaxKeptBytes(0);
  CHECK(pool.stats().kept == 0);
  CHECK(pool.stats().kept_bytes == 0);
}

}  // namespace
}  // namespace fanpull
