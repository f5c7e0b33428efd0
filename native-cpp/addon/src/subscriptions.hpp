// The subscription exports (subscriptions.cpp): handler, cancel, finalize_subscription, subscription_active, send,
// shutdown; and the `handlers` part of stats(). Each is an instance method of the Addon (addon.hpp), which hands it
// this environment's state.
#pragma once

#include <napi.h>

#include "state.hpp"

namespace napi_ownership {

Napi::Value handler(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value cancel(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value finalize_subscription(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value subscription_active(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value send(const Napi::CallbackInfo& info, AddonState& state);
Napi::Value shutdown(const Napi::CallbackInfo& info, AddonState& state);

// { live, registered, cancelled, finalized } of this environment.
Napi::Object handler_stats(Napi::Env env, const AddonState& state);

}  // namespace napi_ownership
