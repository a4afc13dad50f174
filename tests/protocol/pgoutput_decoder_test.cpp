// pgoutput decoder and walsender framing on hand-built and mutilated input: exact fields, and a
// clear error (never a crash or an over-read) for every truncation, trailing byte and bad tag.
#include <catch2/catch.hpp>

#include "protocol/pgoutput/decoder.h"
#include "protocol/pgoutput/describe.h"
#include "protocol/pgoutput/walsender.h"
#include "tests/protocol/pgoutput_corpus.h"

namespace pg = sluice::protocol::pgoutput;
using sluice::protocol::ErrorCode;
using sluice::protocol::Lsn;

namespace {

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (const int v : values) {
        out.push_back(static_cast<char>(v));
    }
    return out;
}

std::string u32(std::uint32_t v) { return bytes({int(v >> 24U), int((v >> 16U) & 0xFFU), int((v >> 8U) & 0xFFU), int(v & 0xFFU)}); }
std::string u64(std::uint64_t v) { return u32(static_cast<std::uint32_t>(v >> 32U)) + u32(static_cast<std::uint32_t>(v)); }
std::string cstr(const std::string& s) { return s + std::string(1, '\0'); }

}  // namespace

TEST_CASE("Begin and Commit fields") {
    auto begin = pg::decode_message("B" + u64(0x1'0000'0010) + u64(42) + u32(7));
    REQUIRE(begin.is_ok());
    CHECK(std::get<pg::Begin>(*begin) == pg::Begin{Lsn(0x1'0000'0010), 42, 7});

    auto commit = pg::decode_message("C" + bytes({0}) + u64(16) + u64(24) + u64(99));
    REQUIRE(commit.is_ok());
    CHECK(std::get<pg::Commit>(*commit) == pg::Commit{0, Lsn(16), Lsn(24), 99});
}

TEST_CASE("Relation with key flags, and Update with a key tuple") {
    const auto rel = "R" + u32(5) + cstr("") + cstr("t") + "f" + bytes({0, 2}) + bytes({1}) + cstr("id") + u32(23) +
                     u32(0xFFFFFFFF) + bytes({0}) + cstr("v") + u32(25) + u32(0xFFFFFFFF);
    auto r = pg::decode_message(rel);
    REQUIRE(r.is_ok());
    const auto& relation = std::get<pg::Relation>(*r);
    CHECK(relation.identity == pg::ReplicaIdentity::kFull);
    REQUIRE(relation.columns.size() == 2);
    CHECK(relation.columns[0] == pg::Column{true, "id", 23, -1});
    CHECK_FALSE(relation.columns[1].is_key);

    const auto update = "U" + u32(5) + "K" + bytes({0, 2}) + "t" + u32(1) + "1" + "n" + "N" + bytes({0, 2}) + "t" +
                        u32(1) + "2" + "u";
    auto u = pg::decode_message(update);
    REQUIRE(u.is_ok());
    const auto& m = std::get<pg::Update>(*u);
    CHECK(m.old_kind == pg::OldTupleKind::kKey);
    CHECK(m.old_tuple == pg::Tuple{{pg::DatumKind::kText, "1"}, {pg::DatumKind::kNull, ""}});
    CHECK(m.new_tuple == pg::Tuple{{pg::DatumKind::kText, "2"}, {pg::DatumKind::kUnchangedToast, ""}});
}

TEST_CASE("binary datums, Truncate options, logical messages, stream messages") {
    auto ins = pg::decode_message("I" + u32(5) + "N" + bytes({0, 1}) + "b" + u32(2) + bytes({0, 255}));
    REQUIRE(ins.is_ok());
    CHECK(std::get<pg::Insert>(*ins).new_tuple[0] == pg::Datum{pg::DatumKind::kBinary, bytes({0, 255})});

    auto tr = pg::decode_message("T" + u32(2) + bytes({3}) + u32(10) + u32(11));
    REQUIRE(tr.is_ok());
    CHECK(std::get<pg::Truncate>(*tr) == pg::Truncate{std::nullopt, 3, {10, 11}});

    auto msg = pg::decode_message("M" + bytes({1}) + u64(77) + cstr("p") + u32(3) + bytes({'a', 0, 'b'}));
    REQUIRE(msg.is_ok());
    CHECK(std::get<pg::LogicalMessage>(*msg) ==
          pg::LogicalMessage{std::nullopt, true, Lsn(77), "p", bytes({'a', 0, 'b'})});

    pg::Decoder decoder;
    REQUIRE(decoder.decode("S" + u32(9) + bytes({1})).is_ok());
    CHECK(decoder.in_stream());
    auto streamed = decoder.decode("I" + u32(9) + u32(5) + "N" + bytes({0, 0}));
    REQUIRE(streamed.is_ok());
    CHECK(std::get<pg::Insert>(*streamed).xid == 9U);
    REQUIRE(decoder.decode("E").is_ok());
    CHECK_FALSE(decoder.in_stream());
    auto abort = pg::decode_message("A" + u32(9) + u32(10));
    REQUIRE(abort.is_ok());
    CHECK(std::get<pg::StreamAbort>(*abort) == pg::StreamAbort{9, 10});
}

