// Serving benchmarks (issue 5), against the private Postgres named by SLUICE_BENCH_PG_URI (default:
// deploy/dev-postgres.sh's URI). The server runs in this process with its real storage reads,
// checkpoint hub and JWT verification; clients are real sockets. Prints each figure next to its target.
//   serving_bench [--phase all|download|idle|fanout] [--ops N] [--sessions N] [--clients N] [--probes N]
// Phases (each in fresh databases):
//   download  N ops of ~100-byte rows in one bucket (written with BucketWriter), read by one HTTP
//             client over POST /sync/stream until checkpoint_complete: ops/s (target >= 150,000/s)
//   idle      N WebSocket sessions (each synced, then idle), opened by a child process: the server
//             process's RSS growth per session (target <= 20 KB)
//   fanout    N WebSocket clients on one bucket, fed by the replicator; a row committed in Postgres
//             until each client has its checkpoint_complete: p50 and p99 (target p99 <= 100 ms); run
//             with a client_id in the sync request as the SDKs send it, then without
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <pqxx/pqxx>

#include "bench/bench_db.h"
#include "bench/ws_swarm.h"
#include "config/rules/json.h"
#include "migrations/migrations.h"
#include "server/app/replicator.h"
#include "server/auth/token_verifier.h"
#include "server/core/log.h"
#include "server/http/server.h"
#include "server/router/router.h"
#include "server/storage/bucket_writer.h"
#include "server/storage/checkpoint_listener.h"
#include "server/storage/migrator.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using sluice::bench::WsSwarm;

std::string g_admin_uri;
constexpr const char* kSecret = "bench-secret-0123456789abcdef";
constexpr const char* kAudience = "sluice-bench";
constexpr const char* kRules = R"(bucket_definitions:
  global:
    data:
      - SELECT * FROM items
)";
constexpr const char* kSyncRequest = R"({"type":"sync_request","buckets":[],"raw_data":true,"include_checksum":true})";
// As the SDKs send it: with a client_id, each checkpoint also looks up the client's write checkpoint.
constexpr const char* kSdkSyncRequest =
    R"({"type":"sync_request","buckets":[],"raw_data":true,"include_checksum":true,"client_id":"bench-client"})";

void print_row(const std::string& name, const std::string& result, const std::string& target, bool met) {
    fmt::print("{:<60} {:>16}   {:<16} {}\n", name, result, target, met ? "ok" : "MISSED");
    std::fflush(stdout);
}

void exec(const std::string& uri, const std::string& sql) { sluice::bench::exec_sql(uri, sql); }
std::string fresh(const std::string& db) { return sluice::bench::fresh_database(g_admin_uri, db); }

std::string fresh_storage(const std::string& db) {
    auto uri = fresh(db);
    pqxx::connection c(uri);
    if (auto r = sluice::storage::migrate(c, sluice::migrations::embedded()); !r) {
        throw std::runtime_error(r.status().to_string());
    }
    return uri;
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string base64url(std::string_view bytes) {
    std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    while (!out.empty() && out.back() == '=') {
        out.pop_back();
    }
    for (auto& c : out) {
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    return out;
}

// An HS256 token for `user`, valid for an hour.
std::string mint_token(const std::string& user) {
    const auto now = unix_now();
    const auto input = base64url(R"({"alg":"HS256","typ":"JWT","kid":"k1"})") + "." +
                       base64url(fmt::format(R"({{"sub":"{}","iat":{},"exp":{},"aud":"{}"}})", user, now, now + 3600,
                                             kAudience));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), kSecret, static_cast<int>(std::strlen(kSecret)),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &length);
    return input + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), length));
}

std::shared_ptr<const sluice::config::rules::RuleSet> bench_rules(const char* yaml = kRules) {
    auto compiled = sluice::config::rules::RuleSet::compile(yaml, "bench-rules.yaml", {"1#"});
    if (!compiled.rules) {
        throw std::runtime_error("the bench rules do not compile");
    }
    return compiled.rules;
}

