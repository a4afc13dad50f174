// Private to server/upload: one attempt at one batch, in one source transaction (see uploader.h for
// the protocol), over a pipelined connection. Throws libpqxx exceptions for failures the caller
// classifies (db_errors.h) and retries; the ops' own rejections are results, not exceptions.
#pragma once

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
    protocol::Lsn lsn;  // the source's WAL insert position after the batch's commit
};

// The source's WAL insert position now, in a round trip of its own (for a write checkpoint that is
// not an upload's). Throws libpqxx exceptions.
[[nodiscard]] protocol::Lsn current_wal_position(PipelinedConnection& source);

// Runs the batch. SL6010 when the batch id is another user's.
[[nodiscard]] protocol::Result<Attempt> run_batch(PipelinedConnection& source, const BatchContext& ctx);

// The SQL that creates the record table in the source (the shape migrations 0001 and 0002 give the
// storage database's sluice.uploads).
[[nodiscard]] const char* source_schema_sql();

}  // namespace sluice::upload::detail
