#include "errors.hpp"

#include <string>
#include <vector>

namespace napi_ownership::errors {

namespace {

void check(napi_env env, napi_status status) {
  if (status != napi_ok) throw Napi::Error::New(env);  // picks up the pending exception or the last error
}

// Defines `properties` on `object` as own data properties (napi_define_properties, never [[Set]]): a setter of the
// same name on a prototype (Object.prototype.code, Array.prototype[0]) does not run, so defining them runs no JS.
void define(napi_env env, napi_value object, const napi_property_descriptor* properties, std::size_t count) {
  check(env, napi_define_properties(env, object, count, properties));
}

napi_property_descriptor data_property(const char* name, napi_value value, napi_property_attributes attributes) {
  return {name, nullptr, nullptr, nullptr, nullptr, value, attributes, nullptr};
}

}  // namespace

void throw_coded(napi_env env, Class cls, const char* code, const std::string& message) {
  napi_value code_value, message_value, error;
  check(env, napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value));
  check(env, napi_create_string_utf8(env, message.data(), message.size(), &message_value));
  // Without a code: napi_create_*_error would assign it with [[Set]], running a `code` setter on Object.prototype or
  // Error.prototype (JS, in the middle of whatever export is failing). Defined below instead, as Node's own errors
  // carry it: an own, writable, enumerable, configurable data property.
  switch (cls) {
    case Class::kTypeError:
      check(env, napi_create_type_error(env, nullptr, message_value, &error));
      break;
    case Class::kRangeError:
      check(env, napi_create_range_error(env, nullptr, message_value, &error));
      break;
    case Class::kError:
    default:
      check(env, napi_create_error(env, nullptr, message_value, &error));
      break;
  }
  const napi_property_descriptor code_property = data_property("code", code_value, napi_default_jsproperty);
  define(env, error, &code_property, 1);
  throw Napi::Error(env, error);
}

