// The C support code every exported program starts with: headers and the uapi definitions an
// older <linux/kvm.h> lacks (guarded, values from kernel-semantics.md §5 / src/model/abi.ts),
// the outcome of a step, the expectations, TAP output, handles, and the table of mappings the
// program made. Plain C text; src/export/c.ts puts the blocks a scenario needs together.
import { MAX_BUFFERED_ACCESS } from '../backend/backend.js';
import { CAPS, GMEM_FLAGS, KVM_EXIT_MEMORY_FAULT, MAP_FLAGS, MEMORY_ATTRIBUTES, MEMORY_EXIT_FLAG_PRIVATE, MEMSLOT_FLAGS, VM_TYPES } from '../model/abi.js';

const hex = (v: bigint): string => `0x${v.toString(16)}ULL`;

export const INCLUDES = String.raw`#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <linux/falloc.h>
#include <linux/kvm.h>`;

/** uapi constants and structs, each guarded so a newer <linux/kvm.h> wins. */
export const UAPI = String.raw`/* guest_memfd uapi that older <linux/kvm.h> lacks (values as in Linux 6.18 and the v8 series). */
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 ${CAPS.USER_MEMORY2}
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO ${CAPS.MEMORY_FAULT_INFO}
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES ${CAPS.MEMORY_ATTRIBUTES}
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD ${CAPS.GUEST_MEMFD}
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES ${CAPS.VM_TYPES}
#endif
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY ${CAPS.PRE_FAULT_MEMORY}
#endif
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#define KVM_CAP_GUEST_MEMFD_FLAGS ${CAPS.GUEST_MEMFD_FLAGS}
#endif
#ifndef KVM_X86_DEFAULT_VM
#define KVM_X86_DEFAULT_VM ${VM_TYPES.default}
#define KVM_X86_SW_PROTECTED_VM ${VM_TYPES.sw_protected}
#endif
#ifndef KVM_X86_SEV_VM
#define KVM_X86_SEV_VM ${VM_TYPES.sev}
#define KVM_X86_SEV_ES_VM ${VM_TYPES.sev_es}
#define KVM_X86_SNP_VM ${VM_TYPES.snp}
#endif
#ifndef KVM_X86_TDX_VM
#define KVM_X86_TDX_VM ${VM_TYPES.tdx}
#endif
#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD ${MEMSLOT_FLAGS.GUEST_MEMFD}
#endif
#ifndef KVM_MEMORY_ATTRIBUTE_PRIVATE
#define KVM_MEMORY_ATTRIBUTE_PRIVATE ${hex(MEMORY_ATTRIBUTES.PRIVATE)}
#endif
#ifndef GUEST_MEMFD_FLAG_MMAP
#define GUEST_MEMFD_FLAG_MMAP ${hex(GMEM_FLAGS.MMAP)}
#endif
#ifndef GUEST_MEMFD_FLAG_INIT_SHARED
#define GUEST_MEMFD_FLAG_INIT_SHARED ${hex(GMEM_FLAGS.INIT_SHARED)}
#endif
#ifndef GUEST_MEMFD_FLAG_NO_DIRECT_MAP
#define GUEST_MEMFD_FLAG_NO_DIRECT_MAP ${hex(GMEM_FLAGS.NO_DIRECT_MAP)}
#endif
#ifndef GUEST_MEMFD_FLAG_HUGETLB /* gmemkit's bit for the RFC25 flag (no kernel has it: EINVAL there) */
#define GUEST_MEMFD_FLAG_HUGETLB ${hex(GMEM_FLAGS.HUGETLB)}
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE ${hex(MAP_FLAGS.FIXED_NOREPLACE)}
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT ${KVM_EXIT_MEMORY_FAULT}
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE ${hex(MEMORY_EXIT_FLAG_PRIVATE)}
#endif
#ifndef KVM_SET_USER_MEMORY_REGION2
struct kvm_userspace_memory_region2 {
	__u32 slot;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
	__u64 guest_memfd_offset;
	__u32 guest_memfd;
	__u32 pad1;
	__u64 pad2[14];
};
#define KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#endif
#ifndef KVM_SET_MEMORY_ATTRIBUTES
struct kvm_memory_attributes {
	__u64 address;
	__u64 size;
	__u64 attributes;
	__u64 flags;
};
#define KVM_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
#endif
#ifndef KVM_CREATE_GUEST_MEMFD
struct kvm_create_guest_memfd {
	__u64 size;
	__u64 flags;
	__u64 reserved[6];
};
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#endif
#ifndef KVM_SET_MEMORY_ATTRIBUTES2
/* v8 in-place conversion: issued on the guest_memfd fd. */
struct kvm_memory_attributes2 {
	__u64 offset;
	__u64 size;
	__u64 attributes;
	__u64 flags;
	__u64 error_offset;
	__u64 reserved[11];
};
#define KVM_SET_MEMORY_ATTRIBUTES2 _IOWR(KVMIO, 0xd2, struct kvm_memory_attributes2)
#endif
/* The memory-fault exit of struct kvm_run (the exit union starts at byte 32). */
struct memory_fault_exit {
	__u64 flags;
	__u64 gpa;
	__u64 size;
};`;

