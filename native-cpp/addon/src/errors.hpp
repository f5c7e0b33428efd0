// Coded JS errors with the contract's wording (docs/raw-contract.md), built on node-addon-api's types. Every helper
// throws a Napi::Error (C++ exceptions are on: see native-cpp/addon/CMakeLists.txt), which node-addon-api's callback
// wrapper turns into a pending JS exception when the export returns. The codes themselves are in error_codes.hpp.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "error_codes.hpp"
#include "handle.hpp"

namespace napi_ownership::errors {

enum class Class { kError, kTypeError, kRangeError };

// `new <cls>(message)` with `code` an own data property, DEFINED (Object::DefineProperty, napi_define_properties),
// never assigned: no `code` setter on a prototype runs (JS running while an export fails could otherwise call back
// into the addon), and none can swallow the code.
Napi::Error coded(Napi::Env env, Class cls, const char* code, const std::string& message);
[[noreturn]] void throw_coded(Napi::Env env, Class cls, const char* code, const std::string& message);

// `typeof value`, or "null" for null: the <got> of "Expected <what> for <name> but received <got>".
std::string describe_received(Napi::Value value);

// TypeError ERR_INVALID_ARG_TYPE: "Expected <what> for <name> but received <got>".
[[noreturn]] void throw_invalid_arg_type(Napi::Env env, const char* what, const char* name, Napi::Value got);

// TypeError ERR_INVALID_HANDLE: "<n> is not a live or released <kind> handle of the cpp backend" (<n> as JS prints it).
[[noreturn]] void throw_invalid_handle(Napi::Env env, Napi::Value got, handle::Kind kind);

// TypeError ERR_FOREIGN_HANDLE: "handle belongs to the rust backend, not cpp".
[[noreturn]] void throw_foreign_handle(Napi::Env env);

// Error ERR_FOREIGN_ENV.
[[noreturn]] void throw_foreign_env(Napi::Env env);

// Error ERR_NATIVE_RELEASED: "the native <kind> was already released".
[[noreturn]] void throw_released(Napi::Env env, handle::Kind kind);

// RangeError ERR_INVALID_ARG_VALUE with `message` as is (e.g. "dest must be a non-empty string").
[[noreturn]] void throw_invalid_arg_value(Napi::Env env, const char* message);

// RangeError ERR_INTERIOR_NUL: "<name> contains a NUL byte at offset <n>; a NUL-terminated C string cannot carry it".
[[noreturn]] void throw_interior_nul(Napi::Env env, const char* name, std::size_t offset);

// RangeError ERR_INVALID_UTF8 / ERR_NATIVE_ALLOC.
[[noreturn]] void throw_invalid_utf8(Napi::Env env, std::size_t offset);
[[noreturn]] void throw_alloc(Napi::Env env, std::size_t bytes);
[[noreturn]] void throw_table_full(Napi::Env env, handle::Kind kind);
// RangeError ERR_NATIVE_ALLOC when the boxes of a subscription (or its registration) could not be allocated.
[[noreturn]] void throw_subscription_alloc(Napi::Env env);
// RangeError ERR_NATIVE_ALLOC with `message` as is ("could not allocate the native post", ...).
[[noreturn]] void throw_alloc_message(Napi::Env env, const std::string& message);

// Error ERR_NATIVE_INTERNAL: "internal error in the cpp backend: <what>".
[[noreturn]] void throw_internal(Napi::Env env, const std::string& what);

// RangeError ERR_OUT_OF_RANGE: 'The value of "<name>" is out of range. It must be an integer from <min> to <max>.
// Received <n>' (<n> as JS's String(n)).
[[noreturn]] void throw_out_of_range(Napi::Env env, const char* name, std::uint32_t min, std::uint32_t max,
                                     Napi::Value got);

// What the callbacks of one delivery threw, as one value: `errors[0]` itself if exactly one threw (and was recorded)
// and `unwrap_single` (false for a process warning when that value is not an Error: emitWarning refuses it), else an
// AggregateError with code ERR_CALLBACKS_THREW, message '<count> callbacks threw while delivering to "<dest>"' and
// `errors` the recorded values in delivery order. `count` >= `recorded` (some may not have been recorded:
// std::bad_alloc). Throws Napi::Error if the AggregateError cannot be built.
// Reads `errors` and `dest` before the first call that can run JS (the AggregateError lookup and construction: a user's
// getter or patched builtin may re-enter the addon), so they may point anywhere that stays valid until then; the list
// and `code` are defined, never assigned (no Array.prototype or `code` setter runs), and `errors` is set to the list
// after construction, so a patched Array iterator cannot empty it.
Napi::Value callbacks_threw(Napi::Env env, const napi_value* errors, std::size_t recorded, std::size_t count,
                            const char* dest, std::size_t dest_length, bool unwrap_single = true);

}  // namespace napi_ownership::errors
