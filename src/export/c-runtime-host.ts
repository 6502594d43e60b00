// C support code for the host side of an exported scenario: the table of mappings the program
// made (the same protection the linux backend has: a scenario never reaches other memory of the
// process), host loads and stores that turn SIGBUS/SIGSEGV into an outcome (sigsetjmp), and the
// memslot check for userspace addresses outside those mappings. Plain C text.

export const FAULTS = String.raw`/* The mappings this program made for the scenario, as [start, end) page ranges. */
static struct mapping {
	char *start, *end;
	int prot;
} maps[256];
static int nr_maps;

static __maybe_unused void maps_add(char *start, char *end, int prot)
{
	if (nr_maps < (int)(sizeof(maps) / sizeof(maps[0])))
		maps[nr_maps++] = (struct mapping){ start, end, prot };
}

/* Forget [lo, hi), splitting mappings at its edges. */
static __maybe_unused void maps_remove(char *lo, char *hi)
{
	struct mapping keep[256];
	int i, n = 0;

	for (i = 0; i < nr_maps; i++) {
		struct mapping m = maps[i];

		if (m.end <= lo || m.start >= hi) {
			keep[n++] = m;
			continue;
		}
		if (m.start < lo)
			keep[n++] = (struct mapping){ m.start, lo, m.prot };
		if (m.end > hi && n < 256)
			keep[n++] = (struct mapping){ hi, m.end, m.prot };
	}
	memcpy(maps, keep, n * sizeof(keep[0]));
	nr_maps = n;
}

static __maybe_unused struct mapping *maps_find(char *a)
{
	int i;

	for (i = 0; i < nr_maps; i++)
		if (a >= maps[i].start && a < maps[i].end)
			return &maps[i];
	return NULL;
}

/* Whether every byte of [lo, hi) lies in one of the mappings. */
static __maybe_unused bool maps_cover(char *lo, char *hi)
{
	char *at = lo;
	struct mapping *m;

	while (at < hi) {
		m = maps_find(at);
		if (!m)
			return false;
		at = m->end;
	}
	return true;
}

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_sig;

static void on_fault(int sig)
{
	fault_sig = sig;
	siglongjmp(fault_jmp, 1);
}

static void catch_faults(void)
{
	struct sigaction sa = { .sa_handler = on_fault };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}`;

export const HOST_ACCESS = String.raw`static void copy_bytes(volatile unsigned char *mem, unsigned char *buf, size_t n, bool store)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (store)
			mem[i] = buf[i];
		else
			buf[i] = mem[i];
	}
}

/* Load or store n bytes one by one; the signal a touch raised, or 0. */
static int touch(char *mem, unsigned char *buf, size_t n, bool store)
{
	fault_sig = 0;
	if (sigsetjmp(fault_jmp, 1) == 0)
		copy_bytes((volatile unsigned char *)mem, buf, n, store);
	return fault_sig;
}

/* The first byte of [p, p+n) outside this program's mappings or lacking the permission. */
static char *first_unmapped(char *p, size_t n, int need)
{
	char *page = (char *)((uintptr_t)p & ~(PAGE_SIZE - 1));
	struct mapping *m;

	for (; page < p + n; page += PAGE_SIZE) {
		m = maps_find(page);
		if (!m || !(m->prot & need))
			return page < p ? p : page;
	}
	return p + n;
}

static struct outcome access_bytes(struct handle *map, __u64 offset, unsigned char *buf, size_t n, bool store)
{
	struct outcome o = { .kind = OUT_OK, .vm_type = -1 };
	char *p, *limit;
	int sig;

	if (!need(&o, map))
		return o;
	p = map->addr + offset;
	limit = first_unmapped(p, n, store ? PROT_WRITE : PROT_READ);
	sig = touch(p, buf, limit - p, store);
	if (!sig && limit < p + n)
		sig = SIGSEGV;
	if (sig) {
		o.kind = OUT_SIGNAL;
		o.sig = sig;
	}
	return o;
}

/* A host load through the mapping: its bytes, or the signal the touch raised. */
static __maybe_unused struct outcome host_read(struct handle *map, __u64 offset, size_t n)
{
	unsigned char *buf = calloc(1, n ? n : 1);
	struct outcome o = access_bytes(map, offset, buf, n, false);

	if (o.kind != OUT_OK) {
		free(buf);
		return o;
	}
	return with_data(buf, n);
}

/* A host store: the bytes before a page that faults are written, as a store loop would. */
static __maybe_unused struct outcome host_write(struct handle *map, __u64 offset, const char *data, size_t n)
{
	return access_bytes(map, offset, (unsigned char *)data, n, true);
}`;

export const USER_ADDR_CHECK = String.raw`/*
 * A memslot whose userspace_addr is memory of this program other than the scenario's
 * mappings would let the guest reach it: refused as unsupported (NULL, deletions, unaligned
 * or non-user addresses and unmapped ranges go to the kernel).
 */
static const char *foreign_userspace_addr(__u64 uaddr, __u64 size)
{
	static char why[200];
	unsigned long lo, hi;
	char line[512];
	FILE *f;

	if (!uaddr || !size || uaddr % PAGE_SIZE || uaddr + size > 0x7ffffffff000ULL)
		return NULL;
	if (maps_cover((char *)(uintptr_t)uaddr, (char *)(uintptr_t)(uaddr + size)))
		return NULL;
	f = fopen("/proc/self/maps", "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo < uaddr + size && hi > uaddr) {
			fclose(f);
			snprintf(why, sizeof(why), "userspace_addr range [0x%llx, 0x%llx) overlaps memory of this program, not a mapping of the scenario",
				 (unsigned long long)uaddr, (unsigned long long)(uaddr + size));
			return why;
		}
	}
	fclose(f);
	return NULL;
}`;
