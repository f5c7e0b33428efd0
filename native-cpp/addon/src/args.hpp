// Argument readers the dispatcher exports share (send, post, produce): dest and message as NUL-terminated UTF-8,
// checked in the contract's order and wording (docs/raw-contract.md, "Subscriptions" and "Native-thread delivery").
#pragma once

#include <napi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "errors.hpp"
#include "fast.hpp"

namespace napi_ownership {

// The stack-buffer UTF-8 conversion of the fast path (fast.hpp says why it is raw).
using Utf8Arg = fast::Utf8Arg;

// Throws ERR_INTERIOR_NUL (naming `name`) if the UTF-8 holds a 0 byte: a C string would end there.
inline void reject_nul(Napi::Env env, const Utf8Arg& text, const char* name) {
  const char* const data = text.c_str();
  const std::size_t length = text.length();
  // Short strings (dests, most messages) with a plain loop: glibc's vectorised memchr costs more than the scan here.
  const char* nul = nullptr;
  if (length <= 64) {
    for (std::size_t i = 0; i < length; ++i) {
      if (data[i] == '\0') {
        nul = data + i;
        break;
      }
    }
  } else {
    nul = static_cast<const char*>(std::memchr(data, '\0', length));
  }
  if (nul != nullptr) errors::throw_interior_nul(env, name, static_cast<std::size_t>(nul - data));
}

// dest: a string, non-empty, without NUL (in that order).
inline void read_dest(Napi::Env env, Napi::Value value, Utf8Arg& dest) {
  if (!dest.read(env, value)) errors::throw_invalid_arg_type(env, "a non-empty string", "dest", value);
  if (dest.length() == 0) errors::throw_invalid_arg_value(env, "dest must be a non-empty string");
  reject_nul(env, dest, "dest");
}

// message: a string without NUL.
inline void read_message(Napi::Env env, Napi::Value value, Utf8Arg& message) {
  if (!message.read(env, value)) errors::throw_invalid_arg_type(env, "a string", "message", value);
  reject_nul(env, message, "message");
}

// An integer in [0, max] (a number; else TypeError ERR_INVALID_ARG_TYPE, or RangeError ERR_OUT_OF_RANGE).
inline std::uint32_t read_uint32(Napi::Env env, Napi::Value value, const char* name, std::uint32_t max) {
  if (!value.IsNumber()) errors::throw_invalid_arg_type(env, "a number", name, value);
  const double number = value.As<Napi::Number>().DoubleValue();
  // NaN fails every comparison, so it lands here too.
  if (!(number >= 0.0 && number <= static_cast<double>(max) && std::trunc(number) == number)) {
    errors::throw_out_of_range(env, name, 0, max, value);
  }
  return static_cast<std::uint32_t>(number);
}

}  // namespace napi_ownership
