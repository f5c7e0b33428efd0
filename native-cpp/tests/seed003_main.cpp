// Seed 003's main.cpp: C++ calls the *Rust* core's print_and_return, uses the Rust-owned result and gives it back to
// the Rust core's free_string. Linked against native-rust/target/debug/libnapi_ownership_core.a.
//
// Prints the seed's four address lines: the two "C++" lines come from here (stdout), the two "Rust" lines from the
// Rust core's trace (stderr), which we switch on below.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "napi_ownership_rust_core.h"

int main() {
  // The Rust core reads NAPI_OWNERSHIP_TRACE once, at its first call: set it first (unless the caller chose already).
  setenv("NAPI_OWNERSHIP_TRACE", "1", /*overwrite=*/0);

  std::string data{"Hello from C++"};  // owned by C++; Rust only borrows data.c_str() during the call
  std::cout << "C++ input address: " << static_cast<const void*>(data.c_str()) << std::endl;

  char* result = print_and_return(data.c_str());  // owned by Rust: freed by free_string below
  std::cout << "C++ received address: " << static_cast<const void*>(result) << std::endl;

  int failures = 0;
  if (result == nullptr) {
    std::cerr << "FAIL: print_and_return returned NULL\n";
    return 1;
  }
  if (std::strcmp(result, data.c_str()) != 0) {
    std::cerr << "FAIL: output \"" << result << "\" differs from input \"" << data << "\"\n";
    ++failures;
  }
  if (static_cast<const void*>(result) == static_cast<const void*>(data.c_str())) {
    std::cerr << "FAIL: the output is the input buffer, not a copy\n";
    ++failures;
  }

  free_string(result);  // ownership goes back to Rust (CString::from_raw); never free()/delete[] it here
  result = nullptr;

  free_string(nullptr);  // a no-op by contract

  std::cout << (failures == 0 ? "seed003_main: ok" : "seed003_main: FAILED") << std::endl;
  return failures == 0 ? 0 : 1;
}
