// Private to server/upload: a source connection in libpq pipeline mode. The statements of one step
// of a batch (BEGIN, the record check and the first op's locked read; or the last op's write, the
// record with the write checkpoint, and COMMIT) are queued and answered together in one round trip,
// each as a named prepared statement, so a single-op upload costs two round trips and no parsing.
// libpqxx 6.4 has no pipeline mode, hence raw libpq.
//
// Failures are thrown as libpqxx exceptions so one classifier (db_errors.h) serves every path:
// pqxx::broken_connection when the connection is gone, pqxx::sql_error (with the SQLSTATE) from
// Reply::throw_error(). Statement errors are otherwise answers: after the first error of a flight,
// the statements queued behind it are not run (Reply::aborted). Not thread-safe: one per worker.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace sluice::upload::detail {

using Params = std::vector<std::optional<std::string>>;  // text values; nullopt is NULL

// One statement's answer.
class Reply {
public:
    [[nodiscard]] bool ok() const { return m_ok; }
    [[nodiscard]] bool aborted() const { return m_aborted; }  // not run: an earlier statement failed
    [[nodiscard]] const std::string& sqlstate() const { return m_sqlstate; }
    [[nodiscard]] const std::string& message() const { return m_message; }  // the primary message

    [[nodiscard]] int rows() const;
    [[nodiscard]] bool is_null(int row, int column) const;
    [[nodiscard]] std::string_view value(int row, int column) const;  // "" for NULL
    [[nodiscard]] std::size_t affected_rows() const;                  // INSERT/UPDATE/DELETE

    // Throws pqxx::sql_error carrying the SQLSTATE (for a failed or aborted statement).
    [[noreturn]] void throw_error() const;

private:
    friend class PipelinedConnection;
    struct Clear {
        void operator()(pg_result* r) const;
    };
    std::unique_ptr<pg_result, Clear> m_result;
    bool m_ok = false;
    bool m_aborted = false;
    std::string m_sqlstate;
    std::string m_message;
};

class PipelinedConnection {
public:
    // Connects, applies `session_settings` (simple SQL) and enters pipeline mode. Throws
    // pqxx::broken_connection.
    [[nodiscard]] static std::unique_ptr<PipelinedConnection> open(const std::string& conninfo,
                                                                   const char* session_settings);
    ~PipelinedConnection();
    PipelinedConnection(const PipelinedConnection&) = delete;
    PipelinedConnection& operator=(const PipelinedConnection&) = delete;

    // Queues `sql` with `params`, prepared under a name the first time it is seen (bounded: past the
    // cap it runs unnamed). Returns its index in the next run()'s replies.
    std::size_t add(const std::string& sql, const Params& params = {});
    // Sends the queued statements with one Sync and returns their replies, in order. Throws
    // pqxx::broken_connection when the connection is lost.
    [[nodiscard]] std::vector<Reply> run();
    [[nodiscard]] bool has_queued() const { return m_replies_queued > 0; }

    [[nodiscard]] int backend_pid() const;

private:
    explicit PipelinedConnection(pg_conn* conn) : m_conn(conn) {}
    [[noreturn]] void throw_broken(const char* doing) const;

    static constexpr std::size_t kStatementCap = 512;
    pg_conn* m_conn;
    std::map<std::string, std::string, std::less<>> m_prepared;  // SQL text -> statement name
    // What the next run() reads back: a statement's reply, or the answer to preparing one (the SQL
    // whose name becomes usable when it succeeds).
    struct Queued {
        std::optional<std::string> prepared_sql;
    };
    std::vector<Queued> m_queued;
    std::size_t m_replies_queued = 0;
    std::size_t m_names_issued = 0;
};

}  // namespace sluice::upload::detail
