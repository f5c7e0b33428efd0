// The fenced raw Node-API fast path (see fast.hpp for what is here and why).
//
// Measured: Node 20.20, Release build, this 2-core machine (another build running beside it), a loop of 2M calls per
// row, the median of 5 runs, ns per call (an empty JS function: 0.3 ns):
//
//   call                                        raw (here)   idiomatic twin (Napi::Addon instance method)
//   noop()                                           8.2         18.6   (noop_idiomatic)
//   free_string(print_and_return("hello, world"))   114.0        169.0   (12 B string)
//   the same, 100 B string                          121.8        227.4
//   the same, 100 B Uint8Array                      122.8        154.4
//
// So node-addon-api's method dispatch costs ~10 ns per call, twice per round trip, and Napi::String::Utf8Value a
// further ~35-90 ns per string: the idiomatic round trip is 1.3-1.9x the raw one. The raw path stays well inside the
// bench's budget (the public explicit path <= 2x the raw round trip); the idiom would eat most of it by itself.
//
// Why the idiomatic path costs more: a Napi::Addon instance method goes through InstanceWrap's callback wrapper, which
// builds a Napi::CallbackInfo (napi_get_cb_info for up to 6 arguments, plus `this` and `data`), then Addon::Unwrap
// looks the Addon up with napi_get_instance_data on every call, then runs the method inside a try/catch. The raw
// functions here get the state as their napi_create_function `data` in the same napi_get_cb_info call that reads
// their one argument. print_and_return_idiomatic also pays Napi::String::Utf8Value (a std::string: a measuring
// conversion, a heap allocation past 15 bytes, and the conversion proper) where Utf8Arg converts into a stack buffer,
// and free_string_idiomatic reads its handle with Value::IsNumber + Number::DoubleValue (two Node-API calls) where
// the raw one makes one (napi_get_value_double fails for a non-number).
#include "fast.hpp"

#include <napi.h>

#include <cstddef>
#include <cstdio>
#include <exception>
#include <new>
#include <optional>

#include "binding.hpp"
#include "errors.hpp"
#include "handle.hpp"
#include "state.hpp"
#include "strings.hpp"

namespace napi_ownership::fast {

namespace {

// What node-addon-api's own callback wrapper (details::WrapCallback, with NODE_ADDON_API_CPP_EXCEPTIONS_ALL) does: no
// C++ exception unwinds into Node; a Napi::Error becomes the pending JS exception.
template <typename Body>
napi_value guarded(napi_env env, Body&& body) noexcept {
  try {
    return body();
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();  // quiet if JS can no longer run (NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS)
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
  } catch (...) {
    Napi::Error::New(env, "A native exception was thrown").ThrowAsJavaScriptException();
  }
  return nullptr;
}

void check(napi_env env, napi_status status) {
  if (status != napi_ok) throw Napi::Error::New(env);  // the pending exception, or the last error's message
}

// One argument and the state (the function's data).
AddonState& one_argument(napi_env env, napi_callback_info info, napi_value* arg) {
  std::size_t argc = 1;
  void* data = nullptr;
  check(env, napi_get_cb_info(env, info, &argc, arg, nullptr, &data));  // a missing argument reads as undefined
  return *static_cast<AddonState*>(data);
}

// Reads the bytes of a Uint8Array (a Buffer is one) in place: the pointer stays valid for this call.
const char* uint8array_bytes(napi_env env, napi_value input, std::size_t* length) {
  bool is_typedarray = false;
  check(env, napi_is_typedarray(env, input, &is_typedarray));
  napi_typedarray_type type = napi_int8_array;
  void* data = nullptr;
  if (is_typedarray) check(env, napi_get_typedarray_info(env, input, &type, length, &data, nullptr, nullptr));
  if (!is_typedarray || type != napi_uint8_array) {
    errors::throw_invalid_arg_type(env, "a string or Uint8Array", "input", Napi::Value(env, input));
  }
  static const char kEmpty[] = "";  // an empty (or detached) array may report no data pointer at all
  return data != nullptr ? static_cast<const char*>(data) : kEmpty;
}

// Strings up to this many UTF-8 bytes are converted on the stack.
constexpr std::size_t kShortString = 256;

// print_and_return(input: string | Uint8Array): handle
napi_value print_and_return_raw(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value input = nullptr;
    AddonState& state = one_argument(env, info, &input);
    // A short string is converted into this frame's stack buffer and copied by the core; a longer one is converted
    // straight into the core's memory (no scratch, no second copy: issue 12's 1 MiB round trip).
    char stack[kShortString + 4 + 1];
    std::size_t length = 0;
    const napi_status as_string = napi_get_value_string_utf8(env, input, stack, sizeof stack, &length);
    if (as_string == napi_ok) {
      // Node-API never writes a partial character, so with 4 bytes to spare a result of at most kShortString is all.
      if (length <= kShortString) return store_string(env, state, stack, length, InputKind::kString);
      return store_js_string(env, state, input);
    }
    if (as_string != napi_string_expected) check(env, as_string);
    const char* bytes = uint8array_bytes(env, input, &length);  // borrowed from JS for the duration of this call
    return store_string(env, state, bytes, length, InputKind::kUint8Array);
  });
}

