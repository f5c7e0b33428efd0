// napi_ownership_cpp.node: the C++ backend of docs/raw-contract.md, written as a node-addon-api Napi::Addon.
//
// One Addon per environment (the main thread and every worker that loads the module): node-addon-api's Addon<T>::Init
// makes it, keeps it as the environment's instance data, and deletes it when the environment is torn down (the
// instance-data finalizer, which Node runs after every cleanup hook, with the env still valid and no JS to run again).
// The Addon owns this environment's whole state (`state_`); every export is an instance method bound to it.
#pragma once

#include <napi.h>

#include <cstdint>

#include "state.hpp"

namespace napi_ownership {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);
  ~Addon();
  Addon(const Addon&) = delete;
  Addon& operator=(const Addon&) = delete;

 private:
  // An export of one of the export files (strings, subscriptions, posts), as an instance method of this Addon: it is
  // handed this environment's state, so no export looks the state up itself.
  template <Napi::Value (*Export)(const Napi::CallbackInfo&, AddonState&)>
  Napi::Value Bound(const Napi::CallbackInfo& info) {
    return Export(info, state_);
  }

  AddonState state_;  // the threadsafe function, the handle tables and everything they own
};

}  // namespace napi_ownership
