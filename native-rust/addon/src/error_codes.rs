//! Generated from src/error-table.ts by `npm run gen:errors`: do not edit. The one error table defines every
//! code, its class and its wording; test/error-table.test.ts checks this file against it.

/// TypeError: Expected `<what>` for `<name>` but received `<got>`
pub const ERR_INVALID_ARG_TYPE: &str = "ERR_INVALID_ARG_TYPE";
/// RangeError: dest must be a non-empty string
pub const ERR_INVALID_ARG_VALUE: &str = "ERR_INVALID_ARG_VALUE";
/// RangeError: `<name>` contains a NUL byte at offset `<n>`; a NUL-terminated C string cannot carry it
pub const ERR_INTERIOR_NUL: &str = "ERR_INTERIOR_NUL";
/// RangeError: input is not valid UTF-8 (first bad byte at offset `<n>`)
pub const ERR_INVALID_UTF8: &str = "ERR_INVALID_UTF8";
/// RangeError: could not allocate `<n>` bytes for the native copy
pub const ERR_NATIVE_ALLOC: &str = "ERR_NATIVE_ALLOC";
/// Error: the native `<kind>` was already released
pub const ERR_NATIVE_RELEASED: &str = "ERR_NATIVE_RELEASED";
/// TypeError: `<n>` is not a live or released `<kind>` handle of the `<backend>` backend
pub const ERR_INVALID_HANDLE: &str = "ERR_INVALID_HANDLE";
/// TypeError: handle belongs to the `<other>` backend, not `<backend>`
pub const ERR_FOREIGN_HANDLE: &str = "ERR_FOREIGN_HANDLE";
/// Error: handle belongs to another Node.js environment (worker thread)
pub const ERR_FOREIGN_ENV: &str = "ERR_FOREIGN_ENV";
/// RangeError: The value of "`<name>`" is out of range. It must be an integer from `<min>` to `<max>`. Received `<got>`
pub const ERR_OUT_OF_RANGE: &str = "ERR_OUT_OF_RANGE";
/// AggregateError: `<n>` callbacks threw while delivering to "`<dest>`"
pub const ERR_CALLBACKS_THREW: &str = "ERR_CALLBACKS_THREW";
/// Error: internal error in the `<backend>` backend: `<what>`
pub const ERR_NATIVE_INTERNAL: &str = "ERR_NATIVE_INTERNAL";
