// The sync request (POST /sync/stream body) and the WebSocket client messages: what the SDKs send
// parses, unknown fields are tolerated, wrong types and malformed JSON give coded errors.
#include <catch2/catch.hpp>

#include "protocol/wire/client_message.h"
#include "protocol/wire/request.h"

namespace wire = sluice::protocol::wire;
using sluice::protocol::ErrorCode;

namespace {
constexpr std::size_t kMax = 1 << 20;
}

TEST_CASE("the documented request body parses") {
    const std::string body = R"({"buckets":[{"name":"by_user[\"u1\"]","after":"1234"},{"name":"global[]"}],
        "include_checksum":true,"raw_data":true,"binary_data":true,"client_id":"c-1",
        "parameters":{"team":"a","n":[1,2]},"app_metadata":{"v":"1.0"},
        "streams":{"include_defaults":false,"subscriptions":[{"stream":"s1","parameters":{"id":3},"override_priority":1},
                                                             {"stream":"s2"}]},
        "some_future_field":{"x":[1,2,3]}})";
    auto r = wire::parse_sync_request(body, kMax);
    REQUIRE(r.is_ok());
    REQUIRE(r->buckets.size() == 2);
    CHECK(r->buckets[0] == wire::BucketRequest{R"(by_user["u1"])", 1234});
    CHECK(r->buckets[1] == wire::BucketRequest{"global[]", 0});
    CHECK(r->include_checksum);
    CHECK(r->raw_data);
    CHECK(r->binary_data);
    CHECK(r->client_id == "c-1");
    CHECK(r->parameters == R"({"team":"a","n":[1,2]})");
    CHECK(r->app_metadata == R"({"v":"1.0"})");
    REQUIRE(r->streams);
    CHECK_FALSE(r->streams->include_defaults);
    REQUIRE(r->streams->subscriptions.size() == 2);
    CHECK(r->streams->subscriptions[0] == wire::StreamSubscription{"s1", R"({"id":3})", 1});
    CHECK(r->streams->subscriptions[1] == wire::StreamSubscription{"s2", "{}", std::nullopt});
}

TEST_CASE("a minimal request gets the defaults, and null counts as absent") {
    auto r = wire::parse_sync_request("{}", kMax);
    REQUIRE(r.is_ok());
    CHECK(r.value() == wire::SyncRequest{});
    auto n = wire::parse_sync_request(
        R"({"buckets":null,"client_id":null,"parameters":null,"streams":null,"raw_data":null,
            "buckets2":[{"name":"x","after":"0"}]})",
        kMax);
    REQUIRE(n.is_ok());
    CHECK(n.value() == wire::SyncRequest{});
    auto after = wire::parse_sync_request(R"({"buckets":[{"name":"a","after":7},{"name":"b","after":null},
        {"name":"c","after":"18446744073709551615"}]})",
                                          kMax);
    REQUIRE(after.is_ok());
    CHECK(after->buckets[0].after == 7);
    CHECK(after->buckets[1].after == 0);
    CHECK(after->buckets[2].after == 18446744073709551615ULL);
}

TEST_CASE("the request encodes and parses back") {
    wire::SyncRequest r;
    r.buckets = {{"1#global[]", 5}, {R"(2#by_owner["user-1"])", 900016}};
    r.raw_data = true;
    r.client_id = "client \"1\"";
    r.parameters = R"({"a":1})";
    r.streams = wire::StreamsRequest{true, {{"s", R"({"p":"x"})", 2}, {"t", "{}", std::nullopt}}};
    std::string text;
    wire::encode_sync_request(text, r);
    CHECK(
        text ==
        R"({"buckets":[{"name":"1#global[]","after":"5"},{"name":"2#by_owner[\"user-1\"]","after":"900016"}],)"
        R"("include_checksum":true,"raw_data":true,"binary_data":false,"client_id":"client \"1\"","parameters":{"a":1},)"
        R"("app_metadata":{},"streams":{"include_defaults":true,"subscriptions":[{"stream":"s","parameters":{"p":"x"},)"
        R"("override_priority":2},{"stream":"t","parameters":{}}]}})");
    auto back = wire::parse_sync_request(text, kMax);
    REQUIRE(back.is_ok());
    CHECK(back.value() == r);
}

