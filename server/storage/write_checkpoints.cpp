// Write checkpoint records (see write_checkpoints.h).
#include "server/storage/write_checkpoints.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "server/core/pg_errors.h"
#include "server/storage/pg_array.h"

namespace sluice::storage {
namespace {

using protocol::ErrorCode;
using protocol::Status;

// All waiting checkpoints in one statement, each row answered with its position in the arrays.
// Server-assigned numbers are drawn in LSN order. The CTE is read twice, so it is computed once:
// the numbers stored are the numbers returned. Superseded rows are dropped by the BucketWriter when
// it delivers newer ones, so inserting stays cheap however far replication lags.
constexpr const char* kInsert =
    "WITH wanted AS ("
    "    SELECT r.i, r.u, r.c, COALESCE(r.n, nextval('sluice.write_checkpoint_numbers')) AS n, r.l "
    "    FROM (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::pg_lsn[]) WITH ORDINALITY "
    "          AS r(u, c, n, l, i) ORDER BY l, i) AS r), "
    "stored AS (INSERT INTO sluice.write_checkpoints (user_id, client_id, checkpoint, lsn) "
    "           SELECT u, c, n, l FROM wanted ON CONFLICT (user_id, client_id, checkpoint) DO NOTHING) "
    "SELECT i, n FROM wanted";

struct Request {
    const std::string* user_id;
    const std::string* client_id;
    std::optional<std::int64_t> number;
    protocol::Lsn lsn;
    std::optional<protocol::Result<std::int64_t>> answer;  // set by the statement that wrote it
};

}  // namespace

struct WriteCheckpointStore::Impl {
    std::string conninfo;
    std::mutex mutex;  // guards waiting, writing and every request's answer
    std::condition_variable answered;
    std::vector<Request*> waiting;
    bool writing = false;  // a caller is running the statement for a group
    // Used by the one caller that is writing, without the lock.
    std::unique_ptr<pqxx::connection> connection;

    void connect() {
        connection = std::make_unique<pqxx::connection>(conninfo);
        connection->prepare("insert", kInsert);
    }

    // Writes `group` in one statement; the answers, in the group's order. Called without the lock.
    std::vector<protocol::Result<std::int64_t>> write(const std::vector<Request*>& group) {
        std::vector<std::string> users, clients, lsns;
        std::string numbers = "{";  // unquoted, so that NULL is a null
        for (const auto* r : group) {
            users.push_back(*r->user_id);
            clients.push_back(*r->client_id);
            numbers += (numbers.size() > 1 ? "," : "") + (r->number ? std::to_string(*r->number) : "NULL");
            lsns.push_back(r->lsn.to_string());
        }
        numbers += "}";
        std::vector<protocol::Result<std::int64_t>> answers(
            group.size(), Status(ErrorCode::kStorageQueryFailed, "a write checkpoint got no number"));
        try {
            if (!connection || !connection->is_open()) {
                connect();
            }
            pqxx::nontransaction tx(*connection);
            const auto rows =
                tx.exec_prepared("insert", to_pg_array(users), to_pg_array(clients), numbers, to_pg_array(lsns));
            for (const auto& row : rows) {
                answers.at(row[0].as<std::size_t>() - 1) = row[1].as<std::int64_t>();
            }
        } catch (const std::exception& e) {
            connection.reset();  // reconnect next time
            const bool lost = dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr;
            const Status status =
                lost ? Status(ErrorCode::kStorageUnreachable,
                              fmt::format("lost the storage connection while recording a write checkpoint: {}",
                                          core::one_line(e.what())))
                     : Status(ErrorCode::kStorageQueryFailed,
                              fmt::format("recording a write checkpoint failed: {}", core::one_line(e.what())));
            answers.assign(group.size(), status);
        }
        return answers;
    }

    protocol::Result<std::int64_t> insert(const std::string& user_id, const std::string& client_id,
                                          std::optional<std::int64_t> number, protocol::Lsn lsn) {
        Request request{&user_id, &client_id, number, lsn, std::nullopt};
        std::unique_lock lock(mutex);
        waiting.push_back(&request);
        // Wait for the running statement; then either it was ours, or we write the next group.
        answered.wait(lock, [&] { return request.answer.has_value() || !writing; });
        while (!request.answer) {
            writing = true;
            const auto group = std::move(waiting);
            waiting.clear();
            lock.unlock();
            auto answers = write(group);
            lock.lock();
            for (std::size_t i = 0; i < group.size(); ++i) {
                group[i]->answer = std::move(answers[i]);
            }
            writing = false;
            answered.notify_all();
        }
        return std::move(*request.answer);
    }
};

WriteCheckpointStore::WriteCheckpointStore(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
WriteCheckpointStore::~WriteCheckpointStore() = default;

protocol::Result<std::unique_ptr<WriteCheckpointStore>> WriteCheckpointStore::open(const std::string& conninfo) {
    auto impl = std::make_unique<Impl>();
    impl->conninfo = conninfo;
    try {
        impl->connect();
    } catch (const std::exception& e) {
        return Status(ErrorCode::kStorageUnreachable,
                      fmt::format("cannot connect to the storage database: {}", core::one_line(e.what())));
    }
    return std::unique_ptr<WriteCheckpointStore>(new WriteCheckpointStore(std::move(impl)));
}

protocol::Result<std::int64_t> WriteCheckpointStore::create(const std::string& user_id, const std::string& client_id,
                                                            protocol::Lsn lsn) {
    return m_impl->insert(user_id, client_id, std::nullopt, lsn);
}

protocol::Status WriteCheckpointStore::record(const std::string& user_id, const std::string& client_id,
                                              std::int64_t number, protocol::Lsn lsn) {
    auto r = m_impl->insert(user_id, client_id, number, lsn);
    return r ? Status::ok() : r.status();
}

}  // namespace sluice::storage
