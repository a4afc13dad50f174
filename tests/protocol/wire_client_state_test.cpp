// ClientState: the PowerSync transcripts applied as a client applies them (final rows, checksums,
// resume), and the client semantics the transcripts do not show (REMOVE across buckets, MOVE,
// CLEAR, partial checkpoints, checksum mismatch and re-download, lines out of order).
#include <catch2/catch.hpp>

#include "protocol/wire/checksum.h"
#include "protocol/wire/client_state.h"
#include "tests/protocol/wire_transcripts.h"

namespace wire = sluice::protocol::wire;
using sluice::protocol::ErrorCode;
using Outcome = wire::ClientState::Outcome;

namespace {

constexpr std::string_view kId1 = "00000000-0000-0000-0000-000000000001";
constexpr std::string_view kId2 = "00000000-0000-0000-0000-000000000002";
constexpr std::string_view kId3 = "00000000-0000-0000-0000-000000000003";
constexpr std::string_view kId6 = "00000000-0000-0000-0000-000000000006";

void apply_all(wire::ClientState& state, const std::vector<std::string>& lines, std::size_t from = 0,
               std::size_t to = SIZE_MAX) {
    for (std::size_t i = from; i < std::min(to, lines.size()); ++i) {
        INFO("line " << i << ": " << lines[i]);
        REQUIRE(state.apply_line(lines[i]).is_ok());
    }
}

std::string name_of(const std::optional<std::string>& row) {
    REQUIRE(row);
    const auto pos = row->find("\"name\":\"");
    REQUIRE(pos != std::string::npos);
    return row->substr(pos + 8, row->find('"', pos + 8) - pos - 8);
}

wire::OplogEntry put(std::uint64_t op_id, const std::string& id, const std::string& subkey = "s") {
    const std::string data = R"({"id":")" + id + R"("})";
    return {op_id, wire::OpType::kPut, "t", id, wire::put_checksum("t", id, data), subkey, data};
}

wire::OplogEntry remove(std::uint64_t op_id, const std::string& id, const std::string& subkey = "s") {
    return {op_id, wire::OpType::kRemove, "t", id, wire::remove_checksum(subkey), subkey, std::nullopt};
}

wire::DataLine data(const std::string& bucket, std::vector<wire::OplogEntry> ops) {
    wire::DataLine d;
    d.bucket = bucket;
    d.data = std::move(ops);
    return d;
}

std::uint32_t sum(const std::vector<wire::OplogEntry>& ops) {
    std::uint32_t s = 0;
    for (const auto& op : ops) {
        s = wire::add_checksum(s, op.checksum);
    }
    return s;
}

wire::BucketChecksum bucket(const std::string& name, std::uint32_t checksum, std::int32_t priority = 3) {
    return {name, checksum, std::nullopt, priority, std::nullopt};
}

}  // namespace

TEST_CASE("transcript: initial download then live changes") {
    const auto lines = sluice::test::read_transcript("initial-then-live");
    wire::ClientState state;
    apply_all(state, lines, 0, 2);
    CHECK(state.row_count() == 0);  // nothing visible before checkpoint_complete
    CHECK(state.checkpoint_pending());
    apply_all(state, lines, 2, 3);
    CHECK(state.applied_checkpoint() == 2U);
    CHECK(state.row_count() == 2);
    CHECK(name_of(state.row("lists", kId2)) == "Chores");

    apply_all(state, lines, 3);
    CHECK(state.last_outcome() == Outcome::kApplied);
    CHECK(state.checksum_failures() == 0);
    CHECK(state.applied_checkpoint() == 8U);
    CHECK_FALSE(state.write_checkpoint());
    CHECK(state.row_count() == 4);
    CHECK(name_of(state.row("lists", kId1)) == "Groceries (updated)");
    CHECK_FALSE(state.row("lists", kId2));  // deleted
    CHECK(name_of(state.row("lists", kId3)) == "Work2");
    CHECK(name_of(state.row("lists", "00000000-0000-0000-0000-000000000004")) == "Tx-A");
    const auto& b = state.buckets().at("1#global[]");
    CHECK(b.last_op_id == 8);
    CHECK(b.op_count == 8);
    CHECK(wire::checksum_to_signed(b.checksum) == 2121237146);
    CHECK(state.bucket_requests() == std::vector<wire::BucketRequest>{{"1#global[]", 8}});
}

