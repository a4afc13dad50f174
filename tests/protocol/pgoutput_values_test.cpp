// Text forms of Postgres values -> client values and JSON (powersync-compat.md's type mapping).
#include <limits>

#include <catch2/catch.hpp>

#include "protocol/pgoutput/text_value.h"

namespace pg = sluice::protocol::pgoutput;
namespace oid = pg::oid;
using pg::Value;
using sluice::protocol::ErrorCode;

namespace {

Value decode(pg::Oid type, std::string_view text, const pg::TypeResolver& resolver = {}) {
    auto v = pg::decode_text_value(type, text, resolver);
    INFO(v.status().to_string());
    REQUIRE(v.is_ok());
    return v.value();
}

std::string json(pg::Oid type, std::string_view text, const pg::TypeResolver& resolver = {}) {
    return pg::to_json(decode(type, text, resolver));
}

}  // namespace

TEST_CASE("integers are exact 64-bit, never through a double") {
    CHECK(decode(oid::kInt8, "9223372036854775807") == Value::from_integer(std::numeric_limits<std::int64_t>::max()));
    CHECK(json(oid::kInt8, "-9223372036854775808") == "-9223372036854775808");
    CHECK(json(oid::kInt8, "9007199254740993") == "9007199254740993");
    CHECK(json(oid::kInt2, "-5") == "-5");
    CHECK(pg::decode_text_value(oid::kInt4, "12x").status().code() == ErrorCode::kPgoutputValueMalformed);
    CHECK_FALSE(pg::decode_text_value(oid::kInt8, "9223372036854775808").is_ok());
}

TEST_CASE("floats are reals printed as JavaScript does, numeric stays text") {
    CHECK(decode(oid::kFloat8, "0.1") == Value::from_real(0.1));
    CHECK(json(oid::kFloat8, "3") == "3");
    CHECK(json(oid::kFloat8, "1e+21") == "1e+21");
    CHECK(json(oid::kFloat8, "1e-7") == "1e-7");
    CHECK(json(oid::kFloat8, "0.000001") == "0.000001");
    CHECK(json(oid::kFloat8, "-123.456") == "-123.456");
    CHECK(json(oid::kFloat4, "NaN") == "null");
    CHECK(std::isinf(decode(oid::kFloat8, "-Infinity").real));
    CHECK(decode(oid::kNumeric, "12345678901234567890.123") == Value::from_text("12345678901234567890.123"));
    CHECK(json(oid::kNumeric, "NaN") == "\"NaN\"");
}

