// C support code for pins, as the linux backend takes them (src/linux/pins.ts, io-uring.ts,
// odirect.ts): a long-term pin is an io_uring ring whose registered buffer is the range
// (pin_user_pages(FOLL_WRITE | FOLL_LONGTERM)), with the device's view through
// WRITE_FIXED/READ_FIXED against a memfd; a short-term pin is the GUP of one O_DIRECT I/O,
// performed and released within the step. Also vmsplice pipes. Plain C text.

export const USER_RANGE = String.raw`/* [offset, offset + length) of MAP as user memory inside the scenario's mappings, or the refusal in *o. */
static __maybe_unused bool user_range(struct outcome *o, struct handle *map, __u64 offset, __u64 length, char **p)
{
	if (!need(o, map))
		return false;
	*p = map->addr + offset;
	if ((long long)length <= 0) {
		*o = refuse(EINVAL, "length must be positive");
		return false;
	}
	if (!maps_cover(*p, *p + length)) {
		*o = refuse(EFAULT, "range is not inside the scenario's mappings");
		return false;
	}
	return true;
}`;

export const PINS = String.raw`#include <linux/io_uring.h>
#include <sys/statfs.h>

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

struct pin {
	bool longterm;
	bool held;
	char *addr;
	size_t length;
	/* long-term: the ring, its mappings, and the scratch memfd the device reads and writes */
	int ring;
	void *rings, *sqes;
	size_t rings_size, sqes_size;
	struct io_uring_params params;
	int scratch;
};

static int direct_fd = -2;	/* O_DIRECT scratch file for short-term pins; -1: none */
static char direct_why[300];

/* An unnamed O_DIRECT file on a disk-backed filesystem (tmpfs and ramfs have no O_DIRECT). */
static int open_direct_scratch(void)
{
	const char *dirs[] = { getenv("GMEMKIT_ODIRECT_DIR"), getenv("TMPDIR"), "/tmp", "/var/tmp", "." };
	char path[4200];
	struct statfs st;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!dirs[i] || !dirs[i][0] || statfs(dirs[i], &st))
			continue;
		if (st.f_type == 0x01021994 || st.f_type == 0x858458f6 || st.f_type == 0x73717368)
			continue;
		fd = open(dirs[i], O_RDWR | O_DIRECT | O_CLOEXEC | O_TMPFILE, 0600);
		if (fd >= 0)
			return fd;
		snprintf(path, sizeof(path), "%s/.gmemkit-odirect-%d", dirs[i], getpid());
		fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			unlink(path);
			return fd;
		}
	}
	snprintf(direct_why, sizeof(direct_why), "no disk-backed directory with O_DIRECT for short-term pins");
	return -1;
}

static struct outcome pin_short(char *addr, size_t length, bool write)
{
	char *lo = (char *)((uintptr_t)addr & ~(PAGE_SIZE - 1));
	char *hi = (char *)PAGE_CEIL((uintptr_t)(addr + length));
	struct outcome o = { .kind = OUT_OK, .vm_type = -1 };
	ssize_t r;

	if (direct_fd == -2)
		direct_fd = open_direct_scratch();
	if (direct_fd < 0)
		return unsupported("%s", direct_why);
	/* O_DIRECT pwrite from the range pins it (FOLL_PIN); pread back into it adds FOLL_WRITE. */
	r = pwrite(direct_fd, lo, hi - lo, 0);
	if (r >= 0 && write)
		r = r != hi - lo ? (errno = EIO, -1) : pread(direct_fd, lo, hi - lo, 0);
	if (ftruncate(direct_fd, 0))
		r = r < 0 ? r : -1;
	if (r < 0)
		return kernel_result(-1);
	o.pin = calloc(1, sizeof(*o.pin));
	*o.pin = (struct pin){ .longterm = false, .held = true, .addr = addr, .length = length, .ring = -1, .scratch = -1 };
	return o;
}

static void ring_close(struct pin *p)
{
	syscall(__NR_io_uring_register, p->ring, IORING_UNREGISTER_BUFFERS, NULL, 0);
	if (p->sqes)
		munmap(p->sqes, p->sqes_size);
	if (p->rings)
		munmap(p->rings, p->rings_size);
	if (p->scratch >= 0)
		close(p->scratch);
	close(p->ring);
	p->ring = -1;
}

/* IORING_REGISTER_BUFFERS of the range: pin_user_pages(FOLL_WRITE | FOLL_LONGTERM). */
static struct outcome pin_long(char *addr, size_t length)
{
	struct outcome o = { .kind = OUT_OK, .vm_type = -1 };
	struct iovec iov = { .iov_base = addr, .iov_len = length };
	struct pin *p = calloc(1, sizeof(*p));
	struct io_uring_params *q = &p->params;
	int err;

	p->scratch = -1;
	p->ring = syscall(__NR_io_uring_setup, 4, q);
	if (p->ring < 0) {
		err = errno;
		free(p);
		errno = err;
		return kernel_result(-1);
	}
	if (!(q->features & IORING_FEAT_SINGLE_MMAP) || !(q->features & IORING_FEAT_EXT_ARG)) {
		ring_close(p);
		free(p);
		return refuse(EOPNOTSUPP, "io_uring lacks SINGLE_MMAP or EXT_ARG");
	}
	p->rings_size = q->sq_off.array + q->sq_entries * sizeof(__u32);
	if (q->cq_off.cqes + q->cq_entries * sizeof(struct io_uring_cqe) > p->rings_size)
		p->rings_size = q->cq_off.cqes + q->cq_entries * sizeof(struct io_uring_cqe);
	p->sqes_size = q->sq_entries * sizeof(struct io_uring_sqe);
	p->rings = mmap(NULL, p->rings_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->ring, IORING_OFF_SQ_RING);
	p->sqes = mmap(NULL, p->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->ring, IORING_OFF_SQES);
	p->scratch = memfd_create("pin-scratch", MFD_CLOEXEC);
	if (p->rings == MAP_FAILED || p->sqes == MAP_FAILED || p->scratch < 0) {
		err = errno;
		if (p->rings == MAP_FAILED)
			p->rings = NULL;
		if (p->sqes == MAP_FAILED)
			p->sqes = NULL;
		ring_close(p);
		free(p);
		errno = err;
		return kernel_result(-1);
	}
	if (syscall(__NR_io_uring_register, p->ring, IORING_REGISTER_BUFFERS, &iov, 1) < 0) {
		err = errno;
		ring_close(p);
		free(p);
		errno = err;
		return kernel_result(-1);
	}
	p->longterm = true;
	p->held = true;
	p->addr = addr;
	p->length = length;
	o.pin = p;
	return o;
}

/* One READ_FIXED or WRITE_FIXED between registered buffer 0 and the scratch memfd, waited for (5 s at most). */
static long ring_io(struct pin *p, int opcode, char *addr, size_t len)
{
	struct __kernel_timespec ts = { .tv_sec = 5 };
	struct io_uring_getevents_arg arg = { .ts = (__u64)(uintptr_t)&ts };
	char *r = p->rings;
	unsigned int tail = *(unsigned int *)(r + p->params.sq_off.tail);
	unsigned int idx = tail & *(unsigned int *)(r + p->params.sq_off.ring_mask);
	struct io_uring_sqe *sqe = (struct io_uring_sqe *)p->sqes + idx;
	unsigned int head;
	struct io_uring_cqe *cqe;
	int tries;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode;
	sqe->fd = p->scratch;
	sqe->addr = (uintptr_t)addr;
	sqe->len = len;
	sqe->user_data = 1;
	((unsigned int *)(r + p->params.sq_off.array))[idx] = idx;
	__atomic_store_n((unsigned int *)(r + p->params.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	syscall(__NR_io_uring_enter, p->ring, 1, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
	head = *(unsigned int *)(r + p->params.cq_off.head);
	for (tries = 0; head == __atomic_load_n((unsigned int *)(r + p->params.cq_off.tail), __ATOMIC_ACQUIRE); tries++) {
		if (tries == 3)
			return -ETIME;
		syscall(__NR_io_uring_enter, p->ring, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
	}
	cqe = (struct io_uring_cqe *)(r + p->params.cq_off.cqes) + (head & *(unsigned int *)(r + p->params.cq_off.ring_mask));
	__atomic_store_n((unsigned int *)(r + p->params.cq_off.head), head + 1, __ATOMIC_RELEASE);
	return cqe->res;
}

/* GUP of user memory inside the scenario's mappings. */
static __maybe_unused struct outcome pin_user_pages(struct handle *map, __u64 offset, __u64 length, bool longterm, bool write)
{
	struct outcome o;
	char *p;

	if (!user_range(&o, map, offset, length, &p))
		return o;
	return longterm ? pin_long(p, length) : pin_short(p, length, write);
}

static __maybe_unused struct outcome unpin_user_pages(struct handle *pin)
{
	struct outcome o;

	if (!need(&o, pin))
		return o;
	if (!pin->pin->held)
		return refuse(EINVAL, "the pin is not held");
	pin->pin->held = false;
	if (!pin->pin->longterm)
		return kernel_result(0);
	if (syscall(__NR_io_uring_register, pin->pin->ring, IORING_UNREGISTER_BUFFERS, NULL, 0) < 0) {
		o = kernel_result(-1);
		ring_close(pin->pin);
		return o;
	}
	ring_close(pin->pin);
	return kernel_result(0);
}

/* What a device reads (data == NULL) or writes through the pin: WRITE_FIXED / READ_FIXED. */
static struct outcome pin_access(struct pin *p, __u64 offset, size_t length, const char *data)
{
	unsigned char *buf;
	long r;

	if (!p->held)
		return refuse(EINVAL, "the pin is not held");
	if (offset + length > p->length)
		return refuse(EINVAL, "outside the pin");
	if (!p->longterm)
		return unsupported("short-term pin: the O_DIRECT I/O pinned and released the pages within its step; nothing is held across steps, so no device access through it is possible");
	if (!length)
		return with_data(NULL, 0);
	if (data) {
		if (pwrite(p->scratch, data, length, 0) != (ssize_t)length)
			return kernel_result(-1);
		r = ring_io(p, IORING_OP_READ_FIXED, p->addr + offset, length);
		if (r < 0)
			return refuse(-r, "io_uring READ_FIXED failed");
		if ((size_t)r != length)
			return unsupported("READ_FIXED moved %ld of %zu bytes", r, length);
		buf = malloc(length);
		memcpy(buf, data, length);
		return with_data(buf, length);
	}
	r = ring_io(p, IORING_OP_WRITE_FIXED, p->addr + offset, length);
	if (r < 0)
		return refuse(-r, "io_uring WRITE_FIXED failed");
	buf = malloc(length);
	if (pread(p->scratch, buf, length, 0) != (ssize_t)length || (size_t)r != length) {
		free(buf);
		return unsupported("WRITE_FIXED moved %ld of %zu bytes", r, length);
	}
	return with_data(buf, length);
}

static __maybe_unused struct outcome pin_read(struct handle *pin, __u64 offset, size_t length)
{
	struct outcome o;

	if (!need(&o, pin))
		return o;
	return pin_access(pin->pin, offset, length, NULL);
}

static __maybe_unused struct outcome pin_write(struct handle *pin, __u64 offset, const char *data, size_t length)
{
	struct outcome o;

	if (!need(&o, pin))
		return o;
	return pin_access(pin->pin, offset, length, data);
}`;

