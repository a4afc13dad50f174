// Upload benchmark: single-op batches (a PUT each) from N concurrent clients over HTTP keep-alive
// to POST /upload on the real server (in-process) with the real Uploader against Postgres: applied
// ops/s and p50/p99 time to answer. Target (issue 6): >= 5,000 ops/s and p99 <= 20 ms, 50 clients.
// Needs a Postgres superuser URI in SLUICE_BENCH_PG_URI (default: the dev cluster on port 54329).
//   build/bench/upload_bench [--clients 50] [--seconds 10] [--connections 8]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <libpq-fe.h>
#include <pqxx/pqxx>

#include "bench/bench_db.h"
#include "migrations/migrations.h"
#include "server/core/log.h"
#include "server/http/server.h"
#include "server/storage/migrator.h"
#include "server/upload/uploader.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string g_admin_uri;

void exec(const std::string& uri, const std::string& sql) { sluice::bench::exec_sql(uri, sql); }
std::string fresh(const std::string& db) { return sluice::bench::fresh_database(g_admin_uri, db); }

// "Bearer u7" is user u7: the benchmark measures uploads, not JWT signatures.
class BenchVerifier final : public sluice::auth::TokenVerifier {
public:
    sluice::protocol::Result<sluice::auth::VerifiedToken> verify(std::string_view authorization) const override {
        const std::string user(authorization.substr(authorization.find(' ') + 1));
        return sluice::auth::VerifiedToken{user, R"({"sub":")" + user + R"("})", 4102444800};
    }
};

// One keep-alive HTTP/1.1 connection.
class Connection {
public:
    explicit Connection(std::uint16_t port) {
        m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            throw std::runtime_error("cannot connect to the server");
        }
    }
    ~Connection() { ::close(m_fd); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // POSTs and returns the response body; throws unless the status is 200.
    std::string post(const std::string& path, const std::string& auth, const std::string& body) {
        const std::string request = fmt::format(
            "POST {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: application/json\r\n"
            "Content-Length: {}\r\n\r\n{}",
            path, auth, body.size(), body);
        for (std::size_t sent = 0; sent < request.size();) {
            const auto n = ::send(m_fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) {
                throw std::runtime_error("send failed");
            }
            sent += static_cast<std::size_t>(n);
        }
        std::size_t header_end;
        while ((header_end = m_buffer.find("\r\n\r\n")) == std::string::npos) {
            fill();
        }
        const auto length_at = m_buffer.find("Content-Length: ");
        const std::size_t length = std::stoul(m_buffer.substr(length_at + 16));
        while (m_buffer.size() < header_end + 4 + length) {
            fill();
        }
        const bool ok = m_buffer.starts_with("HTTP/1.1 200");
        std::string response = m_buffer.substr(header_end + 4, length);
        m_buffer.erase(0, header_end + 4 + length);
        if (!ok) {
            throw std::runtime_error("upload failed: " + response);
        }
        return response;
    }

private:
    void fill() {
        char chunk[8192];
        const auto n = ::recv(m_fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
            throw std::runtime_error("connection closed");
        }
        m_buffer.append(chunk, static_cast<std::size_t>(n));
    }
    int m_fd = -1;
    std::string m_buffer;
};

double thread_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// CPU seconds (user + system) used so far by this process and by the Postgres backends serving the
// benchmark's databases (their command line names the database), from /proc: the machine may be
// shared, so the cost per op is reported beside the rate.
struct CpuSeconds {
    double sluice = 0;
    double postgres = 0;
};

std::string read_text(const std::string& path) {
    std::string text;
    if (FILE* f = std::fopen(path.c_str(), "rb")) {
        char chunk[4096];
        for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) {
            text.append(chunk, n);
        }
        std::fclose(f);
    }
    return text;
}

double proc_cpu_seconds(const std::string& stat_path) {
    const std::string text = read_text(stat_path);
    const auto close = text.rfind(')');
    if (close == std::string::npos) {
        return 0;
    }
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14 || i == 15) {  // utime, stime
            ticks += std::stod(field);
        }
    }
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

