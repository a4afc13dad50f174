// The write-checkpoint message (see write_checkpoints.h): a JSON array [user_id, client_id, number].
#include "server/storage/write_checkpoints.h"

#include <fmt/format.h>
#include <simdjson.h>

namespace sluice::storage {

std::string write_checkpoint_content_sql(std::string_view user, std::string_view client, std::string_view number) {
    return fmt::format("json_build_array(({})::text, ({})::text, ({})::bigint)::text", user, client, number);
}

std::string emit_write_checkpoint_sql(std::string_view user, std::string_view client, std::string_view number) {
    return fmt::format("pg_logical_emit_message(true, '{}', {})", kWriteCheckpointPrefix,
                       write_checkpoint_content_sql(user, client, number));
}

// (Through the catalogs, not to_regclass: that throws when the user lacks USAGE on schema sluice.)
const std::string kUploadCheckpointsReadableSql =
    "SELECT coalesce(bool_and(has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')), "
    "                false)::text "
    "FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid JOIN pg_attribute a ON a.attrelid = c.oid "
    "WHERE n.nspname = 'sluice' AND c.relname = 'uploads' AND a.attname = 'write_checkpoint' "
    "AND NOT a.attisdropped";

const std::string kSnapshotWriteCheckpointsSql =
    "SELECT user_id, client_id, max(write_checkpoint)::text FROM sluice.uploads "
    "WHERE write_checkpoint IS NOT NULL GROUP BY user_id, client_id";

const std::string kRecordIssuedWriteCheckpointSql =
    "INSERT INTO sluice.write_checkpoints (user_id, client_id, checkpoint, lsn) "
    "SELECT $1, $2, $3::bigint, $4::pg_lsn "
    "WHERE NOT EXISTS (SELECT FROM sluice.write_checkpoints WHERE user_id = $1 AND client_id = $2 "
    "                  AND checkpoint >= $3::bigint AND op_id IS NOT NULL) "
    "ON CONFLICT (user_id, client_id, checkpoint) DO NOTHING";

std::optional<WriteCheckpoint> parse_write_checkpoint_message(std::string_view content) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (parser.parse(content.data(), content.size()).get(root) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    simdjson::dom::array fields;
    if (root.get_array().get(fields) != simdjson::SUCCESS || fields.size() != 3) {
        return std::nullopt;
    }
    std::string_view user, client;
    std::int64_t number = 0;
    if (fields.at(0).get_string().get(user) != simdjson::SUCCESS ||
        fields.at(1).get_string().get(client) != simdjson::SUCCESS ||
        fields.at(2).get_int64().get(number) != simdjson::SUCCESS) {
        return std::nullopt;
    }
    return WriteCheckpoint{std::string(user), std::string(client), number};
}

}  // namespace sluice::storage
