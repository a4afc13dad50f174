// Fuzz entry point for the wire protocol's parsers of untrusted input: the sync request, WebSocket
// client messages, upload batches, server lines (client side, with ClientState) and bucket ids. Any input must give
// a value or an error Status, never a crash or a hang; a line that decodes must re-encode to text
// that decodes to the same struct. libFuzzer under clang (SLUICE_FUZZ=ON); replayed over
// tests/data/protocol/fuzz-corpus by wire_fuzz_replay under g++.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/wire/bucket_id.h"
#include "protocol/wire/client_message.h"
#include "protocol/wire/client_state.h"
#include "protocol/wire/line_decoder.h"
#include "protocol/wire/line_encoder.h"
#include "protocol/wire/request.h"
#include "protocol/wire/upload.h"

namespace wire = sluice::protocol::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);  // NOLINT

    if (auto request = wire::parse_sync_request(input, 1 << 20); request.is_ok()) {
        std::string text;
        wire::encode_sync_request(text, request.value());
        auto again = wire::parse_sync_request(text, text.size());
        if (!again.is_ok() || !(again.value() == request.value())) {
            std::abort();  // the encoder wrote something the parser reads differently
        }
    }
    (void)wire::parse_client_message(input, 1 << 20);
    (void)wire::parse_upload_request(input, {1 << 20, 1000});
    (void)wire::parse_crud_ops(input, 1000);
    (void)wire::parse_checkpoint_request(input, 1 << 20);
    if (auto result = wire::decode_upload_result(input); result.is_ok()) {
        std::string text;
        wire::encode_upload_result(text, result.value());
        auto again = wire::decode_upload_result(text);
        if (!again.is_ok() || !(again.value() == result.value())) {
            std::abort();
        }
    }

    if (auto line = wire::decode_line(input); line.is_ok()) {
        std::string text;
        wire::encode_line(text, line.value());
        auto again = wire::decode_line(text);
        if (!again.is_ok() || !(again.value() == line.value())) {
            std::abort();
        }
        wire::ClientState state;
        (void)state.apply(line.value());
        (void)state.apply(line.value());
    }

    if (auto id = wire::parse_bucket_id(input); id.is_ok()) {
        (void)wire::format_bucket_id(id.value());
    }
    return 0;
}