/** The userspace half's pin holders that are plain kernel pins here: io_uring buffers, VFIO DMA maps (pinned the same way). */
export const HOLDERS = String.raw`/* A holder's own teardown (unregister, DMA unmap): releasing twice is EINVAL. */
static __maybe_unused struct outcome release_holder(struct handle *h)
{
	struct outcome o;

	if (!need(&o, h))
		return o;
	if (!h->pin->held)
		return refuse(EINVAL, "%s was already released", h->name);
	return unpin_user_pages(h);
}

/* The device's access through a holder's pin (a DMA mapping or a fixed buffer). */
static __maybe_unused struct outcome holder_dma(struct handle *h, __u64 offset, size_t length, const char *data)
{
	struct outcome o;

	if (!need(&o, h))
		return o;
	if (!h->pin->held)
		return refuse(EFAULT, "%s holds no pin", h->name);
	return pin_access(h->pin, offset, length, data);
}`;

export const PIPES = String.raw`#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif

/* pipe2(O_NONBLOCK) + vmsplice of the range; the write end is closed, the read end kept. */
static __maybe_unused struct outcome splice_pages(struct handle *map, __u64 offset, size_t length)
{
	struct outcome o;
	struct iovec iov;
	size_t pages;
	int fds[2];
	ssize_t r;
	char *p;

	if (!user_range(&o, map, offset, length, &p))
		return o;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC))
		return kernel_result(-1);
	pages = ((uintptr_t)p % PAGE_SIZE + length + PAGE_SIZE - 1) / PAGE_SIZE;
	if (pages > 16)
		fcntl(fds[1], F_SETPIPE_SZ, (int)(pages * PAGE_SIZE));
	iov = (struct iovec){ .iov_base = p, .iov_len = length };
	r = vmsplice(fds[1], &iov, 1, SPLICE_F_NONBLOCK);
	close(fds[1]);
	if (r < 0) {
		o = kernel_result(-1);
		close(fds[0]);
		return o;
	}
	o = kernel_result(fds[0]);
	o.is_pipe = true;
	return o;
}`;

/** O_DIRECT I/O of the userspace half: on Linux the GUP of one I/O, pinned and released within the step. */
export const ODIRECT = String.raw`static __maybe_unused struct outcome odirect(struct handle *map, __u64 offset, size_t length, size_t data_len)
{
	struct outcome o;

	if (!need(&o, map))
		return o;
	if (data_len > length)
		return refuse(EINVAL, "data (%zu bytes) is longer than the I/O (%zu)", data_len, length);
	return pin_user_pages(map, offset, length, false, true);
}

/* The device completing an O_DIRECT I/O: only a pin held across steps could show it. */
static __maybe_unused struct outcome io_complete(struct handle *io)
{
	struct outcome o;

	if (!need(&o, io))
		return o;
	return pin_access(io->pin, 0, io->pin->length, NULL);
}`;
