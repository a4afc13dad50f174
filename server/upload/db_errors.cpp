// Postgres error classification for uploads (see db_errors.h). SQLSTATEs: Postgres manual, appendix A.
#include "server/upload/db_errors.h"

#include <pqxx/pqxx>

namespace sluice::upload {
namespace {

using protocol::ErrorCode;

// "ERROR:  duplicate key value violates ...\nDETAIL: ..." -> "duplicate key value violates ...".
std::string primary_message(std::string_view what) {
    what = what.substr(0, what.find('\n'));
    for (std::string_view prefix : {"ERROR:  ", "FATAL:  "}) {
        if (what.starts_with(prefix)) {
            what.remove_prefix(prefix.size());
        }
    }
    return std::string(what);
}

}  // namespace

DbError classify_sqlstate(std::string_view sqlstate, std::string_view message) {
    const std::string text(message);
    const std::string_view cls = sqlstate.substr(0, 2);
    if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" || sqlstate == "57014" || cls == "53") {
        return {DbAction::kRetry, ErrorCode::kUploadUnavailable, text};
    }
    if (cls == "08" || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
        return {DbAction::kReconnect, ErrorCode::kUploadUnavailable, text};
    }
    // A table changed under a prepared statement so that its result type differs; or a value cast
    // to the column type the catalog had no longer fits the column (42804, datatype mismatch).
    const bool stale_plan = sqlstate == "0A000" && message.starts_with("cached plan must not change result type");
    if (sqlstate == "42P01" || sqlstate == "42703" || sqlstate == "42804" || stale_plan) {
        return {DbAction::kStaleCatalog, ErrorCode::kUploadUnavailable, text};
    }
    if (cls == "23" || sqlstate == "P0001") {  // integrity constraints; a trigger's RAISE EXCEPTION
        return {DbAction::kReject, ErrorCode::kUploadConstraint, text};
    }
    if (cls == "22") {
        return {DbAction::kReject, ErrorCode::kUploadInvalidData, text};
    }
    if (sqlstate == "42501") {  // insufficient privilege, row-level security
        return {DbAction::kReject, ErrorCode::kUploadPermission, text};
    }
    if (cls == "42" || cls == "0A" || cls == "25" || cls == "XX" || cls == "58") {
        return {DbAction::kEscalate, ErrorCode::kInternal, text};  // our SQL, or the server itself
    }
    return {DbAction::kReject, ErrorCode::kUploadDatabaseRefused, text};  // e.g. 428C9, 2BP01, 27000, P0002
}

DbError classify(const std::exception& error) {
    if (dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr ||
        dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) {
        return {DbAction::kReconnect, ErrorCode::kUploadUnavailable, primary_message(error.what())};
    }
    if (dynamic_cast<const pqxx::transaction_rollback*>(&error) != nullptr) {
        // libpqxx 6 raises deadlocks and serialization failures as these, without a SQLSTATE.
        return {DbAction::kRetry, ErrorCode::kUploadUnavailable, primary_message(error.what())};
    }
    if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error); sql != nullptr) {
        const auto message = primary_message(error.what());
        if (!sql->sqlstate().empty()) {
            return classify_sqlstate(sql->sqlstate(), message);
        }
        // libpqxx 6 raises its SQLSTATE-specific exceptions without the SQLSTATE: go by the type.
        if (dynamic_cast<const pqxx::integrity_constraint_violation*>(&error) != nullptr ||
            dynamic_cast<const pqxx::plpgsql_raise*>(&error) != nullptr) {
            return classify_sqlstate("23000", message);
        }
        if (dynamic_cast<const pqxx::data_exception*>(&error) != nullptr) {
            return classify_sqlstate("22000", message);
        }
        if (dynamic_cast<const pqxx::insufficient_privilege*>(&error) != nullptr) {
            return classify_sqlstate("42501", message);
        }
        if (dynamic_cast<const pqxx::undefined_table*>(&error) != nullptr ||
            dynamic_cast<const pqxx::undefined_column*>(&error) != nullptr) {
            return classify_sqlstate("42P01", message);
        }
        if (dynamic_cast<const pqxx::insufficient_resources*>(&error) != nullptr) {
            return classify_sqlstate("53000", message);
        }
        if (dynamic_cast<const pqxx::plpgsql_error*>(&error) != nullptr) {
            return classify_sqlstate("P0000", message);  // another PL/pgSQL error: the database refused it
        }
        return classify_sqlstate("XX000", message);  // syntax errors and the like: our SQL, escalate
    }
    return {DbAction::kEscalate, ErrorCode::kInternal, primary_message(error.what())};
}

}  // namespace sluice::upload
