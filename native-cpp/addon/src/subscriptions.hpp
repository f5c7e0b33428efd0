// The subscription exports (subscriptions.cpp): handler, cancel, finalize_subscription, subscription_active, send,
// shutdown; and the `handlers` part of stats().
#pragma once

#include <napi.h>

#include "state.hpp"

namespace napi_ownership {

void add_subscription_exports(Napi::Env env, Napi::Object exports);

// { live, registered, cancelled, finalized } of this environment.
Napi::Object handler_stats(Napi::Env env, const AddonState& state);

}  // namespace napi_ownership