std::unique_ptr<sluice::http::Server> start_server(const std::string& storage,
                                                   std::shared_ptr<sluice::sync::CheckpointHub> hub,
                                                   sluice::http::ServerOptions options = {},
                                                   std::shared_ptr<const sluice::config::rules::RuleSet> rules = {}) {
    sluice::config::AuthConfig auth;
    auth.audience = {kAudience};
    auth.keys = {{"k1", "HS256", kSecret, ""}};
    auth.leeway_seconds = 60;
    auth.max_lifetime_seconds = 86400;
    auto verifier = sluice::auth::TokenVerifier::create(auth, unix_now);
    if (!verifier) {
        throw std::runtime_error(verifier.status().to_string());
    }
    sluice::http::ServerDeps deps;
    deps.rules = std::make_shared<const sluice::sync::RulesSource>(rules ? std::move(rules) : bench_rules());
    deps.verifier = std::move(verifier).value();
    deps.storage = sluice::sync::StoragePool::for_conninfo(storage);
    deps.hub = std::move(hub);
    options.port = 0;
    auto started = sluice::http::Server::start(options, deps);
    if (!started) {
        throw std::runtime_error(started.status().to_string());
    }
    return std::move(started).value();
}

// ~100 bytes of row JSON, like the replicator writes for items(id, owner, payload).
std::string row_json(long i) {
    return fmt::format(R"({{"id":"item-{:08}","owner":"owner-{:03}","payload":"{:064}"}})", i, i % 1000, i * 7919);
}

// Writes `count` rows into bucket 1#global[] and returns the checkpoint's op_id.
std::int64_t fill_global_bucket(const std::string& storage, long count) {
    auto writer = sluice::storage::BucketWriter::open(storage, {"bench", 20000});
    if (!writer) {
        throw std::runtime_error(writer.status().to_string());
    }
    for (long i = 0; i < count; ++i) {
        if (i % 1000 == 0) {  // one query for the stored state of the next 1000 rows, not one per row
            std::vector<sluice::core::RowKey> keys;
            for (long k = i; k < std::min(count, i + 1000); ++k) {
                keys.push_back({"public.items", fmt::format(R"(["item-{:08}"])", k)});
            }
            if (auto s = writer.value()->prefetch(keys); !s) {
                throw std::runtime_error(s.to_string());
            }
        }
        sluice::core::EvaluatedChange change;
        change.row = {"public.items", fmt::format(R"(["item-{:08}"])", i)};
        change.stored = row_json(i);
        change.placements.push_back({"1#global[]", "items", fmt::format("item-{:08}", i), row_json(i)});
        if (auto s = writer.value()->apply(change); !s) {
            throw std::runtime_error(s.to_string());
        }
    }
    auto checkpoint = writer.value()->commit(sluice::protocol::Lsn(1));
    if (!checkpoint) {
        throw std::runtime_error(checkpoint.status().to_string());
    }
    return checkpoint->op_id;
}

long rss_kb(pid_t pid) {
    std::ifstream status(pid == 0 ? std::string("/proc/self/status") : fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with("VmRSS:")) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

// ---------------------------------------------------------------------------------------------
// download

// Reads one POST /sync/stream response until checkpoint_complete; returns the ops received.
std::size_t stream_until_complete(std::uint16_t port, const std::string& token, std::size_t& bytes) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("cannot connect to the server");
    }
    const std::string body = R"({"buckets":[],"raw_data":true,"include_checksum":true})";
    const auto request = fmt::format(
        "POST /sync/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Accept: application/x-ndjson\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{}",
        token, body.size(), body);
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
        throw std::runtime_error("cannot send the request");
    }
    // Incremental de-chunking; lines are scanned as they complete.
    std::string raw;
    std::string line;
    bool head_done = false;
    std::size_t chunk_left = 0;
    std::size_t ops = 0;
    std::vector<char> buffer(1 << 20);
    for (;;) {
        const auto n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n <= 0) {
            ::close(fd);
            throw std::runtime_error("the stream ended before checkpoint_complete");
        }
        bytes += static_cast<std::size_t>(n);
        raw.append(buffer.data(), static_cast<std::size_t>(n));
        std::size_t at = 0;
        if (!head_done) {
            const auto end = raw.find("\r\n\r\n");
            if (end == std::string::npos) {
                continue;
            }
            if (raw.compare(0, 12, "HTTP/1.1 200") != 0) {
                throw std::runtime_error("unexpected response: " + raw.substr(0, end));
            }
            head_done = true;
            at = end + 4;
        }
        for (;;) {
            if (chunk_left == 0) {
                const auto eol = raw.find("\r\n", at);
                if (eol == std::string::npos) {
                    break;
                }
                if (eol == at) {  // the CRLF after a chunk's data
                    at += 2;
                    continue;
                }
                chunk_left = std::stoul(raw.substr(at, eol - at), nullptr, 16);
                at = eol + 2;
                if (chunk_left == 0) {
                    ::close(fd);
                    throw std::runtime_error("the stream ended before checkpoint_complete");
                }
            }
            const std::size_t take = std::min(chunk_left, raw.size() - at);
            if (take == 0) {
                break;
            }
            std::string_view data(raw.data() + at, take);
            at += take;
            chunk_left -= take;
            for (;;) {
                const auto nl = data.find('\n');
                if (nl == std::string_view::npos) {
                    line.append(data);
                    break;
                }
                line.append(data.substr(0, nl));
                data.remove_prefix(nl + 1);
                if (line.starts_with(R"({"data":)")) {
                    for (auto p = line.find(R"("op_id")"); p != std::string::npos; p = line.find(R"("op_id")", p + 7)) {
                        ++ops;
                    }
                } else if (line.starts_with(R"({"checkpoint_complete":)")) {
                    ::close(fd);
                    return ops;
                } else if (line.starts_with(R"({"error":)")) {
                    throw std::runtime_error("the server sent " + line);
                }
                line.clear();
            }
        }
        raw.erase(0, at);
    }
}

