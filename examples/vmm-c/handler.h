/*
 * handler.h - a small VMM conversion handler in C: it serves the guest's MapGPA requests
 * (KVM_EXIT_HYPERCALL, KVM_HC_MAP_GPA_RANGE) and memory-fault exits by converting the
 * guest_memfd range, and when the kernel says EAGAIN it finds who pins error_offset among the
 * VMM's own pin holders (io_uring fixed buffers, VFIO DMA mappings), releases them and retries,
 * with the policies of gmemkit's userspace half (src/userspace/policies.ts). The kernel calls go
 * through clients/c/gmemkit.h, so the same code runs against `gmemkit serve` in tests.
 */
#ifndef VMM_HANDLER_H
#define VMM_HANDLER_H

#include <stdint.h>

#include "../../clients/c/gmemkit.h"

enum policy {
  POLICY_RETRY,       /* on EAGAIN release the holders at error_offset and retry (bounded) */
  POLICY_PREUNMAP,    /* release every holder over the range first; re-establish after to-shared */
  POLICY_GUEST_RETRY, /* release the holders at error_offset, return -EAGAIN so the guest retries */
  POLICY_WRONG,       /* deliberately wrong: treats EAGAIN as done (the failure escapes) */
};

enum holder_kind { HOLDER_IO_URING, HOLDER_VFIO };

struct holder {
  enum holder_kind kind;
  int handle;           /* 0 while released */
  uint64_t lo, hi;      /* guest_memfd offsets it pins */
  uint64_t iova;        /* VFIO */
  int released_by_us;   /* released for a conversion; preunmap re-establishes it after to-shared */
};

#define MAX_HOLDERS 64
#define MAX_RETRIES 8

struct vmm {
  struct gmk *k;
  int vm, gmem, map;
  uint64_t ram;                  /* one memslot: GPA [0, ram) is guest_memfd [0, ram) */
  struct holder holders[MAX_HOLDERS];
  int nholders;
  enum policy policy;
  int eagains, released, reestablished, retries;
};

/* Register a holder (and take its pins); 0 or the kernel's -errno. */
int vmm_add_holder(struct vmm *v, enum holder_kind kind, uint64_t lo, uint64_t hi);
/* Convert GPA [gpa, gpa+size); the value to return to the guest (0, -EAGAIN, -errno). */
int64_t vmm_convert(struct vmm *v, uint64_t gpa, uint64_t size, int to_private);
int policy_of(const char *name, enum policy *out);

#endif
