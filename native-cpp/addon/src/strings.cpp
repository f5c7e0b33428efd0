// The string and view exports of docs/raw-contract.md ("Strings", "Views"). JS only ever holds a number naming a slot
// of this environment's handle table; the table owns the core's copy (and, once a view lent it, a share of it).
#include "strings.hpp"

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>

#include "args.hpp"
#include "binding.hpp"
#include "errors.hpp"
#include "fast.hpp"
#include "handle.hpp"
#include "napi_ownership/cpp_core.h"
#include "napi_ownership/cpp_trace.hpp"
#include "posts.hpp"
#include "subscriptions.hpp"

namespace napi_ownership {
namespace {

using handle::Kind;

// The key of the live string named by the first argument; a released one throws ERR_NATIVE_RELEASED. A key, not a
// reference: look the entry up again after anything that may run JS or grow the table.
StringKey live_string(const Napi::CallbackInfo& info, AddonState& state) {
  const std::optional<StringKey> key = resolve(info.Env(), state, state.strings, info[0], Kind::kString);
  if (!key) errors::throw_released(info.Env(), Kind::kString);
  return *key;
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

#ifndef NAPI_OWNERSHIP_COPY_VIEWS
// Finalizer of an external ArrayBuffer lent by string_view: the buffer's share of the bytes ends. Node runs it on the
// JS thread (deferred after GC, or at environment teardown), never during one of our calls; Deno 2.9 may run it on a
// V8 background thread, from the backing store's deleter. So it touches only the shared record's atomics and the
// core's free, and never `env`: no Node-API call, no state. noexcept, and nothing in it throws: node-addon-api's
// wrapper (details::FinalizeData::WrapperWithHint, NAPI_VERSION 9 without NODE_API_EXPERIMENTAL_HAS_POST_FINALIZER)
// calls it, then deletes its own FinalizeData record, and calls Node-API only to rethrow a Napi::Error it caught.
void view_finalized(Napi::Env /*env*/, void* /*data*/, SharedBytes* shared) noexcept {
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
#endif

// A view that is a copy, where the runtime refuses external buffers (napi_no_external_buffers_allowed: Electron, V8
// sandbox builds) or this build was made to act as one (NAPI_OWNERSHIP_COPY_VIEWS). JS owns the copy; it shares
// nothing, so nothing native is freed for it. Writes to it do not reach the native bytes.
Napi::Uint8Array copy_view(Napi::Env env, AddonState& state, StringKey key) {
  const std::size_t length = state.strings.find(key)->length;
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, length);  // may run GC, never JS: look the entry up again
  const StringEntry& entry = *state.strings.find(key);
  if (length > 0) std::memcpy(buffer.Data(), entry.data(), length);
  state.ledger.view_copies += 1;
  return Napi::Uint8Array::New(env, length, buffer, 0);
}

constexpr std::uint32_t kFloorBytes = 1u << 20;
#ifndef NAPI_OWNERSHIP_COPY_VIEWS
unsigned char g_floor_scratch[kFloorBytes];  // noop_view's bytes: zero, for the process's lifetime, owned by nobody
#endif

}  // namespace

namespace {
// The table takes a copy the core made (or refused: `copy` null, `status`/`offset` say why): the string's handle.
Napi::Value store_copy(Napi::Env env, AddonState& state, CoreString copy, std::size_t length, std::int32_t status,
                       std::size_t offset);
}  // namespace

Napi::Value store_string(Napi::Env env, AddonState& state, const char* bytes, std::size_t length, InputKind kind) {
  if (trace_enabled()) {
    const char* const how = kind == InputKind::kString ? "UTF-8 copy of a JS string" : "Uint8Array read in place";
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, " (%zu B, %s)", length, how);
    trace_address("JS input", bytes, suffix);
  }
  std::int32_t status = CPP_CORE_STATUS_OK;
  std::size_t offset = 0;
  // The core's copy: owned by store_copy's entry, then by the table; freed by cpp_free_string when the slot is released.
  CoreString copy(cpp_print_and_return_len(bytes, length, &status, &offset));
  return store_copy(env, state, std::move(copy), length, status, offset);
}

Napi::Value store_js_string(Napi::Env env, AddonState& state, napi_value input) {
  const std::size_t length = fast::utf8_length(env, input);
  // Ours until sealed: freed by its deleter (cpp_free_string) if the conversion below fails.
  CoreString buffer(cpp_string_alloc(length));
  if (!buffer) errors::throw_alloc(env, length + 1);
  // No JS runs between the two calls, so the string is the same and `written` == `length`.
  const std::size_t written = fast::write_utf8(env, input, buffer.get(), length + 1);
  if (trace_enabled()) {
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, " (%zu B, UTF-8 written straight into the core's copy)", written);
    trace_address("JS input", buffer.get(), suffix);
  }
  std::int32_t status = CPP_CORE_STATUS_OK;
  std::size_t offset = 0;
  // The core checks what was written; on refusal (an interior NUL) it has freed the buffer already.
  CoreString copy(cpp_string_seal(buffer.release(), written, &status, &offset));
  return store_copy(env, state, std::move(copy), written, status, offset);
}

