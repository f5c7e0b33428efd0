/* The C++ core's headers compile as plain C and their functions link from a C program. */
#include <napi_ownership/cpp_core.h>
#include <napi_ownership/dispatcher.h>

#include <stdio.h>
#include <string.h>

static void count_call(void* self, const char* dest, const char* msg) {
  (void)dest;
  (void)msg;
  ++*(int*)self;
}

static void note_delivered(void* ctx, int32_t delivered) { *(int32_t*)ctx = delivered; }
static void note_finished(void* ctx, uint32_t posted) { *(uint32_t*)ctx = posted; }

int main(void) {
  int32_t status = -1;
  size_t offset = 99;
  char* copy = cpp_print_and_return_len("from C", 6, &status, &offset);
  int ok = copy != NULL && strcmp(copy, "from C") == 0 && status == CPP_CORE_STATUS_OK && offset == 0;
  cpp_free_string(copy); /* the core's memory goes back to the core */
  copy = cpp_print_and_return("plain C string");
  ok = ok && copy != NULL && strcmp(copy, "plain C string") == 0;
  cpp_free_string(copy);
  cpp_free_string(NULL);

  {
    int calls = 0;
    FFIWrapper wrapper = {count_call, &calls}; /* ours; the dispatcher borrows it until cancel returns */
    Dispatcher* d = dispatcher_new();
    DispatcherCtx ctx = dispatcher_handler(d, "c", &wrapper);
    ok = ok && d != NULL && ctx != 0 && dispatcher_send(d, "c", "hi") == 1 && calls == 1;
    ok = ok && dispatcher_cancel(d, "c", ctx) == 0 && dispatcher_send(d, "c", "hi") == 0 && calls == 1;
    dispatcher_free(d);
  }
  {
    /* Asynchronous delivery from C: the worker thread delivers; shutdown joins it (so the results are visible). */
    int calls = 0;
    int32_t delivered = -5;
    uint32_t posted = 0;
    FFIWrapper wrapper = {count_call, &calls};
    Dispatcher* d = dispatcher_new();
    DispatcherProducer* p;
    ok = ok && dispatcher_handler(d, "c", &wrapper) != 0;
    ok = ok && dispatcher_post(d, "c", "hi", note_delivered, &delivered) == 0;
    p = producer_start(d, "nobody", 3, 0, NULL, NULL, note_finished, &posted);
    ok = ok && p != NULL;
    producer_free(p); /* joins: on_finished has run */
    ok = ok && posted <= 3;
    while (dispatcher_queued(d) != 0) {
    }
    dispatcher_shutdown(d); /* joins the worker: on_delivered has run */
    ok = ok && calls == 1 && delivered == 1;
    dispatcher_free(d);
  }
  puts(ok ? "c_abi_test: ok" : "c_abi_test: FAILED");
  return ok ? 0 : 1;
}
