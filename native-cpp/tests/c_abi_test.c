/* The C++ core's header compiles as plain C and its functions link from a C program. */
#include <napi_ownership/cpp_core.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  int32_t status = -1;
  size_t offset = 99;
  char* copy = cpp_print_and_return_len("from C", 6, &status, &offset);
  int ok = copy != NULL && strcmp(copy, "from C") == 0 && status == CPP_CORE_STATUS_OK && offset == 0;
  cpp_free_string(copy); /* the core's memory goes back to the core */
  copy = cpp_print_and_return("plain C string");
  ok = ok && copy != NULL && strcmp(copy, "plain C string") == 0;
  cpp_free_string(copy);
  cpp_free_string(NULL);
  puts(ok ? "c_abi_test: ok" : "c_abi_test: FAILED");
  return ok ? 0 : 1;
}
