// Helpers every export shares, on node-addon-api's types: handle decoding, result objects, handle values.
// (The raw Node-API twins of the hottest ones are in fast.hpp, the one file allowed raw napi_* calls.)
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "handle.hpp"
#include "handle_table.hpp"
#include "state.hpp"

namespace napi_ownership {

// Decodes a handle that is known to be a number, in the contract's order (first failure wins), and returns its key,
// or std::nullopt when the handle names an object that was already released. Every other failure throws. `value` is
// only for the error message.
template <typename Payload>
std::optional<typename HandleTable<Payload>::Key> resolve_number(Napi::Env env, const AddonState& state,
                                                                 const HandleTable<Payload>& table, double number,
                                                                 napi_value value, handle::Kind kind) {
  // NaN fails every comparison, so it lands here too.
  if (!(number >= 0.0 && number < static_cast<double>(handle::kLimit) && std::trunc(number) == number)) {
    errors::throw_invalid_handle(env, Napi::Value(env, value), kind);
  }
  const handle::Fields fields = handle::decode(static_cast<std::uint64_t>(number));
  if (fields.backend == static_cast<std::uint32_t>(handle::kOtherBackend)) errors::throw_foreign_handle(env);
  if (fields.backend != static_cast<std::uint32_t>(handle::kThisBackend) ||
      fields.kind != static_cast<std::uint32_t>(kind)) {
    errors::throw_invalid_handle(env, Napi::Value(env, value), kind);
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
      errors::throw_invalid_handle(env, Napi::Value(env, value), kind);
  }
}

// A handle argument: TypeError ERR_INVALID_ARG_TYPE unless a number, then resolve_number.
template <typename Payload>
std::optional<typename HandleTable<Payload>::Key> resolve(Napi::Env env, const AddonState& state,
                                                          const HandleTable<Payload>& table, Napi::Value value,
                                                          handle::Kind kind) {
  if (!value.IsNumber()) errors::throw_invalid_arg_type(env, "a number", "handle", value);
  return resolve_number(env, state, table, value.As<Napi::Number>().DoubleValue(), value, kind);
}

// A plain object with these own data properties, in order. Defined (Object::DefineProperties, napi_define_properties),
// never assigned: a setter of the same name on Object.prototype does not run, so building a result never runs JS.
// The one way this addon builds an object.
inline Napi::Object define_object(Napi::Env env,
                                  std::initializer_list<std::pair<const char*, Napi::Value>> properties) {
  Napi::Object object = Napi::Object::New(env);
  std::vector<Napi::PropertyDescriptor> descriptors;
  descriptors.reserve(properties.size());
  for (const auto& [name, value] : properties) {
    descriptors.push_back(Napi::PropertyDescriptor::Value(name, value, napi_default_jsproperty));
  }
  object.DefineProperties(descriptors);
  return object;
}

inline Napi::Number number_value(Napi::Env env, double value) { return Napi::Number::New(env, value); }

// A handle as a JS number.
inline Napi::Value handle_value(Napi::Env env, const AddonState& state, handle::Kind kind, std::uint32_t generation,
                                std::uint32_t slot) {
  const std::uint64_t h = handle::encode(state.env_id, handle::kThisBackend, kind, generation, slot);
  return Napi::Number::New(env, static_cast<double>(h));
}

}  // namespace napi_ownership
