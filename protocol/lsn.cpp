// Text form of Lsn, as Postgres prints pg_lsn values.
#include "protocol/lsn.h"

#include <charconv>

#include <fmt/format.h>

namespace sluice::protocol {

std::optional<Lsn> Lsn::parse(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size() || slash > 8 ||
        text.size() - slash - 1 > 8) {
        return std::nullopt;
    }
    std::uint32_t hi = 0;
    std::uint32_t lo = 0;
    const auto* first = text.data();
    const auto* mid = first + slash;
    const auto* last = first + text.size();
    auto r1 = std::from_chars(first, mid, hi, 16);
    auto r2 = std::from_chars(mid + 1, last, lo, 16);
    if (r1.ec != std::errc{} || r1.ptr != mid || r2.ec != std::errc{} || r2.ptr != last) {
        return std::nullopt;
    }
    return Lsn((static_cast<std::uint64_t>(hi) << 32U) | lo);
}

std::string Lsn::to_string() const { return fmt::format("{:X}/{:X}", m_value >> 32U, m_value & 0xFFFFFFFFU); }

}  // namespace sluice::protocol
