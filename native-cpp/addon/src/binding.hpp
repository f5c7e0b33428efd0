// Helpers every export shares: napi status checks, the environment's state, and handle decoding.
#pragma once

#include <napi.h>

#include <cmath>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "handle.hpp"
#include "handle_table.hpp"
#include "state.hpp"

namespace napi_ownership {

// A failed napi_* call becomes a Napi::Error: the pending JS exception if it failed because of one, else an Error with
// code ERR_NATIVE_INTERNAL naming the Node-API status (what the Rust backend throws for the same failure).
[[noreturn]] inline void failed(napi_env env, napi_status status) {
  const napi_extended_error_info* info = nullptr;
  std::string what = "Node-API status " + std::to_string(static_cast<int>(status));
  // Read first: the next Node-API call resets the last error.
  if (napi_get_last_error_info(env, &info) == napi_ok && info != nullptr && info->error_message != nullptr) {
    what = std::string(info->error_message) + " (" + what + ")";
  }
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) throw Napi::Error::New(env);  // takes it over
  errors::throw_coded(env, errors::Class::kError, "ERR_NATIVE_INTERNAL", "internal error in the cpp backend: " + what);
}

inline void check(napi_env env, napi_status status) {
  if (status != napi_ok) failed(env, status);
}

inline AddonState& state_of(const Napi::CallbackInfo& info) { return *info.Env().GetInstanceData<AddonState>(); }

// Decodes a handle argument in the contract's order (first failure wins) and returns its key, or std::nullopt when
// the handle names an object that was already released. Every other failure throws.
template <typename Payload>
std::optional<typename HandleTable<Payload>::Key> resolve(napi_env env, const AddonState& state,
                                                          const HandleTable<Payload>& table, napi_value value,
                                                          handle::Kind kind) {
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok) {
    errors::throw_invalid_arg_type(env, "a number", "handle", value);
  }
  // NaN fails every comparison, so it lands here too.
  if (!(number >= 0.0 && number < static_cast<double>(handle::kLimit) && std::trunc(number) == number)) {
    errors::throw_invalid_handle(env, value, kind);
  }
  const handle::Fields fields = handle::decode(static_cast<std::uint64_t>(number));
  if (fields.backend == static_cast<std::uint32_t>(handle::kOtherBackend)) errors::throw_foreign_handle(env);
  if (fields.backend != static_cast<std::uint32_t>(handle::kThisBackend) ||
      fields.kind != static_cast<std::uint32_t>(kind)) {
    errors::throw_invalid_handle(env, value, kind);
  }
  if (fields.env != state.env_id) errors::throw_foreign_env(env);

  const typename HandleTable<Payload>::Key key{fields.slot, fields.generation};
  switch (table.classify(key)) {
    case HandleTable<Payload>::State::kLive:
      return key;
    case HandleTable<Payload>::State::kReleased:
      return std::nullopt;
    case HandleTable<Payload>::State::kNeverIssued:
    default:
      errors::throw_invalid_handle(env, value, kind);
  }
}

// A plain object with these own data properties, in order. Defined (napi_define_properties), never assigned: a
// setter of the same name on Object.prototype does not run, so building a result can never re-enter JS.
inline Napi::Object define_object(napi_env env, std::initializer_list<std::pair<const char*, napi_value>> properties) {
  napi_value object;
  check(env, napi_create_object(env, &object));
  std::vector<napi_property_descriptor> descriptors;
  descriptors.reserve(properties.size());
  for (const auto& [name, value] : properties) {
    descriptors.push_back({name, nullptr, nullptr, nullptr, nullptr, value, napi_default_jsproperty, nullptr});
  }
  check(env, napi_define_properties(env, object, descriptors.size(), descriptors.data()));
  return Napi::Object(env, object);
}

inline napi_value number_value(napi_env env, double value) {
  napi_value result;
  check(env, napi_create_double(env, value, &result));
  return result;
}

// A handle as a JS number.
inline Napi::Value handle_value(napi_env env, const AddonState& state, handle::Kind kind, std::uint32_t generation,
                                std::uint32_t slot) {
  const std::uint64_t h = handle::encode(state.env_id, handle::kThisBackend, kind, generation, slot);
  napi_value result;
  check(env, napi_create_double(env, static_cast<double>(h), &result));
  return Napi::Value(env, result);
}

}  // namespace napi_ownership