namespace {
Napi::Value store_copy(Napi::Env env, AddonState& state, CoreString copy, std::size_t length, std::int32_t status,
                       std::size_t offset) {
  // Owned by `entry`, then by the table; freed by cpp_free_string when the slot is released.
  StringEntry entry{std::move(copy), length, nullptr, {}};
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
}  // namespace

void release_string(Napi::Env env, AddonState& state, StringKey key, bool finalized) {
  // Ours now; the slot's generation moved on. Its weak view references are deleted with it.
  std::optional<StringEntry> entry = state.strings.take(key);
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
}  // `entry` goes out of scope here: cpp_free_string frees bytes no view ever shared

// print_and_return_idiomatic(input): print_and_return on node-addon-api's types (the bench's "idiom" row).
Napi::Value print_and_return_idiomatic(const Napi::CallbackInfo& info, AddonState& state) {
  const Napi::Env env = info.Env();
  const Napi::Value input = info[0];
  if (input.IsString()) {
    const std::string text = input.As<Napi::String>().Utf8Value();  // the UTF-8 copy, freed when this returns
    return store_string(env, state, text.data(), text.size(), InputKind::kString);
  }
  if (input.IsTypedArray() && input.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    const Napi::Uint8Array array = input.As<Napi::Uint8Array>();  // borrowed from JS for the duration of this call
    static const char kEmpty[] = "";  // an empty (or detached) array may report no data pointer at all
    const char* bytes = array.Data() != nullptr ? reinterpret_cast<const char*>(array.Data()) : kEmpty;
    return store_string(env, state, bytes, array.ElementLength(), InputKind::kUint8Array);
  }
  errors::throw_invalid_arg_type(env, "a string or Uint8Array", "input", input);
}

// free_string_idiomatic(handle) / finalize_string(handle): true, or false if it was already released.
Napi::Value free_string_idiomatic(const Napi::CallbackInfo& info, AddonState& state) {
  const std::optional<StringKey> key = resolve(info.Env(), state, state.strings, info[0], Kind::kString);
  if (key) release_string(info.Env(), state, *key, false);
  return Napi::Boolean::New(info.Env(), key.has_value());
}

Napi::Value finalize_string(const Napi::CallbackInfo& info, AddonState& state) {
  const std::optional<StringKey> key = resolve(info.Env(), state, state.strings, info[0], Kind::kString);
  if (key) release_string(info.Env(), state, *key, true);
  return Napi::Boolean::New(info.Env(), key.has_value());
}

// noop_idiomatic(): the benchmark floor of an Addon instance method.
Napi::Value noop_idiomatic(const Napi::CallbackInfo& info, AddonState&) { return info.Env().Undefined(); }

// string_text(handle): a new JS string (a copy); the native bytes stay owned by the table.
Napi::Value string_text(const Napi::CallbackInfo& info, AddonState& state) {
  const StringEntry& entry = *state.strings.find(live_string(info, state));
  return Napi::String::New(info.Env(), entry.data(), entry.length);  // copies; runs no JS
}

// string_view(handle): a Uint8Array over the native bytes, zero-copy. Its ArrayBuffer co-owns the bytes (one share,
// ended by view_finalized), so they outlive free_string for as long as JS, or native code JS handed the view to
// (fs, zlib, a socket), can reach them. The same Uint8Array is returned while it is alive.
Napi::Value string_view(const Napi::CallbackInfo& info, AddonState& state) {
  const Napi::Env env = info.Env();
  const StringKey key = live_string(info, state);
#ifdef NAPI_OWNERSHIP_COPY_VIEWS
  return copy_view(env, state, key);
#else
  if (!state.external_buffers) return copy_view(env, state, key);
  Napi::Uint8Array array = state.strings.find(key)->view.array.Value();
  if (!array.IsEmpty()) return array;
  // JS may still hold view.buffer alone: a new Uint8Array over it shares what that buffer already holds.
  Napi::ArrayBuffer buffer = state.strings.find(key)->view.buffer.Value();
  if (buffer.IsEmpty()) {
    StringEntry& entry = *state.strings.find(key);
    if (entry.shared == nullptr) {
      // The first view: the bytes become co-owned. Ownership moves from the entry into a SharedBytes, of which the
      // slot holds one share and each external buffer one more; freed by the last of them (free_shared).
      entry.shared = new SharedBytes(std::move(entry.bytes), entry.length, state.shared);
    }
    SharedBytes* const shared = entry.shared;
    // The buffer holds its share from here: ended by view_finalized, on whichever thread the runtime finalizes it.
    buffer = Napi::ArrayBuffer::New(env, shared->bytes.get(), shared->length, view_finalized, shared);
    // While any buffer lives V8 counts the bytes itself (an external backing store), so we stop reporting them: they
    // are reported once, by one of us.
    if (shared->shares.fetch_add(1, std::memory_order_acq_rel) == SharedBytes::kSlotShare) {
      state.shared->memory.adjust(env, -static_cast<std::int64_t>(shared->length));
    }
  }
  array = Napi::Uint8Array::New(env, state.strings.find(key)->length, buffer, 0);
  Napi::Reference<Napi::ArrayBuffer> buffer_ref = Napi::Weak(buffer);
  Napi::Reference<Napi::Uint8Array> array_ref = Napi::Weak(array);
  // None of the calls above runs JS, but look the entry up again rather than keep a reference across them. The old
  // references (if any) are deleted by the assignments.
  StringView& view = state.strings.find(key)->view;
  view.buffer = std::move(buffer_ref);
  view.array = std::move(array_ref);
  return array;
#endif
}

// string_info(handle): { address: bigint, byteLength: number }. Copied out of the entry first; the result's
// properties are defined, not assigned (a setter named `address` on Object.prototype does not run).
Napi::Value string_info(const Napi::CallbackInfo& info, AddonState& state) {
  const Napi::Env env = info.Env();
  const StringEntry& entry = *state.strings.find(live_string(info, state));
  const auto address = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(entry.data()));
  const auto length = static_cast<double>(entry.length);
  return define_object(env, {{"address", Napi::BigInt::New(env, address)}, {"byteLength", number_value(env, length)}});
}

