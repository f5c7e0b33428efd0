#include "utf8.hpp"

#include <cstdint>
#include <cstring>

namespace napi_ownership::utf8 {

namespace {

constexpr bool is_continuation(unsigned char b) noexcept { return (b & 0xC0u) == 0x80u; }

}  // namespace

std::size_t valid_up_to(const unsigned char* bytes, std::size_t len) noexcept {
  std::size_t i = 0;
  while (i < len) {
    // ASCII fast path: 8 bytes at a time while none has the high bit set.
    while (i + 8 <= len) {
      std::uint64_t word;
      std::memcpy(&word, bytes + i, sizeof word);
      if ((word & UINT64_C(0x8080808080808080)) != 0) break;
      i += 8;
    }
    if (i >= len) break;

    const unsigned char lead = bytes[i];
    if (lead < 0x80u) {
      i += 1;
      continue;
    }
    // Allowed range of the second byte depends on the lead byte; the rest are plain continuations (80..BF).
    std::size_t width;
    unsigned char lo = 0x80u, hi = 0xBFu;
    if (lead >= 0xC2u && lead <= 0xDFu) {
      width = 2;
    } else if (lead == 0xE0u) {
      width = 3, lo = 0xA0u;  // E0 80..9F would be an overlong 2-byte form
    } else if (lead >= 0xE1u && lead <= 0xECu) {
      width = 3;
    } else if (lead == 0xEDu) {
      width = 3, hi = 0x9Fu;  // ED A0..BF would encode a surrogate
    } else if (lead >= 0xEEu && lead <= 0xEFu) {
      width = 3;
    } else if (lead == 0xF0u) {
      width = 4, lo = 0x90u;  // F0 80..8F would be an overlong 3-byte form
    } else if (lead >= 0xF1u && lead <= 0xF3u) {
      width = 4;
    } else if (lead == 0xF4u) {
      width = 4, hi = 0x8Fu;  // F4 90..BF would be above U+10FFFF
    } else {
      return i;  // 80..C1 (continuation or overlong lead) and F5..FF never start a sequence
    }
    if (len - i < width) return i;  // truncated
    const unsigned char second = bytes[i + 1];
    if (second < lo || second > hi) return i;
    for (std::size_t k = 2; k < width; ++k) {
      if (!is_continuation(bytes[i + k])) return i;
    }
    i += width;
  }
  return len;
}

}  // namespace napi_ownership::utf8
