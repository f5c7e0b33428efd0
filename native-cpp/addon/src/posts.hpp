// The native-thread delivery exports (posts.cpp): post, produce, producer_stop, finalize_producer, producer_active;
// the environment's threadsafe function and its teardown; the `posts` and `producers` parts of stats(). Each export
// is an instance method of the Addon (addon.hpp), which hands it this environment's state.
#pragma once

#include <napi.h>

#include "state.hpp"

namespace napi_ownership {

// Creates this environment's threadsafe function (unref'd: it holds the event loop only while something is pending),
// the promise helpers, and THEN registers the teardown hook (env.AddCleanupHook), so that the hook runs before the
// threadsafe function's own cleanup (Node runs cleanup hooks in reverse order of registration). Call once, from the
// Addon's constructor.
void init_delivery(Napi::Env env, AddonState& state);

// The subscription trampoline's path off the JS thread: notes `handle` (and, for the message's first delivery, a copy
// of `msg`) in the worker's batch. Allocates; on std::bad_alloc that delivery is dropped (never thrown into the core).
void note_worker_delivery(AddonState& state, std::uint64_t handle, const char* msg) noexcept;

Napi::Value post(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value produce(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value producer_stop_export(const Napi::CallbackInfo& info, AddonState& state);  // producer_stop
Napi::Value finalize_producer(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value producer_active(const Napi::CallbackInfo& info, AddonState& state);

// { posted, delivered, skipped, pending } and { live, started, stopped, finalized } of this environment.
Napi::Object post_stats(Napi::Env env, const AddonState& state);
Napi::Object producer_stats(Napi::Env env, const AddonState& state);

}  // namespace napi_ownership
