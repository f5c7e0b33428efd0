// Node-free tests of the addon's handle layout and generation-checked table (native-cpp/addon/src/*.hpp).
#include "check.hpp"
#include <cstdio>
#include <memory>
#include <optional>

#include "handle.hpp"
#include "handle_table.hpp"

namespace {

using napi_ownership::HandleTable;
namespace handle = napi_ownership::handle;

// A payload that owns heap memory, so valgrind sees a leak if the table ever drops one without destroying it.
struct Owned {
  std::unique_ptr<int> value;
};
using Table = HandleTable<Owned>;

Owned owned(int v) { return Owned{std::make_unique<int>(v)}; }

void test_layout() {
  const std::uint64_t h = handle::encode(7, handle::Backend::kCpp, handle::Kind::kString, 3, 42);
  const handle::Fields f = handle::decode(h);
  CHECK(f.env == 7 && f.backend == 1 && f.kind == 1 && f.generation == 3 && f.slot == 42);
  CHECK(h == (std::uint64_t{7} << 45 | std::uint64_t{5} << 41 | std::uint64_t{3} << 22 | 42));
  const std::uint64_t max = handle::encode(255, handle::Backend::kRust, handle::Kind::kSubscription,
                                           handle::kRetiredGeneration, handle::kSlotCount - 1);
  CHECK(max < handle::kLimit);
  const handle::Fields g = handle::decode(max);
  CHECK(g.env == 255 && g.backend == 2 && g.kind == 2 && g.generation == handle::kRetiredGeneration &&
        g.slot == handle::kSlotCount - 1);
  CHECK(handle::decode(handle::kLimit - 1).backend == 3 && handle::decode(handle::kLimit - 1).kind == 3);
}

void test_lifecycle() {
  Table table;
  CHECK(table.classify({0, 1}) == Table::State::kNeverIssued);  // slot beyond the table

  const auto a = table.insert(owned(1));
  const auto b = table.insert(owned(2));
  CHECK(a && b && a->slot == 0 && b->slot == 1 && a->generation == 1 && b->generation == 1);
  CHECK(table.live() == 2);
  CHECK(table.classify(*a) == Table::State::kLive);
  CHECK(table.find(*a) != nullptr && *table.find(*a)->value == 1);
  CHECK(table.classify({0, 0}) == Table::State::kNeverIssued);  // generation 0 is never issued
  CHECK(table.classify({0, 2}) == Table::State::kNeverIssued);  // newer than the slot's

  std::optional<Owned> taken = table.take(*a);
  CHECK(taken && *taken->value == 1);
  CHECK(table.live() == 1);
  CHECK(table.classify(*a) == Table::State::kReleased);
  CHECK(table.find(*a) == nullptr);
  CHECK(!table.take(*a));                                       // a second release finds nothing
  CHECK(table.classify({0, 2}) == Table::State::kNeverIssued);  // the next occupant's generation: not yet issued

  const auto c = table.insert(owned(3));  // reuses slot 0 with generation 2
  CHECK(c && c->slot == 0 && c->generation == 2);
  CHECK(table.classify(*a) == Table::State::kReleased);  // the stale handle never aliases the new occupant
  CHECK(table.find(*c) != nullptr && *table.find(*c)->value == 3);
  // b and c stay live: the table's destructor must free them (valgrind checks this).
}

void test_retirement() {
  // A plain payload: this loop runs 2^19 times, and valgrind need not count as many allocations.
  using Plain = HandleTable<int>;
  Plain table(/*max_slots=*/2);
  auto key = table.insert(0);
  const std::uint32_t slot = key->slot;
  std::uint32_t last_generation = 0;
  // Release and reuse slot 0 until its generation is exhausted.
  while (key && key->slot == slot) {
    last_generation = key->generation;
    CHECK(table.take(*key).has_value());
    key = table.insert(0);
  }
  CHECK(last_generation == handle::kRetiredGeneration - 1);  // generations 1 .. 2^19 - 2 were issued
  CHECK(table.retired() == 1);
  CHECK(key && key->slot == 1 && key->generation == 1);  // slot 0 is retired, never reused
  CHECK(table.classify({slot, last_generation}) == Plain::State::kReleased);
  CHECK(table.classify({slot, handle::kRetiredGeneration}) == Plain::State::kNeverIssued);
  CHECK(!table.insert(1));  // slot 0 retired, slot 1 live, max 2 slots: full, and it says so instead of growing
}

void test_full_table_keeps_payload() {
  Table table(/*max_slots=*/1);
  CHECK(table.insert(owned(1)).has_value());
  Owned extra = owned(9);
  CHECK(!table.insert(std::move(extra)));
  CHECK(extra.value != nullptr && *extra.value == 9);  // a refused payload stays with the caller
}

// take_each (the subscription table's shutdown): every live payload handed out once, every slot released.
void test_take_each() {
  Table table;
  const auto a = table.insert(owned(1));
  const auto b = table.insert(owned(2));
  const auto c = table.insert(owned(3));
  CHECK(a && b && c);
  CHECK(table.take(*b).has_value());  // an empty slot in the middle is skipped
  int sum = 0;
  CHECK(table.take_each([&](Owned&& o) { sum += *o.value; }) == 2);  // `o` dies at the end of each call
  CHECK(sum == 4);
  CHECK(table.live() == 0);
  CHECK(table.classify(*a) == Table::State::kReleased && table.classify(*c) == Table::State::kReleased);
  CHECK(table.take_each([&](Owned&&) { sum = -1; }) == 0);
  CHECK(sum == 4);
  const auto d = table.insert(owned(4));  // released slots are reused, with a new generation
  CHECK(d && d->generation == 2);
}

}  // namespace

int main() {
  test_layout();
  test_lifecycle();
  test_retirement();
  test_full_table_keeps_payload();
  test_take_each();
  return napi_ownership_test::finish("handle_table_test");
}