TEST_CASE("transcript: a client holding ops up to 5 resumes and ends where a full download ends") {
    const auto initial = sluice::test::read_transcript("initial-then-live");
    wire::ClientState full;
    apply_all(full, initial);

    wire::ClientState resumed;
    apply_all(resumed, initial, 0, 12);  // through {"checkpoint_complete":{"last_op_id":"5"}}
    REQUIRE(resumed.applied_checkpoint() == 5U);
    // What the transcript's request said.
    CHECK(resumed.bucket_requests() == std::vector<wire::BucketRequest>{{"1#global[]", 5}});
    apply_all(resumed, sluice::test::read_transcript("resume-after-5"));
    CHECK(resumed.last_outcome() == Outcome::kApplied);
    CHECK(resumed.applied_checkpoint() == 8U);
    CHECK(resumed.tables() == full.tables());
    CHECK(resumed.buckets().at("1#global[]").checksum == full.buckets().at("1#global[]").checksum);
}

TEST_CASE("transcript: per-user buckets, a row moving out of one bucket, a row in two buckets") {
    wire::ClientState state;
    // The client already held the global bucket up to its latest op (its rows are not in the transcript).
    state.restore_bucket("2#global[]", 900016, wire::checksum_from_signed(-1411478824), 300004);
    apply_all(state, sluice::test::read_transcript("per-user-buckets-and-moves"));
    CHECK(state.last_outcome() == Outcome::kApplied);
    CHECK(state.checksum_failures() == 0);
    CHECK(state.applied_checkpoint() == 900021U);
    CHECK(wire::checksum_to_signed(state.buckets().at(R"(2#by_owner["user-1"])").checksum) == -2133217540);
    CHECK(wire::checksum_to_signed(state.buckets().at("2#global[]").checksum) == -264991370);
    CHECK(state.bucket_requests() ==
          std::vector<wire::BucketRequest>{{R"(2#by_owner["user-1"])", 900021}, {"2#global[]", 900020}});
    // ...0003 left by_owner but is still in global, with global's (newer) row.
    REQUIRE(state.row("lists", kId3));
    CHECK(state.row("lists", kId3)->find(R"("owner_id":"user-2")") != std::string::npos);
    CHECK_FALSE(state.buckets().at(R"(2#by_owner["user-1"])").rows.count({"lists", std::string(kId3)}));
    // ...0006 is in both: the newest op (900021, by_owner's projection) wins.
    CHECK(*state.row("lists", kId6) == R"({"id":"00000000-0000-0000-0000-000000000006","name":"New for user-1"})");
    CHECK(name_of(state.row("lists", kId1)) == "Groceries (updated)");
    CHECK(state.row_count() == 3);
}

TEST_CASE("a corrupted op makes the bucket fail its checksum, it is dropped and downloads again") {
    auto lines = sluice::test::read_transcript("initial-then-live");
    std::string corrupt = lines[1];
    const auto pos = corrupt.find("3293222510");
    REQUIRE(pos != std::string::npos);
    corrupt.replace(pos, 10, "3293222511");

    wire::ClientState state;
    REQUIRE(state.apply_line(lines[0]).is_ok());
    REQUIRE(state.apply_line(corrupt).is_ok());
    REQUIRE(state.apply_line(lines[2]).is_ok());
    CHECK(state.last_outcome() == Outcome::kChecksumMismatch);
    CHECK(state.failed_buckets() == std::vector<std::string>{"1#global[]"});
    CHECK(state.checksum_failures() == 1);
    CHECK(state.row_count() == 0);  // nothing applied
    CHECK_FALSE(state.applied_checkpoint());
    CHECK(state.bucket_requests().empty());  // the next request downloads it from 0

    apply_all(state, lines, 0, 3);  // the reconnect
    CHECK(state.last_outcome() == Outcome::kApplied);
    CHECK(state.row_count() == 2);
}