// stats(): this environment's ledger.
Napi::Value stats(const Napi::CallbackInfo& info, AddonState& state) {
  const Napi::Env env = info.Env();
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
  const ExternalMemory& memory = shared.memory;
  const auto i = [env](std::int64_t value) { return number_value(env, static_cast<double>(value)); };
  return define_object(env, {{"strings", strings},
                             {"handlers", handler_stats(env, state)},
                             {"posts", post_stats(env, state)},
                             {"producers", producer_stats(env, state)},
                             {"memory", define_object(env, {{"reported", i(memory.reported())},
                                                            {"pending", i(memory.pending())}})}});
}

// noop_view(length): the benchmark floor of a first view — a bare external ArrayBuffer and a Uint8Array over it, with
// no ownership work at all. Its bytes are a static scratch of this module (zero, process lifetime) that nothing owns
// or frees; its finalizer does nothing. Not for data: every such view aliases the same scratch.
Napi::Value noop_view(const Napi::CallbackInfo& info, AddonState&) {
  const Napi::Env env = info.Env();
  const std::uint32_t length = read_uint32(env, info[0], "length", kFloorBytes);
#ifdef NAPI_OWNERSHIP_COPY_VIEWS
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, length);  // where external buffers are refused
#else
  Napi::ArrayBuffer buffer =
      Napi::ArrayBuffer::New(env, g_floor_scratch, length, [](Napi::Env, void*) noexcept {});  // owns nothing
#endif
  return Napi::Uint8Array::New(env, length, buffer, 0);
}

bool external_buffers_allowed(Napi::Env env) {
#ifdef NAPI_OWNERSHIP_COPY_VIEWS
  (void)env;
  return false;
#else
  // A zero-length external buffer over the floor's scratch (nothing owned; its finalizer does nothing): refused with
  // napi_no_external_buffers_allowed where the runtime takes none, which node-addon-api throws as a Napi::Error. The
  // only other failures would be an invalid env or a pending exception, neither possible while the Addon is made.
  try {
    (void)Napi::ArrayBuffer::New(env, g_floor_scratch, 0, [](Napi::Env, void*) noexcept {});
    return true;
  } catch (const Napi::Error&) {
    return false;
  }
#endif
}

void end_string_shares(AddonState& state) noexcept {
  state.strings.for_each_live([](StringEntry& entry) {
    if (entry.shared != nullptr) end_slot_share(entry.shared);  // the slot's share ends with the table
  });
}

}  // namespace napi_ownership
