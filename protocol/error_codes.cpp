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
    ErrorInfo{kAuthMissing, "SL5101", "no bearer token was sent", "send Authorization: Bearer <jwt>"},
    ErrorInfo{kAuthInvalid, "SL5102", "the token is not valid for this server", "fetch a new token"},
    ErrorInfo{kAuthExpired, "SL5103", "the token has expired", "fetch a new token"},
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
