// COPY text-format encoding (see copy_rows.h). Escapes: backslash, newline, carriage return and
// tab get a backslash form; NULL is \N (Postgres docs, "COPY", File Formats / Text Format).
#include "server/storage/copy_rows.h"

#include <algorithm>
#include <charconv>

#include <pqxx/pqxx>
#include <pqxx/tablewriter>

namespace sluice::storage {

namespace {

constexpr bool needs_escape(char c) { return c == '\\' || c == '\n' || c == '\r' || c == '\t'; }

void append_escaped(std::string& out, std::string_view value) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (!needs_escape(c)) {
            continue;
        }
        out.append(value.data() + start, i - start);
        out += '\\';
        out += c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\';
        start = i + 1;
    }
    out.append(value.data() + start, value.size() - start);
}

}  // namespace

void CopyRows::separate() {
    if (m_row_started) {
        m_data += '\t';
    }
    m_row_started = true;
}

CopyRows& CopyRows::text(std::string_view value) {
    separate();
    append_escaped(m_data, value);
    return *this;
}

CopyRows& CopyRows::text_or_null(const std::optional<std::string>& value) {
    return value ? text(*value) : null();
}

CopyRows& CopyRows::integer(std::int64_t value) {
    separate();
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
    m_data.append(buffer, end);
    return *this;
}

CopyRows& CopyRows::null() {
    separate();
    m_data += "\\N";
    return *this;
}

void CopyRows::end_row() {
    m_data += '\n';
    m_row_started = false;
    ++m_rows;
}

void CopyRows::clear() {
    m_data.clear();
    m_rows = 0;
    m_row_started = false;
}

void copy_into(pqxx::transaction_base& tx, const std::string& table, const CopyRows& rows) {
    if (rows.empty()) {
        return;
    }
    // libpqxx 6.4 (Debian 12) keeps stream_to::write_raw_line private; tablewriter is its public
    // interface for lines that are already encoded. write_raw_line() appends the newline itself:
    // hand it whole lines in chunks of about 1 MiB, each without its last newline.
    constexpr std::size_t kChunk = 1 << 20;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    pqxx::tablewriter copy(tx, table);
#pragma GCC diagnostic pop
    std::string_view rest = rows.data();
    std::string chunk;
    while (!rest.empty()) {
        std::size_t end = rest.size();
        if (end > kChunk) {
            end = rest.find('\n', kChunk) + 1;
        }
        chunk.assign(rest.data(), end - 1);
        copy.write_raw_line(chunk);
        rest.remove_prefix(end);
    }
    copy.complete();
}

}  // namespace sluice::storage
