// Op and bucket checksums of the PowerSync sync protocol (see protocol/README.md, "Checksums"): the
// first 4 bytes, little-endian, of a SHA-256; buckets add them up modulo 2^32.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::protocol::wire {

// sha256("put." + object_type + "." + object_id + "." + data), first 4 bytes little-endian.
[[nodiscard]] std::uint32_t put_checksum(std::string_view object_type, std::string_view object_id,
                                         std::string_view data);

// sha256("delete." + subkey), first 4 bytes little-endian.
[[nodiscard]] std::uint32_t remove_checksum(std::string_view subkey);

// A bucket checksum: the wrapping 32-bit sum of its op checksums.
[[nodiscard]] constexpr std::uint32_t add_checksum(std::uint32_t sum, std::uint32_t op) { return sum + op; }

// Checkpoint lines print bucket checksums as signed 32-bit integers, data lines print op
// checksums unsigned; both are the same 32 bits.
[[nodiscard]] constexpr std::int32_t checksum_to_signed(std::uint32_t value) {
    return static_cast<std::int32_t>(value);
}
[[nodiscard]] constexpr std::uint32_t checksum_from_signed(std::int32_t value) {
    return static_cast<std::uint32_t>(value);
}

}  // namespace sluice::protocol::wire