TEST_CASE("a checksum mismatch keeps the rows the app already saw until the bucket re-downloads") {
    wire::ClientState state;
    const auto ops = std::vector{put(1, "x")};
    REQUIRE(state.apply(wire::Checkpoint{1, std::nullopt, {bucket("a[]", sum(ops))}, std::nullopt}).is_ok());
    REQUIRE(state.apply(data("a[]", ops)).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{1}).is_ok());
    REQUIRE(state.row("t", "x"));
    const auto more = std::vector{put(2, "y")};
    REQUIRE(state.apply(wire::CheckpointDiff{2, std::nullopt, {}, {bucket("a[]", sum(ops) + sum(more) + 1)}}).is_ok());
    REQUIRE(state.apply(data("a[]", more)).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{2}).is_ok());
    CHECK(state.last_outcome() == Outcome::kChecksumMismatch);
    CHECK(state.row("t", "x"));
    CHECK_FALSE(state.row("t", "y"));
    CHECK(state.applied_checkpoint() == 1U);
}

TEST_CASE("REMOVE takes a row out of one bucket, the row goes when no bucket holds it") {
    wire::ClientState state;
    const auto a1 = std::vector{put(1, "x", "sa")};
    const auto b1 = std::vector{put(2, "x", "sb")};
    REQUIRE(
        state.apply(wire::Checkpoint{2, std::nullopt, {bucket("a[]", sum(a1)), bucket("b[]", sum(b1))}, std::nullopt})
            .is_ok());
    REQUIRE(state.apply(data("a[]", a1)).is_ok());
    REQUIRE(state.apply(data("b[]", b1)).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{2}).is_ok());
    CHECK(state.row("t", "x"));

    const auto a2 = std::vector{remove(3, "x", "sa")};
    REQUIRE(state.apply(wire::CheckpointDiff{3, std::nullopt, {}, {bucket("a[]", sum(a1) + sum(a2))}}).is_ok());
    REQUIRE(state.apply(data("a[]", a2)).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{3}).is_ok());
    CHECK(state.last_outcome() == Outcome::kApplied);
    CHECK(state.row("t", "x"));  // b[] still holds it

    const auto b2 = std::vector{remove(4, "x", "sb")};
    REQUIRE(state.apply(wire::CheckpointDiff{4, 9, {}, {bucket("b[]", sum(b1) + sum(b2))}}).is_ok());
    REQUIRE(state.apply(data("b[]", b2)).is_ok());
    CHECK(state.row("t", "x"));  // not before checkpoint_complete
    CHECK(state.write_checkpoint() == std::nullopt);
    REQUIRE(state.apply(wire::CheckpointComplete{4}).is_ok());
    CHECK_FALSE(state.row("t", "x"));
    CHECK(state.write_checkpoint() == 9U);
}

TEST_CASE("MOVE only counts its checksum, CLEAR drops everything before it") {
    wire::ClientState state;
    std::vector<wire::OplogEntry> ops{put(1, "x"), put(2, "y")};
    wire::OplogEntry move{3, wire::OpType::kMove, std::nullopt, std::nullopt, 12345, std::nullopt, std::nullopt};
    ops.push_back(move);
    REQUIRE(state.apply(wire::Checkpoint{3, std::nullopt, {bucket("a[]", sum(ops))}, std::nullopt}).is_ok());
    REQUIRE(state.apply(data("a[]", ops)).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{3}).is_ok());
    CHECK(state.last_outcome() == Outcome::kApplied);
    CHECK(state.row_count() == 2);

    // A compacted bucket: CLEAR carries the checksum of what it replaced, then the live ops.
    wire::OplogEntry clear{4, wire::OpType::kClear, std::nullopt, std::nullopt, 777, std::nullopt, std::nullopt};
    const std::vector<wire::OplogEntry> after{clear, put(5, "z")};
    REQUIRE(
        state.apply(wire::Checkpoint{5, std::nullopt, {bucket("a[]", 777 + after[1].checksum)}, std::nullopt}).is_ok());
    REQUIRE(state.apply(data("a[]", after)).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{5}).is_ok());
    CHECK(state.last_outcome() == Outcome::kApplied);
    CHECK_FALSE(state.row("t", "x"));
    CHECK_FALSE(state.row("t", "y"));
    CHECK(state.row("t", "z"));
    CHECK(state.buckets().at("a[]").op_count == 2);
}

