/*
 * napi-ownership C++ core: the C ABI (docs/raw-contract.md, "The cores").
 *
 * Plain C: no Node, no C++ types, usable from C and C++. Every string returned here was allocated by this core with
 * `new (std::nothrow) char[]` and is owned by the caller until it hands it back to cpp_free_string(), which is the
 * only correct way to release it (not free(), not another core's free_string()).
 *
 * No function here throws: allocation failure and bad input are reported as NULL plus a status code.
 */
#ifndef NAPI_OWNERSHIP_CPP_CORE_H
#define NAPI_OWNERSHIP_CPP_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define NAPI_OWNERSHIP_CPP_NOEXCEPT noexcept
extern "C" {
#else
#define NAPI_OWNERSHIP_CPP_NOEXCEPT
#endif

/* `status` values written by cpp_print_and_return_len(); the Rust core uses the same numbers. */
#define CPP_CORE_STATUS_OK 0            /* a copy was returned; *offset = 0 */
#define CPP_CORE_STATUS_NULL_INPUT 1    /* `bytes` was NULL (even with len 0); *offset = 0 */
#define CPP_CORE_STATUS_INTERIOR_NUL 2  /* *offset = index of the first 0 byte */
#define CPP_CORE_STATUS_INVALID_UTF8 3  /* *offset = first bad byte (length of the longest valid UTF-8 prefix) */
#define CPP_CORE_STATUS_ALLOC_FAILED 4  /* *offset = 0 */

/*
 * Copies the NUL-terminated UTF-8 string `input` into fresh memory owned by the caller.
 * Returns NULL if `input` is NULL, is not valid UTF-8, or the allocation fails.
 * The result is freed by cpp_free_string() when the caller is done with it.
 */
char* cpp_print_and_return(const char* input) NAPI_OWNERSHIP_CPP_NOEXCEPT;

/*
 * Copies `len` bytes (not NUL-terminated, possibly not valid) into a fresh NUL-terminated string owned by the caller.
 * The bytes must be valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF) and contain no 0 byte.
 * `bytes` is only borrowed for the duration of the call. On failure returns NULL and reports why in `*status` /
 * `*offset` (see CPP_CORE_STATUS_*): an interior NUL is reported before invalid UTF-8. `status` and `offset` may be
 * NULL. The result is freed by cpp_free_string().
 */
char* cpp_print_and_return_len(const char* bytes, size_t len, int32_t* status,
                               size_t* offset) NAPI_OWNERSHIP_CPP_NOEXCEPT;

/*
 * The same copy in two steps, for a caller that writes the bytes itself (the addon converts a JS string straight into
 * the core's memory: no scratch buffer and no second copy of a large string).
 * cpp_string_alloc(): fresh, uninitialised memory for `len` bytes plus the terminator, owned by the caller; NULL if
 * `len` + 1 overflows or the allocation fails. Fill it, then hand it to cpp_string_seal(), or to cpp_free_string()
 * to give up.
 * cpp_string_seal(): terminates `buf` after the `len` bytes the caller wrote and checks them exactly as
 * cpp_print_and_return_len() checks its copy. Returns `buf`, now a string like any other of this core's (freed by
 * cpp_free_string()); or NULL, and then `buf` has already been freed and `*status` / `*offset` say why.
 */
char* cpp_string_alloc(size_t len) NAPI_OWNERSHIP_CPP_NOEXCEPT;
char* cpp_string_seal(char* buf, size_t len, int32_t* status, size_t* offset) NAPI_OWNERSHIP_CPP_NOEXCEPT;

/* Releases a string returned by this core; ownership ends here. NULL is a no-op. */
void cpp_free_string(char* s) NAPI_OWNERSHIP_CPP_NOEXCEPT;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NAPI_OWNERSHIP_CPP_CORE_H */