void phase_download(long count) {
    const auto storage = fresh_storage("bench_serve_download");
    const auto t_fill = Clock::now();
    const auto checkpoint = fill_global_bucket(storage, count);
    fmt::print("  (wrote {} ops with BucketWriter in {:.1f} s)\n", count,
               std::chrono::duration<double>(Clock::now() - t_fill).count());
    exec(storage, "VACUUM ANALYZE");
    auto hub = std::make_shared<sluice::sync::CheckpointHub>();
    hub->publish(checkpoint);
    auto server = start_server(storage, hub);
    const auto token = mint_token("reader");
    std::vector<double> rates;
    for (int run = 0; run < 5; ++run) {
        std::size_t bytes = 0;
        const auto start = Clock::now();
        const auto ops = stream_until_complete(server->port(), token, bytes);
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        if (ops != static_cast<std::size_t>(count)) {
            throw std::runtime_error(fmt::format("received {} ops, expected {}", ops, count));
        }
        rates.push_back(static_cast<double>(ops) / seconds);
        fmt::print("  run {}: {} ops, {:.1f} MB in {:.3f} s\n", run + 1, ops, static_cast<double>(bytes) / 1e6, seconds);
    }
    std::sort(rates.begin(), rates.end());
    const double median = rates[rates.size() / 2];
    print_row(fmt::format("initial download of {} ops over /sync/stream (median of 5)", count),
              fmt::format("{:.0f} ops/s", median), ">= 150000 ops/s", median >= 150000);
}

// ---------------------------------------------------------------------------------------------
// idle

void raise_fd_limit() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
}

// The child process of the idle phase: opens `count` sessions, each until its first
// checkpoint_complete, prints "ready" and keeps them open (answering pings) until stdin closes.
int idle_clients(std::uint16_t port, std::size_t count) {
    raise_fd_limit();
    std::size_t synced = 0;
    const auto token = mint_token("idle");
    WsSwarm swarm(port, token, kSyncRequest, [&](std::size_t, std::string_view message) {
        if (message.starts_with(R"({"checkpoint_complete":)")) {
            ++synced;
        }
    });
    const auto deadline = Clock::now() + std::chrono::minutes(5);
    if (!swarm.open(count, 200, deadline) || !swarm.poll_until([&] { return synced >= count; }, deadline)) {
        std::fprintf(stderr, "idle clients: %zu of %zu synced, %zu closed\n", synced, count, swarm.closed());
        return 1;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    ::fcntl(0, F_SETFL, O_NONBLOCK);
    for (;;) {
        char c = 0;
        const auto n = ::read(0, &c, 1);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            return 0;
        }
        swarm.poll(std::chrono::milliseconds(100));
    }
}

