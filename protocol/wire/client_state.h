// A pure model of what a PowerSync client holds: it applies server lines the way the SDKs do (ops
// per bucket, REMOVE/MOVE/CLEAR, checksum verification at checkpoint_complete, a bucket dropped for
// re-download on a mismatch) and exposes the rows the app would see. For tests and test clients.
// Semantics: protocol/README.md, "Client semantics".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/status.h"
#include "protocol/wire/lines.h"
#include "protocol/wire/request.h"

namespace sluice::protocol::wire {

class ClientState {
public:
    using RowId = std::pair<std::string, std::string>;  // (object_type, object_id)
    struct BucketRow {
        std::uint64_t op_id = 0;
        std::string data;
    };
    struct BucketState {
        std::uint64_t last_op_id = 0;  // highest op_id received: the `after` of the next request
        std::uint32_t checksum = 0;    // wrapping sum of the checksums of every op received
        std::int64_t op_count = 0;
        std::int32_t priority = 3;
        std::map<RowId, std::map<std::string, BucketRow>> rows;  // row -> subkey -> latest PUT
        std::set<RowId> dirty;  // rows changed since they were last applied to the tables
    };
    // What the last checkpoint_complete / partial_checkpoint_complete did.
    enum class Outcome : std::uint8_t {
        kNone,              // none seen yet
        kApplied,           // checksums matched; the tables now show the checkpoint
        kChecksumMismatch,  // some buckets did not match: they were dropped, the tables are unchanged
    };
    using Table = std::map<std::string, std::string>;  // object_id -> row JSON

    // Applies one line. kSyncLineUnexpected for lines out of order (data for a bucket that is not
    // in the current checkpoint, a diff or data before any checkpoint, a checkpoint_complete for
    // another checkpoint); kSyncLineMalformed for a PUT without object_type or object_id or data.
    // The state is unchanged by a line that gives an error.
    // An op at or below a bucket's last op_id is counted again, as a client that trusts the server
    // would: a server that resends ops shows up as a checksum mismatch.
    [[nodiscard]] Status apply(const ServerLine& line);
    // Decodes a line and applies it.
    [[nodiscard]] Status apply_line(std::string_view text);

    // Seeds a bucket as a persisted client would have it (no rows), e.g. to resume a transcript.
    void restore_bucket(const std::string& name, std::uint64_t last_op_id, std::uint32_t checksum,
                        std::int64_t op_count = 0);

    // The buckets held and their `after`, in name order, for the next sync request.
    [[nodiscard]] std::vector<BucketRequest> bucket_requests() const;

    // The rows the app sees: object_type -> object_id -> row JSON, as of the last applied checkpoint.
    [[nodiscard]] const std::map<std::string, Table>& tables() const { return m_tables; }
    [[nodiscard]] std::optional<std::string> row(std::string_view object_type, std::string_view object_id) const;
    [[nodiscard]] std::size_t row_count() const;

    [[nodiscard]] const std::map<std::string, BucketState>& buckets() const { return m_buckets; }
    [[nodiscard]] std::optional<std::uint64_t> applied_checkpoint() const { return m_applied_checkpoint; }
    [[nodiscard]] std::optional<std::uint64_t> write_checkpoint() const { return m_write_checkpoint; }
    [[nodiscard]] Outcome last_outcome() const { return m_last_outcome; }
    // Buckets dropped by the last completion with a checksum mismatch, and the count over all time.
    [[nodiscard]] const std::vector<std::string>& failed_buckets() const { return m_failed_buckets; }
    [[nodiscard]] std::uint64_t checksum_failures() const { return m_checksum_failures; }
    [[nodiscard]] std::optional<std::int64_t> token_expires_in() const { return m_token_expires_in; }
    [[nodiscard]] const std::optional<ErrorLine>& error() const { return m_error; }
    // True between a checkpoint (or diff) and its checkpoint_complete.
    [[nodiscard]] bool checkpoint_pending() const { return m_target && !m_target_complete; }

private:
    struct Target {
        std::uint64_t last_op_id = 0;
        std::optional<std::uint64_t> write_checkpoint;
        std::map<std::string, BucketChecksum> buckets;
    };

    Status on_checkpoint(const Checkpoint& c);
    Status on_diff(const CheckpointDiff& d);
    Status on_data(const DataLine& d);
    Status on_complete(std::uint64_t last_op_id, std::optional<std::int32_t> priority);
    void drop_bucket(const std::string& name);
    void apply_rows(const std::set<RowId>& rows);
    void set_target_buckets(const std::vector<BucketChecksum>& buckets);

    std::map<std::string, BucketState> m_buckets;
    std::set<RowId> m_orphan_dirty;  // rows of dropped buckets, applied at the next full completion
    std::optional<Target> m_target;
    bool m_target_complete = false;
    std::map<std::string, Table> m_tables;
    std::optional<std::uint64_t> m_applied_checkpoint;
    std::optional<std::uint64_t> m_write_checkpoint;
    Outcome m_last_outcome = Outcome::kNone;
    std::vector<std::string> m_failed_buckets;
    std::uint64_t m_checksum_failures = 0;
    std::optional<std::int64_t> m_token_expires_in;
    std::optional<ErrorLine> m_error;
};

}  // namespace sluice::protocol::wire
