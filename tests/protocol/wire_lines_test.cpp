// Server lines: every line of the PowerSync transcripts decodes and re-encodes byte for byte; the
// streaming DataLineWriter gives the same bytes; malformed lines give SL5006 naming the problem.
#include <catch2/catch.hpp>

#include "protocol/wire/line_decoder.h"
#include "protocol/wire/line_encoder.h"
#include "tests/protocol/wire_transcripts.h"

namespace wire = sluice::protocol::wire;
using sluice::protocol::ErrorCode;

namespace {

std::string encode(const wire::ServerLine& line) {
    std::string out;
    wire::encode_line(out, line);
    return out;
}

wire::ServerLine decode_ok(const std::string& text) {
    auto line = wire::decode_line(text);
    INFO(text);
    REQUIRE(line.is_ok());
    return line.value();
}

}  // namespace

TEST_CASE("golden: every transcript line decodes and re-encodes byte for byte") {
    int lines = 0;
    for (const auto& name : sluice::test::transcript_names()) {
        for (const auto& text : sluice::test::read_transcript(name)) {
            INFO(name << ": " << text);
            const auto line = decode_ok(text);
            CHECK_FALSE(std::holds_alternative<wire::UnknownLine>(line));
            CHECK(encode(line) == text);
            ++lines;
        }
    }
    CHECK(lines == 29);
}

TEST_CASE("golden: DataLineWriter writes transcript data lines byte for byte") {
    int data_lines = 0;
    for (const auto& name : sluice::test::transcript_names()) {
        for (const auto& text : sluice::test::read_transcript(name)) {
            const auto line = decode_ok(text);
            const auto* data = std::get_if<wire::DataLine>(&line);
            if (data == nullptr) {
                continue;
            }
            std::string out = "prefix:";
            wire::DataLineWriter writer(out, data->bucket, *data->after, *data->has_more);
            for (const auto& op : data->data) {
                writer.add(wire::view_of(op));
            }
            writer.finish(*data->next_after);
            CHECK(writer.op_count() == data->data.size());
            CHECK(out == "prefix:" + text);
            ++data_lines;
        }
    }
    CHECK(data_lines == 11);
}

TEST_CASE("decoded transcript lines carry the values") {
    const auto lines = sluice::test::read_transcript("per-user-buckets-and-moves");
    const auto first = decode_ok(lines[0]);
    const auto& c = std::get<wire::Checkpoint>(first);
    CHECK(c.last_op_id == 900016);
    CHECK_FALSE(c.write_checkpoint);
    REQUIRE(c.buckets.size() == 2);
    CHECK(c.buckets[1].bucket == R"(2#by_owner["user-1"])");
    CHECK(c.buckets[0].checksum == static_cast<std::uint32_t>(-1411478824));
    CHECK(c.buckets[0].count == 300004);
    CHECK(c.buckets[1].subscriptions ==
          std::vector<wire::BucketSubscription>{{wire::BucketSubscription::Kind::kDefault, 1}});
    REQUIRE(c.streams);
    CHECK((*c.streams)[1].name == "by_owner");
    CHECK((*c.streams)[1].is_default);

    const auto remove = decode_ok(lines[4]);
    const auto& op = std::get<wire::DataLine>(remove).data.at(0);
    CHECK(op.op == wire::OpType::kRemove);
    CHECK(op.op_id == 900019);
    CHECK_FALSE(op.data);
}