export const CORE = String.raw`#ifndef __maybe_unused
#define __maybe_unused __attribute__((__unused__))
#endif
#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif
#define PAGE_CEIL(x) (((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
/* The largest host access gmemkit buffers (MAX_BUFFERED_ACCESS in src/backend/backend.ts). */
#define MAX_ACCESS ${MAX_BUFFERED_ACCESS}UL
#ifndef KSFT_SKIP
#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4
#endif

/* What one step did: the kernel's answer, or why it could not run here. */
enum outcome_kind { OUT_OK, OUT_ERRNO, OUT_SIGNAL, OUT_EXIT, OUT_UNSUPPORTED, OUT_NOT_RUN };

struct pin;

struct outcome {
	enum outcome_kind kind;
	int err;
	bool has_error_offset;
	__u64 error_offset;
	int sig;
	__u32 exit_reason;
	__u64 gpa, size, flags;
	bool has_value;
	__u64 value;
	bool has_stat;		/* fstat: st_size and st_blksize */
	long long st_size, st_blksize;
	bool has_data;
	unsigned char *data;
	size_t len;
	char why[400];
	const char *cause;	/* OUT_UNSUPPORTED for lack of a handle: the original reason */
	/* what a step that creates a handle made */
	int fd;
	bool is_pipe;
	int vm_type;
	char *addr;
	size_t length;
	struct pin *pin;
};

enum expect_kind { WANT_OK, WANT_ANY, WANT_ERRNO, WANT_SIGNAL, WANT_DATA, WANT_FILL, WANT_VALUE, WANT_EXIT, WANT_FAILS, WANT_BITS, WANT_STAT };

struct expect {
	enum expect_kind kind;
	int err;
	bool has_error_offset;
	__u64 error_offset;
	int sig;
	const char *data;
	size_t len;
	int fill;
	__u64 value;
	__u32 exit;
	bool has_gpa, has_size, has_private, private_;
	__u64 gpa, size;
	__u64 bits;
	bool has_st_size, has_st_blksize;
	long long st_size, st_blksize;
};

#define SUCCEEDS		((struct expect){ .kind = WANT_OK })
#define ANYTHING		((struct expect){ .kind = WANT_ANY })
#define FAILS(e)		((struct expect){ .kind = WANT_ERRNO, .err = (e) })
#define FAILS_AT(e, off)	((struct expect){ .kind = WANT_ERRNO, .err = (e), .has_error_offset = true, .error_offset = (off) })
#define RAISES(s)		((struct expect){ .kind = WANT_SIGNAL, .sig = (s) })
#define READS(s, n)		((struct expect){ .kind = WANT_DATA, .data = (s), .len = (n) })
#define READS_ALL(b)		((struct expect){ .kind = WANT_FILL, .fill = (b) })
#define RETURNS(v)		((struct expect){ .kind = WANT_VALUE, .value = (v) })
#define EXITS(r, ...)		((struct expect){ .kind = WANT_EXIT, .exit = (r), __VA_ARGS__ })
#define FAILS_ANY		((struct expect){ .kind = WANT_FAILS })
#define HAS_BITS(b)		((struct expect){ .kind = WANT_BITS, .bits = (b) })
#define STATS(...)		((struct expect){ .kind = WANT_STAT, __VA_ARGS__ })

/* A scenario handle: a VM, guest_memfd, mapping, pin or pipe made by an earlier step. */
struct handle {
	const char *name;
	int step;
	bool made;
	char unsupported[400];
	int fd;
	bool is_pipe;
	int vm_type;
	char *addr;
	size_t length;
	struct pin *pin;
	void *harness;
};

#define HANDLE(n)	{ .name = (n), .vm_type = -1 }
/* A raw fd or address written as a number in the scenario. */
#define RAW(n)		(&(struct handle){ .name = #n, .made = true, .fd = (int)(n), .vm_type = -1, .addr = (char *)(uintptr_t)(n) })

static int kvm_fd = -1;
static __maybe_unused void (*release_vm)(struct handle *vm);	/* set once a VM has a guest-access vCPU */
static __maybe_unused int tap_pass, tap_fail, tap_skip;
static char lacking[400];

static __maybe_unused struct outcome kernel_result(long r)
{
	struct outcome o = { .kind = r < 0 ? OUT_ERRNO : OUT_OK, .err = r < 0 ? errno : 0, .vm_type = -1 };

	o.fd = r < 0 ? -1 : (int)r;
	return o;
}

/* An outcome of KIND whose reason is printf-formatted. */
static struct outcome voutcome(enum outcome_kind kind, int err, const char *fmt, va_list ap)
{
	struct outcome o = { .kind = kind, .err = err, .vm_type = -1 };

	vsnprintf(o.why, sizeof(o.why), fmt, ap);
	return o;
}

static __maybe_unused struct outcome refuse(int err, const char *fmt, ...)
{
	struct outcome o;
	va_list ap;

	va_start(ap, fmt);
	o = voutcome(OUT_ERRNO, err, fmt, ap);
	va_end(ap);
	return o;
}

static __maybe_unused struct outcome unsupported(const char *fmt, ...)
{
	struct outcome o;
	va_list ap;

	va_start(ap, fmt);
	o = voutcome(OUT_UNSUPPORTED, 0, fmt, ap);
	va_end(ap);
	return o;
}

/* The kernel lacks something the scenario needs: the step skips, and so does the program. */
static __maybe_unused struct outcome lacks(const char *fmt, ...)
{
	struct outcome o;
	va_list ap;

	va_start(ap, fmt);
	o = voutcome(OUT_UNSUPPORTED, 0, fmt, ap);
	va_end(ap);
	if (!lacking[0])
		snprintf(lacking, sizeof(lacking), "%s", o.why);
	return o;
}

static __maybe_unused struct outcome with_data(unsigned char *data, size_t len)
{
	struct outcome o = { .kind = OUT_OK, .has_data = true, .data = data, .len = len, .vm_type = -1 };

	return o;
}

/* Whether the step may use h; if not, *o says why (an unsupported or failed earlier step). */
static __maybe_unused bool need(struct outcome *o, const struct handle *h)
{
	if (!h || h->made)
		return true;
	memset(o, 0, sizeof(*o));
	if (h->unsupported[0]) {
		o->kind = OUT_UNSUPPORTED;
		o->cause = h->unsupported;
		snprintf(o->why, sizeof(o->why), "needs '%.40s' of step %d: %.300s", h->name, h->step, h->unsupported);
	} else {
		o->kind = OUT_NOT_RUN;
		snprintf(o->why, sizeof(o->why), "handle '%.40s' was not created (step %d did not succeed)", h->name, h->step);
	}
	return false;
}

/* A step export does not translate to C: it skips, after the handles it would use are checked. */
static __maybe_unused struct outcome not_exported(const char *why, struct handle *a, struct handle *b)
{
	struct outcome o;

	if (!need(&o, a) || !need(&o, b))
		return o;
	return unsupported("%s", why);
}

static __maybe_unused __u64 kvm_cap(long cap, int vm_fd)
{
	int r = ioctl(vm_fd >= 0 ? vm_fd : kvm_fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : (__u64)r;
}

static const char *errno_name(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "unknown errno";
}

static void show_data(char *buf, size_t size, const unsigned char *d, size_t n)
{
	size_t i, at = 0;

	at += snprintf(buf + at, size - at, "data [");
	for (i = 0; i < n && i < 16 && at < size; i++)
		at += snprintf(buf + at, size - at, "%s0x%02x", i ? " " : "", d[i]);
	if (at < size)
		snprintf(buf + at, size - at, "%s] (%zu bytes)", n > 16 ? " ..." : "", n);
}

static void describe(char *buf, size_t size, const struct outcome *o)
{
	switch (o->kind) {
	case OUT_OK:
		if (o->has_data)
			show_data(buf, size, o->data, o->len);
		else if (o->has_value)
			snprintf(buf, size, "value %llu", (unsigned long long)o->value);
		else if (o->has_stat)
			snprintf(buf, size, "size=%lld blksize=%lld", o->st_size, o->st_blksize);
		else
			snprintf(buf, size, "success");
		break;
	case OUT_ERRNO:
		if (o->has_error_offset)
			snprintf(buf, size, "%s error_offset=%llu", errno_name(o->err), (unsigned long long)o->error_offset);
		else
			snprintf(buf, size, "%s", errno_name(o->err));
		break;
	case OUT_SIGNAL:
		snprintf(buf, size, "SIG%s", sigabbrev_np(o->sig));
		break;
	case OUT_EXIT:
		snprintf(buf, size, "exit %u gpa=0x%llx size=%llu flags=0x%llx", o->exit_reason,
			 (unsigned long long)o->gpa, (unsigned long long)o->size, (unsigned long long)o->flags);
		break;
	default:
		snprintf(buf, size, "%.150s", o->why);
	}
}

/* Why o does not meet x (written to buf), or NULL when it does. */
static const char *mismatch(const struct outcome *o, const struct expect *x, char *buf, size_t size)
{
	char got[200];
	bool same;
	size_t i;

	switch (x->kind) {
	case WANT_ANY:
		return NULL;
	case WANT_OK:
		same = o->kind == OUT_OK;
		break;
	case WANT_ERRNO:
		same = o->kind == OUT_ERRNO && o->err == x->err &&
		       (!x->has_error_offset || (o->has_error_offset && o->error_offset == x->error_offset));
		break;
	case WANT_SIGNAL:
		same = o->kind == OUT_SIGNAL && o->sig == x->sig;
		break;
	case WANT_DATA:
		same = o->kind == OUT_OK && o->has_data && o->len == x->len && !memcmp(o->data, x->data, x->len);
		break;
	case WANT_FILL:
		same = o->kind == OUT_OK && o->has_data;
		for (i = 0; same && i < o->len; i++)
			same = o->data[i] == x->fill;
		break;
	case WANT_VALUE:
		same = o->kind == OUT_OK && o->has_value && o->value == x->value;
		break;
	case WANT_FAILS:
		same = o->kind == OUT_ERRNO;
		break;
	case WANT_BITS:
		same = o->kind == OUT_OK && o->has_value && (o->value & x->bits) == x->bits;
		break;
	case WANT_STAT:
		same = o->kind == OUT_OK && o->has_stat && (!x->has_st_size || o->st_size == x->st_size) &&
		       (!x->has_st_blksize || o->st_blksize == x->st_blksize);
		break;
	case WANT_EXIT:
		same = o->kind == OUT_EXIT && o->exit_reason == x->exit &&
		       (!x->has_gpa || o->gpa == x->gpa) && (!x->has_size || o->size == x->size) &&
		       (!x->has_private || !!(o->flags & KVM_MEMORY_EXIT_FLAG_PRIVATE) == x->private_);
		break;
	default:
		same = false;
	}
	if (same)
		return NULL;
	describe(got, sizeof(got), o);
	switch (x->kind) {
	case WANT_OK:
		snprintf(buf, size, "expected success, got %s", got);
		break;
	case WANT_ERRNO:
		if (x->has_error_offset)
			snprintf(buf, size, "expected %s error_offset=%llu, got %s", errno_name(x->err),
				 (unsigned long long)x->error_offset, got);
		else
			snprintf(buf, size, "expected %s, got %s", errno_name(x->err), got);
		break;
	case WANT_SIGNAL:
		snprintf(buf, size, "expected SIG%s, got %s", sigabbrev_np(x->sig), got);
		break;
	case WANT_DATA:
		snprintf(buf, size, "expected %zu bytes of data, got %s", x->len, got);
		break;
	case WANT_FILL:
		snprintf(buf, size, "expected every byte 0x%02x, got %s", x->fill, got);
		break;
	case WANT_VALUE:
		snprintf(buf, size, "expected value %llu, got %s", (unsigned long long)x->value, got);
		break;
	case WANT_FAILS:
		snprintf(buf, size, "expected a failure (any errno), got %s", got);
		break;
	case WANT_BITS:
		snprintf(buf, size, "expected a value with every bit of 0x%llx set, got %s", (unsigned long long)x->bits, got);
		break;
	case WANT_STAT:
		snprintf(buf, size, "expected size=%lld blksize=%lld, got %s", x->st_size, x->st_blksize, got);
		break;
	default:
		snprintf(buf, size, "expected exit %u, got %s", x->exit, got);
	}
	return buf;
}`;

