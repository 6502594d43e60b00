/*
 * handler.c - the conversion handler of handler.h: GPA -> guest_memfd offset through the
 * VMM's memslot, KVM_SET_MEMORY_ATTRIBUTES2, and on EAGAIN the holders over error_offset.
 */
#include "handler.h"

#include <errno.h>
#include <string.h>

int policy_of(const char *name, enum policy *out) {
  static const char *const names[] = {"retry", "preunmap", "guest-retry", "wrong"};
  for (int i = 0; i < 4; i++) if (strcmp(name, names[i]) == 0) { *out = (enum policy)i; return 0; }
  return -1;
}

static int take(struct vmm *v, struct holder *h) {
  int r = h->kind == HOLDER_IO_URING ? gmk_io_uring_register_buffers(v->k, v->map, h->lo, h->hi - h->lo)
                                     : gmk_vfio_dma_map(v->k, v->map, h->lo, h->hi - h->lo, h->iova);
  if (r > 0) h->handle = r;
  return r > 0 ? 0 : r;
}

static void release(struct vmm *v, struct holder *h) {
  if (!h->handle) return;
  if (h->kind == HOLDER_IO_URING) gmk_io_uring_unregister_buffers(v->k, h->handle);
  else gmk_vfio_dma_unmap(v->k, h->handle);
  h->handle = 0;
  h->released_by_us = 1;
  v->released++;
}

int vmm_add_holder(struct vmm *v, enum holder_kind kind, uint64_t lo, uint64_t hi) {
  if (v->nholders == MAX_HOLDERS) return -ENOSPC;
  struct holder *h = &v->holders[v->nholders];
  memset(h, 0, sizeof *h);
  h->kind = kind;
  h->lo = lo;
  h->hi = hi;
  h->iova = lo;
  int r = take(v, h);
  if (r == 0) v->nholders++;
  return r;
}

/* Release the holders that pin any byte of [lo, hi); how many there were. */
static int release_over(struct vmm *v, uint64_t lo, uint64_t hi) {
  int n = 0;
  for (int i = 0; i < v->nholders; i++) {
    struct holder *h = &v->holders[i];
    if (h->handle && h->lo < hi && lo < h->hi) { release(v, h); n++; }
  }
  return n;
}

int64_t vmm_convert(struct vmm *v, uint64_t gpa, uint64_t size, int to_private) {
  if (gpa >= v->ram || size > v->ram - gpa) return -EINVAL; /* not in our memslot */
  uint64_t off = gpa; /* memslot 0: guest_phys_addr 0, guest_memfd_offset 0 */
  uint64_t attrs = to_private ? GMK_ATTR_PRIVATE : 0;
  if (to_private && v->policy == POLICY_PREUNMAP) release_over(v, off, off + size);
  int r;
  for (int attempt = 0;; attempt++) {
    uint64_t error_offset = 0;
    r = gmk_set_memory_attributes2(v->k, v->gmem, off, size, attrs, 0, &error_offset);
    if (r != -EAGAIN) break;
    v->eagains++;
    if (v->policy == POLICY_WRONG) return 0; /* the bug under test: EAGAIN taken for success */
    /* Who pins the page the kernel named? Only our own holders can let go. */
    int n = release_over(v, error_offset, error_offset + 1);
    if (v->policy == POLICY_GUEST_RETRY) return -EAGAIN; /* the guest re-issues the request */
    if (n == 0 || attempt == MAX_RETRIES) return -EAGAIN; /* a reference we do not own: give up */
    v->retries++;
  }
  if (r != 0) return r;
  if (!to_private && v->policy == POLICY_PREUNMAP) {
    /* The range is shared again: holders released for it pin it again (those still partly
     * private cannot yet and stay released). */
    for (int i = 0; i < v->nholders; i++) {
      struct holder *h = &v->holders[i];
      if (!h->handle && h->released_by_us && h->lo < off + size && off < h->hi && take(v, h) == 0) {
        h->released_by_us = 0;
        v->reestablished++;
      }
    }
  }
  return 0;
}