void phase_idle(std::size_t sessions, const char* self) {
    raise_fd_limit();
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < sessions + 200) {
        fmt::print("  (the open-file limit is {}: raise it for {} sessions)\n", limit.rlim_cur, sessions);
    }
    const auto storage = fresh_storage("bench_serve_idle");
    auto hub = std::make_shared<sluice::sync::CheckpointHub>();
    hub->publish(fill_global_bucket(storage, 10));
    sluice::http::ServerOptions options;
    options.max_connections = sessions + 100;
    options.max_connections_per_user = sessions + 100;
    auto server = start_server(storage, hub, options);

    // Warm up: a few sessions, so the baseline holds the pool, the allocator's arenas and the threads.
    auto run_child = [&](std::size_t count, int& to_child, int& from_child) {
        int in[2];
        int out[2];
        if (::pipe(in) != 0 || ::pipe(out) != 0) {
            throw std::runtime_error("pipe");
        }
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, in[0], 0);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        posix_spawn_file_actions_addclose(&actions, in[1]);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        const auto port = std::to_string(server->port());
        const auto n = std::to_string(count);
        std::vector<char*> argv{const_cast<char*>(self), const_cast<char*>("--idle-clients"), const_cast<char*>(port.c_str()),
                                const_cast<char*>(n.c_str()), nullptr};
        pid_t pid = 0;
        if (posix_spawn(&pid, self, &actions, nullptr, argv.data(), environ) != 0) {
            throw std::runtime_error("cannot start the client process");
        }
        posix_spawn_file_actions_destroy(&actions);
        ::close(in[0]);
        ::close(out[1]);
        to_child = in[1];
        from_child = out[0];
        char line[16] = {};
        const auto got = ::read(from_child, line, sizeof line - 1);
        if (got < 5 || std::string_view(line, 5) != "ready") {
            throw std::runtime_error("the client process failed");
        }
        return pid;
    };
    auto end_child = [](pid_t pid, int to_child, int from_child) {
        ::close(to_child);
        ::close(from_child);
        int status = 0;
        ::waitpid(pid, &status, 0);
    };

    int to_child = -1;
    int from_child = -1;
    auto pid = run_child(50, to_child, from_child);
    end_child(pid, to_child, from_child);
    while (server->stats().sessions_active.load() != 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const long before = rss_kb(0);
    const auto heap_before = mallinfo2().uordblks;
    const auto start = Clock::now();
    pid = run_child(sessions, to_child, from_child);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::this_thread::sleep_for(std::chrono::seconds(1));  // let the last writes finish before measuring
    const long after = rss_kb(0);
    const auto heap_after = mallinfo2().uordblks;
    const auto active = server->stats().sessions_active.load();
    end_child(pid, to_child, from_child);
    const double per_session = static_cast<double>(after - before) * 1024.0 / static_cast<double>(sessions);
    fmt::print("  ({} sessions opened and synced in {:.1f} s; {} active; server RSS {} MB -> {} MB; heap in use "
               "{:.1f} KB per session)\n",
               sessions, seconds, active, before / 1024, after / 1024,
               static_cast<double>(heap_after - heap_before) / 1024.0 / static_cast<double>(sessions));
    print_row(fmt::format("server memory per idle WebSocket session ({} sessions)", sessions),
              fmt::format("{:.1f} KB", per_session / 1024.0), "<= 20 KB", per_session <= 20.0 * 1024);
}

// ---------------------------------------------------------------------------------------------
// fanout

