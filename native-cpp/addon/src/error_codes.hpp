// Generated from src/error-table.ts by `npm run gen:errors`: do not edit. The one error table defines every code,
// its class and its wording; test/error-table.test.ts checks this file against it.
#pragma once

namespace napi_ownership::errors {

// TypeError: Expected <what> for <name> but received <got>
inline constexpr char kErrInvalidArgType[] = "ERR_INVALID_ARG_TYPE";
// RangeError: dest must be a non-empty string
inline constexpr char kErrInvalidArgValue[] = "ERR_INVALID_ARG_VALUE";
// RangeError: <name> contains a NUL byte at offset <n>; a NUL-terminated C string cannot carry it
inline constexpr char kErrInteriorNul[] = "ERR_INTERIOR_NUL";
// RangeError: input is not valid UTF-8 (first bad byte at offset <n>)
inline constexpr char kErrInvalidUtf8[] = "ERR_INVALID_UTF8";
// RangeError: could not allocate <n> bytes for the native copy
inline constexpr char kErrNativeAlloc[] = "ERR_NATIVE_ALLOC";
// Error: the native <kind> was already released
inline constexpr char kErrNativeReleased[] = "ERR_NATIVE_RELEASED";
// TypeError: <n> is not a live or released <kind> handle of the <backend> backend
inline constexpr char kErrInvalidHandle[] = "ERR_INVALID_HANDLE";
// TypeError: handle belongs to the <other> backend, not <backend>
inline constexpr char kErrForeignHandle[] = "ERR_FOREIGN_HANDLE";
// Error: handle belongs to another Node.js environment (worker thread)
inline constexpr char kErrForeignEnv[] = "ERR_FOREIGN_ENV";
// RangeError: The value of "<name>" is out of range. It must be an integer from <min> to <max>. Received <got>
inline constexpr char kErrOutOfRange[] = "ERR_OUT_OF_RANGE";
// AggregateError: <n> callbacks threw while delivering to "<dest>"
inline constexpr char kErrCallbacksThrew[] = "ERR_CALLBACKS_THREW";
// Error: internal error in the <backend> backend: <what>
inline constexpr char kErrNativeInternal[] = "ERR_NATIVE_INTERNAL";

}  // namespace napi_ownership::errors
