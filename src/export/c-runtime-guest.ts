// C support code for guest accesses, the same minimal vCPU as the linux backend's harness
// (src/linux/guest.ts): a 64-bit user-mode (CPL3) vCPU per VM that copies bytes between a
// guest-physical address and a scratch page with "rep movsb" and exits with OUT. Its code,
// page tables and scratch live in an anonymous memslot (the last user slot) at the top 2 MiB
// below 2^min(MAXPHYADDR, 47), so they never meet the scenario's memory. Plain C text.

export const GUEST = String.raw`#define HARNESS_BYTES (2UL << 20)
#define HARNESS_CODE 0x0000
#define HARNESS_SCRATCH 0x1000
#define HARNESS_PML4 0x2000
#define HARNESS_POOL 0x3000
#define HARNESS_TSS 0x800
#define HARNESS_PORT 0x10
#define HARNESS_TIMEOUT_S 5

static struct {
	bool done;
	char why[200];
	int phys_bits;
	__u64 gpa;
	int slot;
	struct kvm_cpuid2 *cpuid;
	int run_size;
} place;

struct harness {
	int vm_fd;
	unsigned char *mem;
	bool slot;
	int vcpu;
	struct kvm_run *run;
	int next_id;
	unsigned long pool_next;
};

static void on_alarm(int sig)
{
	(void)sig;
}

/* Where the harness lives; the same for every VM. False (place.why says why) when it cannot. */
static bool harness_placement(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	int i, n = 128, slots;

	if (place.done)
		return !place.why[0];
	place.done = true;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);	/* no SA_RESTART: the alarm ends a KVM_RUN that runs too long */
	place.cpuid = calloc(1, sizeof(*place.cpuid) + n * sizeof(place.cpuid->entries[0]));
	place.cpuid->nent = n;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, place.cpuid)) {
		snprintf(place.why, sizeof(place.why), "KVM_GET_SUPPORTED_CPUID failed (%s)", errno_name(errno));
		return false;
	}
	place.phys_bits = 36;
	for (i = 0; i < (int)place.cpuid->nent; i++)
		if (place.cpuid->entries[i].function == 0x80000008)
			place.phys_bits = place.cpuid->entries[i].eax & 0xff;
	slots = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	if (slots < 2) {
		snprintf(place.why, sizeof(place.why), "KVM_CAP_NR_MEMSLOTS gives no spare slot");
		return false;
	}
	place.slot = slots - 1;
	place.run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (place.run_size < 0) {
		snprintf(place.why, sizeof(place.why), "KVM_GET_VCPU_MMAP_SIZE failed (%s)", errno_name(errno));
		return false;
	}
	place.gpa = (1ULL << (place.phys_bits < 47 ? place.phys_bits : 47)) - HARNESS_BYTES;
	return true;
}

/* Map the 4K page holding gpa at the same virtual address (P|RW|U); only ever adds entries. */
static bool map_identity(struct harness *h, __u64 gpa)
{
	__u64 page = gpa & ~(__u64)(PAGE_SIZE - 1), *e;
	unsigned long table = HARNESS_PML4;
	int shift;

	for (shift = 39; shift >= 21; shift -= 9) {
		e = (__u64 *)(h->mem + table) + ((page >> shift) & 511);
		if (!(*e & 1)) {
			if (h->pool_next + PAGE_SIZE > HARNESS_BYTES)
				return false;
			*e = (place.gpa + h->pool_next) | 7;
			h->pool_next += PAGE_SIZE;
		}
		table = (*e & ~0xfffULL & ((1ULL << 52) - 1)) - place.gpa;
	}
	e = (__u64 *)(h->mem + table) + ((page >> 12) & 511);
	if (!(*e & 1))
		*e = page | 7;
	return true;
}

static void retire_vcpu(struct harness *h)
{
	if (h->vcpu < 0)
		return;
	munmap(h->run, place.run_size);
	close(h->vcpu);
	h->vcpu = -1;
}

static void set_segment(struct kvm_segment *s, __u16 selector, __u8 type, __u8 dpl, __u8 db, __u8 l)
{
	*s = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
				   .present = 1, .dpl = dpl, .db = db, .s = 1, .l = l, .g = 1 };
}

/* 64-bit user mode: CS 0x33 (DPL3, L), SS 0x2b, paging with the harness PML4. */
static const char *setup_vcpu(struct harness *h)
{
	struct { struct kvm_msrs hdr; struct kvm_msr_entry e; } msr = {
		.hdr.nmsrs = 1, .e = { .index = 0xc0000081, .data = (0x23ULL << 48) | (0x10ULL << 32) },
	};
	struct kvm_sregs s;

	if (ioctl(h->vcpu, KVM_SET_CPUID2, place.cpuid))
		return "KVM_SET_CPUID2 failed";
	if (ioctl(h->vcpu, KVM_SET_MSRS, &msr) != 1)
		return "KVM_SET_MSRS(STAR) failed";
	if (ioctl(h->vcpu, KVM_GET_SREGS, &s))
		return "KVM_GET_SREGS failed";
	set_segment(&s.cs, 0x33, 0xb, 3, 0, 1);
	set_segment(&s.ds, 0, 0x3, 3, 1, 0);
	s.es = s.fs = s.gs = s.ds;
	set_segment(&s.ss, 0x2b, 0x3, 3, 1, 0);
	s.tr = (struct kvm_segment){ .base = place.gpa + HARNESS_CODE + HARNESS_TSS, .limit = 0x1ff, .selector = 0x40,
				     .type = 0xb, .present = 1 };
	s.cr0 = 0x80050033;	/* PG|AM|WP|NE|ET|MP|PE */
	s.cr3 = place.gpa + HARNESS_PML4;
	s.cr4 = 0x20;		/* PAE */
	s.efer = 0x501;		/* LME|LMA|SCE */
	if (ioctl(h->vcpu, KVM_SET_SREGS, &s))
		return "KVM_SET_SREGS(long mode, CPL3) failed";
	return NULL;
}

static struct outcome harness_ready(struct harness *h)
{
	static const unsigned char code[] = { 0xf3, 0xa4, 0xe6, HARNESS_PORT };	/* rep movsb; out 0x10, al */
	struct outcome o = { .kind = OUT_OK, .vm_type = -1 };
	const char *why;

	if (!h->mem) {
		h->mem = mmap(NULL, HARNESS_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (h->mem == MAP_FAILED) {
			h->mem = NULL;
			return kernel_result(-1);
		}
		memcpy(h->mem + HARNESS_CODE, code, sizeof(code));
		/* a 64-bit TSS whose I/O bitmap allows every port: PVM emulates the CPL3 OUT */
		*(__u16 *)(h->mem + HARNESS_TSS + 102) = 104;
		map_identity(h, place.gpa + HARNESS_CODE);
		map_identity(h, place.gpa + HARNESS_SCRATCH);
	}
	if (!h->slot) {
		struct kvm_userspace_memory_region2 r = {
			.slot = place.slot, .guest_phys_addr = place.gpa, .memory_size = HARNESS_BYTES,
			.userspace_addr = (uintptr_t)h->mem,
		};

		if (ioctl(h->vm_fd, KVM_SET_USER_MEMORY_REGION2, &r))
			return unsupported("cannot create the guest harness memslot %d at 0x%llx (%s)", place.slot,
					   (unsigned long long)place.gpa, errno_name(errno));
		h->slot = true;
	}
	if (h->vcpu >= 0)
		return o;
	h->vcpu = ioctl(h->vm_fd, KVM_CREATE_VCPU, h->next_id++);
	if (h->vcpu < 0)
		return kernel_result(-1);
	h->run = mmap(NULL, place.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, h->vcpu, 0);
	if (h->run == MAP_FAILED) {
		o = kernel_result(-1);
		close(h->vcpu);
		h->vcpu = -1;
		return o;
	}
	why = setup_vcpu(h);
	if (why) {
		retire_vcpu(h);
		return unsupported("%s", why);
	}
	return o;
}

/* KVM_RUN once, bounded by SIGALRM; EINTR from task work re-enters until the deadline. */
static struct outcome harness_run(struct harness *h)
{
	struct itimerval t = { .it_value = { .tv_sec = HARNESS_TIMEOUT_S } }, off = { 0 };
	struct timespec start, now;
	struct memory_fault_exit mf;
	struct outcome o = { .kind = OUT_OK, .vm_type = -1 };
	int r, err;

	h->run->exit_reason = 0;
	h->run->immediate_exit = 0;
	clock_gettime(CLOCK_MONOTONIC, &start);
	setitimer(ITIMER_REAL, &t, NULL);
	for (;;) {
		r = ioctl(h->vcpu, KVM_RUN, 0);
		err = errno;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (r == 0 || err != EINTR || now.tv_sec - start.tv_sec >= HARNESS_TIMEOUT_S)
			break;
	}
	setitimer(ITIMER_REAL, &off, NULL);
	if (r < 0) {
		if (err == EFAULT && h->run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
			memcpy(&mf, (char *)h->run + 32, sizeof(mf));
			o.kind = OUT_EXIT;
			o.exit_reason = KVM_EXIT_MEMORY_FAULT;
			o.gpa = mf.gpa;
			o.size = mf.size;
			o.flags = mf.flags;
			return o;
		}
		retire_vcpu(h);
		if (err == EINTR)
			return unsupported("guest access did not finish within %d s", HARNESS_TIMEOUT_S);
		errno = err;
		return kernel_result(-1);
	}
	if (h->run->exit_reason == KVM_EXIT_IO && h->run->io.port == HARNESS_PORT) {
		h->run->immediate_exit = 1;	/* let KVM complete the OUT now */
		ioctl(h->vcpu, KVM_RUN, 0);
		h->run->immediate_exit = 0;
		return o;
	}
	if (h->run->exit_reason == KVM_EXIT_MMIO) {
		o.kind = OUT_EXIT;
		o.exit_reason = KVM_EXIT_MMIO;
		o.gpa = h->run->mmio.phys_addr;
		o.size = h->run->mmio.len;
		retire_vcpu(h);
		return o;
	}
	o = unsupported("guest harness vCPU exit %u", h->run->exit_reason);
	retire_vcpu(h);
	return o;
}

/* One guest load (store == NULL) or store within one page. */
static struct outcome harness_access(struct harness *h, __u64 gpa, size_t n, unsigned char *buf, const unsigned char *store)
{
	__u64 limit = 1ULL << (place.phys_bits < 47 ? place.phys_bits : 47);
	__u64 scratch = place.gpa + HARNESS_SCRATCH;
	struct kvm_regs regs = { 0 };
	struct outcome o;

	if (gpa + n > limit)
		return unsupported("gpa 0x%llx is beyond the harness's identity map", (unsigned long long)gpa);
	if (gpa < place.gpa + HARNESS_BYTES && gpa + n > place.gpa)
		return unsupported("gpa lies in the guest harness memslot");
	o = harness_ready(h);
	if (o.kind != OUT_OK)
		return o;
	if (!map_identity(h, gpa))
		return unsupported("guest harness page-table pool exhausted");
	if (store)
		memcpy(h->mem + HARNESS_SCRATCH, store, n);
	regs.rip = place.gpa + HARNESS_CODE;
	regs.rflags = 0x2;
	regs.rcx = n;
	regs.rsi = store ? scratch : gpa;
	regs.rdi = store ? gpa : scratch;
	regs.rsp = place.gpa + HARNESS_SCRATCH;
	if (ioctl(h->vcpu, KVM_SET_REGS, &regs))
		return kernel_result(-1);
	o = harness_run(h);
	if (o.kind == OUT_OK && !store)
		memcpy(buf, h->mem + HARNESS_SCRATCH, n);
	return o;
}

static void harness_release(struct handle *vm)
{
	struct harness *h = vm->harness;

	if (!h)
		return;
	retire_vcpu(h);
	if (h->mem)
		munmap(h->mem, HARNESS_BYTES);
	free(h);
	vm->harness = NULL;
}

/* A vCPU load or store of [gpa, gpa+n), page by page through the VM's harness vCPU. */
static struct outcome guest_access(struct handle *vm, __u64 gpa, size_t n, const char *store)
{
	unsigned char *buf = store ? NULL : calloc(1, n ? n : 1);
	struct outcome o = { .vm_type = -1 };
	size_t done = 0, chunk;

	if (!need(&o, vm) || !harness_placement()) {
		free(buf);
		return o.kind == OUT_OK ? unsupported("%s", place.why) : o;
	}
	if (vm->vm_type < 0) {
		free(buf);
		return refuse(EINVAL, "'%s' is not a VM fd", vm->name);
	}
	if (!vm->harness) {
		struct harness *h = calloc(1, sizeof(*h));

		h->vm_fd = vm->fd;
		h->vcpu = -1;
		h->pool_next = HARNESS_POOL;
		vm->harness = h;
		release_vm = harness_release;
	}
	while (done < n) {
		chunk = PAGE_SIZE - (gpa + done) % PAGE_SIZE;
		if (chunk > n - done)
			chunk = n - done;
		o = harness_access(vm->harness, gpa + done, chunk, buf ? buf + done : NULL,
				   store ? (const unsigned char *)store + done : NULL);
		if (o.kind != OUT_OK) {
			free(buf);
			return o;
		}
		done += chunk;
	}
	return store ? kernel_result(0) : with_data(buf, n);
}

/* The vCPU's access type (private) comes from hardware only on SNP and TDX, which need more than this harness. */
static __maybe_unused struct outcome guest_read(struct handle *vm, __u64 gpa, size_t n)
{
	return guest_access(vm, gpa, n, NULL);
}

static __maybe_unused struct outcome guest_write(struct handle *vm, __u64 gpa, const char *data, size_t n)
{
	return guest_access(vm, gpa, n, data);
}`;