void phase_fanout(std::size_t clients, int probes, bool with_client_id) {
    const auto source = fresh("bench_serve_fanout_source");
    const auto storage = fresh_storage("bench_serve_fanout_storage");
    exec(source, "CREATE TABLE items (id text PRIMARY KEY, owner text NOT NULL, payload text NOT NULL)");
    exec(source, "INSERT INTO items SELECT 'item-' || g, 'owner-' || (g % 1000), repeat(md5(g::text), 2) "
                 "FROM generate_series(1, 100) g");
    sluice::app::ReplicatorConfig rc;
    rc.source_conninfo = source;
    rc.storage_conninfo = storage;
    rc.slot = "bench_serve_fanout";
    rc.publication = "bench_serve";
    rc.rules = bench_rules();
    sluice::app::Replicator replicator(rc);
    std::atomic<bool> stop{false};
    std::thread replicator_thread([&] {
        if (auto s = replicator.run(stop); !s) {
            fmt::print(stderr, "replicator: {}\n", s.to_string());
        }
    });
    auto hub = std::make_shared<sluice::sync::CheckpointHub>();
    sluice::storage::CheckpointListener listener(
        storage, [hub](const sluice::storage::ActiveCheckpoint& c) { hub->publish(c.op_id); });
    sluice::http::ServerOptions options;
    options.max_connections = clients + 100;
    options.max_connections_per_user = clients + 100;
    auto server = start_server(storage, hub, options);
    const auto ready_deadline = Clock::now() + std::chrono::minutes(2);
    while (hub->latest() == 0 && Clock::now() < ready_deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }

    struct Probe {
        std::string id;
        Clock::time_point committed;
        std::vector<char> seen;             // per client: saw the probe row, waiting for checkpoint_complete
        std::vector<double> latencies_ms;  // one per client
    };
    Probe probe;
    // When the hub heard of each checkpoint: splits the latency into replication and serving.
    std::mutex published_mutex;
    std::vector<std::pair<std::int64_t, Clock::time_point>> published;
    auto subscription = hub->subscribe([&](std::int64_t op_id) {
        std::lock_guard lock(published_mutex);
        published.emplace_back(op_id, Clock::now());
    });
    std::vector<double> replication_ms;
    std::size_t synced = 0;
    std::vector<char> client_synced(clients, 0);
    WsSwarm swarm(server->port(), mint_token("fan"), with_client_id ? kSdkSyncRequest : kSyncRequest,
                  [&](std::size_t client, std::string_view message) {
        if (message.starts_with(R"({"checkpoint_complete":)")) {
            if (client_synced[client] == 0) {
                client_synced[client] = 1;
                ++synced;
            }
            if (!probe.id.empty() && probe.seen[client] == 1) {
                probe.seen[client] = 2;
                probe.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - probe.committed).count());
            }
        } else if (!probe.id.empty() && probe.seen[client] == 0 && message.starts_with(R"({"data":)") &&
                   message.find(probe.id) != std::string_view::npos) {
            probe.seen[client] = 1;
        }
    });
    const auto deadline = Clock::now() + std::chrono::minutes(3);
    if (!swarm.open(clients, 200, deadline) || !swarm.poll_until([&] { return synced == clients; }, deadline)) {
        throw std::runtime_error(fmt::format("only {} of {} clients synced", synced, clients));
    }
    pqxx::connection writer(source);
    std::vector<double> all;
    auto cpu_ms = [] {
        rusage usage{};
        ::getrusage(RUSAGE_SELF, &usage);
        return (static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
                static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3);
    };
    const double cpu_start = cpu_ms();
    for (int p = 0; p < probes; ++p) {
        probe.id = fmt::format(R"("object_id":"probe-{}")", p);
        probe.seen.assign(clients, 0);
        probe.latencies_ms.clear();
        {
            pqxx::work tx(writer);
            // As in production: the commit flushes WAL, so the WAL sender sends it at once (the private
            // cluster runs with synchronous_commit off, which delays it up to wal_writer_delay).
            tx.exec0("SET LOCAL synchronous_commit = on");
            tx.exec_params0("INSERT INTO items VALUES ($1, 'owner-0', repeat('x', 64))", fmt::format("probe-{}", p));
            tx.commit();
        }
        probe.committed = Clock::now();
        if (!swarm.poll_until([&] { return probe.latencies_ms.size() == clients; }, Clock::now() + std::chrono::seconds(60))) {
            throw std::runtime_error(fmt::format("probe {} reached {} of {} clients", p, probe.latencies_ms.size(), clients));
        }
        {
            std::lock_guard lock(published_mutex);
            for (const auto& [op_id, at] : published) {
                if (at >= probe.committed) {
                    replication_ms.push_back(std::chrono::duration<double, std::milli>(at - probe.committed).count());
                    break;
                }
            }
            published.clear();
        }
        all.insert(all.end(), probe.latencies_ms.begin(), probe.latencies_ms.end());
        swarm.poll(std::chrono::milliseconds(100));  // a pause between probes
    }
    std::sort(all.begin(), all.end());
    auto pct = [&](double q) { return all[std::min(all.size() - 1, static_cast<std::size_t>(q * static_cast<double>(all.size())))]; };
    const double cpu_per_probe = (cpu_ms() - cpu_start) / probes;
    fmt::print("  (this process, server and clients, used {:.1f} ms of CPU per probe; load average {})\n", cpu_per_probe,
               [] {
                   std::ifstream in("/proc/loadavg");
                   std::string first;
                   in >> first;
                   return first;
               }());
    std::sort(replication_ms.begin(), replication_ms.end());
    fmt::print("  ({} probes x {} clients; min {:.1f} ms, max {:.1f} ms; commit to checkpoint in the hub: median {:.1f} ms)\n",
               probes, clients, all.front(), all.back(),
               replication_ms.empty() ? -1.0 : replication_ms[replication_ms.size() / 2]);
    const char* how = with_client_id ? "with client_id" : "no client_id";
    print_row(fmt::format("commit to checkpoint_complete at {} WebSocket clients ({}), p50", clients, how),
              fmt::format("{:.1f} ms", pct(0.50)), "", true);
    print_row(fmt::format("commit to checkpoint_complete at {} WebSocket clients ({}), p99", clients, how),
              fmt::format("{:.1f} ms", pct(0.99)), "<= 100 ms", pct(0.99) <= 100.0);
    server.reset();
    stop = true;
    replicator_thread.join();
    for (int attempt = 0; attempt < 100; ++attempt) {  // free the slot; its WAL sender may take a moment to exit
        try {
            exec(source, "SELECT pg_drop_replication_slot('bench_serve_fanout')");
            break;
        } catch (const std::exception&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
}

}  // namespace

