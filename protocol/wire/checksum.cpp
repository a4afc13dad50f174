// Op checksums over OpenSSL's SHA-256 (see checksum.h).
#include "protocol/wire/checksum.h"

#include <openssl/sha.h>

#include <array>
#include <string>

namespace sluice::protocol::wire {
namespace {

std::uint32_t first_four_le(const std::string& input) {
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
    return static_cast<std::uint32_t>(digest[0]) | (static_cast<std::uint32_t>(digest[1]) << 8U) |
           (static_cast<std::uint32_t>(digest[2]) << 16U) | (static_cast<std::uint32_t>(digest[3]) << 24U);
}

// One buffer per thread, so hashing an op does not allocate once it has grown.
std::string& scratch() {
    thread_local std::string buffer;
    buffer.clear();
    return buffer;
}

}  // namespace

std::uint32_t put_checksum(std::string_view object_type, std::string_view object_id, std::string_view data) {
    std::string& input = scratch();
    input.reserve(6 + object_type.size() + object_id.size() + data.size());
    input.append("put.").append(object_type).append(".").append(object_id).append(".").append(data);
    return first_four_le(input);
}

std::uint32_t remove_checksum(std::string_view subkey) {
    std::string& input = scratch();
    input.append("delete.").append(subkey);
    return first_four_le(input);
}

}  // namespace sluice::protocol::wire
