// Lsn: a Postgres write-ahead-log position, written "X/Y" (two hex halves of a 64-bit value).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::protocol {

class Lsn {
public:
    constexpr Lsn() = default;
    constexpr explicit Lsn(std::uint64_t value) : m_value(value) {}

    // Parses "16/B374D848"; nullopt for anything else.
    [[nodiscard]] static std::optional<Lsn> parse(std::string_view text);
    [[nodiscard]] std::string to_string() const;
    [[nodiscard]] constexpr std::uint64_t value() const { return m_value; }

    constexpr auto operator<=>(const Lsn&) const = default;

private:
    std::uint64_t m_value = 0;
};

}  // namespace sluice::protocol
