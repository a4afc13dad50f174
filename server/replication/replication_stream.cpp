// The blocking replication loop (see replication_stream.h).
#include "server/replication/replication_stream.h"

#include <fmt/format.h>

#include "protocol/pgoutput/decoder.h"
#include "protocol/pgoutput/describe.h"
#include "server/core/log.h"
#include "server/replication/transaction_assembler.h"
#include "server/replication/wal_stream.h"

namespace sluice::replication {

namespace pg = protocol::pgoutput;
using protocol::ErrorCode;
using protocol::Lsn;
using protocol::Status;

ReplicationStream::ReplicationStream(StreamConfig config, TransactionQueue& queue)
    : m_config(std::move(config)), m_queue(queue) {}

ReplicationStream::~ReplicationStream() {
    request_stop();
    if (m_thread.joinable()) {
        m_thread.join();
    }
}

void ReplicationStream::start() {
    m_thread = std::thread([this] { m_result = run(); });
}

Status ReplicationStream::join() {
    if (m_thread.joinable()) {
        m_thread.join();
    }
    return m_result;
}

Status ReplicationStream::run() {
    Status result;
    try {
        result = stream();
    } catch (const std::exception& e) {  // nothing escapes the replication loop
        result = Status(ErrorCode::kInternal, fmt::format("replication loop: {}", e.what()));
    }
    m_queue.close();
    if (!result.is_ok()) {
        core::Logger("replication", "slot=" + m_config.slot).error("stream stopped: {}", result.to_string());
    }
    return result;
}

Status ReplicationStream::stream() {
    const core::Logger log("replication", "slot=" + m_config.slot);
    auto connection = PgConnection::open(m_config.conninfo, ConnectionKind::kReplication,
                                         m_config.connect_timeout_seconds, kSourceSessionOptions);
    if (!connection) {
        return connection.status();
    }
    StartOptions options;
    options.slot = m_config.slot;
    options.from = m_config.resume_from;
    options.proto_version = 1;
    options.publications = m_config.publications;
    auto started = WalStream::start(std::move(connection).value(), options);
    if (!started) {
        return started.status();
    }
    WalStream& wal = started.value();
    log.info("streaming from {} (publications {})", m_config.resume_from.to_string(),
             fmt::join(m_config.publications, ","));

    pg::Decoder decoder;
    TransactionAssembler assembler(m_config.resume_from, m_config.max_chunk_changes);
    std::optional<SourceTransaction> pending;  // assembled, waiting for room in the queue
    Lsn received = m_config.resume_from;       // highest WAL end seen
    Lsn confirmed = m_config.resume_from;      // last flush position sent
    m_confirmed.store(confirmed.value());
    auto last_status = std::chrono::steady_clock::now();

    const auto send_status = [&](bool reply_requested) -> Status {
        const Lsn durable = std::max(m_queue.durable(), m_config.resume_from);
        // Status updates never move the confirmed position backwards.
        confirmed = std::max(confirmed, durable);
        auto s = wal.send_status({std::max(received, confirmed), confirmed, confirmed, pg_now(), reply_requested});
        if (s) {
            m_confirmed.store(confirmed.value());
            last_status = std::chrono::steady_clock::now();
        }
        return s;
    };

    while (!m_stop.load()) {
        if (m_queue.durable() > confirmed ||
            std::chrono::steady_clock::now() - last_status >= m_config.status_interval) {
            if (auto s = send_status(false); !s) {
                return s;
            }
        }
        if (pending) {
            switch (m_queue.push(*pending, m_config.poll_interval)) {
                case TransactionQueue::PushResult::kPushed:
                    pending.reset();
                    break;
                case TransactionQueue::PushResult::kTimeout:
                    break;  // stalled: the slot keeps the WAL; status updates keep the connection alive
                case TransactionQueue::PushResult::kClosed:
                    return Status(ErrorCode::kReplicationStreamFailed, "the consumer closed the transaction queue");
            }
            continue;
        }
        auto frame = wal.read_frame(m_config.poll_interval);
        if (!frame) {
            return frame.status();
        }
        if (!frame->has_value()) {
            continue;
        }
        auto copy = pg::decode_copy_data(**frame);
        if (!copy) {
            return copy.status();
        }
        if (const auto* keepalive = std::get_if<pg::PrimaryKeepalive>(&copy.value())) {
            received = std::max(received, keepalive->wal_end);
            if (keepalive->reply_requested) {
                if (auto s = send_status(false); !s) {
                    return s;
                }
            }
            continue;
        }
        const auto& data = std::get<pg::XLogData>(copy.value());
        received = std::max(received, data.wal_end);
        auto message = decoder.decode(data.payload);
        if (!message) {
            log.error("undecodable pgoutput message at {}: {}", data.wal_start.to_string(),
                      pg::to_hex(data.payload.substr(0, 256)));
            return message.status();
        }
        if (const auto* rel = std::get_if<pg::Relation>(&message.value())) {
            log.debug("relation {} {}.{} ({} columns)", rel->id, rel->schema, rel->name, rel->columns.size());
        }
        auto txn = assembler.add(std::move(message).value());
        if (!txn) {
            return txn.status();
        }
        if (txn->has_value()) {
            pending = std::move(*txn);
        }
    }
    auto last = send_status(false);
    wal.finish();
    log.info("stopped; confirmed {}", confirmed.to_string());
    return last;
}

}  // namespace sluice::replication