namespace {

// Sync Streams (issue 8): the time from sending update_subscriptions on a connection with 100
// active subscriptions to the checkpoint_complete that answers it, alternately subscribing to one
// more project (10 rows to download) and unsubscribing from it. Storage is filled directly through
// the rules (3,000 items in 300 projects; the user is a member of every project).
constexpr const char* kStreamRules = R"(config:
  edition: 3
streams:
  project_items:
    query: SELECT * FROM items WHERE project_id = subscription.parameter('p') AND project_id IN (SELECT project_id FROM members WHERE user_id = auth.user_id())
)";

std::int64_t fill_through_rules(const std::string& storage,
                                std::shared_ptr<const sluice::config::rules::RuleSet> rules) {
    auto writer = sluice::storage::BucketWriter::open(storage, {"bench", 20000});
    if (!writer) {
        throw std::runtime_error(writer.status().to_string());
    }
    sluice::router::Router router(rules);
    auto add = [&](const std::string& table, const std::string& json) {
        std::string error;
        auto row = sluice::config::rules::json_object_to_row(json, &error);
        if (!row) {
            throw std::runtime_error(error);
        }
        sluice::core::EvaluatedChange change;
        change.row = {"public." + table, "[\"" + row->find("id")->to_text().value() + "\"]"};
        change.stored = json;
        router.evaluate({"public", table}, *row, change);
        if (auto s = writer.value()->apply(change); !s) {
            throw std::runtime_error(s.to_string());
        }
    };
    for (int p = 0; p < 300; ++p) {
        add("members", fmt::format(R"({{"id":"m{0}","project_id":"p{0}","user_id":"user-0"}})", p));
        for (int i = 0; i < 10; ++i) {
            add("items", fmt::format(R"({{"id":"i{0}-{1}","project_id":"p{0}","payload":"{2:064}"}})", p, i, p * 10 + i));
        }
    }
    auto checkpoint = writer.value()->commit(sluice::protocol::Lsn(1));
    if (!checkpoint) {
        throw std::runtime_error(checkpoint.status().to_string());
    }
    return checkpoint->op_id;
}

std::string project_subscriptions(int count, int extra) {
    std::string out = R"({"include_defaults":true,"subscriptions":[)";
    for (int p = 0; p < count; ++p) {
        out += fmt::format(R"({}{{"stream":"project_items","parameters":{{"p":"p{}"}}}})", p == 0 ? "" : ",", p);
    }
    if (extra >= 0) {
        out += fmt::format(R"(,{{"stream":"project_items","parameters":{{"p":"p{}"}}}})", extra);
    }
    return out + "]}";
}

