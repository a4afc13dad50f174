// Micro-benchmark of the wire protocol's hot path: encoding 1,000-op data lines (~100-byte rows)
// with DataLineWriter, plus the struct encoder, the line decoder and op checksums for comparison.
// Prints ops/s and MB/s of line text. Usage: wire_encode_bench [seconds per figure, default 1].
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "protocol/wire/checksum.h"
#include "protocol/wire/line_decoder.h"
#include "protocol/wire/line_encoder.h"

namespace wire = sluice::protocol::wire;

namespace {

constexpr int kOpsPerLine = 1000;

struct Op {
    std::string object_id;
    std::string subkey;
    std::string data;
};

std::vector<Op> make_ops() {
    std::vector<Op> ops;
    ops.reserve(kOpsPerLine);
    for (int i = 0; i < kOpsPerLine; ++i) {
        Op op;
        op.object_id = fmt::format("00000000-0000-0000-0000-{:012}", i);
        op.subkey = fmt::format("7659ac38-dbc1-4dcd-bb30-1ccf8f73c6f7/{:036}", i);
        // ~100 bytes of row JSON, whose quotes the encoder escapes.
        op.data = fmt::format(R"({{"id":"{}","name":"List {}","owner_id":"user-{}","done":{}}})", op.object_id, i,
                              i % 97, i % 2);
        ops.push_back(std::move(op));
    }
    return ops;
}

wire::OplogEntryView view(const Op& op, std::uint64_t op_id) {
    wire::OplogEntryView v;
    v.op_id = op_id;
    v.op = wire::OpType::kPut;
    v.object_type = "lists";
    v.object_id = op.object_id;
    v.checksum = 3641870986U;
    v.subkey = op.subkey;
    v.data = op.data;
    return v;
}

// Runs `body` (which handles kOpsPerLine ops and returns the bytes it produced or read) for about
// `seconds` and prints the rates.
template <typename Body>
void measure(const char* name, double seconds, Body body) {
    using Clock = std::chrono::steady_clock;
    std::size_t bytes = 0;
    std::size_t lines = 0;
    const auto start = Clock::now();
    double elapsed = 0;
    do {
        for (int i = 0; i < 10; ++i) {
            bytes += body();
            ++lines;
        }
        elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < seconds);
    const double ops = static_cast<double>(lines) * kOpsPerLine;
    fmt::print("{:<44} {:>12.0f} ops/s {:>9.1f} MB/s  ({} lines of {} ops, {:.0f} bytes/line)\n", name, ops / elapsed,
               static_cast<double>(bytes) / elapsed / 1e6, lines, kOpsPerLine,
               static_cast<double>(bytes) / static_cast<double>(lines));
}

}  // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
    const auto ops = make_ops();
    std::string out;
    std::uint64_t base = 900000;

    measure("encode data line (DataLineWriter)", seconds, [&] {
        out.clear();  // keeps its capacity: no allocation after the first line
        wire::DataLineWriter writer(out, R"(2#by_owner["user-1"])", base, false);
        for (int i = 0; i < kOpsPerLine; ++i) {
            writer.add(view(ops[static_cast<std::size_t>(i)], base + static_cast<std::uint64_t>(i) + 1));
        }
        writer.finish(base + kOpsPerLine);
        out.push_back('\n');
        base += kOpsPerLine;
        return out.size();
    });

    wire::DataLine line;
    line.bucket = R"(2#by_owner["user-1"])";
    line.after = 0;
    line.has_more = false;
    line.next_after = kOpsPerLine;
    for (int i = 0; i < kOpsPerLine; ++i) {
        const auto& op = ops[static_cast<std::size_t>(i)];
        line.data.push_back({static_cast<std::uint64_t>(i) + 1, wire::OpType::kPut, "lists", op.object_id, 3641870986U,
                             op.subkey, op.data});
    }
    measure("encode data line (DataLine struct)", seconds, [&] {
        out.clear();
        wire::encode_data(out, line);
        return out.size();
    });

    std::string text;
    wire::encode_data(text, line);
    measure("decode data line (client side)", seconds, [&] {
        auto decoded = wire::decode_line(text);
        if (!decoded.is_ok()) {
            std::abort();
        }
        return text.size();
    });

    std::uint32_t sink = 0;
    measure("PUT checksums (sha256 per op)", seconds, [&] {
        std::size_t bytes = 0;
        for (const auto& op : ops) {
            sink += wire::put_checksum("lists", op.object_id, op.data);
            bytes += op.data.size();
        }
        return bytes;
    });
    std::printf("(checksum sink %u)\n", sink);
    return 0;
}
