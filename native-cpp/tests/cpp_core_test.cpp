// Node-free tests of the C++ core (native-cpp/core): round trips, statuses and offsets, free(NULL).
// Plain C++ with a tiny CHECK macro; exit code 0 = all passed. Run it under valgrind to see every copy freed.
#include "check.hpp"
#include <napi_ownership/cpp_core.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Result {
  char* copy;
  int32_t status;
  size_t offset;
};

Result run(const std::string& bytes) {
  Result r{nullptr, -1, 12345};
  r.copy = cpp_print_and_return_len(bytes.data(), bytes.size(), &r.status, &r.offset);
  return r;
}

// Expects `bytes` to be copied faithfully; frees the copy.
void expect_ok(const std::string& bytes) {
  Result r = run(bytes);
  CHECK(r.copy != nullptr);
  CHECK(r.status == CPP_CORE_STATUS_OK);
  CHECK(r.offset == 0);
  if (r.copy != nullptr) {
    CHECK(r.copy != bytes.data());  // a copy, not the input
    CHECK(std::memcmp(r.copy, bytes.data(), bytes.size()) == 0);
    CHECK(r.copy[bytes.size()] == '\0');
  }
  cpp_free_string(r.copy);  // ownership came to us; give it back
}

void expect_fail(const std::string& bytes, int32_t status, size_t offset) {
  Result r = run(bytes);
  CHECK(r.copy == nullptr);
  CHECK(r.status == status);
  CHECK(r.offset == offset);
  if (r.status != status || r.offset != offset) {
    std::fprintf(stderr, "  input of %zu bytes: status %d offset %zu, expected %d / %zu\n", bytes.size(), r.status,
                 r.offset, status, offset);
  }
  cpp_free_string(r.copy);
}

