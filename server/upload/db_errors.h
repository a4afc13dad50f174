// Classification of Postgres errors met while applying an upload, in one place (house-style.md):
// what the uploader does about each one. Constraint, data and permission errors reject the client's
// operation with an SL6xxx code; deadlocks, serialization failures and lost connections are retried
// (the batch's transaction was rolled back, or, for a connection lost during COMMIT, the record of
// the batch says whether it committed); a changed table reloads the catalog; the rest escalates.
#pragma once

#include <exception>
#include <string>
#include <string_view>

#include "protocol/error_codes.h"

namespace sluice::upload {

enum class DbAction {
    kReject,        // the op is refused with `code` (when raised by the op's own statements)
    kRetry,         // run the batch again (deadlock, serialization failure, lock or statement timeout)
    kReconnect,     // the connection is gone: open a new one, then run the batch again
    kStaleCatalog,  // a table or column changed under us: forget cached table shapes, run again
    kEscalate,      // not the client's fault and not transient: report an error, record nothing
};

struct DbError {
    DbAction action = DbAction::kEscalate;
    protocol::ErrorCode code = protocol::ErrorCode::kInternal;  // kReject: the op's code
    std::string message;                                        // the database's primary message
};

// By SQLSTATE (5 characters); `message` is the database's primary message.
[[nodiscard]] DbError classify_sqlstate(std::string_view sqlstate, std::string_view message);
// A libpqxx exception (or any other: escalated).
[[nodiscard]] DbError classify(const std::exception& error);

}  // namespace sluice::upload
