//! Every `code` this addon puts on an error: the project's one error table (docs/raw-contract.md) as Rust
//! constants. Nothing else lives here.

pub const ERR_CALLBACKS_THREW: &str = "ERR_CALLBACKS_THREW";
pub const ERR_FOREIGN_ENV: &str = "ERR_FOREIGN_ENV";
pub const ERR_FOREIGN_HANDLE: &str = "ERR_FOREIGN_HANDLE";
pub const ERR_INTERIOR_NUL: &str = "ERR_INTERIOR_NUL";
pub const ERR_INVALID_ARG_TYPE: &str = "ERR_INVALID_ARG_TYPE";
pub const ERR_INVALID_ARG_VALUE: &str = "ERR_INVALID_ARG_VALUE";
pub const ERR_INVALID_HANDLE: &str = "ERR_INVALID_HANDLE";
pub const ERR_INVALID_UTF8: &str = "ERR_INVALID_UTF8";
pub const ERR_NATIVE_ALLOC: &str = "ERR_NATIVE_ALLOC";
pub const ERR_NATIVE_INTERNAL: &str = "ERR_NATIVE_INTERNAL";
pub const ERR_NATIVE_RELEASED: &str = "ERR_NATIVE_RELEASED";
pub const ERR_OUT_OF_RANGE: &str = "ERR_OUT_OF_RANGE";