TEST_CASE("malformed messages give kPgoutputMalformed with the field") {
    auto empty = pg::decode_message("");
    CHECK(empty.status().code() == ErrorCode::kPgoutputMalformed);

    auto truncated = pg::decode_message("B" + u64(1));
    REQUIRE_FALSE(truncated.is_ok());
    CHECK(truncated.status().code() == ErrorCode::kPgoutputMalformed);
    CHECK(truncated.status().message() ==
          "malformed pgoutput Begin message (9 bytes): commit timestamp at byte 9: truncated: need 8 byte(s), 0 left");

    auto trailing = pg::decode_message("E" + bytes({0}));
    CHECK(trailing.status().message().find("1 unexpected trailing byte(s)") != std::string::npos);

    auto bad_kind = pg::decode_message("I" + u32(5) + "N" + bytes({0, 1}) + "x");
    CHECK(bad_kind.status().message().find("unknown kind byte 0x78") != std::string::npos);

    auto negative = pg::decode_message("I" + u32(5) + "N" + bytes({0, 1}) + "t" + u32(0xFFFFFFFF));
    CHECK(negative.status().message().find("negative length -1") != std::string::npos);

    auto huge = pg::decode_message("I" + u32(5) + "N" + bytes({0, 1}) + "t" + u32(0x7FFFFFFF) + "abc");
    CHECK(huge.status().code() == ErrorCode::kPgoutputMalformed);

    auto huge_truncate = pg::decode_message("T" + u32(0x7FFFFFFF) + bytes({0}) + u32(1));
    CHECK(huge_truncate.status().code() == ErrorCode::kPgoutputMalformed);

    auto no_nul = pg::decode_message("O" + u64(1) + "name");
    CHECK(no_nul.status().message().find("no terminating NUL byte") != std::string::npos);

    auto two_phase = pg::decode_message("P" + u64(1));
    CHECK(two_phase.status().code() == ErrorCode::kPgoutputUnsupported);
}

TEST_CASE("every truncation of every captured message is an error, never a crash") {
    for (const auto* name : {"changes", "values", "stream"}) {
        pg::Decoder decoder;
        for (const auto& frame : sluice::test::read_frames(name)) {
            auto copy = pg::decode_copy_data(frame);
            REQUIRE(copy.is_ok());
            for (std::size_t cut = 0; cut < frame.size(); ++cut) {
                CHECK_FALSE(pg::decode_copy_data(frame.substr(0, std::min<std::size_t>(cut, 24))).is_ok());
            }
            const auto* w = std::get_if<pg::XLogData>(&copy.value());
            if (w == nullptr) {
                continue;
            }
            const bool in_stream = decoder.in_stream();
            REQUIRE(decoder.decode(w->payload).is_ok());
            const auto step = w->payload.size() > 400 ? 7 : 1;
            for (std::size_t cut = 0; cut < w->payload.size(); cut += step) {
                auto r = pg::decode_message(w->payload.substr(0, cut), {in_stream});
                REQUIRE_FALSE(r.is_ok());
            }
            CHECK_FALSE(pg::decode_message(std::string(w->payload) + "z", {in_stream}).is_ok());
        }
    }
}

TEST_CASE("walsender frames and the standby status update") {
    auto k = pg::decode_copy_data("k" + u64(0x20) + u64(5) + bytes({1}));
    REQUIRE(k.is_ok());
    CHECK(std::get<pg::PrimaryKeepalive>(*k) == pg::PrimaryKeepalive{Lsn(0x20), 5, true});

    const std::string frame = "w" + u64(1) + u64(2) + u64(3) + "E";  // the payload is a view into the frame
    auto w = pg::decode_copy_data(frame);
    REQUIRE(w.is_ok());
    CHECK(std::get<pg::XLogData>(*w).payload == "E");

    CHECK(pg::decode_copy_data("q").status().code() == ErrorCode::kPgoutputUnsupported);
    CHECK(pg::decode_copy_data("k" + u64(1)).status().code() == ErrorCode::kPgoutputMalformed);

    const pg::StandbyStatusUpdate update{Lsn(1), Lsn(0x1'0000'0002), Lsn(3), 4, true};
    const auto encoded = pg::encode_standby_status(update);
    CHECK(encoded == "r" + u64(1) + u64(0x1'0000'0002) + u64(3) + u64(4) + bytes({1}));
    auto decoded = pg::decode_standby_status(encoded);
    REQUIRE(decoded.is_ok());
    CHECK(*decoded == update);
}
