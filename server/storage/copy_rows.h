// Rows in Postgres COPY text format, built in one buffer and sent in large chunks. libpqxx's
// stream_to escapes value by value through its generic machinery; for the op log (millions of
// short fields) that escaping was the writer's largest cost, so the storage layer encodes itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pqxx {
class transaction_base;
}

namespace sluice::storage {

class CopyRows {
public:
    CopyRows& text(std::string_view value);
    CopyRows& text_or_null(const std::optional<std::string>& value);
    CopyRows& integer(std::int64_t value);
    CopyRows& null();
    void end_row();

    [[nodiscard]] bool empty() const { return m_data.empty(); }
    [[nodiscard]] std::size_t rows() const { return m_rows; }
    // The encoded rows, each ending in a newline.
    [[nodiscard]] const std::string& data() const { return m_data; }
    void clear();

private:
    void separate();

    std::string m_data;
    std::size_t m_rows = 0;
    bool m_row_started = false;
};

// COPY table FROM STDIN with the rows, inside the transaction; no-op when there are none.
void copy_into(pqxx::transaction_base& tx, const std::string& table, const CopyRows& rows);

}  // namespace sluice::storage
