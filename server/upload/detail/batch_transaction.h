// Private to server/upload: one attempt at one batch, in one source transaction (see uploader.h for
// the protocol). Throws libpqxx exceptions for failures the caller classifies (db_errors.h) and
// retries; the ops' own rejections are results, not exceptions.
#pragma once

#include <map>
#include <string>

#include "config/rules/request.h"
#include "config/rules/write_rules.h"
#include "config/sluice_config.h"
#include "protocol/lsn.h"
#include "protocol/status.h"
#include "protocol/wire/upload.h"
#include "server/upload/table_catalog.h"
#include "server/upload/uploader.h"

namespace pqxx {
class connection_base;
}  // namespace pqxx

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

// Named prepared statements of one source connection, by SQL text (per table and shape of op), so
// repeated ops skip parsing and planning. Bounded: past the cap, statements run unprepared.
class StatementCache {
public:
    // The statement's name, prepared on `source` when first seen; empty past the cap.
    [[nodiscard]] std::string name_for(pqxx::connection_base& source, const std::string& sql);

private:
    static constexpr std::size_t kCap = 512;
    std::map<std::string, std::string> m_names;  // SQL text -> statement name
};

// Runs the batch. SL6010 when the batch id is another user's.
[[nodiscard]] protocol::Result<Attempt> run_batch(pqxx::connection_base& source, StatementCache& statements,
                                                  const BatchContext& ctx);

// The SQL that creates the record table in the source (the shape migrations 0001 and 0002 give the
// storage database's sluice.uploads).
[[nodiscard]] const char* source_schema_sql();

}  // namespace sluice::upload::detail