// free_string(handle): true, or false if it was already released.
napi_value free_string_raw(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    napi_value value = nullptr;
    AddonState& state = one_argument(env, info, &value);
    double number = 0;
    if (napi_get_value_double(env, value, &number) != napi_ok) {
      errors::throw_invalid_arg_type(env, "a number", "handle", Napi::Value(env, value));
    }
    const std::optional<StringKey> key =
        resolve_number(env, state, state.strings, number, value, handle::Kind::kString);
    if (key) release_string(env, state, *key, false);
    napi_value result = nullptr;
    check(env, napi_get_boolean(env, key.has_value(), &result));
    return result;
  });
}

// noop(): the benchmark floor.
napi_value noop_raw(napi_env, napi_callback_info) { return nullptr; }

Napi::Function make(Napi::Env env, const char* name, napi_callback callback, void* data) {
  napi_value function = nullptr;
  check(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, data, &function));
  return Napi::Function(env, function);
}

}  // namespace

bool Utf8Arg::read(napi_env env, napi_value value) {
  // Node-API never writes a partial character, so with 4 bytes (the widest character) to spare, a result of at most
  // kStackBytes means the whole string is here (lone surrogates become U+FFFD).
  const napi_status status = napi_get_value_string_utf8(env, value, stack_, sizeof stack_, &length_);
  if (status == napi_string_expected) return false;
  check(env, status);
  if (length_ <= kStackBytes) {
    data_ = stack_;
    return true;
  }
  check(env, napi_get_value_string_utf8(env, value, nullptr, 0, &length_));
  heap_.reset(new (std::nothrow) char[length_ + 1]);
  if (!heap_) errors::throw_alloc(env, length_ + 1);
  check(env, napi_get_value_string_utf8(env, value, heap_.get(), length_ + 1, &length_));
  data_ = heap_.get();
  return true;
}

std::size_t utf8_length(napi_env env, napi_value value) {
  std::size_t length = 0;
  check(env, napi_get_value_string_utf8(env, value, nullptr, 0, &length));
  return length;
}

std::size_t write_utf8(napi_env env, napi_value value, char* buffer, std::size_t size) {
  std::size_t written = 0;
  check(env, napi_get_value_string_utf8(env, value, buffer, size, &written));
  return written;
}

CallOutcome call_collecting(napi_env env, napi_value function, napi_value receiver, napi_value arg,
                            napi_value* thrown) noexcept {
  if (napi_call_function(env, receiver, function, 1, &arg, nullptr) == napi_ok) return CallOutcome::kOk;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return CallOutcome::kCannotRun;
  if (napi_get_and_clear_last_exception(env, thrown) != napi_ok) return CallOutcome::kCannotRun;
  return CallOutcome::kThrew;
}

bool is_error(napi_env env, napi_value value) noexcept {
  bool result = false;
  return napi_is_error(env, value, &result) == napi_ok && result;
}

void throw_value(napi_env env, napi_value value) noexcept {
  (void)napi_throw(env, value);  // fails only if JS can no longer run (a terminating worker): nobody to throw to
}

// The AddonState outlives these functions' calls: it is deleted with the Addon in the instance-data finalizer, after
// which no JS (so no call) runs in this environment.
Napi::Function print_and_return(Napi::Env env, AddonState* state) {
  return make(env, "print_and_return", print_and_return_raw, state);
}
Napi::Function free_string(Napi::Env env, AddonState* state) {
  return make(env, "free_string", free_string_raw, state);
}
Napi::Function noop(Napi::Env env) { return make(env, "noop", noop_raw, nullptr); }

}  // namespace napi_ownership::fast
