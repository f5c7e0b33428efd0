// napi_ownership_cpp.node: the C++ backend of docs/raw-contract.md, on node-addon-api.
//
// The binding converts JS values to bytes, hands them to the C++ core (which allocates the copy) and keeps the copy in
// this environment's handle table; JS only ever holds a number naming the slot. Hot paths (print_and_return,
// free_string) use raw napi_* calls and allocate nothing but the core's copy (plus, for strings over 256 B, a scratch
// buffer for the UTF-8 conversion).
#include <napi.h>

#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <optional>

#include "args.hpp"
#include "binding.hpp"
#include "errors.hpp"
#include "handle.hpp"
#include "handle_table.hpp"
#include "napi_ownership/cpp_core.h"
#include "napi_ownership/cpp_trace.hpp"
#include "posts.hpp"
#include "state.hpp"
#include "subscriptions.hpp"

namespace napi_ownership {
namespace {

using handle::Kind;
using StringKey = HandleTable<StringEntry>::Key;

// Strings up to this many UTF-8 bytes are converted into a stack buffer; longer ones into a heap buffer.
constexpr std::size_t kStackInputBytes = 256;

// The only process-wide state: the counter that gives each environment its env bits (1..255, wrapping, 0 unused).
std::atomic<std::uint32_t> g_env_counter{0};

// The key of the live string named by the first argument; a released one throws ERR_NATIVE_RELEASED. A key, not a
// reference: look the entry up again after anything that may run JS or grow the table.
StringKey live_string(const Napi::CallbackInfo& info, AddonState& state) {
  const std::optional<StringKey> key = resolve(info.Env(), state, state.strings, info[0], Kind::kString);
  if (!key) errors::throw_released(info.Env(), Kind::kString);
  return *key;
}

napi_value reference_value(napi_env env, napi_ref ref) {
  napi_value value = nullptr;
  if (ref != nullptr) check(env, napi_get_reference_value(env, ref, &value));
  return value;  // nullptr once the object was collected
}

void delete_reference(napi_env env, napi_ref& ref) noexcept {
  if (ref != nullptr) napi_delete_reference(env, ref);
  ref = nullptr;
}

void forget_view(napi_env env, StringView& view) noexcept {
  delete_reference(env, view.buffer);
  delete_reference(env, view.array);
}

// The last owner of shared bytes let go, on whichever thread that was: un-count them (the slot's release counted them
// as view-held) and free them.
void free_shared(SharedBytes* shared) noexcept {
  shared->ledger->view_held.fetch_sub(1, std::memory_order_relaxed);
  shared->ledger->view_held_bytes.fetch_sub(shared->length, std::memory_order_relaxed);
  delete shared;  // ~CoreString: cpp_free_string
}

// The slot's share of shared bytes ends (free_string, the fallback, teardown). Counted as view-held first: the last
// buffer's finalizer, which may run on another thread the moment the share ends, un-counts it. True if no buffer
// shared them, so they were freed here.
bool end_slot_share(SharedBytes* shared) noexcept {
  shared->ledger->view_held.fetch_add(1, std::memory_order_relaxed);
  shared->ledger->view_held_bytes.fetch_add(shared->length, std::memory_order_relaxed);
  if (shared->shares.fetch_and(~SharedBytes::kSlotShare, std::memory_order_acq_rel) != SharedBytes::kSlotShare) {
    return false;  // views still hold them (and V8 counts them through those buffers): freed by view_finalized
  }
  free_shared(shared);
  return true;
}

// Finalizer of an external ArrayBuffer lent by string_view: the buffer's share of the bytes ends. Node runs it on the
// JS thread (deferred after GC, or at environment teardown), never during one of our calls; Deno 2.9 may run it on a
// V8 background thread, from the backing store's deleter. So it touches only the shared record's atomics and the
// core's free, and never `env`: no Node-API call, no state.
void view_finalized(napi_env /*env*/, void* /*data*/, void* hint) {
  auto* shared = static_cast<SharedBytes*>(hint);
  const std::shared_ptr<SharedLedger> ledger = shared->ledger;  // the record may be freed by another owner below
  if (std::this_thread::get_id() != ledger->js_thread) {
    ledger->view_finalized_off_thread.fetch_add(1, std::memory_order_relaxed);
  }
  const auto length = static_cast<std::int64_t>(shared->length);
  const std::uint32_t left = shared->shares.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if (left == 0) {
    free_shared(shared);  // the handle was released and this was the last view: the bytes go now
  } else if (left == SharedBytes::kSlotShare) {
    // The handle is still live and no buffer is left, so V8 no longer counts these bytes: we report them again, with
    // the JS thread's next batch.
    ledger->memory.defer(length);
  }
}

// Reads the bytes of a Uint8Array (a Buffer is one) in place: the pointer stays valid for this call.
const char* uint8array_bytes(napi_env env, napi_value input, std::size_t* length) {
  bool is_typedarray = false;
  check(env, napi_is_typedarray(env, input, &is_typedarray));
  napi_typedarray_type type = napi_int8_array;
  void* data = nullptr;
  if (is_typedarray) check(env, napi_get_typedarray_info(env, input, &type, length, &data, nullptr, nullptr));
  if (!is_typedarray || type != napi_uint8_array) {
    errors::throw_invalid_arg_type(env, "a string or Uint8Array", "input", input);
  }
  static const char kEmpty[] = "";  // an empty (or detached) array may report no data pointer at all
  return data != nullptr ? static_cast<const char*>(data) : kEmpty;
}

// print_and_return(input: string | Uint8Array): handle
Napi::Value print_and_return(const Napi::CallbackInfo& info) {
  const napi_env env = info.Env();
  AddonState& state = state_of(info);
  const napi_value input = info[0];

  const char* bytes = nullptr;
  std::size_t length = 0;
  // Scratch for a string's UTF-8: 4 spare bytes (the widest character) make "it fit" provable from `length`.
  char stack_copy[kStackInputBytes + 4 + 1];
  std::unique_ptr<char[]> heap_copy;  // scratch for long strings, owned by this call and freed when it returns

  const napi_status as_string = napi_get_value_string_utf8(env, input, stack_copy, sizeof stack_copy, &length);
  if (as_string == napi_ok) {
    // Node-API converts to UTF-8 (lone surrogates become U+FFFD) and never writes a partial character, so if at least
    // 4 bytes of room were left the whole string is here; otherwise measure it and convert into the heap.
    if (length <= kStackInputBytes) {
      bytes = stack_copy;
    } else {
      check(env, napi_get_value_string_utf8(env, input, nullptr, 0, &length));
      heap_copy.reset(new (std::nothrow) char[length + 1]);
      if (!heap_copy) errors::throw_alloc(env, length + 1);
      check(env, napi_get_value_string_utf8(env, input, heap_copy.get(), length + 1, &length));
      bytes = heap_copy.get();
    }
    if (trace_enabled()) {
      char suffix[64];
      std::snprintf(suffix, sizeof suffix, " (%zu B, UTF-8 copy of a JS string)", length);
      trace_address("JS input", bytes, suffix);
    }
  } else if (as_string == napi_string_expected) {
    bytes = uint8array_bytes(env, input, &length);  // borrowed from JS for the duration of this call
    if (trace_enabled()) {
      char suffix[64];
      std::snprintf(suffix, sizeof suffix, " (%zu B, Uint8Array read in place)", length);
      trace_address("JS input", bytes, suffix);
    }
  } else {
    check(env, as_string);
  }

  std::int32_t status = CPP_CORE_STATUS_OK;
  std::size_t offset = 0;
  // The core's copy: owned by `entry` below, then by the table; freed by cpp_free_string when the slot is released.
  StringEntry entry{CoreString(cpp_print_and_return_len(bytes, length, &status, &offset)), length, nullptr, {}};
  if (!entry.bytes) {
    switch (status) {
      case CPP_CORE_STATUS_INTERIOR_NUL: errors::throw_interior_nul(env, "input", offset);
      case CPP_CORE_STATUS_INVALID_UTF8: errors::throw_invalid_utf8(env, offset);
      default: errors::throw_alloc(env, length + 1);
    }
  }

  std::optional<StringKey> key;
  try {
    key = state.strings.insert(std::move(entry));  // the table owns the copy from here
  } catch (const std::bad_alloc&) {
    key.reset();  // `entry` still owns the copy and frees it on the way out
  }
  if (!key) errors::throw_table_full(env, Kind::kString);

  state.ledger.allocated += 1;
  state.ledger.live_bytes += length;
  state.shared->memory.adjust(env, static_cast<std::int64_t>(length));

  return handle_value(env, state, Kind::kString, key->generation, key->slot);
}

// free_string / finalize_string: end the handle now; `true`, or `false` if it was already released. Views taken before
// keep their share: the bytes are freed now if no view holds them, else when the last view is finalized.
Napi::Value release_string(const Napi::CallbackInfo& info, bool finalized) {
  const napi_env env = info.Env();
  AddonState& state = state_of(info);
  const std::optional<StringKey> key = resolve(env, state, state.strings, info[0], Kind::kString);
  if (!key) return Napi::Boolean::New(env, false);

  std::optional<StringEntry> entry = state.strings.take(*key);  // ours now; the slot's generation moved on
  forget_view(env, entry->view);
  (finalized ? state.ledger.finalized : state.ledger.freed) += 1;
  state.ledger.live_bytes -= entry->length;
  if (SharedBytes* shared = entry->shared) {
#ifdef NAPI_OWNERSHIP_SEED_BUG_VIEW_HOLDS_NO_SHARE
    // Seeded bug (leak-test self-test builds only): the bytes go now, while views may still point at them.
    shared->bytes.reset();
#endif
    // The slot's share ends here. If no view was left (their finalizers ran), we were reporting these bytes.
    if (end_slot_share(shared)) state.shared->memory.adjust(env, -static_cast<std::int64_t>(entry->length));
  } else {
    state.shared->memory.adjust(env, -static_cast<std::int64_t>(entry->length));
  }
  return Napi::Boolean::New(env, true);
}  // `entry` goes out of scope here: cpp_free_string frees bytes no view ever shared

Napi::Value free_string(const Napi::CallbackInfo& info) { return release_string(info, false); }
Napi::Value finalize_string(const Napi::CallbackInfo& info) { return release_string(info, true); }

// string_text(handle): a new JS string (a copy); the native bytes stay owned by the table.
Napi::Value string_text(const Napi::CallbackInfo& info) {
  AddonState& state = state_of(info);
  const StringEntry& entry = *state.strings.find(live_string(info, state));
  return Napi::String::New(info.Env(), entry.data(), entry.length);  // copies; runs no JS
}

// A view that is a copy, where the runtime refuses external buffers (napi_no_external_buffers_allowed: Electron, V8
// sandbox builds) or this build was made to act as one (NAPI_OWNERSHIP_COPY_VIEWS). JS owns the copy; it shares
// nothing, so nothing native is freed for it. Writes to it do not reach the native bytes.
napi_value copy_view(napi_env env, AddonState& state, StringKey key) {
  const std::size_t length = state.strings.find(key)->length;
  void* data = nullptr;
  napi_value buffer;
  check(env, napi_create_arraybuffer(env, length, &data, &buffer));  // may run GC, never JS: look the entry up again
  const StringEntry& entry = *state.strings.find(key);
  if (length > 0) std::memcpy(data, entry.data(), length);
  state.ledger.view_copies += 1;
  napi_value array;
  check(env, napi_create_typedarray(env, napi_uint8_array, length, buffer, 0, &array));
  return array;
}

// string_view(handle): a Uint8Array over the native bytes, zero-copy. Its ArrayBuffer co-owns the bytes (one share,
// ended by view_finalized), so they outlive free_string for as long as JS, or native code JS handed the view to
// (fs, zlib, a socket), can reach them. The same Uint8Array is returned while it is alive.
Napi::Value string_view(const Napi::CallbackInfo& info) {
  const napi_env env = info.Env();
  AddonState& state = state_of(info);
  const StringKey key = live_string(info, state);
#ifdef NAPI_OWNERSHIP_COPY_VIEWS
  return Napi::Value(env, copy_view(env, state, key));
#else
  if (napi_value array = reference_value(env, state.strings.find(key)->view.array)) return Napi::Value(env, array);
  // JS may still hold view.buffer alone: a new Uint8Array over it shares what that buffer already holds.
  napi_value buffer = reference_value(env, state.strings.find(key)->view.buffer);
  if (buffer == nullptr) {
    StringEntry& entry = *state.strings.find(key);
    if (entry.shared == nullptr) {
      // The first view: the bytes become co-owned. Ownership moves from the entry into a SharedBytes, of which the
      // slot holds one share and each external buffer one more; freed by the last of them (free_shared).
      entry.shared = new SharedBytes(std::move(entry.bytes), entry.length, state.shared);
    }
    SharedBytes* const shared = entry.shared;
    const napi_status status = napi_create_external_arraybuffer(env, shared->bytes.get(), shared->length,
                                                                view_finalized, shared, &buffer);
    if (status == napi_no_external_buffers_allowed) return Napi::Value(env, copy_view(env, state, key));
    check(env, status);
    // The buffer holds its share from here (view_finalized ends it). While any buffer lives V8 counts the bytes
    // itself (an external backing store), so we stop reporting them: they are reported once, by one of us.
    if (shared->shares.fetch_add(1, std::memory_order_acq_rel) == SharedBytes::kSlotShare) {
      state.shared->memory.adjust(env, -static_cast<std::int64_t>(shared->length));
    }
  }
  napi_value array;
  check(env, napi_create_typedarray(env, napi_uint8_array, state.strings.find(key)->length, buffer, 0, &array));
  napi_ref buffer_ref = nullptr;
  napi_ref array_ref = nullptr;
  check(env, napi_create_reference(env, buffer, 0, &buffer_ref));
  if (napi_create_reference(env, array, 0, &array_ref) != napi_ok) {
    napi_delete_reference(env, buffer_ref);
    check(env, napi_generic_failure);
  }
  // None of the calls above runs JS, but look the entry up again rather than keep a reference across them.
  StringView& view = state.strings.find(key)->view;
  forget_view(env, view);
  view.buffer = buffer_ref;
  view.array = array_ref;
  return Napi::Value(env, array);
#endif
}

// string_info(handle): { address: bigint, byteLength: number }. Copied out of the entry first; the result's
// properties are defined, not assigned (a setter named `address` on Object.prototype does not run).
Napi::Value string_info(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  AddonState& state = state_of(info);
  const StringEntry& entry = *state.strings.find(live_string(info, state));
  const auto address = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(entry.data()));
  const auto length = static_cast<double>(entry.length);
  return define_object(env, {{"address", Napi::BigInt::New(env, address)}, {"byteLength", number_value(env, length)}});
}

// stats(): this environment's ledger.
Napi::Value stats(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const AddonState& state = state_of(info);
  const StringLedger ledger = state.ledger;  // a copy: nothing below runs JS, but the snapshot is consistent anyway
  const SharedLedger& shared = *state.shared;
  const auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  const auto n = [env](std::uint64_t value) { return number_value(env, static_cast<double>(value)); };
  const Napi::Object strings = define_object(env, {{"live", n(ledger.live())},
                                                   {"allocated", n(ledger.allocated)},
                                                   {"freed", n(ledger.freed)},
                                                   {"finalized", n(ledger.finalized)},
                                                   {"liveBytes", n(ledger.live_bytes)},
                                                   {"viewHeld", n(load(shared.view_held))},
                                                   {"viewHeldBytes", n(load(shared.view_held_bytes))},
                                                   {"viewCopies", n(ledger.view_copies)},
                                                   {"viewFinalizedOffThread", n(load(shared.view_finalized_off_thread))}});
  return define_object(env, {{"strings", strings},
                             {"handlers", handler_stats(env, state)},
                             {"posts", post_stats(env, state)},
                             {"producers", producer_stats(env, state)}});
}

// noop(): the benchmark floor.
void noop(const Napi::CallbackInfo&) {}

// noop_view(length): the benchmark floor of a first view — a bare external ArrayBuffer and a Uint8Array over it, with
// no ownership work at all. Its bytes are a static scratch of this module (zero, process lifetime) that nothing owns
// or frees; its finalizer does nothing. Not for data: every such view aliases the same scratch.
constexpr std::uint32_t kFloorBytes = 1u << 20;
unsigned char g_floor_scratch[kFloorBytes];
void floor_finalized(napi_env, void*, void*) {}

Napi::Value noop_view(const Napi::CallbackInfo& info) {
  const napi_env env = info.Env();
  const std::uint32_t length = read_uint32(env, info[0], "length", kFloorBytes);
  napi_value buffer;
#ifdef NAPI_OWNERSHIP_COPY_VIEWS
  void* data = nullptr;
  check(env, napi_create_arraybuffer(env, length, &data, &buffer));  // where external buffers are refused
#else
  check(env, napi_create_external_arraybuffer(env, g_floor_scratch, length, floor_finalized, nullptr, &buffer));
#endif
  napi_value array;
  check(env, napi_create_typedarray(env, napi_uint8_array, length, buffer, 0, &array));
  return Napi::Value(env, array);
}

// Instance-data finalizer, at environment teardown: no JS runs again. Every string still live is freed with the table
// (cpp_free_string, via ~StringEntry), except bytes that an external ArrayBuffer still shares: those are left to
// the last buffer's finalizer, which touches nothing of this state (the shared ledger outlives it). (On Node every
// buffer's finalizer has run by now: each holds a reference to the napi_env, which delays this finalizer.) Nothing is
// reported to JS, the ledger or V8 (the isolate's external-memory count goes away with it). Deleting the state also
// cancels every live subscription, frees its boxes (deleting the references to the functions), and then frees the
// dispatcher (see AddonState's member order); no callback runs.
// By now the teardown hook (posts.cpp) has stopped the producers, joined the worker and aborted the threadsafe
// function, and Node has handed every item still queued to call_js with a null env; what is left of native-thread
// delivery here is the references of promises that will never settle.
void finalize_state(Napi::Env env, AddonState* state) {
  state->strings.for_each_live([env](StringEntry& entry) {
    forget_view(env, entry.view);
    if (entry.shared != nullptr) end_slot_share(entry.shared);  // the slot's share ends with the table
  });
  release_delivery_references(env, *state);
  delete state;
}

// Process-wide environment ids. The counter is a static of this .node, and Node unloads the .node when the last
// environment that loaded it ends; loaded again, a fresh counter would count from 1 and hand a new environment the id
// of a dead one, whose handles it would then accept. So the first load pins the module (RTLD_NODELETE): the counter
// lives as long as the process. Ids still wrap after 255 environments (8 bits of the handle).
std::uint32_t next_env_id() {
  static const bool pinned = [] {
    Dl_info self{};
    if (dladdr(reinterpret_cast<void*>(&g_env_counter), &self) == 0 || self.dli_fname == nullptr) return false;
    // A second reference to ourselves, never closed, with RTLD_NODELETE: dlclose by Node no longer unmaps us.
    return dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
  }();
  (void)pinned;
  return g_env_counter.fetch_add(1, std::memory_order_relaxed) % handle::kMaxEnvId + 1;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  const std::uint32_t env_id = next_env_id();
  DispatcherPtr dispatcher(dispatcher_new());  // this environment's; freed with the state at teardown
  if (!dispatcher) throw Napi::Error::New(env, "napi-ownership: could not allocate the dispatcher");
  auto state = std::make_unique<AddonState>(env_id, std::move(dispatcher));
  env.SetInstanceData<AddonState, finalize_state>(state.get());
  AddonState& kept = *state.release();  // owned by Node-API now; finalize_state deletes it at teardown
  init_delivery(env, kept);  // the threadsafe function, then the teardown hook that must run before its cleanup

  exports.Set("print_and_return", Napi::Function::New<print_and_return>(env, "print_and_return"));
  exports.Set("free_string", Napi::Function::New<free_string>(env, "free_string"));
  exports.Set("finalize_string", Napi::Function::New<finalize_string>(env, "finalize_string"));
  exports.Set("string_text", Napi::Function::New<string_text>(env, "string_text"));
  exports.Set("string_view", Napi::Function::New<string_view>(env, "string_view"));
  exports.Set("string_info", Napi::Function::New<string_info>(env, "string_info"));
  exports.Set("stats", Napi::Function::New<stats>(env, "stats"));
  exports.Set("noop", Napi::Function::New<noop>(env, "noop"));
  exports.Set("noop_view", Napi::Function::New<noop_view>(env, "noop_view"));
  add_subscription_exports(env, exports);
  add_post_exports(env, exports);
  return exports;
}

}  // namespace
}  // namespace napi_ownership

// NODE_API_MODULE pastes the name into an identifier, so it needs an unqualified one.
static Napi::Object InitNapiOwnershipCpp(Napi::Env env, Napi::Object exports) {
  return napi_ownership::init(env, exports);
}

NODE_API_MODULE(napi_ownership_cpp, InitNapiOwnershipCpp)
