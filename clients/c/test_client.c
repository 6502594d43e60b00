/*
 * test_client.c - the C client against `gmemkit serve --socket PATH`: the blocked conversion of
 * examples/01 (kernel-semantics.md §4: a long-term pin makes KVM_SET_MEMORY_ATTRIBUTES2 fail
 * with EAGAIN and error_offset naming the page), a bad request that leaves the connection
 * usable, and the events of a conversion the server's manager resolves. Prints TAP.
 * Usage: test_client SOCKET
 */
#include "gmemkit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int n, failed;
static void ok(int cond, const char *what) {
  printf("%sok %d - %s\n", cond ? "" : "not ", ++n, what);
  if (!cond) failed++;
}

static char events[4096];
static void on_event(void *ctx, const char *method, const char *params) {
  (void)ctx; (void)params;
  strncat(events, method, sizeof events - strlen(events) - 2);
  strncat(events, " ", sizeof events - strlen(events) - 1);
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: %s SOCKET\n", argv[0]); return 2; }
  struct gmk *k = gmk_connect(argv[1]);
  if (!k) { perror("gmk_connect"); return 2; }
  ok(gmk_session(k, "ipc-v8", NULL) == 0, "session ipc-v8");
  int vm = gmk_create_vm(k, GMK_VM_SW_PROTECTED);
  ok(vm > 0, "create_vm");
  int gmem = gmk_create_guest_memfd(k, vm, 16384, GMK_GMEM_MMAP | GMK_GMEM_INIT_SHARED);
  ok(gmem > 0, "create_guest_memfd");
  int map = gmk_mmap(k, gmem, 0, 16384);
  ok(map > 0, "mmap");
  ok(gmk_write(k, map, 0, "A", 1) == 0, "write through the mapping");
  int pin = gmk_pin_user_pages(k, map, 4096, 4096, 1);
  ok(pin > 0, "pin_user_pages FOLL_LONGTERM at 4K");
  uint64_t eo = 0;
  int r = gmk_set_memory_attributes2(k, gmem, 0, 16384, GMK_ATTR_PRIVATE, 0, &eo);
  ok(r == -EAGAIN && errno == EAGAIN, "to-private is EAGAIN while pinned");
  ok(eo == 4096, "error_offset names the pinned page");

  char result[512];
  ok(gmk_call(k, "set_memory_attributes2", "{\"fd\":\"nosuch\"}", result, sizeof result) == GMK_EPROTO && gmk_last_rpc_code(k) == -32602,
     "a bad field is JSON-RPC error -32602");
  ok(strstr(gmk_last_error(k), "missing field 'offset'") != NULL, "with the loader's message");
  ok(gmk_call(k, "no_such_op", "{}", result, sizeof result) == GMK_EPROTO && gmk_last_rpc_code(k) == -32601, "an unknown method is -32601");

  ok(gmk_unpin_user_pages(k, pin) == 0, "unpin_user_pages");
  ok(gmk_set_memory_attributes2(k, gmem, 0, 16384, GMK_ATTR_PRIVATE, 0, &eo) == 0, "the same conversion succeeds");
  char byte;
  ok(gmk_read(k, map, 0, &byte, 1) == GMK_SIGBUS, "the host read of a private page is SIGBUS");
  ok(gmk_set_memory_attributes2(k, gmem, 0, 16384, 0, 0, NULL) == 0, "back to shared");

  /* The server's own manager resolves a conversion (convert op) and reports its events. */
  gmk_on_event(k, on_event, NULL);
  ok(gmk_subscribe(k, "[\"blocked\",\"released\",\"retried\",\"completed\"]") == 0, "subscribe");
  int ring = gmk_io_uring_register_buffers(k, map, 8192, 4096);
  ok(ring > 0, "io_uring_register_buffers at 8K");
  char params[256];
  snprintf(params, sizeof params, "{\"fd\":\"h%d\",\"offset\":0,\"size\":16384,\"to\":\"private\",\"policy\":\"retry\"}", gmem);
  ok(gmk_call(k, "convert", params, result, sizeof result) == 0 && strstr(result, "\"kind\":\"ok\"") && strstr(result, "\"retries\":1"),
     "convert with the retry policy completes after one retry");
  ok(strcmp(events, "blocked released retried completed ") == 0, "events: blocked released retried completed");
  if (strcmp(events, "blocked released retried completed ") != 0) printf("# events: %s\n", events);
  gmk_disconnect(k);
  printf("1..%d\n", n);
  return failed ? 1 : 0;
}
