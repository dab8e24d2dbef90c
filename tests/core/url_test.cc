#include <catch2/catch.hpp>

#include "core/url.h"
#include "core/user_list_client.h"

using namespace fanpull;

TEST_CASE("unreserved characters pass and everything else is percent-encoded", "[core][unit]") {
  CHECK(percentEncode("oLVPpjqs9Bhvz-_.~09") == "oLVPpjqs9Bhvz-_.~09");
  CHECK(percentEncode("a&b=c#d%e f+g/h?i") == "a%26b%3Dc%23d%25e%20f%2Bg%2Fh%3Fi");
  CHECK(percentEncode("\r\n") == "%0D%0A");
  CHECK(percentEncode("\xE7\xB3\xBB") == "%E7%B3%BB");
  CHECK(percentEncode(std::string("a\0b", 3)) == "a%00b");
}

TEST_CASE("a hostile cursor cannot add or change a query parameter", "[core][unit]") {
  std::string target = UserListClient::target(
      "TOKEN", "x&access_token=stolen#frag%41 \r\nHost: evil");
  CHECK(target ==
        "/cgi-bin/user/get?access_token=TOKEN&next_openid="
        "x%26access_token%3Dstolen%23frag%2541%20%0D%0AHost%3A%20evil");
  // Exactly two parameters, whatever the cursor holds.
  CHECK(std::count(target.begin(), target.end(), '&') == 1);
  CHECK(target.find('#') == std::string::npos);
  CHECK(target.find(' ') == std::string::npos);
}

TEST_CASE("an empty cursor is sent as an empty next_openid", "[core][unit]") {
  CHECK(UserListClient::target("T", "") == "/cgi-bin/user/get?access_token=T&next_openid=");
}