TEST_CASE("bad requests give coded errors naming the field") {
    const std::vector<std::tuple<std::string, ErrorCode, std::string>> cases{
        {"", ErrorCode::kRequestInvalidJson, "not valid JSON"},
        {"{\"buckets\":[", ErrorCode::kRequestInvalidJson, "not valid JSON"},
        {"{} {}", ErrorCode::kRequestInvalidJson, "not valid JSON"},
        {"[]", ErrorCode::kRequestInvalidJson, "not a JSON object"},
        {"\"x\"", ErrorCode::kRequestInvalidJson, "not a JSON object"},
        {"{\"client_id\":\"\xff\"}", ErrorCode::kRequestInvalidJson, "not valid JSON"},
        {R"({"buckets":{}})", ErrorCode::kRequestInvalidField, "'buckets' must be an array"},
        {R"({"buckets":["global[]"]})", ErrorCode::kRequestInvalidField, "'buckets[0]' must be an object"},
        {R"({"buckets":[{"after":"1"}]})", ErrorCode::kRequestInvalidField, "'buckets[0].name' must be a non-empty"},
        {R"({"buckets":[{"name":""}]})", ErrorCode::kRequestInvalidField, "'buckets[0].name' must be a non-empty"},
        {R"({"buckets":[{"name":"a"},{"name":"b","after":"12a"}]})", ErrorCode::kRequestInvalidField,
         "'buckets[1].after' must be an op id"},
        {R"({"buckets":[{"name":"a","after":-1}]})", ErrorCode::kRequestInvalidField, "'buckets[0].after'"},
        {R"({"buckets":[{"name":"a","after":"18446744073709551616"}]})", ErrorCode::kRequestInvalidField,
         "'buckets[0].after'"},
        {R"({"buckets":[{"name":"a","after":1.5}]})", ErrorCode::kRequestInvalidField, "'buckets[0].after'"},
        {R"({"include_checksum":"yes"})", ErrorCode::kRequestInvalidField, "'include_checksum' must be true or false"},
        {R"({"raw_data":1})", ErrorCode::kRequestInvalidField, "'raw_data' must be true or false"},
        {R"({"client_id":5})", ErrorCode::kRequestInvalidField, "'client_id' must be a string"},
        {R"({"parameters":"{}"})", ErrorCode::kRequestInvalidField, "'parameters' must be a JSON object"},
        {R"({"parameters":[]})", ErrorCode::kRequestInvalidField, "'parameters' must be a JSON object"},
        {R"({"app_metadata":1})", ErrorCode::kRequestInvalidField, "'app_metadata' must be a JSON object"},
        {R"({"streams":[]})", ErrorCode::kRequestInvalidField, "'streams' must be an object"},
        {R"({"streams":{"include_defaults":0}})", ErrorCode::kRequestInvalidField, "'streams.include_defaults'"},
        {R"({"streams":{"subscriptions":{}}})", ErrorCode::kRequestInvalidField,
         "'streams.subscriptions' must be an array"},
        {R"({"streams":{"subscriptions":[{}]}})", ErrorCode::kRequestInvalidField,
         "'streams.subscriptions[0].stream' must be a non-empty string"},
        {R"({"streams":{"subscriptions":[{"stream":"s","parameters":1}]}})", ErrorCode::kRequestInvalidField,
         "'streams.subscriptions[0].parameters' must be a JSON object"},
        {R"({"streams":{"subscriptions":[{"stream":"s","override_priority":4}]}})", ErrorCode::kRequestInvalidField,
         "'streams.subscriptions[0].override_priority' must be an integer from 0 to 3"},
        {R"({"streams":{"subscriptions":[{"stream":"s","override_priority":"1"}]}})", ErrorCode::kRequestInvalidField,
         "override_priority"},
    };
    for (const auto& [body, code, expected] : cases) {
        INFO(body);
        auto r = wire::parse_sync_request(body, kMax);
        REQUIRE_FALSE(r.is_ok());
        CHECK(r.status().code() == code);
        CHECK_THAT(r.status().message(), Catch::Matchers::Contains(expected));
    }
}

