// Coded JS errors with the contract's wording (docs/raw-contract.md). Every helper throws a Napi::Error, which
// node-addon-api's callback wrapper turns into a pending JS exception when the export returns.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "handle.hpp"

namespace napi_ownership::errors {

enum class Class { kError, kTypeError, kRangeError };

// Throws `new <cls>(message)` with `code` an own data property, defined: no `code` setter on a prototype runs (JS
// running while an export fails could otherwise call back into the addon), and none can swallow the code.
[[noreturn]] void throw_coded(napi_env env, Class cls, const char* code, const std::string& message);

// `typeof value`, or "null" for null: the <got> of "Expected <what> for <name> but received <got>".
std::string describe_received(napi_env env, napi_value value);

// TypeError ERR_INVALID_ARG_TYPE: "Expected <what> for <name> but received <got>".
[[noreturn]] void throw_invalid_arg_type(napi_env env, const char* what, const char* name, napi_value got);

// TypeError ERR_INVALID_HANDLE: "<n> is not a live or released <kind> handle of the cpp backend" (<n> as JS prints it).
[[noreturn]] void throw_invalid_handle(napi_env env, napi_value got, handle::Kind kind);

// TypeError ERR_FOREIGN_HANDLE: "handle belongs to the rust backend, not cpp".
[[noreturn]] void throw_foreign_handle(napi_env env);

// Error ERR_FOREIGN_ENV.
[[noreturn]] void throw_foreign_env(napi_env env);

// Error ERR_NATIVE_RELEASED: "the native <kind> was already released".
[[noreturn]] void throw_released(napi_env env, handle::Kind kind);

// RangeError ERR_INVALID_ARG_VALUE with `message` as is (e.g. "dest must be a non-empty string").
[[noreturn]] void throw_invalid_arg_value(napi_env env, const char* message);

// RangeError ERR_INTERIOR_NUL: "<name> contains a NUL byte at offset <n>; a NUL-terminated C string cannot carry it".
[[noreturn]] void throw_interior_nul(napi_env env, const char* name, std::size_t offset);

// RangeError ERR_INVALID_UTF8 / ERR_NATIVE_ALLOC.
[[noreturn]] void throw_invalid_utf8(napi_env env, std::size_t offset);
[[noreturn]] void throw_alloc(napi_env env, std::size_t bytes);
[[noreturn]] void throw_table_full(napi_env env, handle::Kind kind);
// RangeError ERR_NATIVE_ALLOC when the boxes of a subscription (or its registration) could not be allocated.
[[noreturn]] void throw_subscription_alloc(napi_env env);

// RangeError ERR_OUT_OF_RANGE: 'The value of "<name>" is out of range. It must be an integer from <min> to <max>.
// Received <n>' (<n> as JS's String(n)).
[[noreturn]] void throw_out_of_range(napi_env env, const char* name, std::uint32_t min, std::uint32_t max,
                                     napi_value got);

// What the callbacks of one delivery threw, as one value: `errors[0]` itself if exactly one threw (and was recorded)
// and `unwrap_single` (false for a process warning when that value is not an Error: emitWarning refuses it), else an AggregateError with code ERR_CALLBACKS_THREW, message '<count> callbacks threw while delivering to "<dest>"'
// and `errors` the recorded values in delivery order. `count` >= `recorded` (some may not have been recorded:
// std::bad_alloc). Throws Napi::Error if the AggregateError cannot be built.
// Reads `errors` and `dest` before the first call that can run JS (the AggregateError lookup and construction: a user's
// getter or patched builtin may re-enter the addon), so they may point anywhere that stays valid until then; the list
// and `code` are defined, never assigned (no Array.prototype or `code` setter runs), and `errors` is set to the list
// after construction, so a patched Array iterator cannot empty it.
napi_value callbacks_threw(napi_env env, const napi_value* errors, std::size_t recorded, std::size_t count,
                           const char* dest, std::size_t dest_length, bool unwrap_single = true);

}  // namespace napi_ownership::errors
