// A small strict UTF-8 validator (Unicode 15, Table 3-7 "Well-Formed UTF-8 Byte Sequences").
#pragma once

#include <cstddef>

namespace napi_ownership::utf8 {

// Returns the length of the longest valid UTF-8 prefix of bytes[0, len): `len` when everything is valid, otherwise the
// index of the first byte of the first ill-formed sequence (Rust's Utf8Error::valid_up_to). Rejects overlong forms,
// UTF-16 surrogates (U+D800..U+DFFF), code points above U+10FFFF, stray continuation bytes and truncated sequences.
std::size_t valid_up_to(const unsigned char* bytes, std::size_t len) noexcept;

}  // namespace napi_ownership::utf8
