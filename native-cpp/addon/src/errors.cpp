#include "errors.hpp"

#include <string>
#include <vector>

#include "error_codes.hpp"

namespace napi_ownership::errors {

Napi::Error coded(Napi::Env env, Class cls, const char* code, const std::string& message) {
  // Made without a code: napi_create_*_error would assign it with [[Set]], running a `code` setter on
  // Object.prototype or Error.prototype (JS, in the middle of whatever export is failing). Defined below instead, as
  // Node's own errors carry it: an own, writable, enumerable, configurable data property.
  Napi::Error error = cls == Class::kTypeError    ? Napi::TypeError::New(env, message)
                      : cls == Class::kRangeError ? Napi::RangeError::New(env, message)
                                                  : Napi::Error::New(env, message);
  error.Value().DefineProperty(
      Napi::PropertyDescriptor::Value("code", Napi::String::New(env, code), napi_default_jsproperty));
  return error;
}

void throw_coded(Napi::Env env, Class cls, const char* code, const std::string& message) {
  throw coded(env, cls, code, message);
}

std::string describe_received(Napi::Value value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_bigint: return "bigint";
    case napi_object:
    case napi_external:  // an External is an object to `typeof`
    default: return "object";
  }
}

void throw_invalid_arg_type(Napi::Env env, const char* what, const char* name, Napi::Value got) {
  throw_coded(env, Class::kTypeError, kErrInvalidArgType,
              std::string("Expected ") + what + " for " + name + " but received " + describe_received(got));
}

namespace {

// `got` exactly as JS would print it (String(n)): only V8 knows the shortest round-trip form of a number. Called for
// numbers only (handles, counts), whose coercion runs no JS.
std::string js_string(Napi::Value got) { return got.ToString().Utf8Value(); }

}  // namespace

void throw_invalid_handle(Napi::Env env, Napi::Value got, handle::Kind kind) {
  throw_coded(env, Class::kTypeError, kErrInvalidHandle,
              js_string(got) + " is not a live or released " + handle::kind_name(kind) + " handle of the " +
                  handle::backend_name(handle::kThisBackend) + " backend");
}

void throw_foreign_handle(Napi::Env env) {
  throw_coded(env, Class::kTypeError, kErrForeignHandle,
              std::string("handle belongs to the ") + handle::backend_name(handle::kOtherBackend) + " backend, not " +
                  handle::backend_name(handle::kThisBackend));
}

void throw_foreign_env(Napi::Env env) {
  throw_coded(env, Class::kError, kErrForeignEnv, "handle belongs to another Node.js environment (worker thread)");
}

void throw_released(Napi::Env env, handle::Kind kind) {
  throw_coded(env, Class::kError, kErrNativeReleased,
              std::string("the native ") + handle::kind_name(kind) + " was already released");
}

void throw_invalid_arg_value(Napi::Env env, const char* message) {
  throw_coded(env, Class::kRangeError, kErrInvalidArgValue, message);
}

void throw_interior_nul(Napi::Env env, const char* name, std::size_t offset) {
  throw_coded(env, Class::kRangeError, kErrInteriorNul,
              std::string(name) + " contains a NUL byte at offset " + std::to_string(offset) +
                  "; a NUL-terminated C string cannot carry it");
}

void throw_invalid_utf8(Napi::Env env, std::size_t offset) {
  throw_coded(env, Class::kRangeError, kErrInvalidUtf8,
              "input is not valid UTF-8 (first bad byte at offset " + std::to_string(offset) + ")");
}

void throw_alloc(Napi::Env env, std::size_t bytes) {
  throw_coded(env, Class::kRangeError, kErrNativeAlloc,
              "could not allocate " + std::to_string(bytes) + " bytes for the native copy");
}

void throw_table_full(Napi::Env env, handle::Kind kind) {
  // Not worded by the contract: the handle table itself is out of slots (or could not grow).
  throw_coded(env, Class::kRangeError, kErrNativeAlloc,
              std::string("could not allocate a handle for the native ") + handle::kind_name(kind) +
                  ": the handle table of this environment is full");
}

void throw_subscription_alloc(Napi::Env env) {
  // Not worded by the contract: the box, the FFIWrapper, the dest copy or the dispatcher's record could not be
  // allocated (nothing was registered).
  throw_coded(env, Class::kRangeError, kErrNativeAlloc, "could not allocate the native subscription");
}

void throw_alloc_message(Napi::Env env, const std::string& message) {
  throw_coded(env, Class::kRangeError, kErrNativeAlloc, message);
}

void throw_internal(Napi::Env env, const std::string& what) {
  throw_coded(env, Class::kError, kErrNativeInternal, "internal error in the cpp backend: " + what);
}

void throw_out_of_range(Napi::Env env, const char* name, std::uint32_t min, std::uint32_t max, Napi::Value got) {
  throw_coded(env, Class::kRangeError, kErrOutOfRange,
              std::string("The value of \"") + name + "\" is out of range. It must be an integer from " +
                  std::to_string(min) + " to " + std::to_string(max) + ". Received " + js_string(got));
}

Napi::Value callbacks_threw(Napi::Env env, const napi_value* errors, std::size_t recorded, std::size_t count,
                            const char* dest, std::size_t dest_length, bool unwrap_single) {
  if (unwrap_single && count == 1 && recorded == 1) return Napi::Value(env, errors[0]);
  // 1. Everything the caller lent us (`errors`, `dest`) is read into JS values first, by calls that run no JS: the
  // list's elements are defined, so an index setter on Array.prototype neither runs nor swallows them.
  Napi::Array list = Napi::Array::New(env);
  {
    std::vector<std::string> names;  // utf8name storage for the descriptors below
    std::vector<Napi::PropertyDescriptor> elements;
    names.reserve(recorded);
    elements.reserve(recorded);
    for (std::size_t i = 0; i < recorded; ++i) names.push_back(std::to_string(i));
    for (std::size_t i = 0; i < recorded; ++i) {
      elements.push_back(Napi::PropertyDescriptor::Value(names[i].c_str(), errors[i], napi_default_jsproperty));
    }
    if (recorded != 0) list.DefineProperties(elements);
  }
  const Napi::String message = Napi::String::New(
      env, std::to_string(count) + " callbacks threw while delivering to \"" + std::string(dest, dest_length) + "\"");
  const Napi::String code = Napi::String::New(env, kErrCallbacksThrew);

  // 2. JS may run from here: a getter for globalThis.AggregateError, a patched constructor or Array iterator. It may
  // call any export (send, shutdown, handler...); nothing below reads the caller's memory any more.
  const Napi::Value constructor = env.Global().Get("AggregateError");
  Napi::Object aggregate = constructor.As<Napi::Function>().New({list, message});

  // 3. `code` and `errors` defined, not assigned: no setter runs, and `errors` is the list above even if a patched
  // iterator made the constructor's own copy of it come out different (AggregateError's own attributes: not
  // enumerable).
  aggregate.DefineProperties({
      Napi::PropertyDescriptor::Value("code", code, napi_default_jsproperty),
      Napi::PropertyDescriptor::Value("errors", list,
                                      static_cast<napi_property_attributes>(napi_writable | napi_configurable)),
  });
  return aggregate;
}

}  // namespace napi_ownership::errors