std::string bytes_of(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

// Reference: is `s` exactly one well-formed UTF-8 encoded scalar value? Decodes the scalar and checks it against the
// shortest form, the surrogate range and U+10FFFF: a different method from the core's table, on purpose.
bool reference_single_scalar(const std::string& s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  if (n == 0) return false;
  size_t width;
  uint32_t cp;
  if (b[0] < 0x80) width = 1, cp = b[0];
  else if ((b[0] & 0xE0) == 0xC0) width = 2, cp = b[0] & 0x1Fu;
  else if ((b[0] & 0xF0) == 0xE0) width = 3, cp = b[0] & 0x0Fu;
  else if ((b[0] & 0xF8) == 0xF0) width = 4, cp = b[0] & 0x07u;
  else return false;
  if (n != width) return false;
  for (size_t i = 1; i < n; ++i) {
    if ((b[i] & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (b[i] & 0x3Fu);
  }
  const size_t shortest = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  if (shortest != width) return false;             // overlong
  if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // surrogate
  return cp <= 0x10FFFF;
}

void test_round_trips() {
  const char* hello = "Hello from C++";
  char* copy = cpp_print_and_return(hello);
  CHECK(copy != nullptr);
  CHECK(copy != hello);
  CHECK(copy != nullptr && std::strcmp(copy, hello) == 0);
  cpp_free_string(copy);

  expect_ok("");
  expect_ok("Hello from JS 16");
  expect_ok("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E");  // é € 𝄞
  expect_ok("\xEF\xBB\xBF");                                // BOM is just a character
  expect_ok("\xEF\xBF\xBD");                                // U+FFFD
  expect_ok("\xED\x9F\xBF");                                // U+D7FF, just below the surrogates
  expect_ok("\xEE\x80\x80");                                // U+E000, just above them
  expect_ok("\xF4\x8F\xBF\xBF");                            // U+10FFFF, the last scalar
  expect_ok(std::string(1 << 20, 'x'));                     // 1 MiB: crosses the 8-byte fast path many times
  expect_ok(std::string(13, 'a') + "\xC3\xA9" + std::string(13, 'b'));  // non-ASCII between fast-path words

  // The NUL-terminated entry point.
  CHECK(cpp_print_and_return(nullptr) == nullptr);
  CHECK(cpp_print_and_return("\xC0\xAF") == nullptr);  // overlong '/'
  copy = cpp_print_and_return("");
  CHECK(copy != nullptr && copy[0] == '\0');
  cpp_free_string(copy);
}

void test_statuses_and_offsets() {
  // NULL input, even with len 0; status/offset may be NULL.
  int32_t status = -1;
  size_t offset = 99;
  CHECK(cpp_print_and_return_len(nullptr, 0, &status, &offset) == nullptr);
  CHECK(status == CPP_CORE_STATUS_NULL_INPUT && offset == 0);
  CHECK(cpp_print_and_return_len(nullptr, 5, nullptr, nullptr) == nullptr);
  char* copy = cpp_print_and_return_len("abc", 3, nullptr, nullptr);
  CHECK(copy != nullptr && std::strcmp(copy, "abc") == 0);
  cpp_free_string(copy);
  CHECK(cpp_print_and_return_len("a\0c", 3, nullptr, nullptr) == nullptr);
  copy = cpp_print_and_return_len("abcdef", 3, nullptr, nullptr);  // only `len` bytes are read
  CHECK(copy != nullptr && std::strcmp(copy, "abc") == 0);
  cpp_free_string(copy);

  // Interior NUL: offset = its index; reported before invalid UTF-8, wherever that is.
  expect_fail(std::string("ab\0cd", 5), CPP_CORE_STATUS_INTERIOR_NUL, 2);
  expect_fail(std::string("\0", 1), CPP_CORE_STATUS_INTERIOR_NUL, 0);
  expect_fail(std::string("abc\0", 4), CPP_CORE_STATUS_INTERIOR_NUL, 3);
  expect_fail(bytes_of({0xFF, 'a', 0}), CPP_CORE_STATUS_INTERIOR_NUL, 2);
  expect_fail(std::string(1000, 'z') + std::string("\0", 1), CPP_CORE_STATUS_INTERIOR_NUL, 1000);

  // Invalid UTF-8: offset = first byte of the first ill-formed sequence.
  expect_fail(bytes_of({0x80}), CPP_CORE_STATUS_INVALID_UTF8, 0);                    // stray continuation
  expect_fail(bytes_of({'a', 0xC0, 0xAF}), CPP_CORE_STATUS_INVALID_UTF8, 1);         // overlong 2-byte
  expect_fail(bytes_of({0xC1, 0xBF}), CPP_CORE_STATUS_INVALID_UTF8, 0);              // overlong 2-byte
  expect_fail(bytes_of({0xE0, 0x80, 0x80}), CPP_CORE_STATUS_INVALID_UTF8, 0);        // overlong 3-byte
  expect_fail(bytes_of({0xE0, 0x9F, 0xBF}), CPP_CORE_STATUS_INVALID_UTF8, 0);        // overlong 3-byte (U+07FF)
  expect_fail(bytes_of({0xF0, 0x80, 0x80, 0x80}), CPP_CORE_STATUS_INVALID_UTF8, 0);  // overlong 4-byte
  expect_fail(bytes_of({0xF0, 0x8F, 0xBF, 0xBF}), CPP_CORE_STATUS_INVALID_UTF8, 0);  // overlong 4-byte (U+FFFF)
  expect_fail(bytes_of({'a', 'b', 0xED, 0xA0, 0x80}), CPP_CORE_STATUS_INVALID_UTF8, 2);  // U+D800
  expect_fail(bytes_of({0xED, 0xBF, 0xBF}), CPP_CORE_STATUS_INVALID_UTF8, 0);            // U+DFFF
  expect_fail(bytes_of({0xF4, 0x90, 0x80, 0x80}), CPP_CORE_STATUS_INVALID_UTF8, 0);      // U+110000
  expect_fail(bytes_of({0xF5, 0x80, 0x80, 0x80}), CPP_CORE_STATUS_INVALID_UTF8, 0);
  expect_fail(bytes_of({0xFE}), CPP_CORE_STATUS_INVALID_UTF8, 0);
  expect_fail(bytes_of({0xFF}), CPP_CORE_STATUS_INVALID_UTF8, 0);
  expect_fail(bytes_of({'x', 0xE2, 0x82}), CPP_CORE_STATUS_INVALID_UTF8, 1);        // truncated at the end
  expect_fail(bytes_of({0xE2, 0x82, 'x'}), CPP_CORE_STATUS_INVALID_UTF8, 0);        // cut short by ASCII
  expect_fail(bytes_of({0xF0, 0x9D, 0x84}), CPP_CORE_STATUS_INVALID_UTF8, 0);       // truncated 4-byte
  expect_fail(std::string(9, 'a') + bytes_of({0xC3}), CPP_CORE_STATUS_INVALID_UTF8, 9);  // after a fast-path word
  expect_fail("\xC3\xA9" + std::string(20, 'a') + bytes_of({0xA9}), CPP_CORE_STATUS_INVALID_UTF8, 22);
}

// The expected (status, offset) for any input, by the reference: a NUL wins; otherwise the longest prefix that splits
// into single scalars (UTF-8 is prefix-free, so at most one width fits at each position).
std::pair<int32_t, size_t> reference_result(const std::string& s) {
  const size_t nul = s.find('\0');
  if (nul != std::string::npos) return {CPP_CORE_STATUS_INTERIOR_NUL, nul};
  size_t i = 0;
  while (i < s.size()) {
    size_t width = 0;
    for (size_t w = 1; w <= 4 && i + w <= s.size(); ++w) {
      if (reference_single_scalar(s.substr(i, w))) {
        width = w;
        break;
      }
    }
    if (width == 0) return {CPP_CORE_STATUS_INVALID_UTF8, i};
    i += width;
  }
  return {CPP_CORE_STATUS_OK, 0};
}

// Every 1- and 2-byte input, and every 3- and 4-byte input over a set of edge bytes, against the reference.
void test_against_reference() {
  std::vector<std::string> inputs;
  for (int a = 0; a < 256; ++a) {
    inputs.push_back(bytes_of({a}));
    for (int b = 0; b < 256; ++b) inputs.push_back(bytes_of({a, b}));
  }
  const int edges[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                       0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
  for (int a = 0x80; a < 256; ++a) {
    for (int b : edges) {
      for (int c : edges) {
        inputs.push_back(bytes_of({a, b, c}));
        if (a != 0xF0 && a != 0xF1 && a != 0xF3 && a != 0xF4 && a != 0xF5) continue;  // 4-byte leads and past them
        for (int d : edges) inputs.push_back(bytes_of({a, b, c, d}));
      }
    }
  }
  for (const std::string& s : inputs) {
    const auto expected = reference_result(s);
    Result r = run(s);
    const bool ok = r.status == expected.first && r.offset == expected.second &&
                    (r.copy != nullptr) == (expected.first == CPP_CORE_STATUS_OK);
    CHECK(ok);
    if (!ok) {
      std::fprintf(stderr, "  input");
      for (unsigned char c : s) std::fprintf(stderr, " %02X", c);
      std::fprintf(stderr, ": status %d offset %zu, reference %d / %zu\n", r.status, r.offset, expected.first,
                   expected.second);
    }
    cpp_free_string(r.copy);
  }
  std::printf("reference comparison: %zu inputs\n", inputs.size());
}

// The two-step copy (alloc, fill, seal) accepts and refuses exactly what the one-step copy does, and frees what it
// refuses (valgrind: no leak on the refused paths).
void test_alloc_fill_seal() {
  const std::string inputs[] = {"", "abc", std::string("a\0c", 3), "\xC3\xA9t\xC3\xA9", "bad \xFF byte", std::string(1 << 20, 'm')};
  for (const std::string& in : inputs) {
    int32_t status1 = -1, status2 = -1;
    size_t offset1 = 99, offset2 = 99;
    char* one = cpp_print_and_return_len(in.data(), in.size(), &status1, &offset1);
    char* buf = cpp_string_alloc(in.size());
    CHECK(buf != nullptr);
    std::memcpy(buf, in.data(), in.size());
    char* two = cpp_string_seal(buf, in.size(), &status2, &offset2);
    CHECK(status1 == status2);
    CHECK(offset1 == offset2);
    CHECK((one == nullptr) == (two == nullptr));
    if (two != nullptr) {
      CHECK(two == buf);  // sealed in place: the caller's buffer is the string
      CHECK(std::memcmp(two, in.data(), in.size()) == 0 && two[in.size()] == '\0');
    }
    cpp_free_string(one);
    cpp_free_string(two);
  }
  CHECK(cpp_string_alloc(static_cast<size_t>(-1)) == nullptr);  // len + 1 would wrap
  int32_t status = -1;
  CHECK(cpp_string_seal(nullptr, 0, &status, nullptr) == nullptr && status == CPP_CORE_STATUS_NULL_INPUT);
  cpp_free_string(cpp_string_alloc(8));  // given up unfilled: freed like any string
}

void test_free_null() {
  cpp_free_string(nullptr);  // a no-op, and twice is fine
  cpp_free_string(nullptr);
}

}  // namespace

int main() {
  test_round_trips();
  test_statuses_and_offsets();
  test_against_reference();
  test_alloc_fill_seal();
  test_free_null();
  return napi_ownership_test::finish("cpp_core_test");
}
