#include "napi_ownership/cpp_trace.hpp"

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace napi_ownership {

bool trace_enabled() noexcept {
  // Read once per process (contract "Trace"): a function-local static is initialised exactly once, thread-safely.
  static const bool enabled = [] {
    const char* value = std::getenv("NAPI_OWNERSHIP_TRACE");
    return value != nullptr && std::strcmp(value, "1") == 0;
  }();
  return enabled;
}

void trace_address(const char* what, const void* address, const char* suffix) noexcept {
  char line[512];
  const int n = std::snprintf(line, sizeof line, "[napi-ownership cpp] %s address: 0x%" PRIxPTR "%s\n", what,
                              reinterpret_cast<std::uintptr_t>(address), suffix != nullptr ? suffix : "");
  if (n <= 0) return;
  // One fwrite per line so lines from several threads (workers) do not interleave mid-line.
  std::fwrite(line, 1, static_cast<std::size_t>(n) < sizeof line ? static_cast<std::size_t>(n) : sizeof line - 1,
              stderr);
}

}  // namespace napi_ownership