TEST_CASE("partial_checkpoint_complete applies the high-priority buckets first") {
    wire::ClientState state;
    const auto hi = std::vector{put(1, "h")};
    const auto lo = std::vector{put(2, "l")};
    REQUIRE(state
                .apply(wire::Checkpoint{
                    2, std::nullopt, {bucket("hi[]", sum(hi), 1), bucket("lo[]", sum(lo), 3)}, std::nullopt})
                .is_ok());
    REQUIRE(state.apply(data("hi[]", hi)).is_ok());
    REQUIRE(state.apply(wire::PartialCheckpointComplete{2, 1}).is_ok());
    CHECK(state.last_outcome() == Outcome::kApplied);
    CHECK(state.row("t", "h"));
    CHECK_FALSE(state.row("t", "l"));
    CHECK_FALSE(state.applied_checkpoint());
    REQUIRE(state.apply(data("lo[]", lo)).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{2}).is_ok());
    CHECK(state.row("t", "l"));
    CHECK(state.applied_checkpoint() == 2U);
}

TEST_CASE("buckets left out of a new checkpoint or removed by a diff disappear with their rows") {
    wire::ClientState state;
    const auto a = std::vector{put(1, "x")};
    const auto b = std::vector{put(2, "y")};
    REQUIRE(state.apply(wire::Checkpoint{2, std::nullopt, {bucket("a[]", sum(a)), bucket("b[]", sum(b))}, std::nullopt})
                .is_ok());
    REQUIRE(state.apply(data("a[]", a)).is_ok());
    REQUIRE(state.apply(data("b[]", b)).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{2}).is_ok());
    REQUIRE(state.row_count() == 2);

    REQUIRE(state.apply(wire::CheckpointDiff{3, std::nullopt, {"b[]"}, {}}).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{3}).is_ok());
    CHECK(state.row("t", "x"));
    CHECK_FALSE(state.row("t", "y"));

    REQUIRE(state.apply(wire::Checkpoint{4, std::nullopt, {}, std::nullopt}).is_ok());
    REQUIRE(state.apply(wire::CheckpointComplete{4}).is_ok());
    CHECK(state.row_count() == 0);
    CHECK(state.buckets().empty());
}

TEST_CASE("lines out of order are errors and change nothing") {
    wire::ClientState state;
    CHECK(state.apply(data("a[]", {put(1, "x")})).code() == ErrorCode::kSyncLineUnexpected);
    CHECK(state.apply(wire::CheckpointDiff{1, std::nullopt, {}, {}}).code() == ErrorCode::kSyncLineUnexpected);
    CHECK(state.apply(wire::CheckpointComplete{1}).code() == ErrorCode::kSyncLineUnexpected);
    REQUIRE(state.apply(wire::Checkpoint{1, std::nullopt, {bucket("a[]", 0)}, std::nullopt}).is_ok());
    CHECK(state.apply(data("other[]", {put(1, "x")})).code() == ErrorCode::kSyncLineUnexpected);
    CHECK(state.apply(wire::CheckpointComplete{2}).code() == ErrorCode::kSyncLineUnexpected);
    auto no_data = put(1, "x");
    no_data.data.reset();
    CHECK(state.apply(data("a[]", {put(1, "y"), no_data})).code() == ErrorCode::kSyncLineMalformed);
    CHECK(state.buckets().empty());
    CHECK(state.apply_line("{not json").code() == ErrorCode::kSyncLineMalformed);
    REQUIRE(state.apply_line(R"({"token_expires_in":0})").is_ok());
    CHECK(state.token_expires_in() == 0);
    REQUIRE(state.apply_line(R"({"error":{"code":"SL5103","status":401,"description":"expired"}})").is_ok());
    REQUIRE(state.error());
    CHECK(state.error()->code == "SL5103");
    REQUIRE(state.apply_line(R"({"something_new":{}})").is_ok());
}
