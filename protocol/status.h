// Status and Result<T>: expected failures as values at layer edges. A Status carries a registered
// error code (protocol/error_codes.h), a message for people, and, for config and rules, the place in
// the source file it refers to.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include "protocol/error_codes.h"

namespace sluice::protocol {

// A position in a text file; line and column count from 1, 0 means unknown.
struct SourcePos {
    std::string file;
    int line = 0;
    int column = 0;

    [[nodiscard]] bool known() const { return line > 0; }
    // "file:line:col", or just "file" when the position is unknown.
    [[nodiscard]] std::string to_string() const;
};

class [[nodiscard]] Status {
public:
    Status() = default;  // ok
    Status(ErrorCode code, std::string message, SourcePos pos = {})
        : m_code(code), m_message(std::move(message)), m_pos(std::move(pos)) {}

    static Status ok() { return {}; }

    [[nodiscard]] bool is_ok() const { return m_code == ErrorCode::kOk; }
    explicit operator bool() const { return is_ok(); }
    [[nodiscard]] ErrorCode code() const { return m_code; }
    [[nodiscard]] const std::string& message() const { return m_message; }
    [[nodiscard]] const SourcePos& pos() const { return m_pos; }

    // "SL3003: <message>", prefixed with "file:line:col: " when the position is known.
    [[nodiscard]] std::string to_string() const;

private:
    ErrorCode m_code = ErrorCode::kOk;
    std::string m_message;
    SourcePos m_pos;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_value(std::move(value)) {}  // NOLINT(google-explicit-constructor): returns read naturally
    Result(Status status) : m_value(std::move(status)) { assert(!std::get<Status>(m_value).is_ok()); }  // NOLINT

    [[nodiscard]] bool is_ok() const { return std::holds_alternative<T>(m_value); }
    explicit operator bool() const { return is_ok(); }

    [[nodiscard]] T& value() & { return std::get<T>(m_value); }
    [[nodiscard]] const T& value() const& { return std::get<T>(m_value); }
    [[nodiscard]] T&& value() && { return std::get<T>(std::move(m_value)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }

    [[nodiscard]] const Status& status() const {
        static const Status kOk;
        return is_ok() ? kOk : std::get<Status>(m_value);
    }

private:
    std::variant<T, Status> m_value;
};

}  // namespace sluice::protocol