TEST_CASE("a request over the caller's size limit is refused before parsing") {
    const std::string body = R"({"buckets":[]})";
    CHECK(wire::parse_sync_request(body, body.size()).is_ok());
    auto r = wire::parse_sync_request(body, body.size() - 1);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == ErrorCode::kMessageTooLarge);
}

TEST_CASE("WebSocket client messages") {
    auto sync = wire::parse_client_message(R"({"type":"sync_request","buckets":[{"name":"g[]","after":"3"}]})", kMax);
    REQUIRE(sync.is_ok());
    CHECK(std::get<wire::SyncRequestMessage>(sync.value()).request.buckets.at(0).after == 3);

    auto token = wire::parse_client_message(R"({"type":"token","token":"eyJ.x.y"})", kMax);
    REQUIRE(token.is_ok());
    CHECK(std::get<wire::TokenMessage>(token.value()).token == "eyJ.x.y");

    auto subs = wire::parse_client_message(
        R"({"type":"update_subscriptions","streams":{"include_defaults":true,"subscriptions":[{"stream":"p","parameters":{"id":1}}]}})",
        kMax);
    REQUIRE(subs.is_ok());
    CHECK(std::get<wire::UpdateSubscriptionsMessage>(subs.value()).streams.subscriptions.at(0).parameters ==
          R"({"id":1})");

    auto upload = wire::parse_client_message(
        R"({"type":"upload","upload_id":"u-7","batch":[{"op_id":1,"op":"PUT","type":"todos","id":"t1","data":{"x":1}}]})",
        kMax);
    REQUIRE(upload.is_ok());
    CHECK(std::get<wire::UploadMessage>(upload.value()).upload_id == "u-7");
    CHECK(std::get<wire::UploadMessage>(upload.value()).batch ==
          R"([{"op_id":1,"op":"PUT","type":"todos","id":"t1","data":{"x":1}}])");

    const std::vector<std::tuple<std::string, ErrorCode>> bad{
        {"nope", ErrorCode::kRequestInvalidJson},
        {"[]", ErrorCode::kRequestInvalidJson},
        {R"({"buckets":[]})", ErrorCode::kClientMessageUnknown},
        {R"({"type":1})", ErrorCode::kClientMessageUnknown},
        {R"({"type":"shout"})", ErrorCode::kClientMessageUnknown},
        {R"({"type":"token"})", ErrorCode::kRequestInvalidField},
        {R"({"type":"token","token":""})", ErrorCode::kRequestInvalidField},
        {R"({"type":"update_subscriptions"})", ErrorCode::kRequestInvalidField},
        {R"({"type":"sync_request","buckets":7})", ErrorCode::kRequestInvalidField},
        {R"({"type":"upload","batch":[]})", ErrorCode::kRequestInvalidField},
        {R"({"type":"upload","upload_id":"u","batch":{}})", ErrorCode::kRequestInvalidField},
    };
    for (const auto& [text, code] : bad) {
        INFO(text);
        auto m = wire::parse_client_message(text, kMax);
        REQUIRE_FALSE(m.is_ok());
        CHECK(m.status().code() == code);
    }
    auto big = wire::parse_client_message(R"({"type":"token","token":"abc"})", 10);
    REQUIRE_FALSE(big.is_ok());
    CHECK(big.status().code() == ErrorCode::kMessageTooLarge);
}