/** TAP reporting (the plain flavour). */
export const TAP = String.raw`/* Report step n as a TAP line: ok, ok # SKIP (cannot run here), or not ok with the difference. */
static __maybe_unused void check(int n, const char *title, struct outcome o, struct expect x)
{
	char why[600];

	if (o.kind == OUT_UNSUPPORTED) {
		printf("ok %d - %s # SKIP %s\n", n, title, o.why);
		tap_skip++;
	} else if (o.kind == OUT_NOT_RUN) {
		printf("not ok %d - %s # %s\n", n, title, o.why);
		tap_fail++;
	} else if (mismatch(&o, &x, why, sizeof(why))) {
		printf("not ok %d - %s # %s\n", n, title, why);
		tap_fail++;
	} else {
		printf("ok %d - %s\n", n, title);
		tap_pass++;
	}
	fflush(stdout);
	free(o.data);
}

/* check(), and keep what the step made as handle h for later steps. */
static __maybe_unused void produce(struct handle *h, int n, const char *title, struct outcome o, struct expect x)
{
	h->step = n;
	if (o.kind == OUT_OK) {
		h->made = true;
		h->fd = o.fd;
		h->is_pipe = o.is_pipe;
		h->vm_type = o.vm_type;
		h->addr = o.addr;
		h->length = o.length;
		h->pin = o.pin;
	} else if (o.kind == OUT_UNSUPPORTED) {
		snprintf(h->unsupported, sizeof(h->unsupported), "%.300s", o.cause ? o.cause : o.why);
	}
	check(n, title, o, x);
}`;

/** What main() does before and after the scenario functions. */
export const MAIN_SUPPORT = String.raw`static void catch_faults(void);

/* /dev/kvm with guest_memfd, or exit with the kselftest skip code. */
static void open_kvm(void)
{
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		printf("1..0 # SKIP cannot open /dev/kvm read-write: %s\n", errno_name(errno));
		exit(KSFT_SKIP);
	}
	if (kvm_cap(KVM_CAP_GUEST_MEMFD, -1) != 1) {
		printf("1..0 # SKIP KVM_CAP_GUEST_MEMFD is not 1 on this kernel\n");
		exit(KSFT_SKIP);
	}
	catch_faults();
}

static int finish(void)
{
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n", tap_pass, tap_fail, tap_skip);
	if (tap_fail)
		return KSFT_FAIL;
	if (lacking[0]) {
		printf("# SKIP %s\n", lacking);
		return KSFT_SKIP;
	}
	return KSFT_PASS;
}`;