void phase_subscribe(int probes) {
    namespace beast = boost::beast;
    const auto storage = fresh_storage("bench_subscribe_storage");
    auto rules = bench_rules(kStreamRules);
    auto hub = std::make_shared<sluice::sync::CheckpointHub>();
    hub->publish(fill_through_rules(storage, rules));
    auto server = start_server(storage, hub, {}, rules);

    boost::asio::io_context ioc;
    beast::websocket::stream<boost::asio::ip::tcp::socket> ws(ioc);
    ws.next_layer().connect({boost::asio::ip::make_address("127.0.0.1"), server->port()});
    ws.next_layer().set_option(boost::asio::ip::tcp::no_delay(true));
    ws.set_option(beast::websocket::stream_base::decorator([](beast::websocket::request_type& request) {
        request.set(beast::http::field::authorization, "Bearer " + mint_token("user-0"));
    }));
    ws.handshake("127.0.0.1", "/sync/ws");
    ws.read_message_max(64 << 20);
    beast::flat_buffer buffer;
    std::size_t rows = 0;
    auto until_complete = [&] {
        for (;;) {
            buffer.clear();
            ws.read(buffer);
            const auto text = beast::buffers_to_string(buffer.data());
            for (std::size_t at = text.find(R"("op":"PUT")"); at != std::string::npos; at = text.find(R"("op":"PUT")", at + 1)) {
                ++rows;
            }
            if (text.starts_with(R"({"checkpoint_complete")")) {
                return;
            }
        }
    };
    ws.text(true);
    ws.write(boost::asio::buffer(R"({"type":"sync_request","buckets":[],"raw_data":true,"streams":)" +
                                 project_subscriptions(100, -1) + "}"));
    until_complete();
    if (rows != 1000) {
        throw std::runtime_error(fmt::format("the initial sync brought {} rows, not 1000", rows));
    }
    std::vector<double> subscribe_ms;
    std::vector<double> unsubscribe_ms;
    for (int k = 0; k < probes; ++k) {
        const bool subscribe = k % 2 == 0;
        const auto message = R"({"type":"update_subscriptions","streams":)" +
                             project_subscriptions(100, subscribe ? 100 + (k / 2) % 200 : -1) + "}";
        const auto start = Clock::now();
        ws.write(boost::asio::buffer(message));
        until_complete();
        (subscribe ? subscribe_ms : unsubscribe_ms)
            .push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    ws.close(beast::websocket::close_code::normal);
    auto percentile = [](std::vector<double> v, double q) {
        std::sort(v.begin(), v.end());
        return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
    };
    for (const auto& [what, v] : {std::pair{"subscribe (+1 project, 10 rows)", &subscribe_ms},
                                  std::pair{"unsubscribe (-1 project)", &unsubscribe_ms}}) {
        print_row(fmt::format("{} with 100 active subscriptions, p50 / p99", what),
                  fmt::format("{:.2f} / {:.2f} ms", percentile(*v, 0.5), percentile(*v, 0.99)), "-", true);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 4 && std::string_view(argv[1]) == "--idle-clients") {
        return idle_clients(static_cast<std::uint16_t>(std::stoi(argv[2])), std::stoul(argv[3]));
    }
    std::string phase = "all";
    long ops = 100'000;
    std::size_t sessions = 10'000;
    std::size_t clients = 1'000;
    int probes = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view flag = argv[i];
        if (flag == "--phase") {
            phase = argv[i + 1];
        } else if (flag == "--ops") {
            ops = std::stol(argv[i + 1]);
        } else if (flag == "--sessions") {
            sessions = std::stoul(argv[i + 1]);
        } else if (flag == "--clients") {
            clients = std::stoul(argv[i + 1]);
        } else if (flag == "--probes") {
            probes = std::stoi(argv[i + 1]);
        } else {
            fmt::print(stderr, "unknown option {}\n", flag);
            return 2;
        }
    }
    const char* uri = std::getenv("SLUICE_BENCH_PG_URI");
    g_admin_uri = uri != nullptr ? uri : "postgresql://postgres@127.0.0.1:54329/postgres";
    sluice::core::set_log_level(sluice::core::LogLevel::kError);
    fmt::print("{:<60} {:>16}   {:<16} {}\n", "benchmark", "result", "target", "");
    try {
        if (phase == "all" || phase == "download") {
            phase_download(ops);
        }
        if (phase == "all" || phase == "idle") {
            phase_idle(sessions, "/proc/self/exe");
        }
        if (phase == "all" || phase == "subscribe") {
            phase_subscribe(std::max(probes * 20, 200));
        }
        if (phase == "all" || phase == "fanout") {
            phase_fanout(clients, probes, true);
            phase_fanout(clients, probes, false);
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "serving_bench: {}\n", e.what());
        return 1;
    }
    return 0;
}
