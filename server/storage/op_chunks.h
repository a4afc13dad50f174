// The op log's stored form (migrations/0007_op_chunks.sql): each bucket's ops in chunks, one row
// of sluice.op_chunks per chunk, its ops as one JSON array of
//   [op_id, op, object_type, object_id, subkey, data, checksum]
// (data a JSON string, or null for all but PUT; CLEAR ops have null for the three names too).
//
// Why chunks: one row and one index entry per op made the primary key the writer's largest cost.
// Ops arrive in op_id order across all buckets, so each insert went to a random leaf of the
// (bucket, op_id) index: COPY of 800,000 ops took 4.1-5.5 s, 1.6 s of it without the index. As
// chunks of at most kOpChunkBytes the same ops took 0.96 s, and 30% less space. A chunk stays under
// the size at which Postgres compresses or moves a value out of line (about 2 KB per row).
//
// A writer starts a chunk per bucket per storage write, so chunks never span two writes; a chunk
// may span several checkpoints (many small source transactions share one write). Chunks are keyed
// by (bucket, last_op_id); first_op_id, op_count and checksum (the unwrapped sum of the ops'
// checksums) let readers skip or total a chunk without decoding it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.h"

namespace sluice::storage {

class CopyRows;

struct StoredOp {
    std::int64_t op_id = 0;
    int op = 0;  // 1 PUT, 2 REMOVE, 3 MOVE, 4 CLEAR
    std::string object_type;
    std::string object_id;
    std::string subkey;
    std::optional<std::string> data;
    std::uint32_t checksum = 0;
};

// A chunk's ops text stays within this many bytes (unless one op alone is larger): with the rest of
// the row, under the ~2 KB at which Postgres compresses a row (which cost more than the index did).
inline constexpr std::size_t kOpChunkBytes = 1800;

// One bucket's open chunk while a storage write collects its ops. Chunks go out as sluice.op_chunks
// rows (bucket, first_op_id, last_op_id, op_count, checksum, ops).
class OpChunkBuilder {
public:
    // Adds an op; first writes the open chunk to `rows` if the op would not fit in it.
    void add(CopyRows& rows, std::string_view bucket, std::int64_t op_id, int op, std::string_view object_type,
             std::string_view object_id, std::string_view subkey, const std::optional<std::string>& data,
             std::uint32_t checksum);
    // Writes the open chunk, if any, to `rows` and starts an empty one.
    void take(CopyRows& rows, std::string_view bucket);

private:
    std::string m_ops;  // '[' and the elements so far, comma-separated
    std::string m_op;   // the op being added
    std::int64_t m_first = 0;
    std::int64_t m_last = 0;
    std::int64_t m_count = 0;
    std::int64_t m_checksum = 0;
};

// A chunk's ops text for these ops.
[[nodiscard]] std::string encode_op_chunk(std::span<const StoredOp> ops);

// The ops of one chunk's ops text, in stored order (op_id order). Accepts any JSON spacing and
// escaping (the compactor rewrites chunks with Postgres's JSON functions).
[[nodiscard]] protocol::Result<std::vector<StoredOp>> decode_op_chunk(std::string_view text);

}  // namespace sluice::storage
