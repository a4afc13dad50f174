// Private to server/upload: one attempt at one batch, in one source transaction (see uploader.h for
// the protocol), over a pipelined connection. Throws libpqxx exceptions for failures the caller
// classifies (db_errors.h) and retries; the ops' own rejections are results, not exceptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/rules/request.h"
#include "config/rules/write_rules.h"
#include "config/sluice_config.h"
#include "protocol/lsn.h"
#include "protocol/status.h"
#include "protocol/wire/upload.h"
#include "server/upload/detail/pipeline.h"
#include "server/upload/table_catalog.h"
#include "server/upload/uploader.h"

namespace sluice::upload::detail {

struct BatchContext {
    const config::rules::WriteRules& rules;
    const config::rules::Request& request;  // the token's claims, for conditions
    const std::string& user_id;
    const std::string& claims_json;
    const std::string& client_id;
    const protocol::wire::UploadBatch& batch;
    config::BatchPolicy policy;
    const std::string& role;  // empty: no role switch
    TableCatalog& catalog;
    const UploadHook& hook;
};

struct Attempt {
    protocol::wire::UploadResult result;
    bool replayed = false;
    std::int64_t write_checkpoint = 0;  // issued in the batch's transaction (a replay's: after it)
};

struct IssuedCheckpoint {
    std::int64_t number = 0;
    protocol::Lsn position;  // the source's WAL insert position it was issued at
};

// A write checkpoint of its own (GET /write-checkpoint2.json; POST /sync/checkpoint-request with the
// client's `number`), issued in a transaction of its own, after the client's uploads in flight.
// Writes nothing to the source but the message. Throws libpqxx exceptions.
[[nodiscard]] IssuedCheckpoint issue_write_checkpoint(PipelinedConnection& source, const std::string& user_id,
                                                      const std::string& client_id,
                                                      std::optional<std::int64_t> number);

// Runs the batch. SL6010 when the batch id is another user's.
[[nodiscard]] protocol::Result<Attempt> run_batch(PipelinedConnection& source, const BatchContext& ctx);

// The SQL that creates the record table in the source (the shape migrations 0001 and 0002 give the
// storage database's sluice.uploads).
[[nodiscard]] const char* source_schema_sql();

}  // namespace sluice::upload::detail
