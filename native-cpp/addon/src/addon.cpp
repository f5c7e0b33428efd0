// napi_ownership_cpp.node: the Addon (addon.hpp) and the module's registration.
//
// C++ exceptions are on (NAPI_CPP_EXCEPTIONS, see native-cpp/addon/CMakeLists.txt): every failed node-addon-api call
// throws a Napi::Error, and node-addon-api's callback wrappers (and fast.cpp's, for the raw fast path) turn any C++
// exception into a pending JS exception at the boundary. Nothing native is ever left half-owned by a throw: ownership
// is held by RAII types (CoreString, unique_ptr, Napi::Reference) at every point where one can happen.
#include "addon.hpp"

#include <napi.h>

#include <dlfcn.h>

#include <atomic>
#include <cstdint>

#include "errors.hpp"
#include "fast.hpp"
#include "handle.hpp"
#include "posts.hpp"
#include "strings.hpp"
#include "subscriptions.hpp"

namespace napi_ownership {
namespace {

// The only process-wide state: the counter that gives each environment its env bits (1..255, wrapping, 0 unused).
std::atomic<std::uint32_t> g_env_counter{0};

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

// This environment's dispatcher; owned by the state from here, freed with it at teardown.
DispatcherPtr new_dispatcher(Napi::Env env) {
  DispatcherPtr dispatcher(dispatcher_new());
  if (!dispatcher) throw Napi::Error::New(env, "napi-ownership: could not allocate the dispatcher");
  return dispatcher;
}

// Exports are writable, enumerable and configurable, as exports.Set would make them.
constexpr napi_property_attributes kExport = napi_default_jsproperty;

}  // namespace

Addon::Addon(Napi::Env env, Napi::Object exports) : state_(next_env_id(), new_dispatcher(env)) {
  state_.external_buffers = external_buffers_allowed(env);
  init_delivery(env, state_);  // the threadsafe function, then the teardown hook that must run before its cleanup
  DefineAddon(exports, {
      // The fenced raw fast path (fast.hpp): functions whose data is the state, exported as values.
      InstanceValue("print_and_return", fast::print_and_return(env, &state_), kExport),
      InstanceValue("free_string", fast::free_string(env, &state_), kExport),
      InstanceValue("noop", fast::noop(env), kExport),
      // ...and their idiomatic twins, for the bench.
      InstanceMethod<&Addon::Bound<print_and_return_idiomatic>>("print_and_return_idiomatic", kExport),
      InstanceMethod<&Addon::Bound<free_string_idiomatic>>("free_string_idiomatic", kExport),
      InstanceMethod<&Addon::Bound<noop_idiomatic>>("noop_idiomatic", kExport),
      // Strings and views (strings.cpp).
      InstanceMethod<&Addon::Bound<finalize_string>>("finalize_string", kExport),
      InstanceMethod<&Addon::Bound<string_text>>("string_text", kExport),
      InstanceMethod<&Addon::Bound<string_view>>("string_view", kExport),
      InstanceMethod<&Addon::Bound<string_info>>("string_info", kExport),
      InstanceMethod<&Addon::Bound<stats>>("stats", kExport),
      InstanceMethod<&Addon::Bound<noop_view>>("noop_view", kExport),
      // Subscriptions (subscriptions.cpp).
      InstanceMethod<&Addon::Bound<handler>>("handler", kExport),
      InstanceMethod<&Addon::Bound<cancel>>("cancel", kExport),
      InstanceMethod<&Addon::Bound<finalize_subscription>>("finalize_subscription", kExport),
      InstanceMethod<&Addon::Bound<subscription_active>>("subscription_active", kExport),
      InstanceMethod<&Addon::Bound<send>>("send", kExport),
      InstanceMethod<&Addon::Bound<shutdown>>("shutdown", kExport),
      // Native-thread delivery (posts.cpp).
      InstanceMethod<&Addon::Bound<post>>("post", kExport),
      InstanceMethod<&Addon::Bound<produce>>("produce", kExport),
      InstanceMethod<&Addon::Bound<producer_stop_export>>("producer_stop", kExport),
      InstanceMethod<&Addon::Bound<finalize_producer>>("finalize_producer", kExport),
      InstanceMethod<&Addon::Bound<producer_active>>("producer_active", kExport),
  });
}

// The instance-data finalizer, at environment teardown: no JS runs again, and the env is still valid, so every
// Napi::Reference the state holds is deleted here by its destructor (the views' weak references, the boxed callbacks'
// FunctionReferences, the promises' resolve/reject and what they kept, the promise helpers): no reference outlives
// its env. Every string still live is freed with the table (cpp_free_string, via ~StringEntry), except bytes that an
// external ArrayBuffer still shares: those are left to the last buffer's finalizer, which touches nothing of this
// state (the shared ledger outlives it). (On Node every buffer's finalizer has run by now: each holds a reference to
// the napi_env, which delays this finalizer.) Nothing is reported to JS, the ledger or V8. Destroying the state also
// cancels every live subscription, frees its boxes and then the dispatcher (see AddonState's member order); no
// callback runs. By now the teardown hook (posts.cpp) has stopped the producers, joined the worker and released the
// threadsafe function, and Node has handed every item still queued to call_js with a null env.
Addon::~Addon() { end_string_shares(state_); }

}  // namespace napi_ownership

// Napi::Addon<Addon>::Init makes one Addon per environment and keeps it as instance data. The macro pastes the class
// name into an identifier, so it needs an unqualified one.
using napi_ownership::Addon;
NODE_API_NAMED_ADDON(napi_ownership_cpp, Addon)
