// The dispatcher core's cancel, Node-free: dispatcher_cancel draining a crowd of N registrations on one dest, oldest
// first and newest first, for N = 10, 1,000 and 100,000 (issue 12: cancel among 100,000 <= 1.5x cancel among 10).
// Not a test: `npm run bench` runs it (built with the core tests) and prints its figures beside the addons' raw and
// public cancel rows, which add the binding's own tables, Node's references and the JS objects.
//
// Output: one JSON object per line, {"n": N, "order": "oldest"|"newest", "ns": <best of 7 rounds, ns per cancel>}.
#include <napi_ownership/dispatcher.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace {
void ignore(void*, const char*, const char*) {}
}  // namespace

int main() {
  Dispatcher* d = dispatcher_new();
  if (d == nullptr) return 1;
  FFIWrapper wrapper{ignore, nullptr};  // borrowed by every registration until its cancel returns
  for (const int n : {10, 1000, 100000}) {
    for (const bool oldest : {true, false}) {
      double best = 1e18;
      for (int round = 0; round < 7; ++round) {
        double ns = 0;
        long cancels = 0;
        // At least a million cancels a round, so a small N is measured over many crowds.
        for (int crowd = 0; crowd < std::max(1, 1000000 / n); ++crowd) {
          std::vector<DispatcherCtx> ctx(n);
          for (int i = 0; i < n; ++i) ctx[i] = dispatcher_handler(d, "crowd", &wrapper);
          const auto start = std::chrono::steady_clock::now();
          if (oldest) {
            for (int i = 0; i < n; ++i) dispatcher_cancel(d, "crowd", ctx[i]);
          } else {
            for (int i = n - 1; i >= 0; --i) dispatcher_cancel(d, "crowd", ctx[i]);
          }
          ns += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
          cancels += n;
        }
        best = std::min(best, ns / static_cast<double>(cancels));
      }
      std::printf("{\"n\": %d, \"order\": \"%s\", \"ns\": %.2f}\n", n, oldest ? "oldest" : "newest", best);
    }
  }
  const bool empty = dispatcher_live(d) == 0;
  dispatcher_free(d);
  return empty ? 0 : 1;
}
