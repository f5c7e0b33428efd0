// The C++ core: copies bytes into memory it owns and takes that memory back. No Node, no exceptions across the ABI.
#include "napi_ownership/cpp_core.h"

#include <cstring>
#include <new>

#include "napi_ownership/cpp_trace.hpp"
#include "utf8.hpp"

namespace {

void report(int32_t* status, size_t* offset, int32_t code, size_t at) noexcept {
  if (status != nullptr) *status = code;
  if (offset != nullptr) *offset = at;
}

}  // namespace

extern "C" char* cpp_string_alloc(size_t len) noexcept {
  if (len == static_cast<size_t>(-1)) return nullptr;  // len + 1 would wrap
  // Owned by the caller from here on; freed by cpp_free_string (or by cpp_string_seal, if the bytes are rejected).
  return new (std::nothrow) char[len + 1];
}

extern "C" char* cpp_string_seal(char* buf, size_t len, int32_t* status, size_t* offset) noexcept {
  if (buf == nullptr) {
    report(status, offset, CPP_CORE_STATUS_NULL_INPUT, 0);
    return nullptr;
  }
  buf[len] = '\0';
  const size_t first_nul = std::strlen(buf);  // == len unless a 0 byte sits inside the bytes
  if (first_nul != len) {
    delete[] buf;
    report(status, offset, CPP_CORE_STATUS_INTERIOR_NUL, first_nul);
    return nullptr;
  }
  const size_t valid = napi_ownership::utf8::valid_up_to(reinterpret_cast<const unsigned char*>(buf), len);
  if (valid != len) {
    delete[] buf;
    report(status, offset, CPP_CORE_STATUS_INVALID_UTF8, valid);
    return nullptr;
  }
  report(status, offset, CPP_CORE_STATUS_OK, 0);
  if (napi_ownership::trace_enabled()) napi_ownership::trace_address("C++ returning", buf);
  return buf;  // ownership moves to the caller: freed by cpp_free_string when the caller releases it
}

extern "C" char* cpp_print_and_return_len(const char* bytes, size_t len, int32_t* status, size_t* offset) noexcept {
  if (bytes == nullptr) {
    report(status, offset, CPP_CORE_STATUS_NULL_INPUT, 0);
    return nullptr;
  }
  if (napi_ownership::trace_enabled()) napi_ownership::trace_address("C++ received", bytes);
  char* copy = cpp_string_alloc(len);
  if (copy == nullptr) {
    report(status, offset, CPP_CORE_STATUS_ALLOC_FAILED, 0);
    return nullptr;
  }
  // Copy first, then validate the copy: the input may be a view of shared memory that another thread can change
  // while we read it, and what we must vouch for is what we return.
  std::memcpy(copy, bytes, len);
  return cpp_string_seal(copy, len, status, offset);  // ours until it returns; then the caller's (or already freed)
}

extern "C" char* cpp_print_and_return(const char* input) noexcept {
  if (input == nullptr) return nullptr;
  // A NUL-terminated input cannot hold an interior NUL, so the only failures left are bad UTF-8 and allocation.
  return cpp_print_and_return_len(input, std::strlen(input), nullptr, nullptr);
}

extern "C" void cpp_free_string(char* s) noexcept {
#ifdef NAPI_OWNERSHIP_SEED_BUG_FREE_STRING_KEEPS
  // Seeded bug 2 (leak-test self-test builds only): free_string that does not free. The volatile store keeps the
  // optimiser from proving the allocation unused and deleting it, which would hide the leak.
  char* volatile forgotten = s;
  (void)forgotten;
#else
  delete[] s;  // the matching release for `new (std::nothrow) char[]` above; delete[] of NULL is a no-op
#endif
}
