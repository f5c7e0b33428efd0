// What every Node-free C++ test here shares: CHECK() records a failure and goes on; finish() reports and gives ctest
// its exit code.
#pragma once

#include <cstdio>

namespace napi_ownership_test {

inline int failures = 0;

// "<name>: ok" and 0, or "<name>: N check(s) failed" and 1.
inline int finish(const char* name) {
  if (failures != 0) {
    std::fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
    return 1;
  }
  std::printf("%s: ok\n", name);
  return 0;
}

}  // namespace napi_ownership_test

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++napi_ownership_test::failures;                                              \
    }                                                                               \
  } while (0)
