// napi_ownership_cpp.node: the C++ backend of docs/raw-contract.md, on node-addon-api.
//
// The binding converts JS values to bytes, hands them to the C++ core (which allocates the copy) and keeps the copy in
// this environment's handle table; JS only ever holds a number naming the slot. Hot paths (print_and_return,
// free_string) use raw napi_* calls and allocate nothing but the core's copy (plus, for strings over 256 B, a scratch
// buffer for the UTF-8 conversion).
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <new>
#include <optional>

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

// The live string named by the first argument; a released one throws ERR_NATIVE_RELEASED.
StringEntry& live_string(const Napi::CallbackInfo& info, AddonState& state) {
  const std::optional<StringKey> key = resolve(info.Env(), state, state.strings, info[0], Kind::kString);
  if (!key) errors::throw_released(info.Env(), Kind::kString);
  return *state.strings.find(*key);
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

// Forgets the view of a string that is being released. With `detach`, first detaches its ArrayBuffer if JS still holds
// it, so no view outlives the bytes. Returns false if a live ArrayBuffer could not be detached: the caller must then
// not free the bytes.
bool release_view(napi_env env, StringView& view, bool detach) noexcept {
  bool safe = true;
  if (detach && view.buffer != nullptr) {
    napi_value buffer = nullptr;
    if (napi_get_reference_value(env, view.buffer, &buffer) != napi_ok) {
      safe = false;
    } else if (buffer != nullptr) {
#ifndef NAPI_OWNERSHIP_SEED_BUG_VIEW_NOT_DETACHED
      safe = napi_detach_arraybuffer(env, buffer) == napi_ok;  // byteLength becomes 0 in every view over it
#endif  // else seeded bug 5 (leak-test self-test builds only): the view stays attached to bytes about to be freed
    }
  }
  delete_reference(env, view.buffer);
  delete_reference(env, view.array);
  return safe;
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
  StringEntry entry{CoreString(cpp_print_and_return_len(bytes, length, &status, &offset)), length, {}};
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
  state.memory.adjust(env, static_cast<std::int64_t>(length));

  return handle_value(env, state, Kind::kString, key->generation, key->slot);
}

// free_string / finalize_string: release now; `true`, or `false` if it was already released.
Napi::Value release_string(const Napi::CallbackInfo& info, bool finalized) {
  const napi_env env = info.Env();
  AddonState& state = state_of(info);
  const std::optional<StringKey> key = resolve(env, state, state.strings, info[0], Kind::kString);
  if (!key) return Napi::Boolean::New(env, false);

  std::optional<StringEntry> entry = state.strings.take(*key);  // ours now; the slot's generation moved on
  if (!release_view(env, entry->view, /*detach=*/true)) {
    // A JS view over these bytes could not be detached: leak them rather than leave JS reading freed memory.
    (void)entry->bytes.release();
  }
  (finalized ? state.ledger.finalized : state.ledger.freed) += 1;
  state.ledger.live_bytes -= entry->length;
  state.memory.adjust(env, -static_cast<std::int64_t>(entry->length));
  return Napi::Boolean::New(env, true);
}  // `entry` goes out of scope here: cpp_free_string frees the bytes

Napi::Value free_string(const Napi::CallbackInfo& info) { return release_string(info, false); }
Napi::Value finalize_string(const Napi::CallbackInfo& info) { return release_string(info, true); }

// string_text(handle): a new JS string (a copy); the native bytes stay owned by the table.
Napi::Value string_text(const Napi::CallbackInfo& info) {
  const StringEntry& entry = live_string(info, state_of(info));
  return Napi::String::New(info.Env(), entry.bytes.get(), entry.length);
}

// string_view(handle): a Uint8Array over the native bytes, zero-copy, one per string while it is alive.
Napi::Value string_view(const Napi::CallbackInfo& info) {
  const napi_env env = info.Env();
  AddonState& state = state_of(info);
  StringEntry& entry = live_string(info, state);

  if (napi_value array = reference_value(env, entry.view.array)) return Napi::Value(env, array);

  napi_value buffer = reference_value(env, entry.view.buffer);  // JS may still hold view.buffer alone
  if (buffer == nullptr) {
    // The ArrayBuffer borrows the bytes: no finalizer, because the table owns them and frees them only after
    // free_string/finalize_string has detached this buffer.
    check(env, napi_create_external_arraybuffer(env, entry.bytes.get(), entry.length, nullptr, nullptr, &buffer));
    // A transfer (postMessage/structuredClone with a transfer list) would move the borrowed pointer into a new
    // ArrayBuffer that our detach cannot reach. Marked untransferable, Node copies the bytes instead.
    if (napi_value mark = reference_value(env, state.mark_untransferable)) {
      napi_value receiver;
      check(env, napi_get_undefined(env, &receiver));
      check(env, napi_call_function(env, receiver, mark, 1, &buffer, nullptr));
    }
    delete_reference(env, entry.view.buffer);
    check(env, napi_create_reference(env, buffer, 0, &entry.view.buffer));
  }
  napi_value array;
  check(env, napi_create_typedarray(env, napi_uint8_array, entry.length, buffer, 0, &array));
  delete_reference(env, entry.view.array);
  check(env, napi_create_reference(env, array, 0, &entry.view.array));
  return Napi::Value(env, array);
}

// string_info(handle): { address: bigint, byteLength: number }
Napi::Value string_info(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const StringEntry& entry = live_string(info, state_of(info));
  Napi::Object result = Napi::Object::New(env);
  result.Set("address", Napi::BigInt::New(env, static_cast<std::uint64_t>(
                                                   reinterpret_cast<std::uintptr_t>(entry.bytes.get()))));
  result.Set("byteLength", Napi::Number::New(env, static_cast<double>(entry.length)));
  return result;
}

// stats(): this environment's ledger.
Napi::Value stats(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const AddonState& state = state_of(info);
  const StringLedger& ledger = state.ledger;
  Napi::Object strings = Napi::Object::New(env);
  strings.Set("live", Napi::Number::New(env, static_cast<double>(ledger.live())));
  strings.Set("allocated", Napi::Number::New(env, static_cast<double>(ledger.allocated)));
  strings.Set("freed", Napi::Number::New(env, static_cast<double>(ledger.freed)));
  strings.Set("finalized", Napi::Number::New(env, static_cast<double>(ledger.finalized)));
  strings.Set("liveBytes", Napi::Number::New(env, static_cast<double>(ledger.live_bytes)));
  Napi::Object result = Napi::Object::New(env);
  result.Set("strings", strings);
  result.Set("handlers", handler_stats(env, state));
  result.Set("posts", post_stats(env, state));
  result.Set("producers", producer_stats(env, state));
  return result;
}

// noop(): the benchmark floor.
void noop(const Napi::CallbackInfo&) {}

// Instance-data finalizer, at environment teardown: no JS runs again, so views are not detached; their weak references
// are deleted and every string still live is freed with the table (cpp_free_string, via ~StringEntry). Nothing is
// reported to JS, the ledger or V8 (the isolate's external-memory count goes away with it). Deleting the state also
// cancels every live subscription, frees its boxes (deleting the references to the functions), and then frees the
// dispatcher (see AddonState's member order); no callback runs.
// By now the teardown hook (posts.cpp) has stopped the producers, joined the worker and aborted the threadsafe
// function, and Node has handed every item still queued to call_js with a null env; what is left of native-thread
// delivery here is the references of promises that will never settle.
void finalize_state(Napi::Env env, AddonState* state) {
  state->strings.for_each_live([env](StringEntry& entry) { release_view(env, entry.view, /*detach=*/false); });
  delete_reference(env, state->mark_untransferable);
  release_delivery_references(env, *state);
  delete state;
}

// process.getBuiltinModule('node:worker_threads').markAsUntransferable, held by a strong reference; null if missing.
napi_ref find_mark_untransferable(Napi::Env env) {
  try {
    const Napi::Value process = env.Global().Get("process");
    if (!process.IsObject()) return nullptr;
    const Napi::Value get_builtin = process.As<Napi::Object>().Get("getBuiltinModule");
    if (!get_builtin.IsFunction()) return nullptr;
    const Napi::Value worker_threads =
        get_builtin.As<Napi::Function>().Call(process, {Napi::String::New(env, "node:worker_threads")});
    if (!worker_threads.IsObject()) return nullptr;
    const Napi::Value mark = worker_threads.As<Napi::Object>().Get("markAsUntransferable");
    if (!mark.IsFunction()) return nullptr;
    napi_ref ref = nullptr;
    check(env, napi_create_reference(env, mark, 1, &ref));
    return ref;
  } catch (const Napi::Error&) {
    return nullptr;  // the JS exception was cleared when it became a Napi::Error; views still work, just transferable
  }
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  const std::uint32_t env_id = g_env_counter.fetch_add(1, std::memory_order_relaxed) % handle::kMaxEnvId + 1;
  DispatcherPtr dispatcher(dispatcher_new());  // this environment's; freed with the state at teardown
  if (!dispatcher) throw Napi::Error::New(env, "napi-ownership: could not allocate the dispatcher");
  auto state = std::make_unique<AddonState>(env_id, std::move(dispatcher));
  state->mark_untransferable = find_mark_untransferable(env);
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
