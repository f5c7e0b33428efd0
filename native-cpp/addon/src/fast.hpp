// THE FENCE: the only file pair (fast.hpp, fast.cpp) of the C++ addon that makes raw napi_* calls. Everything else is
// written on node-addon-api's types (Napi::Addon, Napi::Reference, Napi::TypedThreadSafeFunction, ...).
//
// What is here, and why (the measured cost is in fast.cpp's header):
// 1. The exports `print_and_return`, `free_string` and `noop`: plain napi_callback functions made with
//    napi_create_function, whose `data` is this environment's AddonState (so they need no instance-data lookup), and
//    exported by the Addon as InstanceValues. Their twins `print_and_return_idiomatic`, `free_string_idiomatic` and
//    `noop_idiomatic` are ordinary Addon instance methods (strings.cpp); `npm run bench` shows both.
// 2. Utf8Arg: a JS string as UTF-8 in a stack buffer (no allocation up to 256 bytes), for print_and_return and the
//    dispatcher's dest/message arguments (send, post are hot too). Napi::String::Utf8Value() builds a std::string:
//    two conversions (measure, then copy) and a heap allocation past 15 bytes. utf8_length / write_utf8: a long
//    string written straight into the buffer the core allocated for its copy (strings.cpp store_js_string), where
//    Utf8Value would add a std::string and a second copy.
// 3. call_collecting / throw_value / is_error: calling a JS function and carrying what it threw back AS IS, and
//    throwing a value as is. node-addon-api has no non-throwing call when C++ exceptions are on: a throw becomes a
//    Napi::Error, whose constructor makes a reference (or, for a primitive, a wrapper object) and whose Value()
//    probes the thrown value with napi_has_property (a thrown Proxy's `has` trap would run, inside our error path);
//    and Error::New cannot tell "the callback threw" from "JS can no longer run" (a terminating worker): it makes up
//    an Error for the latter, which we must not hand to anyone. is_error: node-addon-api has no napi_is_error.
#pragma once

#include <napi.h>

#include <cstddef>
#include <memory>

namespace napi_ownership {

struct AddonState;

namespace fast {

// A JS string argument as a NUL-terminated UTF-8 C string, owned by this object (so by the export's stack frame):
// in a stack buffer up to kStackBytes, else in a heap buffer freed with it.
class Utf8Arg {
 public:
  Utf8Arg() = default;
  Utf8Arg(const Utf8Arg&) = delete;
  Utf8Arg& operator=(const Utf8Arg&) = delete;

  // False if `value` is not a string; any other failure throws (Napi::Error).
  bool read(napi_env env, napi_value value);

  const char* c_str() const noexcept { return data_; }
  std::size_t length() const noexcept { return length_; }

 private:
  static constexpr std::size_t kStackBytes = 256;
  char stack_[kStackBytes + 4 + 1];
  std::unique_ptr<char[]> heap_;  // scratch for long strings, freed with this object
  const char* data_ = nullptr;
  std::size_t length_ = 0;
};

// The UTF-8 length of the string `value`, without the NUL. Any failure throws (Napi::Error).
std::size_t utf8_length(napi_env env, napi_value value);
// `value` (a string) as UTF-8 with a NUL into `buffer` of `size` bytes (NUL included), truncated at a character
// boundary to fit; the bytes written, without the NUL. Any failure throws (Napi::Error).
std::size_t write_utf8(napi_env env, napi_value value, char* buffer, std::size_t size);

enum class CallOutcome {
  kOk,         // returned
  kThrew,      // threw: `*thrown` is the value, and no exception is pending any more
  kCannotRun,  // JS can no longer run here (a terminating environment): nothing was called, nothing is pending
};
// function.call(receiver, arg), the thrown value (if any) taken off the environment as is.
CallOutcome call_collecting(napi_env env, napi_value function, napi_value receiver, napi_value arg,
                            napi_value* thrown) noexcept;

// napi_is_error: node-addon-api has no Value::IsError, and Object::InstanceOf would run JS (Symbol.hasInstance).
bool is_error(napi_env env, napi_value value) noexcept;

// Makes `value` the pending exception, as is (fails quietly if JS can no longer run: nobody to throw to).
void throw_value(napi_env env, napi_value value) noexcept;

// The three fast-path exports, as functions bound to `state` (their napi_create_function data).
Napi::Function print_and_return(Napi::Env env, AddonState* state);
Napi::Function free_string(Napi::Env env, AddonState* state);
Napi::Function noop(Napi::Env env);

}  // namespace fast
}  // namespace napi_ownership
