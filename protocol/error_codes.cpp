// The error-code registry's table (see error_codes.h for the ranges).
#include "protocol/error_codes.h"

#include <algorithm>
#include <array>

namespace sluice::protocol {
namespace {

using enum ErrorCode;

constexpr std::array kErrors{
    ErrorInfo{kOk, "SL0000", "no error", "nothing to do"},
    ErrorInfo{kConfigFileUnreadable, "SL1001", "the config file cannot be read",
              "check the path given with -c and the file's permissions"},
    ErrorInfo{kConfigSyntax, "SL1002", "the config file is not valid YAML", "fix the YAML syntax at the position shown"},
    ErrorInfo{kConfigUnknownKey, "SL1003", "a config key is not known to this version of Sluice",
              "remove it or correct its spelling; deploy/sluice.example.yaml lists every key"},
    ErrorInfo{kConfigWrongType, "SL1004", "a config value has the wrong type", "give a value of the expected type"},
    ErrorInfo{kConfigOutOfRange, "SL1005", "a config value is outside its allowed range",
              "give a value within the bounds shown"},
    ErrorInfo{kConfigMissingKey, "SL1006", "a required config key is missing", "add the key"},
    ErrorInfo{kConfigEnvVar, "SL1007", "a ${VAR} reference names an unset environment variable",
              "export the variable or write ${VAR:-default}"},
    ErrorInfo{kConfigInvalidValue, "SL1008", "a config value is not valid for its key", "see the expected form shown"},
    ErrorInfo{kRulesFileUnreadable, "SL2001", "the sync-rules file cannot be read",
              "check sync_rules.path (relative paths are resolved from the config file's folder)"},
    ErrorInfo{kRulesSyntax, "SL2002", "the sync-rules file is not valid YAML", "fix the YAML syntax at the position shown"},
    ErrorInfo{kRulesStructure, "SL2003", "a sync-rules section has the wrong shape (e.g. a list where a mapping belongs)",
              "see deploy/sync-rules.example.yaml for the expected layout"},
    ErrorInfo{kRulesSqlSyntax, "SL2004", "a query in the sync rules is not valid SQL",
              "fix the query at the position shown"},
    ErrorInfo{kRulesUnsupported, "SL2005", "a query uses SQL the sync-rules dialect does not support (LIKE, CASE, %, "
              "unary minus, IN (list), 1e3, joins, subqueries, ...)",
              "rewrite it with the supported operators and functions listed in the message"},
    ErrorInfo{kRulesUnknownFunction, "SL2006", "a query calls a function the sync-rules dialect does not have",
              "use one of the listed functions (e.g. substring, not substr)"},
    ErrorInfo{kRulesWrongArguments, "SL2007", "a function is called with the wrong number or kind of arguments",
              "pass the arguments shown in the message"},
    ErrorInfo{kRulesUnknownName, "SL2008", "a query names an unknown table, alias, column source or bucket parameter",
              "qualify columns with the FROM table or its alias, and use only bucket.<parameter> names the "
              "parameter queries output"},
    ErrorInfo{kRulesParameterNotUsed, "SL2009", "a data query does not match every bucket parameter",
              "add <column> = bucket.<parameter> (or bucket.<parameter> IN <array column>) for each parameter"},
    ErrorInfo{kRulesParameterMismatch, "SL2010", "the parameter queries of one bucket output different columns",
              "make every parameter query of the bucket output the same column names"},
    ErrorInfo{kRulesMissingId, "SL2011", "a data query has no id column", "select the row's key as id (e.g. SELECT "
              "uuid AS id, ...)"},
    ErrorInfo{kRulesMissingAlias, "SL2012", "a selected expression has no name", "name it with AS <name>"},
    ErrorInfo{kRulesWrongContext, "SL2013", "a value is used where it is not available (request values in a data "
              "query, table columns where only request values exist, ...)",
              "move the condition to a parameter query or a data query as the message says"},
    ErrorInfo{kRulesInvalidMatch, "SL2014", "a bucket parameter or request value is compared in a way the engine "
              "cannot index", "compare it with = or IN directly against a column expression"},
    ErrorInfo{kRulesClientParameter, "SL2015", "a parameter query lets client-supplied parameters decide access",
              "use request.user_id() or request.jwt() claims for access decisions, or set "
              "accept_potentially_dangerous_queries: true on the bucket"},
    ErrorInfo{kRulesWriteRule, "SL2016", "a write_rules entry is not valid", "see the write_rules section of "
              "deploy/sync-rules.example.yaml"},
    ErrorInfo{kRulesRowError, "SL2017", "evaluating the rules for one row failed (e.g. IN on a value that is not a "
              "JSON array); the row still goes to its other buckets", "fix the data or the rule named in the message"},
    ErrorInfo{kRulesTooManyBuckets, "SL2018", "a connection would receive more buckets than allowed",
              "raise the bucket limit or restructure the rules into fewer, larger buckets"},
    ErrorInfo{kRulesTooManyParameterResults, "SL2019", "parameter queries for a connection returned more rows than "
              "allowed", "raise the limit or restructure the parameter queries"},
    ErrorInfo{kRulesNotDeterministic, "SL2020", "a query uses a value that changes over time (e.g. 'now')",
              "rules must be deterministic: compare against stored columns instead"},
    ErrorInfo{kRulesRequestError, "SL2021", "evaluating a parameter query for a request failed (e.g. json_each over "
              "a value that is not an array)", "fix the token claims or client parameters, or the query"},
    ErrorInfo{kRulesUnknownKey, "SL2022", "a sync-rules key is not known", "remove it or correct its spelling"},
    ErrorInfo{kRulesWriteDenied, "SL2023", "an upload was refused by write_rules",
              "the rule for that table and operation does not allow it; see the reason given"},
    ErrorInfo{kSourceUnreachable, "SL3001", "the source Postgres cannot be reached",
              "check source.uri (host, port) and that Postgres is running and accepts TCP connections"},
    ErrorInfo{kSourceAuthFailed, "SL3002", "the source Postgres rejected the user or password",
              "check the user and password in source.uri and pg_hba.conf"},
    ErrorInfo{kSourceWalLevel, "SL3003", "the source Postgres does not have wal_level=logical",
              "set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart Postgres"},
    ErrorInfo{kSourceNoReplicationPrivilege, "SL3004", "the source user may not replicate",
              "ALTER ROLE <user> WITH REPLICATION (and allow 'replication' connections in pg_hba.conf)"},
    ErrorInfo{kSourceNoFreeSlots, "SL3005", "the source Postgres has no free replication slot",
              "drop unused slots (pg_drop_replication_slot) or raise max_replication_slots and restart Postgres"},
    ErrorInfo{kSourceNoFreeWalSenders, "SL3006", "the source Postgres has no free WAL sender",
              "raise max_wal_senders and restart Postgres, or stop other replication clients"},
    ErrorInfo{kSourceDatabaseMissing, "SL3007", "the source database does not exist", "check the database name in source.uri"},
    ErrorInfo{kSourceQueryFailed, "SL3008", "a query on the source Postgres failed", "see the message from Postgres"},
    ErrorInfo{kSourceNoReplicaIdentity, "SL3009", "a table the rules use has no usable replica identity",
              "add a primary key, or ALTER TABLE <table> REPLICA IDENTITY FULL"},
    ErrorInfo{kPublicationSetupFailed, "SL3010", "the publication cannot be created or changed",
              "the source user must own the published tables (or be a superuser); or create the publication "
              "yourself and set it as user-managed"},
    ErrorInfo{kPublicationStorageSchema, "SL3011", "a table of Sluice's storage schema was asked to be published",
              "remove tables of schema sluice from the publication: publishing them would loop"},
    ErrorInfo{kSlotSetupFailed, "SL3012", "the logical replication slot cannot be created or read",
              "see the message from Postgres; check max_replication_slots and the REPLICATION privilege"},
    ErrorInfo{kSlotWrongPlugin, "SL3013", "a slot of Sluice's name exists but is not a logical pgoutput slot",
              "drop it (SELECT pg_drop_replication_slot('<name>')) or choose another slot name"},
    ErrorInfo{kReplicationStreamFailed, "SL3014", "the replication stream from the source broke",
              "see the message; Sluice resumes from the last durable LSN when it reconnects"},
    ErrorInfo{kPgoutputMalformed, "SL3101", "a pgoutput message from the source is malformed or truncated",
              "report it with the hex bytes logged; check that the source runs a supported Postgres version"},
    ErrorInfo{kPgoutputUnsupported, "SL3102", "the source sent a pgoutput message type Sluice does not support",
              "use pgoutput protocol version 1 or 2 without two-phase commit"},
    ErrorInfo{kPgoutputValueMalformed, "SL3103", "a column value's text form could not be decoded for its type",
              "report it with the type and value logged"},
    ErrorInfo{kPgoutputUnknownRelation, "SL3104", "a change refers to a relation no Relation message described",
              "restart replication: Postgres resends Relation messages on a new connection"},
    ErrorInfo{kPgoutputOutOfOrder, "SL3105", "pgoutput messages arrived out of order (a change outside Begin/Commit)",
              "restart replication; report it with the log lines around it"},
    ErrorInfo{kStorageUnreachable, "SL4001", "the storage Postgres cannot be reached",
              "check storage.uri (host, port) and that Postgres is running"},
    ErrorInfo{kStorageAuthFailed, "SL4002", "the storage Postgres rejected the user or password",
              "check the user and password in storage.uri and pg_hba.conf"},
    ErrorInfo{kStorageDatabaseMissing, "SL4003", "the storage database does not exist",
              "run `sluice migrate --create-database`, set storage.create_database: true, or CREATE DATABASE it"},
    ErrorInfo{kStorageMigrationFailed, "SL4004", "a storage migration failed", "see the message from Postgres"},
    ErrorInfo{kStorageMigrationChanged, "SL4005", "an applied storage migration differs from the one in this binary",
              "migrations are forward-only: restore the original file and add a new migration"},
    ErrorInfo{kStorageMigrationUnknown, "SL4006", "the storage database has migrations this binary does not know",
              "run a Sluice version at least as new as the one that migrated the storage"},
    ErrorInfo{kStorageQueryFailed, "SL4007", "a query on the storage Postgres failed", "see the message from Postgres"},
    ErrorInfo{kBadRequest, "SL5001", "the client sent a malformed request", "see the description"},
    ErrorInfo{kMessageTooLarge, "SL5002", "a client message exceeds limits.max_message_bytes",
              "send smaller messages or raise the limit"},
    ErrorInfo{kRequestInvalidJson, "SL5003", "a sync request or WebSocket message is not valid JSON (or not an "
              "object)", "send one JSON object, as protocol/README.md describes"},
    ErrorInfo{kRequestInvalidField, "SL5004", "a field of a sync request or WebSocket message has the wrong type or "
              "value", "send the field with the type protocol/README.md gives (e.g. after as a decimal string)"},
    ErrorInfo{kBucketIdMalformed, "SL5005", "a bucket id is not `[N#]name[JSON array of values]`",
              "send bucket names exactly as a checkpoint line gave them"},
    ErrorInfo{kSyncLineMalformed, "SL5006", "a line from the server is not a valid sync line (client side)",
              "check that the server speaks the protocol version in protocol/README.md; report the line"},
    ErrorInfo{kSyncLineUnexpected, "SL5007", "a sync line arrived out of order (data for a bucket outside the "
              "checkpoint, a checkpoint_complete for another checkpoint, a diff before any checkpoint)",
              "the server broke the line order of protocol/README.md; reconnect and report the transcript"},
    ErrorInfo{kClientMessageUnknown, "SL5008", "a WebSocket message from the client has an unknown or missing type",
              "send one of the message types listed in protocol/README.md"},
    ErrorInfo{kTooManyConnections, "SL5009", "the server has reached limits.max_connections sync connections",
              "retry later, or raise limits.max_connections"},
    ErrorInfo{kTooManyUserConnections, "SL5010", "this user has reached limits.max_connections_per_user connections",
              "close other connections of this user, or raise limits.max_connections_per_user"},
    ErrorInfo{kClientTooSlow, "SL5011", "the client did not read its stream fast enough; its outbound queue was full",
              "read the stream promptly; reconnect (it resumes), or raise limits.session_queue_bytes"},
    ErrorInfo{kNotFound, "SL5012", "no such endpoint", "use one of the paths in protocol/README.md"},
    ErrorInfo{kUnsupportedMediaType, "SL5013", "the request body has the wrong content type",
              "send Content-Type: application/json"},
    ErrorInfo{kSessionStorageFailed, "SL5014", "the session could not read bucket storage",
              "reconnect; check that the storage database is reachable"},
    ErrorInfo{kUploadNotSupported, "SL5015", "uploads are not available on this server (no uploader configured)",
              "run a process with role all or api, which accepts uploads, or upload through your backend API"},
    ErrorInfo{kTooManySubscriptions, "SL5016",
              "the request subscribes to more streams than limits.max_subscriptions_per_connection; the subscriptions "
              "past the limit are ignored and reported in the checkpoint's streams[].errors",
              "subscribe to fewer streams on one connection, or raise limits.max_subscriptions_per_connection"},
    ErrorInfo{kAuthMissing, "SL5101", "no bearer token was sent", "send Authorization: Bearer <jwt>"},
    ErrorInfo{kAuthInvalid, "SL5102", "the token is not valid for this server", "fetch a new token"},
    ErrorInfo{kAuthExpired, "SL5103", "the token has expired", "fetch a new token"},
    ErrorInfo{kAuthJwksFetchFailed, "SL5104", "auth.jwks_uri could not be fetched or is not a valid JWKS; the keys "
              "fetched before stay in use", "check the URL, that the identity provider is reachable from Sluice and "
              "that it serves {\"keys\": [...]}"},
    ErrorInfo{kUploadTooManyOps, "SL6001", "the upload batch has more operations than limits.max_upload_batch_ops",
              "send smaller batches, or raise limits.max_upload_batch_ops"},
    ErrorInfo{kUploadTableNotAllowed, "SL6002", "the operation names a table that has no write_rules entry or does "
              "not exist", "add the table to write_rules in the sync rules, or fix the table name the client sends"},
    ErrorInfo{kUploadDenied, "SL6003", "write_rules refused the operation (operation not allowed, condition not met, "
              "or a column that may not be written)", "check the write_rules entry for the table; the reason names it"},
    ErrorInfo{kUploadUnknownColumn, "SL6004", "the operation writes a column the table does not have (or a generated "
              "column)", "send only the table's columns; check the client schema against the database"},
    ErrorInfo{kUploadRowNotFound, "SL6005", "a PATCH names a row that does not exist (or is not visible to the role)",
              "the row was deleted meanwhile: drop the change, or PUT the whole row"},
    ErrorInfo{kUploadConstraint, "SL6006", "the database refused the operation: a constraint (unique, foreign key, "
              "check, not null) or a trigger rejected it", "fix the data; the reason quotes the database's message"},
    ErrorInfo{kUploadInvalidData, "SL6007", "a value does not fit its column (wrong type, out of range, too long)",
              "send values of the column's type"},
    ErrorInfo{kUploadPermission, "SL6008", "the database role may not make this write (privileges or a row-level "
              "security policy)", "grant the privilege, or check the RLS policies for uploads.apply_as_role"},
    ErrorInfo{kUploadUnavailable, "SL6009", "the batch could not be applied now (the source database is unreachable, "
              "or it kept failing with deadlocks or serialization failures); nothing of it was applied",
              "retry the same batch later; it is applied exactly once"},
    ErrorInfo{kUploadBatchIdTaken, "SL6010", "this (client_id, batch_id) was already used by another user",
              "use a unique client id per installation"},
    ErrorInfo{kUploadNoClientId, "SL6011", "the upload has no client id", "send sync_request with client_id before "
              "uploading over the WebSocket"},
    ErrorInfo{kUploadSkipped, "SL6012", "the operation was not applied because another operation of its batch was "
              "rejected (uploads.batch_policy all_or_nothing)", "fix the rejected operation and send the batch again "
              "with a new batch id"},
    ErrorInfo{kUploadDatabaseRefused, "SL6013", "the database refused the operation for another reason",
              "the reason quotes the database's message"},
    ErrorInfo{kUploadSourceSetup, "SL6014", "the table that records applied batches (sluice.uploads) cannot be "
              "created in the source database", "grant the source user CREATE on the database, or create schema sluice "
              "and table sluice.uploads as shown in migrations/0001_initial.sql"},
    ErrorInfo{kInternal, "SL9001", "an internal error", "report it with the log lines around it"},
};

}  // namespace

const ErrorInfo& error_info(ErrorCode code) noexcept {
    const auto* it = std::find_if(kErrors.begin(), kErrors.end(), [code](const ErrorInfo& e) { return e.code == code; });
    if (it == kErrors.end()) {
        return error_info(kInternal);
    }
    return *it;
}

std::string_view error_id(ErrorCode code) noexcept { return error_info(code).id; }

std::span<const ErrorInfo> all_errors() noexcept { return kErrors; }

}  // namespace sluice::protocol