TEST_CASE("lines the transcripts lack encode in the documented shapes") {
    wire::Checkpoint c;
    c.last_op_id = 18446744073709551615ULL;
    c.write_checkpoint = 5;
    c.buckets.push_back({"by_user[\"u\\1\"]", 0x80000000U, std::nullopt, 1, std::nullopt});
    c.streams = std::vector<wire::StreamInfo>{{"s", false, {{std::nullopt, "bad"}, {2, "unknown stream \"x\""}}}};
    CHECK(
        encode(c) ==
        R"({"checkpoint":{"last_op_id":"18446744073709551615","write_checkpoint":"5","buckets":[{"bucket":"by_user[\"u\\1\"]","checksum":-2147483648,"priority":1}],)"
        R"("streams":[{"name":"s","is_default":false,"errors":[{"subscription":"default","message":"bad"},{"subscription":2,"message":"unknown stream \"x\""}]}]}})");

    wire::CheckpointDiff d;
    d.last_op_id = 3;
    d.write_checkpoint = 5;
    d.removed_buckets = {R"(by_user["u2"])"};
    d.updated_buckets.push_back(
        {"global[]", 7, 2, 3, std::vector<wire::BucketSubscription>{{wire::BucketSubscription::Kind::kSub, 0}}});
    CHECK(
        encode(d) ==
        R"({"checkpoint_diff":{"last_op_id":"3","write_checkpoint":"5","removed_buckets":["by_user[\"u2\"]"],"updated_buckets":[{"bucket":"global[]","checksum":7,"count":2,"priority":3,"subscriptions":[{"sub":0}]}]}})");

    wire::DataLine data;
    data.bucket = "b[]";
    data.after = 0;
    data.has_more = true;
    data.next_after = 12;
    data.data.push_back({11, wire::OpType::kMove, std::nullopt, std::nullopt, 4294967295U, std::nullopt, std::nullopt});
    data.data.push_back({12, wire::OpType::kClear, std::nullopt, std::nullopt, 1, std::nullopt, std::nullopt});
    CHECK(
        encode(data) ==
        R"({"data":{"bucket":"b[]","after":"0","has_more":true,"data":[{"op_id":"11","op":"MOVE","checksum":4294967295,"data":null},{"op_id":"12","op":"CLEAR","checksum":1,"data":null}],"next_after":"12"}})");

    CHECK(encode(wire::PartialCheckpointComplete{3, 1}) ==
          R"({"partial_checkpoint_complete":{"last_op_id":"3","priority":1}})");
    CHECK(encode(wire::TokenExpiresIn{3560}) == R"({"token_expires_in":3560})");
    CHECK(encode(wire::TokenExpiresIn{0}) == R"({"token_expires_in":0})");
    CHECK(encode(wire::CheckpointComplete{2}) == R"({"checkpoint_complete":{"last_op_id":"2"}})");

    std::string err;
    wire::encode_error(err, sluice::protocol::Status{ErrorCode::kAuthExpired, "token expired at \"12:00\""}, 401);
    CHECK(err == R"({"error":{"code":"SL5103","status":401,"description":"token expired at \"12:00\""}})");

    // Each of these decodes back to the same struct and the same bytes.
    for (const wire::ServerLine& line :
         std::vector<wire::ServerLine>{c, d, data, wire::PartialCheckpointComplete{3, 1}, wire::TokenExpiresIn{0},
                                       wire::ErrorLine{"SL5103", 401, "x"}}) {
        const std::string text = encode(line);
        INFO(text);
        const auto back = decode_ok(text);
        CHECK(back == line);
        CHECK(encode(back) == text);
    }
}

TEST_CASE("the decoder is as lenient as the SDKs' parser") {
    // Unknown line types and unknown keys are ignored; a trailing newline is fine.
    CHECK(std::get<wire::UnknownLine>(decode_ok(R"({"future_line":{"x":1}})")).type == "future_line");
    CHECK(std::holds_alternative<wire::UnknownLine>(decode_ok("{}")));
    const auto cc = decode_ok("{\"x\":1,\"checkpoint_complete\":{\"last_op_id\":\"7\",\"extra\":[1]}}\r\n");
    CHECK(std::get<wire::CheckpointComplete>(cc).last_op_id == 7);
    // Checksums signed, unsigned or an integral float; op ids as numbers too.
    const auto data = decode_ok(
        R"({"data":{"bucket":"b","data":[{"op_id":1,"op":"PUT","checksum":-1,"object_type":"t","object_id":"i","data":{"id":"i","n":1.0}},{"op_id":"2","op":"MOVE","checksum":4294967295.0}]}})");
    const auto& ops = std::get<wire::DataLine>(data).data;
    CHECK(ops[0].checksum == 4294967295U);
    CHECK(ops[0].data == R"({"id":"i","n":1.0})");  // raw_data false: the row as an object
    CHECK(ops[1].checksum == 4294967295U);
    CHECK_FALSE(std::get<wire::DataLine>(data).after);
}

