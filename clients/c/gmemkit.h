/*
 * gmemkit.h - a small C client (libc only) of `gmemkit serve`, the guest_memfd model as a fake
 * kernel. Its functions mirror the calls a VMM makes (KVM_CREATE_VM, KVM_CREATE_GUEST_MEMFD,
 * KVM_SET_MEMORY_ATTRIBUTES2 with its error_offset out-value, pin/unpin, io_uring buffer
 * registration, KVM_RUN ...) and return what the kernel would: a handle or 0 on success, the
 * negative errno on failure (errno is set too). A VMM that hides its kernel calls behind such
 * functions can run its conversion code against the model in its own tests.
 *
 * Handles: every object the server creates (VM, guest_memfd, mapping, pin, io_uring buffers,
 * DMA mapping) is a small positive int here, named "h<N>" on the wire (docs/server.md).
 * Host accesses that the kernel answers with a signal return GMK_SIGBUS / GMK_SIGSEGV.
 * Protocol or transport trouble returns GMK_EPROTO (the message is in gmk_last_error()).
 */
#ifndef GMEMKIT_H
#define GMEMKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gmk;

/* Non-errno results (below every errno). */
#define GMK_SIGBUS  (-10007)
#define GMK_SIGSEGV (-10011)
#define GMK_EXIT    (-10100) /* a guest access ended in a KVM exit (no on_fault given) */
#define GMK_EPROTO  (-10200) /* a JSON-RPC error or a broken connection; see gmk_last_error() */

/* uapi values (the names the scenario language also accepts). */
#define GMK_VM_SW_PROTECTED 1UL
#define GMK_VM_SNP 4UL
#define GMK_VM_TDX 5UL
#define GMK_GMEM_MMAP (1ULL << 0)
#define GMK_GMEM_INIT_SHARED (1ULL << 1)
#define GMK_ATTR_PRIVATE (1ULL << 3)
#define GMK_MEM_GUEST_MEMFD (1U << 2)

/* Connect to `gmemkit serve --socket PATH`; NULL (errno set) on failure. */
struct gmk *gmk_connect(const char *socket_path);
/* Use an existing pair of fds (e.g. pipes to `gmemkit serve` over stdin/stdout). */
struct gmk *gmk_open_fds(int read_fd, int write_fd);
void gmk_disconnect(struct gmk *k);
/* The message of the last JSON-RPC error (or transport failure). */
const char *gmk_last_error(const struct gmk *k);
/* The JSON-RPC error code of the last failed call (0 if the last call succeeded). */
int gmk_last_rpc_code(const struct gmk *k);

/* `session`: profile (NULL: the default) and machine ("full", "probed"; NULL: full). */
int gmk_session(struct gmk *k, const char *profile, const char *machine);
/* `subscribe`: events as a JSON list ("[\"blocked\",\"exit\"]") or "\"all\"". */
int gmk_subscribe(struct gmk *k, const char *events_json);
/* Called for each notification that arrives (before the reply it precedes). */
typedef void (*gmk_event_fn)(void *ctx, const char *method, const char *params_json);
void gmk_on_event(struct gmk *k, gmk_event_fn fn, void *ctx);

/* Any method with params as a JSON object; the result (JSON) is copied to `result`.
 * Returns 0, or GMK_EPROTO on a JSON-RPC error. */
int gmk_call(struct gmk *k, const char *method, const char *params_json, char *result, size_t cap);

/* ---- the kernel interface ---- */
int gmk_create_vm(struct gmk *k, unsigned long type);
int gmk_check_extension(struct gmk *k, int vm, const char *cap);            /* >= 0: the value */
int gmk_create_guest_memfd(struct gmk *k, int vm, uint64_t size, uint64_t flags);
int gmk_close(struct gmk *k, int fd);
/* mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED, fd, offset): a mapping handle. */
int gmk_mmap(struct gmk *k, int fd, uint64_t offset, uint64_t length);
int gmk_munmap(struct gmk *k, int map);
int gmk_read(struct gmk *k, int map, uint64_t offset, void *buf, size_t len);
int gmk_write(struct gmk *k, int map, uint64_t offset, const void *buf, size_t len);
int gmk_fallocate(struct gmk *k, int fd, int mode, int64_t offset, int64_t len);

struct gmk_memory_region2 {
  uint32_t slot;
  uint32_t flags;            /* GMK_MEM_GUEST_MEMFD is added when guest_memfd > 0 */
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  int userspace_map;         /* a mapping handle, or 0 for none (userspace_addr 0) */
  int guest_memfd;           /* a guest_memfd handle, or 0 for none */
  uint64_t guest_memfd_offset;
};
int gmk_set_user_memory_region2(struct gmk *k, int vm, const struct gmk_memory_region2 *r);

/* KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd; on -EAGAIN, *error_offset (if given) is the
 * offset of the first page that blocked the conversion, as the kernel reports it. */
int gmk_set_memory_attributes2(struct gmk *k, int gmem, uint64_t offset, uint64_t size,
                               uint64_t attributes, uint64_t flags, uint64_t *error_offset);

int gmk_pin_user_pages(struct gmk *k, int map, uint64_t offset, uint64_t length, int longterm);
int gmk_unpin_user_pages(struct gmk *k, int pin);

/* ---- the userspace subsystems that hold pins ---- */
int gmk_io_uring_register_buffers(struct gmk *k, int map, uint64_t offset, uint64_t length);
int gmk_io_uring_unregister_buffers(struct gmk *k, int ring);
int gmk_vfio_dma_map(struct gmk *k, int map, uint64_t offset, uint64_t length, uint64_t iova);
int gmk_vfio_dma_unmap(struct gmk *k, int dma);

/* ---- the guest (the CoCo workload's guest runs in the server) ---- */
struct gmk_guest_shape {
  uint64_t ram, boot_private, boot_chunk, bounce_size;
  uint32_t bounce_conversions, seed;
};
/* Start the guest of `vm`; shape NULL: the workload's defaults (16 MiB). */
int gmk_guest_boot(struct gmk *k, int vm, const struct gmk_guest_shape *shape);

enum gmk_exit_reason { GMK_EXIT_HYPERCALL = 1, GMK_EXIT_MEMORY_FAULT = 2, GMK_EXIT_SHUTDOWN = 3 };
struct gmk_exit {
  enum gmk_exit_reason reason;
  uint64_t gpa, size;        /* HYPERCALL (KVM_HC_MAP_GPA_RANGE) and MEMORY_FAULT */
  int to_private;            /* HYPERCALL: the range is to become private; MEMORY_FAULT: a private access */
  int request, attempt;      /* the guest's request number, and how often it was re-issued */
  int requests, completed, failed, faults; /* SHUTDOWN: the guest's account */
};
/* KVM_RUN: `ret` is the hypercall's return value after a HYPERCALL exit (0, or a negative
 * errno; -EAGAIN has the guest try again), GMK_NO_RET otherwise. */
#define GMK_NO_RET INT64_MIN
int gmk_vcpu_run(struct gmk *k, int vm, int64_t ret, struct gmk_exit *exit);

#ifdef __cplusplus
}
#endif
#endif
