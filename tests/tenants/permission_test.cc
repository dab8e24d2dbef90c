#include <catch2/catch.hpp>

#include "tenants/permission.h"

using namespace fanpull;

TEST_CASE("a merchant that granted set 2 or set 100 may be served", "[tenants][unit]") {
  CHECK(grantsUserList({1, 2, 15}));
  CHECK(grantsUserList({100}));
  CHECK_FALSE(checkUserListPermission({2}).has_value());
}

TEST_CASE("a merchant without set 2 or 100 is refused with permission_denied", "[tenants][unit]") {
  CHECK_FALSE(grantsUserList({}));
  CHECK_FALSE(grantsUserList({1, 15, 99, 101}));
  auto e = checkUserListPermission({1, 15});
  REQUIRE(e.has_value());
  CHECK(e->error_class == ErrorClass::kPermissionDenied);
  CHECK(e->cause.find("[1,15]") != std::string::npos);
}
