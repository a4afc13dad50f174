// Typed SQL values of the sync-rules dialect (SQLite-like: null, 64-bit integer, real, text, blob),
// with the conversions, comparisons and JSON/number formatting the compat doc specifies.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::config::rules {

enum class ValueType : std::uint8_t { kNull, kInteger, kReal, kText, kBlob };

class Value {
public:
    Value() = default;
    static Value null() { return {}; }
    static Value integer(std::int64_t v) {
        Value out;
        out.m_type = ValueType::kInteger;
        out.m_int = v;
        return out;
    }
    static Value real(double v) {
        Value out;
        out.m_type = ValueType::kReal;
        out.m_real = v;
        return out;
    }
    static Value text(std::string v) {
        Value out;
        out.m_type = ValueType::kText;
        out.m_bytes = std::move(v);
        return out;
    }
    static Value blob(std::string bytes) {
        Value out;
        out.m_type = ValueType::kBlob;
        out.m_bytes = std::move(bytes);
        return out;
    }
    static Value boolean(bool v) { return integer(v ? 1 : 0); }

    [[nodiscard]] ValueType type() const { return m_type; }
    [[nodiscard]] bool is_null() const { return m_type == ValueType::kNull; }
    [[nodiscard]] bool is_number() const { return m_type == ValueType::kInteger || m_type == ValueType::kReal; }
    [[nodiscard]] std::int64_t as_integer() const { return m_int; }  // only when type() == kInteger
    [[nodiscard]] double as_real() const { return m_real; }           // only when type() == kReal
    [[nodiscard]] const std::string& bytes() const { return m_bytes; }  // text (UTF-8) or blob bytes
    // Numeric value as a double (integers converted); 0 for other types.
    [[nodiscard]] double number() const {
        return m_type == ValueType::kInteger ? static_cast<double>(m_int) : m_type == ValueType::kReal ? m_real : 0.0;
    }

    // SQLite's typeof(): "null", "integer", "real", "text", "blob".
    [[nodiscard]] std::string_view type_name() const;
    // CAST(x AS TEXT): integers in decimal, reals as JavaScript prints them (3.0 -> "3"), blobs as
    // their bytes; null stays null (returns nullopt).
    [[nodiscard]] std::optional<std::string> to_text() const;

    friend bool operator==(const Value& a, const Value& b);  // identical type and content (not SQL =)

private:
    ValueType m_type = ValueType::kNull;
    std::int64_t m_int = 0;
    double m_real = 0.0;
    std::string m_bytes;
};

// A row of a source table: column name -> value, in the table's column order.
class Row {
public:
    Row() = default;
    Row(std::initializer_list<std::pair<std::string, Value>> columns) : m_columns(columns) {}

    // Sets a column, replacing an existing one of the same name.
    void set(std::string name, Value value);
    [[nodiscard]] const Value* find(std::string_view name) const {
        for (const auto& [n, v] : m_columns) {
            if (n == name) {
                return &v;
            }
        }
        return nullptr;
    }
    [[nodiscard]] std::size_t size() const { return m_columns.size(); }
    [[nodiscard]] auto begin() const { return m_columns.begin(); }
    [[nodiscard]] auto end() const { return m_columns.end(); }

private:
    std::vector<std::pair<std::string, Value>> m_columns;
};

// JavaScript's Number.prototype.toString for a double: 3 -> "3", 0.1 -> "0.1", 1e21 -> "1e+21".
[[nodiscard]] std::string format_real(double v);
void append_real(std::string& out, double v);

// Appends the JSON form of a value: numbers (integers exact, reals as JavaScript prints them, so 2
// and 2.0 give the same text), strings, null. Blobs have no JSON form and are written as null;
// non-finite reals too.
void append_json(std::string& out, const Value& v);
void append_json_string(std::string& out, std::string_view text);

// SQL comparison without type coercion. Both values must be non-null. Orders as SQLite does:
// numbers (integer and real compared by value) < text (bytewise) < blob (bytewise).
[[nodiscard]] int compare(const Value& a, const Value& b);
// SQL "=": false when either is null (NULL = NULL never matches), no coercion ('10' = 10 is false).
[[nodiscard]] bool sql_equal(const Value& a, const Value& b);
// SQLite truthiness: null -> nullopt; numbers non-zero; text and blobs by their numeric prefix.
[[nodiscard]] std::optional<bool> truthy(const Value& v);
// SQLite numeric conversion for arithmetic: text/blob by their longest numeric prefix ('12ab' -> 12,
// 'x' -> 0); numbers unchanged; null stays null.
[[nodiscard]] Value to_numeric(const Value& v);

}  // namespace sluice::config::rules
