// Op and bucket checksums: the compat doc's example, and every checksum in the PowerSync transcripts
// recomputed (ops from their content, buckets as wrapping sums of the ops sent).
#include <map>

#include <catch2/catch.hpp>

#include "protocol/wire/checksum.h"
#include "protocol/wire/line_decoder.h"
#include "tests/protocol/wire_transcripts.h"

namespace wire = sluice::protocol::wire;

TEST_CASE("PUT checksum of the documented example") {
    CHECK(wire::put_checksum("test", "a", R"({"id":"a","description":"Test 1"})") == 2582164875U);
}

TEST_CASE("checksums print signed in checkpoints and unsigned in data lines") {
    CHECK(wire::checksum_to_signed(2582164875U) == -1712802421);
    CHECK(wire::checksum_from_signed(-1712802421) == 2582164875U);
    CHECK(wire::add_checksum(0xFFFFFFFFU, 2) == 1U);
}

TEST_CASE("every op checksum in the transcripts recomputes from the op") {
    int puts = 0;
    int removes = 0;
    for (const auto& name : sluice::test::transcript_names()) {
        for (const auto& text : sluice::test::read_transcript(name)) {
            auto line = wire::decode_line(text);
            REQUIRE(line.is_ok());
            const auto* data = std::get_if<wire::DataLine>(&line.value());
            if (data == nullptr) {
                continue;
            }
            for (const auto& op : data->data) {
                INFO(name << " op " << op.op_id);
                if (op.op == wire::OpType::kPut) {
                    CHECK(wire::put_checksum(*op.object_type, *op.object_id, *op.data) == op.checksum);
                    ++puts;
                } else {
                    REQUIRE(op.op == wire::OpType::kRemove);
                    CHECK(wire::remove_checksum(*op.subkey) == op.checksum);
                    ++removes;
                }
            }
        }
    }
    CHECK(puts == 15);
    CHECK(removes == 2);
}

// At every checkpoint_complete, each bucket's checksum in the latest checkpoint (or diff) is the
// wrapping sum of the ops sent for it so far, plus what the client started with when it resumed.
TEST_CASE("bucket checksums in the transcripts are the wrapping sums of their ops") {
    // What the client held before each transcript (see tests/data/protocol/README.md).
    const std::map<std::string, std::map<std::string, std::uint32_t>> kStart{
        {"initial-then-live", {}},
        {"resume-after-5", {{"1#global[]", wire::checksum_from_signed(821511555)}}},  // op 5's checkpoint
        {"per-user-buckets-and-moves", {{"2#global[]", wire::checksum_from_signed(-1411478824)}}},
    };
    for (const auto& name : sluice::test::transcript_names()) {
        std::map<std::string, std::uint32_t> held = kStart.at(name);  // bucket -> sum of ops held
        std::map<std::string, std::uint32_t> expected;                // bucket -> checksum to reach
        int checked = 0;
        for (const auto& text : sluice::test::read_transcript(name)) {
            auto line = wire::decode_line(text);
            REQUIRE(line.is_ok());
            if (const auto* c = std::get_if<wire::Checkpoint>(&line.value())) {
                expected.clear();
                for (const auto& b : c->buckets) {
                    expected[b.bucket] = b.checksum;
                }
            } else if (const auto* d = std::get_if<wire::CheckpointDiff>(&line.value())) {
                for (const auto& b : d->updated_buckets) {
                    expected[b.bucket] = b.checksum;
                }
            } else if (const auto* data = std::get_if<wire::DataLine>(&line.value())) {
                for (const auto& op : data->data) {
                    held[data->bucket] = wire::add_checksum(held[data->bucket], op.checksum);
                }
            } else if (std::holds_alternative<wire::CheckpointComplete>(line.value())) {
                for (const auto& [bucket, checksum] : expected) {
                    INFO(name << " bucket " << bucket << " at " << text);
                    CHECK(held[bucket] == checksum);
                    ++checked;
                }
            }
        }
        INFO(name);
        CHECK(checked > 0);
    }
}

TEST_CASE("the initial checkpoint's checksum is the sum of the first two ops") {
    // 3641870986 + 3293222510 = 6935093496 = 2640126200 mod 2^32 = -1654841096 signed.
    CHECK(wire::checksum_to_signed(wire::add_checksum(3641870986U, 3293222510U)) == -1654841096);
}
