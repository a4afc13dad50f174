// Upload batches (protocol/wire/upload.h): parsing the SDK's CRUD entries, every malformed shape with
// its code and message, limits, and the result encodings (round trip of the recorded form).
#include <catch2/catch.hpp>

#include "protocol/wire/upload.h"

namespace wire = sluice::protocol::wire;
using sluice::protocol::ErrorCode;

TEST_CASE("an upload request in the SDK's CRUD shape") {
    auto batch = wire::parse_upload_request(
        R"({"client_id":"c1","batch_id":42,"ops":[
            {"op_id":1,"op":"PUT","type":"todos","id":"t1","tx_id":42,"data":{"a":"x","b":1,"c":1.5,"d":true,"e":null,"f":{"k":[1]}}},
            {"op_id":2,"op":"PATCH","type":"todos","id":7,"data":{"a":"y"}},
            {"op":"DELETE","type":"public.todos","id":"t2","old":{"a":"x"}}]})",
        {});
    REQUIRE(batch);
    CHECK(batch->client_id == "c1");
    CHECK(batch->batch_id == "42");
    REQUIRE(batch->ops.size() == 3);
    const auto& put = batch->ops[0];
    CHECK(put.op_id == 1);
    CHECK(put.kind == wire::CrudKind::kPut);
    CHECK(put.table == "todos");
    REQUIRE(put.data.size() == 6);
    using K = wire::CrudValue::Kind;
    CHECK(put.data[0].second == wire::CrudValue{K::kString, "x"});
    CHECK(put.data[1].second == wire::CrudValue{K::kNumber, "1"});
    CHECK(put.data[2].second == wire::CrudValue{K::kNumber, "1.5"});
    CHECK(put.data[3].second == wire::CrudValue{K::kBool, "true"});
    CHECK(put.data[4].second == wire::CrudValue{K::kNull, ""});
    CHECK(put.data[5].second == wire::CrudValue{K::kJson, R"({"k":[1]})"});
    CHECK(batch->ops[1].id == "7");
    CHECK(batch->ops[2].kind == wire::CrudKind::kDelete);
    CHECK_FALSE(batch->ops[2].op_id.has_value());
}

TEST_CASE("malformed and oversized uploads: code and message") {
    auto error = [](const std::string& body, wire::UploadLimits limits = {}) {
        auto r = wire::parse_upload_request(body, limits);
        REQUIRE_FALSE(r);
        return r.status();
    };
    CHECK(error("[1]").code() == ErrorCode::kRequestInvalidJson);
    CHECK(error("{").code() == ErrorCode::kRequestInvalidJson);
    CHECK(error(R"({"ops":[]})").message() == "upload: 'batch_id' must be a string or an integer, unique per client");
    CHECK(error(R"({"batch_id":"","ops":[]})").code() == ErrorCode::kRequestInvalidField);
    CHECK(error(R"({"batch_id":"b","ops":{}})").message() == "upload: 'ops' must be an array of operations");
    CHECK(error(R"({"batch_id":"b","ops":[{"op":"MERGE","type":"t","id":"x"}]})").message() ==
          "upload: 'ops[0].op' must be PUT, PATCH or DELETE");
    CHECK(error(R"({"batch_id":"b","ops":[{"op":"PUT","type":"","id":"x"}]})").message() ==
          "upload: 'ops[0].type' must be a table name");
    CHECK(error(R"({"batch_id":"b","ops":[{"op":"PUT","type":"t","id":null}]})").message() ==
          "upload: 'ops[0].id' must be a string or an integer");
    CHECK(error(R"({"batch_id":"b","ops":[{"op":"PUT","type":"t","id":"x","data":[1]}]})").message() ==
          "upload: 'ops[0].data' must be an object of column values");
    CHECK(error(R"({"batch_id":"b","ops":[{"op":"PUT","type":"t","id":"x","data":{"a":1,"a":2}}]})").message() ==
          "upload: 'ops[0].data.a' must be given once");
    CHECK(error(R"({"batch_id":"b","ops":[{"op":"PUT","type":"t","id":"a\u0000b"}]})").code() ==
          ErrorCode::kRequestInvalidField);
    const auto many = error(R"({"batch_id":"b","ops":[{"op":"DELETE","type":"t","id":"1"},{"op":"DELETE","type":"t","id":"2"}]})",
                            {1024, 1});
    CHECK(many.code() == ErrorCode::kUploadTooManyOps);
    CHECK(many.message() == "the batch has 2 operations; the limit is 1 (limits.max_upload_batch_ops)");
    CHECK(error(R"({"batch_id":"b","ops":[]})", {10, 10}).code() == ErrorCode::kMessageTooLarge);

    auto request = wire::parse_checkpoint_request(R"({"client_id":"c","checkpoint_request_id":"17"})", 1024);
    REQUIRE(request);
    CHECK(request->checkpoint_request_id == 17);
    CHECK_FALSE(wire::parse_checkpoint_request(R"({"client_id":"c","checkpoint_request_id":"-1"})", 1024));
    CHECK_FALSE(wire::parse_checkpoint_request(R"({"checkpoint_request_id":1})", 1024));
}

TEST_CASE("results: the recorded form round-trips, the answers have their documented shape") {
    wire::UploadResult result;
    result.outcome = wire::BatchOutcome::kPartial;
    result.ops = {{wire::OpStatus::kApplied, ErrorCode::kOk, ""},
                  {wire::OpStatus::kRejected, ErrorCode::kUploadDenied, "no \"way\""}};
    std::string recorded;
    wire::encode_upload_result(recorded, result);
    CHECK(recorded ==
          R"({"status":"partial","ops":[{"status":"applied"},{"status":"rejected","code":"SL6003","reason":"no \"way\""}]})");
    auto decoded = wire::decode_upload_result(recorded);
    REQUIRE(decoded);
    CHECK(decoded.value() == result);

    auto batch = wire::parse_upload_request(
        R"({"batch_id":"b1","ops":[{"op_id":1,"op":"DELETE","type":"t","id":"1"},{"op_id":2,"op":"DELETE","type":"t","id":"2"}]})", {});
    REQUIRE(batch);
    std::string answer;
    wire::encode_upload_response(answer, batch.value(), result, 12, false);
    CHECK(answer == R"({"data":{"batch_id":"b1","status":"partial","write_checkpoint":"12","replayed":false,"ops":[)"
                    R"({"op_id":1,"status":"applied"},{"op_id":2,"status":"rejected","code":"SL6003","reason":"no \"way\""}]}})");
    std::string ack;
    wire::encode_upload_ack(ack, "u-7", batch->ops, result, 12);
    CHECK(ack == R"({"upload_ack":{"upload_id":"u-7","status":"partial","write_checkpoint":"12","rejected":[)"
                 R"({"index":1,"op_id":2,"status":"rejected","code":"SL6003","reason":"no \"way\""}]}})");
    std::string error;
    wire::encode_upload_error(error, "u-8", ErrorCode::kUploadUnavailable, "later", std::nullopt, std::nullopt);
    CHECK(error == R"({"upload_error":{"upload_id":"u-8","code":"SL6009","description":"later"}})");
}
