// The replication loop: streams a logical slot with pgoutput (protocol v1) over raw libpq, decodes,
// assembles whole source transactions and hands them to a TransactionQueue; answers keepalives and
// sends standby status updates that confirm only what the consumer reported durable (invariant:
// ack after durable). A blocking loop on its own thread, with a clean stop.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "protocol/lsn.h"
#include "protocol/status.h"
#include "server/replication/transaction_queue.h"

namespace sluice::replication {

struct StreamConfig {
    std::string conninfo;
    std::string slot;
    std::vector<std::string> publications;
    // The consumer's durable LSN when starting: streaming resumes after it, transactions ending at
    // or before it are dropped, and it is what is confirmed until the consumer reports more. 0/0:
    // the slot's confirmed_flush_lsn.
    protocol::Lsn resume_from;
    std::chrono::milliseconds status_interval{10'000};  // well under the server's wal_sender_timeout
    std::chrono::milliseconds poll_interval{100};       // how often the loop looks at stop and durable
    int connect_timeout_seconds = 10;
    std::size_t max_chunk_changes = 10000;  // large transactions are handed on in chunks of this many
};

class ReplicationStream {
public:
    ReplicationStream(StreamConfig config, TransactionQueue& queue);
    ~ReplicationStream();
    ReplicationStream(const ReplicationStream&) = delete;
    ReplicationStream& operator=(const ReplicationStream&) = delete;

    // Runs run() on a thread of its own.
    void start();
    // Asks the loop to stop: it sends a last status update, ends the COPY and closes the queue.
    void request_stop() { m_stop.store(true); }
    // Waits for the thread; its result (ok after a requested stop).
    [[nodiscard]] protocol::Status join();

    // The loop itself, on the calling thread, until request_stop() or an error. Closes the queue
    // when it returns.
    [[nodiscard]] protocol::Status run();

    // The LSN last confirmed to Postgres as flushed.
    [[nodiscard]] protocol::Lsn confirmed() const { return protocol::Lsn(m_confirmed.load()); }

private:
    [[nodiscard]] protocol::Status stream();

    StreamConfig m_config;
    TransactionQueue& m_queue;
    std::atomic<bool> m_stop{false};            // set by any thread, read by the loop
    std::atomic<std::uint64_t> m_confirmed{0};  // written by the loop, read by any thread
    std::thread m_thread;                       // started and joined by the owner's thread
    protocol::Status m_result;                  // written by the loop before it ends; read after join
};

}  // namespace sluice::replication
