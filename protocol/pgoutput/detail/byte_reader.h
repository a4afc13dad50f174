// A bounds-checked reader of big-endian integers, C strings and byte runs over one message (the
// pgoutput and walsender wire formats). Reads past the end never touch memory: they fail once,
// remember which field was being read, and every later read returns zeros.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::protocol::pgoutput::detail {

class ByteReader {
public:
    explicit ByteReader(std::string_view data) : m_data(data) {}

    std::uint8_t u8(const char* field) {
        if (!need(1, field)) {
            return 0;
        }
        return static_cast<std::uint8_t>(m_data[m_pos++]);
    }
    std::uint16_t u16(const char* field) { return static_cast<std::uint16_t>(big_endian(2, field)); }
    std::uint32_t u32(const char* field) { return static_cast<std::uint32_t>(big_endian(4, field)); }
    std::uint64_t u64(const char* field) { return big_endian(8, field); }
    std::int16_t i16(const char* field) { return static_cast<std::int16_t>(u16(field)); }
    std::int32_t i32(const char* field) { return static_cast<std::int32_t>(u32(field)); }
    std::int64_t i64(const char* field) { return static_cast<std::int64_t>(u64(field)); }

    // A NUL-terminated string (the terminator is consumed, not returned).
    std::string cstring(const char* field) {
        if (m_failed) {
            return {};
        }
        const auto end = m_data.find('\0', m_pos);
        if (end == std::string_view::npos) {
            fail(field, "no terminating NUL byte");
            return {};
        }
        std::string out(m_data.substr(m_pos, end - m_pos));
        m_pos = end + 1;
        return out;
    }

    // `n` raw bytes as a view into the message.
    std::string_view bytes(std::size_t n, const char* field) {
        if (!need(n, field)) {
            return {};
        }
        auto out = m_data.substr(m_pos, n);
        m_pos += n;
        return out;
    }
    std::string_view rest() {
        auto out = m_failed ? std::string_view{} : m_data.substr(m_pos);
        m_pos = m_data.size();
        return out;
    }

    // Marks the message invalid for a reason found by the caller (a bad tag or count).
    void fail(const char* field, std::string reason) {
        if (!m_failed) {
            m_failed = true;
            m_field = field;
            m_reason = std::move(reason);
            m_fail_pos = m_pos;
        }
    }

    [[nodiscard]] bool failed() const { return m_failed; }
    [[nodiscard]] std::size_t position() const { return m_pos; }
    [[nodiscard]] std::size_t remaining() const { return m_data.size() - m_pos; }
    [[nodiscard]] bool at_end() const { return m_pos == m_data.size(); }
    [[nodiscard]] const std::string& failed_field() const { return m_field; }
    [[nodiscard]] const std::string& failure_reason() const { return m_reason; }
    [[nodiscard]] std::size_t failure_position() const { return m_fail_pos; }

private:
    bool need(std::size_t n, const char* field) {
        if (m_failed) {
            return false;
        }
        if (m_data.size() - m_pos < n) {
            fail(field, "truncated: need " + std::to_string(n) + " byte(s), " + std::to_string(m_data.size() - m_pos) +
                            " left");
            return false;
        }
        return true;
    }
    std::uint64_t big_endian(std::size_t n, const char* field) {
        if (!need(n, field)) {
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            v = (v << 8U) | static_cast<std::uint8_t>(m_data[m_pos + i]);
        }
        m_pos += n;
        return v;
    }

    std::string_view m_data;
    std::size_t m_pos = 0;
    bool m_failed = false;
    std::string m_field;
    std::string m_reason;
    std::size_t m_fail_pos = 0;
};

}  // namespace sluice::protocol::pgoutput::detail
