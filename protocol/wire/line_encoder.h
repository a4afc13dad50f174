// Encoders for the server lines (lines.h), appending to a std::string with the exact field order
// and shapes of protocol/README.md ("Server lines"). No trailing newline: NDJSON callers add '\n',
// WebSocket callers send the text as one frame.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/status.h"
#include "protocol/wire/lines.h"

namespace sluice::protocol::wire {

void encode_checkpoint(std::string& out, const Checkpoint& checkpoint);
void encode_checkpoint_diff(std::string& out, const CheckpointDiff& diff);
void encode_data(std::string& out, const DataLine& line);
void encode_checkpoint_complete(std::string& out, std::uint64_t last_op_id);
void encode_partial_checkpoint_complete(std::string& out, std::uint64_t last_op_id, std::int32_t priority);
void encode_token_expires_in(std::string& out, std::int64_t seconds);
// {"error":{"code":"SL5103","status":401,"description":"..."}}
void encode_error(std::string& out, std::string_view code, std::int32_t http_status, std::string_view description);
void encode_error(std::string& out, const Status& status, std::int32_t http_status);
// Any line; an UnknownLine is written as {"<type>":null}.
void encode_line(std::string& out, const ServerLine& line);

// Writes one data line op by op, without building an OplogEntry vector: the server's hot path.
//   DataLineWriter w(out, bucket, after, has_more);  w.add(op) ...;  w.finish(next_after);
class DataLineWriter {
public:
    DataLineWriter(std::string& out, std::string_view bucket, std::uint64_t after, bool has_more);
    void add(const OplogEntryView& op);
    void finish(std::uint64_t next_after);
    [[nodiscard]] std::size_t op_count() const { return m_count; }

private:
    std::string& m_out;
    std::size_t m_count = 0;
};

// One op object: {"op_id":"1","op":"PUT","object_type":..,"object_id":..,"checksum":N,"subkey":..,"data":".."}.
// Absent object_type, object_id and subkey are left out; absent data is written as null.
void encode_op(std::string& out, const OplogEntryView& op);

}  // namespace sluice::protocol::wire