std::string describe_received(napi_env env, napi_value value) {
  napi_valuetype type;
  check(env, napi_typeof(env, value, &type));
  switch (type) {
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

void throw_invalid_arg_type(napi_env env, const char* what, const char* name, napi_value got) {
  throw_coded(env, Class::kTypeError, "ERR_INVALID_ARG_TYPE",
              std::string("Expected ") + what + " for " + name + " but received " + describe_received(env, got));
}

namespace {

// `got` exactly as JS would print it (String(n)): only V8 knows the shortest round-trip form of a number.
std::string js_string(napi_env env, napi_value got) {
  napi_value text;
  check(env, napi_coerce_to_string(env, got, &text));
  std::size_t length = 0;
  check(env, napi_get_value_string_utf8(env, text, nullptr, 0, &length));
  std::string shown(length, '\0');
  check(env, napi_get_value_string_utf8(env, text, shown.data(), length + 1, &length));
  return shown;
}

}  // namespace

void throw_invalid_handle(napi_env env, napi_value got, handle::Kind kind) {
  throw_coded(env, Class::kTypeError, "ERR_INVALID_HANDLE",
              js_string(env, got) + " is not a live or released " + handle::kind_name(kind) + " handle of the " +
                  handle::backend_name(handle::kThisBackend) + " backend");
}

void throw_foreign_handle(napi_env env) {
  throw_coded(env, Class::kTypeError, "ERR_FOREIGN_HANDLE",
              std::string("handle belongs to the ") + handle::backend_name(handle::kOtherBackend) + " backend, not " +
                  handle::backend_name(handle::kThisBackend));
}

void throw_foreign_env(napi_env env) {
  throw_coded(env, Class::kError, "ERR_FOREIGN_ENV", "handle belongs to another Node.js environment (worker thread)");
}

void throw_released(napi_env env, handle::Kind kind) {
  throw_coded(env, Class::kError, "ERR_NATIVE_RELEASED",
              std::string("the native ") + handle::kind_name(kind) + " was already released");
}

void throw_invalid_arg_value(napi_env env, const char* message) {
  throw_coded(env, Class::kRangeError, "ERR_INVALID_ARG_VALUE", message);
}

void throw_interior_nul(napi_env env, const char* name, std::size_t offset) {
  throw_coded(env, Class::kRangeError, "ERR_INTERIOR_NUL",
              std::string(name) + " contains a NUL byte at offset " + std::to_string(offset) +
                  "; a NUL-terminated C string cannot carry it");
}

void throw_invalid_utf8(napi_env env, std::size_t offset) {
  throw_coded(env, Class::kRangeError, "ERR_INVALID_UTF8",
              "input is not valid UTF-8 (first bad byte at offset " + std::to_string(offset) + ")");
}

void throw_alloc(napi_env env, std::size_t bytes) {
  throw_coded(env, Class::kRangeError, "ERR_NATIVE_ALLOC",
              "could not allocate " + std::to_string(bytes) + " bytes for the native copy");
}

void throw_table_full(napi_env env, handle::Kind kind) {
  // Not worded by the contract: the handle table itself is out of slots (or could not grow).
  throw_coded(env, Class::kRangeError, "ERR_NATIVE_ALLOC",
              std::string("could not allocate a handle for the native ") + handle::kind_name(kind) +
                  ": the handle table of this environment is full");
}

void throw_subscription_alloc(napi_env env) {
  // Not worded by the contract: the box, the FFIWrapper, the dest copy or the dispatcher's record could not be
  // allocated (nothing was registered).
  throw_coded(env, Class::kRangeError, "ERR_NATIVE_ALLOC", "could not allocate the native subscription");
}

}  // namespace napi_ownership::errors

namespace napi_ownership::errors {

void throw_out_of_range(napi_env env, const char* name, std::uint32_t min, std::uint32_t max, napi_value got) {
  throw_coded(env, Class::kRangeError, "ERR_OUT_OF_RANGE",
              std::string("The value of \"") + name + "\" is out of range. It must be an integer from " +
                  std::to_string(min) + " to " + std::to_string(max) + ". Received " + js_string(env, got));
}

napi_value callbacks_threw(napi_env env, const napi_value* errors, std::size_t recorded, std::size_t count,
                           const char* dest, std::size_t dest_length, bool unwrap_single) {
  if (unwrap_single && count == 1 && recorded == 1) return errors[0];
  // 1. Everything the caller lent us (`errors`, `dest`) is read into JS values first, by calls that run no JS: the
  // list's elements are defined, so an index setter on Array.prototype neither runs nor swallows them.
  napi_value list, message, code;
  check(env, napi_create_array_with_length(env, 0, &list));
  {
    std::vector<std::string> names;  // utf8name storage for the descriptors below
    std::vector<napi_property_descriptor> elements;
    names.reserve(recorded);
    elements.reserve(recorded);
    for (std::size_t i = 0; i < recorded; ++i) names.push_back(std::to_string(i));
    for (std::size_t i = 0; i < recorded; ++i) {
      elements.push_back(data_property(names[i].c_str(), errors[i], napi_default_jsproperty));
    }
    if (recorded != 0) define(env, list, elements.data(), elements.size());
  }
  const std::string text =
      std::to_string(count) + " callbacks threw while delivering to \"" + std::string(dest, dest_length) + "\"";
  check(env, napi_create_string_utf8(env, text.data(), text.size(), &message));
  check(env, napi_create_string_utf8(env, "ERR_CALLBACKS_THREW", NAPI_AUTO_LENGTH, &code));

  // 2. JS may run from here: a getter for globalThis.AggregateError, a patched constructor or Array iterator. It may
  // call any export (send, shutdown, handler...); nothing below reads the caller's memory any more.
  napi_value global, constructor, aggregate;
  check(env, napi_get_global(env, &global));
  check(env, napi_get_named_property(env, global, "AggregateError", &constructor));
  const napi_value args[2] = {list, message};
  check(env, napi_new_instance(env, constructor, 2, args, &aggregate));

  // 3. `code` and `errors` defined, not assigned: no setter runs, and `errors` is the list above even if a patched
  // iterator made the constructor's own copy of it come out different (AggregateError's own attributes: not
  // enumerable).
  const napi_property_descriptor properties[2] = {
      data_property("code", code, napi_default_jsproperty),
      data_property("errors", list, static_cast<napi_property_attributes>(napi_writable | napi_configurable)),
  };
  define(env, aggregate, properties, 2);
  return aggregate;
}

}  // namespace napi_ownership::errors