TEST_CASE("bool, text-like, uuid, json, date and time types") {
    CHECK(decode(oid::kBool, "t") == Value::from_integer(1));
    CHECK(decode(oid::kBool, "f") == Value::from_integer(0));
    CHECK_FALSE(pg::decode_text_value(oid::kBool, "true").is_ok());
    CHECK(json(oid::kText, "a \"b\"\n\x01") == R"("a \"b\"\n\u0001")");
    CHECK(json(oid::kBpchar, "ab ") == R"("ab ")");
    CHECK(json(oid::kUuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11") == R"("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")");
    CHECK(decode(oid::kJsonb, R"({"a": 1})") == Value::from_text(R"({"a": 1})"));
    CHECK(json(oid::kTimestamptz, "2024-02-29 11:14:15.5+00") == R"("2024-02-29 11:14:15.5+00")");
    CHECK(json(oid::kInterval, "1 day") == R"("1 day")");
}

TEST_CASE("bytea hex form is a blob, blobs have no JSON form") {
    CHECK(decode(oid::kBytea, "\\x00ff10") == Value::from_blob(std::string("\0\xff\x10", 3)));
    CHECK(decode(oid::kBytea, "\\x") == Value::from_blob(""));
    CHECK(json(oid::kBytea, "\\x01") == "null");
    CHECK_FALSE(pg::decode_text_value(oid::kBytea, "\\001").is_ok());
    CHECK_FALSE(pg::decode_text_value(oid::kBytea, "\\x0g").is_ok());
}

TEST_CASE("arrays become JSON array text") {
    auto array = [](pg::Oid element, std::string_view text) {
        auto r = pg::array_text_to_json(element, text);
        INFO(r.status().to_string());
        REQUIRE(r.is_ok());
        return r.value();
    };
    CHECK(decode(1007, "{1,2,3}") == Value::from_text("[1,2,3]"));
    CHECK(array(oid::kInt8, "{{1,2},{3,NULL}}") == "[[1,2],[3,null]]");
    CHECK(array(oid::kText, R"({plain,"with space","q\"uote","back\\slash",NULL,"NULL",""})") ==
          R"(["plain","with space","q\"uote","back\\slash",null,"NULL",""])");
    CHECK(array(oid::kInt4, "[0:2]={7,8,9}") == "[7,8,9]");
    CHECK(array(oid::kBool, "{t,f}") == "[true,false]");
    CHECK(array(oid::kFloat8, "{1.5,NaN,3}") == R"([1.5,"NaN",3])");
    CHECK(array(oid::kNumeric, "{1.50,NaN}") == R"([1.50,"NaN"])");
    CHECK(array(oid::kJsonb, R"({"{\"k\": 1}",null})") == R"([{"k": 1},null])");
    CHECK(array(oid::kBox, "{(1,1),(0,0);(2,2),(1,1)}") == R"x(["(1,1),(0,0)","(2,2),(1,1)"])x");
    CHECK(array(oid::kInt4, "{}") == "[]");
    for (const auto* bad : {"", "{", "{1,", "{1}x", "{\"a}", "[0:1]{1}", "{1,,2}", "{{{{{{{1}}}}}}}", "{a\"b}"}) {
        INFO(bad);
        CHECK(pg::array_text_to_json(oid::kText, bad).status().code() == ErrorCode::kPgoutputValueMalformed);
    }
    CHECK_FALSE(pg::array_text_to_json(oid::kInt4, "{1,x}").is_ok());
}

TEST_CASE("enums and domains through the resolver") {
    const pg::TypeResolver resolver = [](pg::Oid type) -> std::optional<pg::TypeDescription> {
        using Kind = pg::TypeDescription::Kind;
        switch (type) {
            case 50000: return pg::TypeDescription{Kind::kEnum, 0};
            case 50001: return pg::TypeDescription{Kind::kArray, 50000};
            case 50002: return pg::TypeDescription{Kind::kDomain, oid::kInt8};
            case 50003: return pg::TypeDescription{Kind::kDomain, 50002};  // a domain over a domain
            case 50004: return pg::TypeDescription{Kind::kArray, 50003};
            case 50005: return pg::TypeDescription{Kind::kDomain, 50005};  // a cycle must not hang
            default: return std::nullopt;
        }
    };
    CHECK(decode(50000, "happy", resolver) == Value::from_text("happy"));
    CHECK(json(50001, "{sad,happy}", resolver) == R"("[\"sad\",\"happy\"]")");
    CHECK(decode(50003, "42", resolver) == Value::from_integer(42));
    CHECK(decode(50004, "{1,NULL}", resolver) == Value::from_text("[1,null]"));
    CHECK(decode(50005, "x", resolver) == Value::from_text("x"));
    CHECK(decode(99999, "(1,2)", resolver) == Value::from_text("(1,2)"));  // unknown: text
    CHECK(decode(50002, "7") == Value::from_text("7"));                     // no resolver: text
}

TEST_CASE("datums: null, unchanged TOAST and binary are the caller's business") {
    CHECK(pg::decode_datum(oid::kInt4, {pg::DatumKind::kNull, ""}).value() == Value::null());
    CHECK(pg::decode_datum(oid::kInt4, {pg::DatumKind::kText, "5"}).value() == Value::from_integer(5));
    CHECK_FALSE(pg::decode_datum(oid::kInt4, {pg::DatumKind::kUnchangedToast, ""}).is_ok());
    CHECK_FALSE(pg::decode_datum(oid::kInt4, {pg::DatumKind::kBinary, "\0"}).is_ok());
}