CpuSeconds cpu_now() {
    CpuSeconds out;
    out.sluice = proc_cpu_seconds("/proc/self/stat");
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) {
            continue;
        }
        const std::string text = read_text((entry.path() / "cmdline").string());
        if (text.starts_with("postgres: ") && text.find("sluice_bench_upload_") != std::string::npos) {
            out.postgres += proc_cpu_seconds((entry.path() / "stat").string());
        }
    }
    return out;
}

double load_average() {
    std::ifstream in("/proc/loadavg");
    double load = 0;
    in >> load;
    return load;
}

constexpr const char* kRules = R"YAML(
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner
    data:
      - SELECT * FROM items WHERE items.owner = bucket.owner
write_rules:
  items:
    insert: new.owner = request.user_id()
    update: old.owner = request.user_id() AND new.owner = old.owner
)YAML";

}  // namespace

int main(int argc, char** argv) {
    int clients = 50;
    int seconds = 10;
    int connections = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view arg = argv[i];
        if (arg == "--clients") {
            clients = std::stoi(argv[i + 1]);
        } else if (arg == "--seconds") {
            seconds = std::stoi(argv[i + 1]);
        } else if (arg == "--connections") {
            connections = std::stoi(argv[i + 1]);
        }
    }
    const char* uri = std::getenv("SLUICE_BENCH_PG_URI");
    g_admin_uri = uri != nullptr ? uri : "postgresql://postgres@127.0.0.1:54329/postgres";
    sluice::core::set_log_level(sluice::core::LogLevel::kWarn);
    try {
        const auto source = fresh("sluice_bench_upload_src");
        const auto storage = fresh("sluice_bench_upload_sto");
        exec(source, "CREATE TABLE items (id text PRIMARY KEY, owner text NOT NULL, value bigint, note text)");
        {
            pqxx::connection c(storage);
            if (auto s = sluice::storage::migrate(c, sluice::migrations::embedded()); !s) {
                throw std::runtime_error(s.status().to_string());
            }
        }
        auto compiled = sluice::config::rules::RuleSet::compile(kRules, "bench-rules.yaml");
        if (!compiled.rules) {
            throw std::runtime_error("the benchmark's rules do not compile");
        }
        sluice::upload::UploaderOptions uo;
        uo.source_conninfo = source;
        sluice::http::ServerDeps deps;
        deps.rules = std::make_shared<const sluice::sync::RulesSource>(compiled.rules);
        deps.verifier = std::make_shared<BenchVerifier>();
        deps.storage = sluice::sync::StoragePool::for_conninfo(storage);
        deps.hub = std::make_shared<sluice::sync::CheckpointHub>();
        deps.uploader = sluice::upload::Uploader::create(uo, compiled.rules);
        if (auto s = deps.uploader->prepare(); !s) {
            throw std::runtime_error(s.to_string());
        }
        sluice::http::ServerOptions options;
        options.port = 0;
        options.upload_threads = static_cast<std::size_t>(connections);
        auto server = sluice::http::Server::start(options, deps);
        if (!server) {
            throw std::runtime_error(server.status().to_string());
        }
        const auto port = server.value()->port();

        std::atomic<bool> measuring{false};
        std::atomic<bool> done{false};
        std::mutex mutex;
        std::vector<double> latencies_ms;
        std::atomic<std::uint64_t> errors{0};
        double clients_cpu = 0.0;  // CPU seconds of the load clients in the window (guarded by mutex)
        std::vector<std::thread> threads;
        for (int c = 0; c < clients; ++c) {
            threads.emplace_back([&, c] {
                std::vector<double> mine;
                // This thread's CPU time over the measured window (to the request boundaries).
                double cpu_from = -1.0;
                double cpu_used = 0.0;
                try {
                    Connection connection(port);
                    const std::string auth = fmt::format("Bearer u{}", c);
                    for (std::uint64_t n = 0; !done.load(); ++n) {
                        if (measuring.load() && cpu_from < 0.0) {
                            cpu_from = thread_cpu_seconds();
                        } else if (!measuring.load() && cpu_from >= 0.0 && cpu_used == 0.0) {
                            cpu_used = thread_cpu_seconds() - cpu_from;
                        }
                        const std::string body = fmt::format(
                            R"({{"client_id":"c{}","batch_id":"{}","ops":[{{"op":"PUT","type":"items","id":"i{}_{}","data":{{"owner":"u{}","value":{},"note":"bench"}}}}]}})",
                            c, n, c, n % 64, c, n);
                        const auto start = Clock::now();
                        const auto answer = connection.post("/upload", auth, body);
                        const auto ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
                        if (answer.find(R"("status":"applied")") == std::string::npos) {
                            errors++;
                        } else if (measuring.load()) {
                            mine.push_back(ms);
                        }
                    }
                } catch (const std::exception& e) {
                    errors++;
                    fmt::print(stderr, "client {}: {}\n", c, e.what());
                }
                if (cpu_from >= 0.0 && cpu_used == 0.0) {
                    cpu_used = thread_cpu_seconds() - cpu_from;  // the window ended during its last request
                }
                std::lock_guard lock(mutex);
                latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
                clients_cpu += cpu_used;
            });
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up: connections, catalog, plans
        measuring = true;
        const auto start = Clock::now();
        const auto cpu_before = cpu_now();
        std::this_thread::sleep_for(std::chrono::seconds(seconds));
        measuring = false;
        const auto cpu_after = cpu_now();
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        done = true;
        for (auto& t : threads) {
            t.join();
        }
        std::sort(latencies_ms.begin(), latencies_ms.end());
        const auto pct = [&](double p) {
            return latencies_ms.empty() ? 0.0
                                        : latencies_ms[std::min(latencies_ms.size() - 1,
                                                                static_cast<std::size_t>(p * latencies_ms.size()))];
        };
        const double rate = static_cast<double>(latencies_ms.size()) / elapsed;
        const auto& stats = deps.uploader->stats();
        fmt::print("{:<62} {:>12}   {}\n", "benchmark", "result", "target");
        fmt::print("{:<62} {:>12.0f}   >= 5000 ops/s {}\n",
                   fmt::format("uploads: applied single-op batches/s ({} clients, {} s)", clients, seconds), rate,
                   rate >= 5000 ? "ok" : "MISSED");
        fmt::print("{:<62} {:>9.2f} ms\n", "uploads: p50 time to answer", pct(0.50));
        fmt::print("{:<62} {:>9.2f} ms   <= 20 ms {}\n", "uploads: p99 time to answer", pct(0.99),
                   pct(0.99) <= 20.0 ? "ok" : "MISSED");
        const double ops = std::max<double>(1.0, static_cast<double>(latencies_ms.size()));
        const double sluice_us = (cpu_after.sluice - cpu_before.sluice) * 1e6 / ops;
        const double postgres_us = (cpu_after.postgres - cpu_before.postgres) * 1e6 / ops;
        const double clients_us = clients_cpu * 1e6 / ops;
        fmt::print("{:<62} {:>9.0f} us   (server {:.0f}, the load clients {:.0f}, Postgres backends {:.0f})\n",
                   "uploads: CPU per applied op", sluice_us + postgres_us, sluice_us - clients_us, clients_us,
                   postgres_us);
        fmt::print(
            "{:<62} {:>12.0f}   (machine load average now {:.1f}; {} cores)\n",
            "uploads: ops/s the CPU cost allows on the whole machine",
            static_cast<double>(std::thread::hardware_concurrency()) * 1e6 / std::max(1.0, sluice_us + postgres_us),
            load_average(), std::thread::hardware_concurrency());
        fmt::print("{:<62} {:>12}\n", "uploads: errors / retried attempts",
                   fmt::format("{} / {}", errors.load(), stats.retries.load()));
        server.value()->stop();
        return errors.load() == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "upload_bench: {}\n", e.what());
        return 1;
    }
}
