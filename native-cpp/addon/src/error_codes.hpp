// Every `code` the C++ addon puts on an error it throws, in one place (checked against the project's one error table:
// docs/raw-contract.md). Nothing else belongs in this file.
#pragma once

namespace napi_ownership::errors {

inline constexpr const char kErrInvalidArgType[] = "ERR_INVALID_ARG_TYPE";
inline constexpr const char kErrInvalidArgValue[] = "ERR_INVALID_ARG_VALUE";
inline constexpr const char kErrInvalidHandle[] = "ERR_INVALID_HANDLE";
inline constexpr const char kErrForeignHandle[] = "ERR_FOREIGN_HANDLE";
inline constexpr const char kErrForeignEnv[] = "ERR_FOREIGN_ENV";
inline constexpr const char kErrNativeReleased[] = "ERR_NATIVE_RELEASED";
inline constexpr const char kErrInteriorNul[] = "ERR_INTERIOR_NUL";
inline constexpr const char kErrInvalidUtf8[] = "ERR_INVALID_UTF8";
inline constexpr const char kErrNativeAlloc[] = "ERR_NATIVE_ALLOC";
inline constexpr const char kErrOutOfRange[] = "ERR_OUT_OF_RANGE";
inline constexpr const char kErrCallbacksThrew[] = "ERR_CALLBACKS_THREW";
inline constexpr const char kErrNativeInternal[] = "ERR_NATIVE_INTERNAL";

}  // namespace napi_ownership::errors
