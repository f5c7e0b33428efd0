// The string and view exports of docs/raw-contract.md ("Strings", "Views"), on node-addon-api's types. Each is an
// instance method of the Addon (addon.hpp), which hands it this environment's state. print_and_return, free_string
// and noop themselves are the raw fast path (fast.cpp); they share store_string / release_string with their twins.
#pragma once

#include <napi.h>

#include <cstddef>

#include "handle_table.hpp"
#include "state.hpp"

namespace napi_ownership {

using StringKey = HandleTable<StringEntry>::Key;

enum class InputKind { kString, kUint8Array };

// The core copies `bytes` (a UTF-8 conversion owned by the caller, or a Uint8Array's bytes borrowed for this call)
// and the table takes the copy: the string's handle. Throws the contract's input errors.
Napi::Value store_string(Napi::Env env, AddonState& state, const char* bytes, std::size_t length, InputKind kind);

// A JS string converted straight into the core's memory (cpp_string_alloc, the conversion, cpp_string_seal): no
// scratch buffer and no second copy, for strings too long for a stack buffer. The table takes the copy.
Napi::Value store_js_string(Napi::Env env, AddonState& state, napi_value input);

// Ends the live handle `key` now (free_string, or, counted as finalized, finalize_string). Views taken before keep
// their share: the bytes are freed now if no view holds them, else when the last view is finalized.
void release_string(Napi::Env env, AddonState& state, StringKey key, bool finalized);

Napi::Value print_and_return_idiomatic(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value free_string_idiomatic(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value noop_idiomatic(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value finalize_string(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value string_text(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value string_view(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value string_info(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value stats(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value noop_view(const Napi::CallbackInfo& info, AddonState& state);

// Whether this runtime accepts external ArrayBuffers (not: napi_no_external_buffers_allowed, Electron, V8 sandbox
// builds). Asked once, when the Addon is made; false in a copy-views build.
bool external_buffers_allowed(Napi::Env env);

// At teardown (~Addon, before the table goes): the slot's share of every string a view shares ends; bytes no buffer
// still holds are freed with the table. Touches no JS.
void end_string_shares(AddonState& state) noexcept;

}  // namespace napi_ownership
