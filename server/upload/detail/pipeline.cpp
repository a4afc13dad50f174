// libpq pipeline mode for upload batches (see pipeline.h).
#include "server/upload/detail/pipeline.h"

#include <libpq-fe.h>

#include <pqxx/pqxx>

#include "server/core/pg_errors.h"

namespace sluice::upload::detail {

void Reply::Clear::operator()(pg_result* r) const { PQclear(r); }

int Reply::rows() const { return m_result ? PQntuples(m_result.get()) : 0; }

bool Reply::is_null(int row, int column) const { return PQgetisnull(m_result.get(), row, column) != 0; }

std::string_view Reply::value(int row, int column) const {
    return {PQgetvalue(m_result.get(), row, column),
            static_cast<std::size_t>(PQgetlength(m_result.get(), row, column))};
}

std::size_t Reply::affected_rows() const {
    const char* n = m_result ? PQcmdTuples(m_result.get()) : "";
    return *n == '\0' ? 0 : std::stoul(n);
}

void Reply::throw_error() const {
    if (m_aborted) {
        throw pqxx::sql_error("the statement was not run: an earlier one of its pipeline failed", "", "25P02");
    }
    throw pqxx::sql_error(m_message, "", m_sqlstate.c_str());
}

std::unique_ptr<PipelinedConnection> PipelinedConnection::open(const std::string& conninfo,
                                                               const char* session_settings) {
    pg_conn* conn = PQconnectdb(conninfo.c_str());
    std::unique_ptr<PipelinedConnection> c(new PipelinedConnection(conn));
    if (PQstatus(conn) != CONNECTION_OK) {
        c->throw_broken("connecting");
    }
    std::unique_ptr<pg_result, Reply::Clear> set(PQexec(conn, session_settings));
    if (PQresultStatus(set.get()) != PGRES_COMMAND_OK) {
        throw pqxx::broken_connection(std::string("the session settings failed: ") +
                                      PQresultErrorMessage(set.get()));
    }
    if (PQenterPipelineMode(conn) != 1) {
        c->throw_broken("entering pipeline mode");
    }
    return c;
}

PipelinedConnection::~PipelinedConnection() { PQfinish(m_conn); }

int PipelinedConnection::backend_pid() const { return PQbackendPID(m_conn); }

void PipelinedConnection::throw_broken(const char* doing) const {
    throw pqxx::broken_connection(std::string("source connection lost while ") + doing + ": " +
                                  core::one_line(PQerrorMessage(m_conn)));
}

std::size_t PipelinedConnection::add(const std::string& sql, const Params& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) {
        values.push_back(p ? p->c_str() : nullptr);
    }
    const int n = static_cast<int>(values.size());
    auto named = m_prepared.find(sql);
    if (named == m_prepared.end() && m_prepared.size() < kStatementCap) {
        // Parse now, in the same round trip; the name is forgotten again if that fails.
        named = m_prepared.emplace(sql, "sluice_upload_" + std::to_string(m_names_issued++)).first;
        if (PQsendPrepare(m_conn, named->second.c_str(), sql.c_str(), 0, nullptr) != 1) {
            throw_broken("preparing a statement");
        }
        m_queued.push_back({sql});
    }
    const int sent = named != m_prepared.end()
                         ? PQsendQueryPrepared(m_conn, named->second.c_str(), n, values.data(), nullptr, nullptr, 0)
                         : PQsendQueryParams(m_conn, sql.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0);
    if (sent != 1) {
        throw_broken("sending a statement");
    }
    m_queued.push_back({});
    return m_replies_queued++;
}

std::vector<Reply> PipelinedConnection::run() {
    auto queued = std::move(m_queued);
    m_queued.clear();
    m_replies_queued = 0;
    if (PQpipelineSync(m_conn) != 1) {
        throw_broken("sending");
    }
    std::vector<Reply> replies;
    replies.reserve(queued.size());
    std::optional<Reply> failed_prepare;  // its error is the answer of the statement it was for
    for (const auto& q : queued) {
        Reply reply;
        // One result per statement, then a null that ends it.
        while (pg_result* r = PQgetResult(m_conn)) {
            if (!reply.m_result) {
                reply.m_result.reset(r);
            } else {
                PQclear(r);
            }
        }
        if (!reply.m_result) {
            throw_broken("reading answers");
        }
        const auto status = PQresultStatus(reply.m_result.get());
        reply.m_ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
        reply.m_aborted = status == PGRES_PIPELINE_ABORTED;
        if (!reply.m_ok && !reply.m_aborted) {
            if (PQstatus(m_conn) == CONNECTION_BAD) {
                throw_broken("running a statement");
            }
            const char* state = PQresultErrorField(reply.m_result.get(), PG_DIAG_SQLSTATE);
            const char* primary = PQresultErrorField(reply.m_result.get(), PG_DIAG_MESSAGE_PRIMARY);
            reply.m_sqlstate = state != nullptr ? state : "XX000";
            reply.m_message = primary != nullptr ? primary : core::one_line(PQerrorMessage(m_conn));
        }
        if (q.prepared_sql) {
            if (!reply.m_ok) {
                m_prepared.erase(*q.prepared_sql);  // parse it again next time
                failed_prepare = std::move(reply);
            }
            continue;
        }
        if (failed_prepare) {
            // Parsing failed (say, a table dropped meanwhile): that is this statement's error.
            if (!failed_prepare->m_aborted) {
                reply.m_aborted = false;
                reply.m_sqlstate = failed_prepare->m_sqlstate;
                reply.m_message = failed_prepare->m_message;
            }
            failed_prepare.reset();
        }
        replies.push_back(std::move(reply));
    }
    std::unique_ptr<pg_result, Reply::Clear> sync(PQgetResult(m_conn));
    if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
        throw_broken("reading the end of a pipeline");
    }
    return replies;
}

}  // namespace sluice::upload::detail
