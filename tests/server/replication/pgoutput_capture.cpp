// Captures real walsender CopyData frames (XLogData with pgoutput messages, and a keepalive) from a
// Postgres for the golden tests and fuzz seed corpus in tests/data/pgoutput/. Not a test itself.
//
//   pgoutput_capture <uri> <case dir>/<name> [--proto N] [--streaming] [--work-mem 64kB]
//
// Runs <name>.setup.sql, creates the slot pgoutput_capture, runs <name>.sql (which must end with
// SELECT pg_logical_emit_message(false, 'capture-end', '')), streams with publication "capture"
// until that message, asks for a keepalive, and writes <name>.frames (one frame in hex per line)
// and <name>.types (oid kind base for the non-built-in types).
#include <fstream>
#include <iostream>
#include <sstream>

#include "protocol/pgoutput/decoder.h"
#include "protocol/pgoutput/describe.h"
#include "server/replication/replication_setup.h"
#include "server/replication/wal_stream.h"

using namespace sluice;  // NOLINT(google-build-using-namespace): a small tool

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    return s.str();
}

template <typename T>
T check(protocol::Result<T> r, const char* what) {
    if (!r) {
        throw std::runtime_error(std::string(what) + ": " + r.status().to_string());
    }
    return std::move(r).value();
}

// Runs a file statement by statement (each statement ends with ';' at the end of a line), so that
// every statement outside BEGIN/COMMIT is its own transaction, as in psql.
void run_file(replication::PgConnection& sql, const std::string& path) {
    std::istringstream in(read_file(path));
    std::string statement;
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("--")) {
            continue;
        }
        statement += line + '\n';
        const auto end = line.find_last_not_of(" \t");
        const auto comment = line.find("--");
        const auto code_end = comment == std::string::npos ? end : line.find_last_not_of(" \t", comment - 1);
        if (code_end != std::string::npos && line[code_end] == ';') {
            check(sql.query(statement), path.c_str());
            statement.clear();
        }
    }
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc < 3) {
        std::cerr << "usage: pgoutput_capture <uri> <dir>/<name> [--proto N] [--streaming] [--work-mem X]\n";
        return 2;
    }
    const std::string uri = argv[1];
    const std::string base = argv[2];
    replication::StartOptions start;
    start.slot = "pgoutput_capture";
    start.publications = {"capture"};
    std::string options = replication::kSourceSessionOptions;
    for (int i = 3; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--proto" && i + 1 < argc) {
            start.proto_version = std::stoi(argv[++i]);
        } else if (arg == "--streaming") {
            start.streaming = true;
        } else if (arg == "--work-mem" && i + 1 < argc) {
            options += std::string(" -c logical_decoding_work_mem=") + argv[++i];
        }
    }
    auto sql = check(replication::PgConnection::open(uri, replication::ConnectionKind::kRegular, 10,
                                                     replication::kSourceSessionOptions),
                     "connect");
    check(sql.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = "
                    "'pgoutput_capture'"),
          "drop slot");
    run_file(sql, base + ".setup.sql");
    auto repl = check(replication::PgConnection::open(uri, replication::ConnectionKind::kReplication, 10, options),
                      "connect for replication");
    check(replication::ensure_slot(repl, start.slot), "create slot");
    run_file(sql, base + ".sql");

    auto stream = check(replication::WalStream::start(std::move(repl), start), "start replication");
    std::ofstream frames(base + ".frames");
    protocol::pgoutput::Decoder decoder;
    bool ended = false;
    int count = 0;
    while (!ended) {
        auto frame = check(stream.read_frame(std::chrono::seconds(20)), "read");
        if (!frame) {
            throw std::runtime_error("no 'capture-end' message within 20 s");
        }
        auto copy = check(protocol::pgoutput::decode_copy_data(*frame), "copy data");
        if (const auto* w = std::get_if<protocol::pgoutput::XLogData>(&copy)) {
            auto message = check(decoder.decode(w->payload), "decode");
            if (const auto* m = std::get_if<protocol::pgoutput::LogicalMessage>(&message);
                m != nullptr && m->prefix == "capture-end") {
                ended = true;
            }
        }
        frames << protocol::pgoutput::to_hex(*frame) << '\n';
        ++count;
    }
    // Ask for a keepalive so that the corpus has one ('k'); confirm nothing.
    if (auto s = stream.send_status({{}, {}, {}, replication::pg_now(), true}); !s) {
        throw std::runtime_error(s.to_string());
    }
    for (int i = 0; i < 50; ++i) {
        auto frame = check(stream.read_frame(std::chrono::seconds(5)), "read keepalive");
        if (!frame) {
            break;
        }
        frames << protocol::pgoutput::to_hex(*frame) << '\n';
        ++count;
        if ((*frame)[0] == 'k') {
            break;
        }
    }
    stream.finish();

    auto types = check(sql.query("SELECT oid, typtype, typbasetype, typelem, typcategory FROM pg_type WHERE oid >= "
                                 "16384 AND typnamespace <> 'pg_toast'::regnamespace ORDER BY oid"),
                       "types");
    std::ofstream types_out(base + ".types");
    for (const auto& row : types) {
        const auto& typtype = row[1].value_or("");
        if (typtype == "d") {
            types_out << *row[0] << " domain " << *row[2] << '\n';
        } else if (typtype == "e") {
            types_out << *row[0] << " enum 0\n";
        } else if (row[4].value_or("") == "A") {
            types_out << *row[0] << " array " << *row[3] << '\n';
        }
    }
    check(sql.query("SELECT pg_drop_replication_slot('pgoutput_capture')"), "drop slot");
    std::cout << "captured " << count << " frames into " << base << ".frames\n";
    return 0;
} catch (const std::exception& e) {
    std::cerr << "pgoutput_capture: " << e.what() << '\n';
    return 1;
}
