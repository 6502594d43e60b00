/*
 * vmm.c - a tiny "VMM" that boots the CoCo workload's guest in `gmemkit serve` and serves its
 * exits with handler.c: guest RAM in one guest_memfd, mapped for a passthrough device (VFIO DMA
 * in 512 KiB mappings) and with the block device's data area registered as io_uring fixed
 * buffers, as in src/workload/coco-boot.ts. Every boot request to private meets a long-term pin,
 * so the handler must resolve EAGAIN. Prints TAP; exit 0 when the guest completed every request.
 * Usage: vmm SOCKET POLICY   (POLICY: retry, preunmap, guest-retry, wrong)
 */
#include "handler.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define KiB 1024ULL
#define MiB (1024 * KiB)

int main(int argc, char **argv) {
  struct vmm v;
  memset(&v, 0, sizeof v);
  if (argc != 3 || policy_of(argv[2], &v.policy) != 0) {
    fprintf(stderr, "usage: %s SOCKET retry|preunmap|guest-retry|wrong\n", argv[0]);
    return 2;
  }
  v.k = gmk_connect(argv[1]);
  if (!v.k) { perror("gmk_connect"); return 2; }
  const struct gmk_guest_shape shape = { .ram = 2 * MiB, .boot_private = 1 * MiB, .boot_chunk = 256 * KiB,
                                         .bounce_size = 64 * KiB, .bounce_conversions = 8, .seed = 1 };
  v.ram = shape.ram;
  int n = 0, bad = 0;
#define CHECK(cond, what) do { int c_ = (cond); printf("%sok %d - %s\n", c_ ? "" : "not ", ++n, what); if (!c_) { bad++; if (*gmk_last_error(v.k)) printf("# %s\n", gmk_last_error(v.k)); } } while (0)
  CHECK(gmk_session(v.k, "ipc-v8", NULL) == 0, "session");
  CHECK((v.vm = gmk_create_vm(v.k, GMK_VM_TDX)) > 0, "create_vm tdx");
  CHECK((v.gmem = gmk_create_guest_memfd(v.k, v.vm, v.ram, GMK_GMEM_MMAP | GMK_GMEM_INIT_SHARED)) > 0, "create_guest_memfd");
  CHECK((v.map = gmk_mmap(v.k, v.gmem, 0, v.ram)) > 0, "mmap guest RAM");
  struct gmk_memory_region2 slot = { .slot = 0, .guest_phys_addr = 0, .memory_size = v.ram, .userspace_map = v.map,
                                     .guest_memfd = v.gmem, .guest_memfd_offset = 0 };
  CHECK(gmk_set_user_memory_region2(v.k, v.vm, &slot) == 0, "memslot 0");
  int holders_ok = 1;
  for (uint64_t off = 0; off < v.ram; off += 512 * KiB) holders_ok &= vmm_add_holder(&v, HOLDER_VFIO, off, off + 512 * KiB) == 0;
  holders_ok &= vmm_add_holder(&v, HOLDER_IO_URING, shape.boot_private, shape.boot_private + 128 * KiB) == 0;
  CHECK(holders_ok, "VFIO DMA mappings over RAM, io_uring buffers over the block data area");
  if (bad) return 1;
  CHECK(gmk_guest_boot(v.k, v.vm, &shape) == 0, "guest_boot");

  struct gmk_exit x;
  int64_t ret = GMK_NO_RET;
  int exits = 0;
  for (;;) {
    if (gmk_vcpu_run(v.k, v.vm, ret, &x) != 0) { CHECK(0, "vcpu_run"); return 1; }
    exits++;
    ret = GMK_NO_RET;
    if (x.reason == GMK_EXIT_HYPERCALL) ret = vmm_convert(&v, x.gpa, x.size, x.to_private);
    else if (x.reason == GMK_EXIT_MEMORY_FAULT) vmm_convert(&v, x.gpa, x.size, x.to_private); /* implicit conversion */
    else break;
  }
  printf("# policy %s: %d exits, %d EAGAINs, %d holders released, %d re-established, %d retries; guest: %d requests, %d completed, %d failed, %d faults\n",
         argv[2], exits, v.eagains, v.released, v.reestablished, v.retries, x.requests, x.completed, x.failed, x.faults);
  CHECK(v.eagains > 0 || (v.policy == POLICY_PREUNMAP && v.released > 0), "the guest's conversions met pinned pages (EAGAIN; under preunmap, released first)");
  CHECK(x.requests > 0 && x.completed == x.requests && x.failed == 0, "the guest completed every request");
  CHECK(x.faults == 0, "the guest never found a page in the wrong state");
  gmk_disconnect(v.k);
  printf("1..%d\n", n);
  return bad ? 1 : 0;
}
