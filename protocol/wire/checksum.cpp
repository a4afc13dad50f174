// Op checksums over OpenSSL's SHA-256 (see checksum.h).
//
// One digest context per thread, with the algorithm fetched once: OpenSSL 3's one-shot SHA256()
// looks the algorithm up in its provider tables on every call, behind a lock. That lookup cost
// more than the hash of a ~100-byte op and was 3-4% of replication's CPU.
#include "protocol/wire/checksum.h"

#include <openssl/evp.h>

#include <array>
#include <initializer_list>
#include <stdexcept>

namespace sluice::protocol::wire {
namespace {

class Sha256 {
public:
    Sha256() : m_md(EVP_MD_fetch(nullptr, "SHA256", nullptr)), m_ctx(EVP_MD_CTX_new()) {
        if (m_md == nullptr || m_ctx == nullptr) {
            throw std::runtime_error("OpenSSL has no SHA-256");
        }
    }
    ~Sha256() {
        EVP_MD_CTX_free(m_ctx);
        EVP_MD_free(m_md);
    }
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    // The first 4 bytes, little-endian, of the hash of the parts one after the other.
    std::uint32_t first_four_le(std::initializer_list<std::string_view> parts) {
        std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
        bool ok = EVP_DigestInit_ex2(m_ctx, m_md, nullptr) == 1;
        for (const auto part : parts) {
            ok = ok && EVP_DigestUpdate(m_ctx, part.data(), part.size()) == 1;
        }
        ok = ok && EVP_DigestFinal_ex(m_ctx, digest.data(), nullptr) == 1;
        if (!ok) {
            throw std::runtime_error("SHA-256 failed");
        }
        return static_cast<std::uint32_t>(digest[0]) | (static_cast<std::uint32_t>(digest[1]) << 8U) |
               (static_cast<std::uint32_t>(digest[2]) << 16U) | (static_cast<std::uint32_t>(digest[3]) << 24U);
    }

private:
    EVP_MD* m_md;
    EVP_MD_CTX* m_ctx;
};

Sha256& hasher() {
    thread_local Sha256 instance;
    return instance;
}

}  // namespace

std::uint32_t put_checksum(std::string_view object_type, std::string_view object_id, std::string_view data) {
    return hasher().first_four_le({"put.", object_type, ".", object_id, ".", data});
}

std::uint32_t remove_checksum(std::string_view subkey) { return hasher().first_four_le({"delete.", subkey}); }

}  // namespace sluice::protocol::wire