TEST_CASE("malformed lines give SL5006 naming the problem") {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"", "not valid JSON"},
        {"{\"checkpoint\":", "not valid JSON"},
        {"[1]", "not a JSON object"},
        {R"({"checkpoint":[]})", "checkpoint: the value is not an object"},
        {R"({"checkpoint":{"buckets":[]}})", "checkpoint: 'last_op_id' is missing"},
        {R"({"checkpoint":{"last_op_id":"1x","buckets":[]}})", "'last_op_id' is not an op id"},
        {R"({"checkpoint":{"last_op_id":"-1","buckets":[]}})", "'last_op_id' is not an op id"},
        {R"({"checkpoint":{"last_op_id":"1"}})", "'buckets' is missing or not an array"},
        {R"({"checkpoint":{"last_op_id":"1","buckets":[{"bucket":"b"}]}})", "'checksum' is missing"},
        {R"({"checkpoint":{"last_op_id":"1","buckets":[{"bucket":"b","checksum":4294967296}]}})",
         "not a 32-bit integer"},
        {R"({"checkpoint":{"last_op_id":"1","buckets":[{"bucket":"b","checksum":1.5}]}})", "not a 32-bit integer"},
        {R"({"checkpoint":{"last_op_id":"1","buckets":[{"bucket":"b","checksum":1,"subscriptions":[{"x":1}]}]}})",
         "neither 'default' nor 'sub'"},
        {R"({"checkpoint_diff":{"last_op_id":"1","updated_buckets":[]}})", "'removed_buckets' is missing"},
        {R"({"checkpoint_diff":{"last_op_id":"1","removed_buckets":[]}})", "'updated_buckets' is missing"},
        {R"({"checkpoint_diff":{"last_op_id":"1","removed_buckets":[1],"updated_buckets":[]}})", "not a string"},
        {R"({"data":{"data":[]}})", "data: 'bucket' is missing"},
        {R"({"data":{"bucket":"b"}})", "data: 'data' is missing"},
        {R"({"data":{"bucket":"b","data":[{"op":"PUT","checksum":1}]}})", "data op: 'op_id' is missing"},
        {R"({"data":{"bucket":"b","data":[{"op_id":"1","op":"UPSERT","checksum":1}]}})", "unknown op 'UPSERT'"},
        {R"({"data":{"bucket":"b","data":[{"op_id":"1","op":"PUT","checksum":1,"data":5}]}})", "'data' is neither"},
        {R"({"data":{"bucket":"b","data":[{"op_id":"1","op":"PUT","checksum":1,"subkey":5}]}})",
         "'subkey' is not a string"},
        {R"({"data":{"bucket":"b","has_more":"no","data":[]}})", "'has_more' is not a boolean"},
        {R"({"partial_checkpoint_complete":{"last_op_id":"1"}})", "'priority' is missing"},
        {R"({"token_expires_in":"soon"})", "token_expires_in: not an integer"},
        {R"({"error":{"status":401}})", "error: 'code' is missing"},
    };
    for (const auto& [text, expected] : cases) {
        INFO(text);
        auto line = wire::decode_line(text);
        REQUIRE_FALSE(line.is_ok());
        CHECK(line.status().code() == ErrorCode::kSyncLineMalformed);
        CHECK_THAT(line.status().message(), Catch::Matchers::Contains(expected));
    }
}
