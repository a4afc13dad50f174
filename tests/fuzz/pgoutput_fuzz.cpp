// Fuzz entry point for the pgoutput decoder: walsender framing, every message type in and out of a
// streamed block, and the text-value decoders. Any input must give a value or an error Status,
// never a crash, an over-read or a hang. Built with libFuzzer under clang (SLUICE_FUZZ=ON); replayed
// over the seed corpus (tests/data/pgoutput/corpus) by pgoutput_fuzz_replay under g++.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/pgoutput/decoder.h"
#include "protocol/pgoutput/describe.h"
#include "protocol/pgoutput/text_value.h"
#include "protocol/pgoutput/walsender.h"

namespace pg = sluice::protocol::pgoutput;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

void decode_both_ways(std::string_view payload) {
    for (const bool in_stream : {false, true}) {
        auto message = pg::decode_message(payload, {in_stream});
        if (message.is_ok()) {
            (void)pg::describe(message.value());
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);  // NOLINT: the fuzzer's bytes
    auto frame = pg::decode_copy_data(input);
    if (frame.is_ok()) {
        (void)pg::describe(frame.value());
        if (const auto* w = std::get_if<pg::XLogData>(&frame.value())) {
            decode_both_ways(w->payload);
        }
    }
    decode_both_ways(input);
    (void)pg::decode_standby_status(input);
    // Values: the input as the text form of a few types, and as an array literal.
    static const pg::TypeResolver kResolver = [](pg::Oid oid) -> std::optional<pg::TypeDescription> {
        if (oid == 90000) return pg::TypeDescription{pg::TypeDescription::Kind::kDomain, 90000};  // a cycle
        if (oid == 90001) return pg::TypeDescription{pg::TypeDescription::Kind::kArray, pg::oid::kJsonb};
        return std::nullopt;
    };
    for (const pg::Oid type : {pg::oid::kInt8, pg::oid::kFloat8, pg::oid::kBool, pg::oid::kBytea, 1007U, 1009U,
                               1022U, 1231U, 1020U, 90000U, 90001U}) {
        auto v = pg::decode_text_value(type, input, kResolver);
        if (v.is_ok()) {
            (void)pg::to_json(v.value());
        }
    }
    return 0;
}
