// The address trace of docs/raw-contract.md ("Trace"), shared by the C++ core and the C++ binding.
//
// NAPI_OWNERSHIP_TRACE=1 is read once per process (the first time anyone asks); each line goes to stderr in a single
// write, prefixed "[napi-ownership cpp] ".
#pragma once

#include <cstddef>

namespace napi_ownership {

// True when NAPI_OWNERSHIP_TRACE is exactly "1" in the environment at the first call.
bool trace_enabled() noexcept;

// Writes "[napi-ownership cpp] <what> address: 0x<hex><suffix>\n" to stderr. `suffix` may be null.
void trace_address(const char* what, const void* address, const char* suffix = nullptr) noexcept;

}  // namespace napi_ownership
