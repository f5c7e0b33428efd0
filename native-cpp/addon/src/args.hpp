// Argument readers the dispatcher exports share (send, post, produce): dest and message as NUL-terminated UTF-8,
// checked in the contract's order and wording (docs/raw-contract.md, "Subscriptions" and "Native-thread delivery").
#pragma once

#include <napi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "binding.hpp"
#include "errors.hpp"

namespace napi_ownership {

// A JS string argument as a NUL-terminated UTF-8 C string, owned by this object (so by the export's stack frame):
// in a stack buffer up to kStackBytes, else in a heap buffer freed with it.
class Utf8Arg {
 public:
  Utf8Arg() = default;
  Utf8Arg(const Utf8Arg&) = delete;
  Utf8Arg& operator=(const Utf8Arg&) = delete;

  // False if `value` is not a string; any other failure throws.
  bool read(napi_env env, napi_value value) {
    // Node-API never writes a partial character, so with 4 bytes (the widest character) to spare, a result of at most
    // kStackBytes means the whole string is here.
    const napi_status status = napi_get_value_string_utf8(env, value, stack_, sizeof stack_, &length_);
    if (status == napi_string_expected) return false;
    check(env, status);
    if (length_ <= kStackBytes) {
      data_ = stack_;
      return true;
    }
    check(env, napi_get_value_string_utf8(env, value, nullptr, 0, &length_));
    heap_.reset(new (std::nothrow) char[length_ + 1]);
    if (!heap_) errors::throw_alloc(env, length_ + 1);
    check(env, napi_get_value_string_utf8(env, value, heap_.get(), length_ + 1, &length_));
    data_ = heap_.get();
    return true;
  }

  const char* c_str() const noexcept { return data_; }
  std::size_t length() const noexcept { return length_; }

  // Throws ERR_INTERIOR_NUL (naming `name`) if the UTF-8 holds a 0 byte: a C string would end there.
  void reject_nul(napi_env env, const char* name) const {
    // Short strings (dests, most messages) with a plain loop: glibc's vectorised memchr costs more than the scan here.
    const char* nul = nullptr;
    if (length_ <= 64) {
      for (std::size_t i = 0; i < length_; ++i) {
        if (data_[i] == '\0') {
          nul = data_ + i;
          break;
        }
      }
    } else {
      nul = static_cast<const char*>(std::memchr(data_, '\0', length_));
    }
    if (nul != nullptr) errors::throw_interior_nul(env, name, static_cast<std::size_t>(nul - data_));
  }

 private:
  static constexpr std::size_t kStackBytes = 256;
  char stack_[kStackBytes + 4 + 1];
  std::unique_ptr<char[]> heap_;
  const char* data_ = nullptr;
  std::size_t length_ = 0;
};

// dest: a string, non-empty, without NUL (in that order).
inline void read_dest(napi_env env, napi_value value, Utf8Arg& dest) {
  if (!dest.read(env, value)) errors::throw_invalid_arg_type(env, "a non-empty string", "dest", value);
  if (dest.length() == 0) errors::throw_invalid_arg_value(env, "dest must be a non-empty string");
  dest.reject_nul(env, "dest");
}

// message: a string without NUL.
inline void read_message(napi_env env, napi_value value, Utf8Arg& message) {
  if (!message.read(env, value)) errors::throw_invalid_arg_type(env, "a string", "message", value);
  message.reject_nul(env, "message");
}

// An integer in [0, max] (a number; else TypeError ERR_INVALID_ARG_TYPE, or RangeError ERR_OUT_OF_RANGE).
inline std::uint32_t read_uint32(napi_env env, napi_value value, const char* name, std::uint32_t max) {
  napi_valuetype type;
  check(env, napi_typeof(env, value, &type));
  if (type != napi_number) errors::throw_invalid_arg_type(env, "a number", name, value);
  double number;
  check(env, napi_get_value_double(env, value, &number));
  // NaN fails every comparison, so it lands here too.
  if (!(number >= 0.0 && number <= static_cast<double>(max) && std::trunc(number) == number)) {
    errors::throw_out_of_range(env, name, 0, max, value);
  }
  return static_cast<std::uint32_t>(number);
}

}  // namespace napi_ownership
