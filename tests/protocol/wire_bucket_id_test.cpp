// Bucket ids and JSON text: the forms a JavaScript client writes (JSON.stringify, Number#toString),
// formatting and parsing back.
#include <catch2/catch.hpp>

#include "protocol/wire/bucket_id.h"
#include "protocol/wire/json_write.h"

namespace wire = sluice::protocol::wire;
using sluice::protocol::ErrorCode;

namespace {

std::string js_string(std::string_view s) {
    std::string out;
    wire::append_json_string(out, s);
    return out;
}

std::string js_number(double d) {
    std::string out;
    wire::append_js_number(out, d);
    return out;
}

}  // namespace

TEST_CASE("strings are escaped as JSON.stringify escapes them") {
    CHECK(js_string("plain") == R"("plain")");
    CHECK(js_string("a\"b\\c") == R"("a\"b\\c")");
    CHECK(js_string("\b\f\n\r\t") == R"("\b\f\n\r\t")");
    CHECK(js_string(std::string("\x00\x01\x1f\x7f", 4)) == "\"\\u0000\\u0001\\u001f\x7f\"");
    CHECK(js_string("/") == R"("/")");               // no \/ escape
    CHECK(js_string("é\u2028😀") == "\"é\u2028😀\"");  // non-ASCII as is, U+2028 too
    CHECK(js_string("") == R"("")");
}

TEST_CASE("numbers are written as JavaScript's Number#toString writes them") {
    CHECK(js_number(2.0) == "2");
    CHECK(js_number(-0.0) == "0");
    CHECK(js_number(0.1) == "0.1");
    CHECK(js_number(1.5) == "1.5");
    CHECK(js_number(-3.25) == "-3.25");
    CHECK(js_number(123456789012.0) == "123456789012");
    CHECK(js_number(1e20) == "100000000000000000000");
    CHECK(js_number(1e21) == "1e+21");
    CHECK(js_number(1.5e300) == "1.5e+300");
    CHECK(js_number(0.000001) == "0.000001");
    CHECK(js_number(0.0000001) == "1e-7");
    CHECK(js_number(1.2345e-10) == "1.2345e-10");
    CHECK(js_number(0.1 + 0.2) == "0.30000000000000004");
    CHECK(js_number(9007199254740993.0) == "9007199254740992");
    CHECK(js_number(std::numeric_limits<double>::quiet_NaN()) == "null");
    CHECK(js_number(std::numeric_limits<double>::infinity()) == "null");
}

TEST_CASE("64-bit integers are exact") {
    std::string out;
    wire::append_quoted_u64(out, 18446744073709551615ULL);
    wire::append_i64(out, -9223372036854775807LL - 1);
    CHECK(out == R"("18446744073709551615"-9223372036854775808)");
}

TEST_CASE("bucket ids are the name and the JSON array of parameter values") {
    CHECK(wire::format_bucket_id({std::nullopt, "global", {}}) == "global[]");
    CHECK(wire::format_bucket_id({std::nullopt, "by_user", {std::string("u1")}}) == R"(by_user["u1"])");
    CHECK(wire::format_bucket_id({std::nullopt, "list_todos", {std::string("l1"), std::int64_t{3}}}) ==
          R"(list_todos["l1",3])");
    CHECK(wire::format_bucket_id({2, "by_user", {std::string("u1")}}) == R"(2#by_user["u1"])");
    CHECK(wire::format_bucket_id({std::nullopt, "b", {std::monostate{}, 2.0, 2.5, std::int64_t{-7}}}) ==
          "b[null,2,2.5,-7]");
    CHECK(wire::format_bucket_id({std::nullopt, "b", {std::string("quote\"back\\slash\nnl")}}) ==
          R"(b["quote\"back\\slash\nnl"])");
    CHECK(wire::format_bucket_id({std::nullopt, "b", {std::int64_t{9007199254740993}}}) == "b[9007199254740993]");
}

TEST_CASE("an integer and an integral real give the same bucket id") {
    CHECK(wire::format_bucket_id({std::nullopt, "b", {2.0}}) ==
          wire::format_bucket_id({std::nullopt, "b", {std::int64_t{2}}}));
}

TEST_CASE("bucket ids parse back") {
    for (const char* text : {"global[]", R"(by_user["u1"])", R"(2#by_owner["user-1"])", R"(list_todos["l1",3])",
                             "b[null,2.5,-7]", R"(b["a#b","[x]","\u00e9\n"])", "1#global[]"}) {
        INFO(text);
        auto id = wire::parse_bucket_id(text);
        REQUIRE(id.is_ok());
        std::string canonical = wire::format_bucket_id(id.value());
        if (std::string_view(text).find("\\u00e9") == std::string_view::npos) {
            CHECK(canonical == text);
        } else {
            CHECK(canonical == "b[\"a#b\",\"[x]\",\"é\\n\"]");
        }
    }
    auto id = wire::parse_bucket_id(R"(12#by_user[ "u1" , 3 ])");
    REQUIRE(id.is_ok());
    CHECK(id->version == 12U);
    CHECK(id->name == "by_user");
    CHECK(id->parameters == std::vector<wire::BucketParameter>{std::string("u1"), std::int64_t{3}});
}

TEST_CASE("malformed bucket ids are rejected with SL5005") {
    for (const char* text : {"", "global", "[]", "#global[]", "x#global[]", "1#[]", "b[", "b[1,]", "b[{}]", "b[[1]]",
                             "b[true]", "b{}", "b[]x", "99999999999#b[]"}) {
        INFO(text);
        auto id = wire::parse_bucket_id(text);
        REQUIRE_FALSE(id.is_ok());
        CHECK(id.status().code() == ErrorCode::kBucketIdMalformed);
    }
}
