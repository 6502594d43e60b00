// C support code for the kernel ops of an exported scenario, one function per op, each doing
// what the linux backend (src/linux/linux-backend.ts) and its capability gate
// (src/backend/capability-gate.ts) do: the real system call, or "unsupported" where the gate
// says the kernel lacks what the scenario's machine and profile offer. Plain C text; the
// emitter table (c-ops.ts) names the function each op needs.

/** The profile's and machine's decisions the capability gate consults. */
export const ABI = String.raw`/* The ABI a scenario's expectations are written for (a gmemkit profile). */
struct abi {
	const char *name;
	bool vm_attributes;		/* private memory tracked per VM (KVM_SET_MEMORY_ATTRIBUTES) */
	const char *conversion_ioctl;	/* the conversion ioctl on the guest_memfd, or NULL */
	long conversion_cap;		/* the capability advertising it (0: none known) */
	bool init_shared_for_private_vms;
};

static const struct abi *abi;

static __maybe_unused const char *vm_type_name(unsigned long type)
{
	static const char *const names[] = { "default", "sw_protected", "sev", "sev_es", "snp", "tdx" };

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : NULL;
}

static __maybe_unused bool vm_type_has_private_mem(int type)
{
	return type == KVM_X86_SW_PROTECTED_VM || type == KVM_X86_SNP_VM || type == KVM_X86_TDX_VM;
}`;

/** A largest buffer a read-like call allocates (as the linux backend). */
export const READ_LIMIT = String.raw`#define MAX_READ (16UL << 20)`;

export const KVM_HELPERS: Readonly<Record<string, string>> = {
  create_vm: String.raw`static struct outcome create_vm(unsigned long type)
{
	struct outcome o;
	__u64 types;

	if (type < 64 && (machine_vm_types & (1ULL << type))) {
		types = kvm_cap(KVM_CAP_VM_TYPES, -1);
		if (!(types & (1ULL << type)))
			return lacks("VM type %s is not offered by this kernel (KVM_CAP_VM_TYPES = %llu)",
				     vm_type_name(type), (unsigned long long)types);
	}
	o = kernel_result(ioctl(kvm_fd, KVM_CREATE_VM, type));
	o.vm_type = vm_type_name(type) ? (int)type : 99;	/* a VM of a type this program has no name for */
	return o;
}`,
  check_extension: String.raw`static struct outcome check_extension(long cap, struct handle *vm)
{
	struct outcome o;
	int r;

	if (!need(&o, vm))
		return o;
	r = ioctl(vm ? vm->fd : kvm_fd, KVM_CHECK_EXTENSION, cap);
	o = kernel_result(r);
	o.has_value = r >= 0;
	o.value = r;
	return o;
}`,
  create_guest_memfd: String.raw`static struct outcome create_guest_memfd(struct handle *vm, __u64 size, __u64 flags)
{
	struct kvm_create_guest_memfd args = { .size = size, .flags = flags };
	__u64 offered, missing;
	struct outcome o;

	if (!need(&o, vm))
		return o;
	offered = kvm_cap(KVM_CAP_GUEST_MEMFD_FLAGS, vm->fd);
	missing = flags & (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED) & ~offered;
	if (missing && (vm->vm_type < 0 || !vm_type_has_private_mem(vm->vm_type) ||
			abi->init_shared_for_private_vms || !(missing & GUEST_MEMFD_FLAG_INIT_SHARED)))
		return lacks("guest_memfd flag(s) 0x%llx not offered by this kernel (KVM_CAP_GUEST_MEMFD_FLAGS = %llu)",
			     (unsigned long long)missing, (unsigned long long)offered);
	return kernel_result(ioctl(vm->fd, KVM_CREATE_GUEST_MEMFD, &args));
}`,
  close: String.raw`static struct outcome close_fd(struct handle *h)
{
	struct outcome o;

	if (!need(&o, h))
		return o;
	if (release_vm && h->vm_type >= 0)
		release_vm(h);
	return kernel_result(close(h->fd));
}`,
  mmap: String.raw`static struct outcome map_memory(struct handle *file, __u64 offset, __u64 length, int prot, int flags)
{
	struct outcome o = { .vm_type = -1 };
	char *p;

	if (flags & MAP_FIXED)
		return unsupported("MAP_FIXED could replace memory this program uses");
	if (!(flags & MAP_ANONYMOUS) && !need(&o, file))
		return o;
	p = mmap(NULL, length, prot, flags, flags & MAP_ANONYMOUS ? -1 : file->fd, offset);
	if (p == MAP_FAILED)
		return kernel_result(-1);
	maps_add(p, p + PAGE_CEIL(length), prot);
	o.kind = OUT_OK;
	o.addr = p;
	o.length = PAGE_CEIL(length);
	return o;
}`,
  munmap: String.raw`/* munmap of the parts of the range the scenario mapped; the rest is not the scenario's memory. */
static struct outcome unmap(struct handle *map, __u64 offset, __u64 length)
{
	char *p, *end;
	struct outcome o;
	int i;

	if (!need(&o, map))
		return o;
	p = map->addr + offset;
	if ((uintptr_t)p % PAGE_SIZE || !length)
		return kernel_result(munmap(p, length));
	end = p + PAGE_CEIL(length);
	for (i = 0; i < nr_maps; i++) {
		char *lo = maps[i].start > p ? maps[i].start : p;
		char *hi = maps[i].end < end ? maps[i].end : end;

		if (lo >= hi)
			continue;
		if (munmap(lo, hi - lo))
			return kernel_result(-1);
		maps_remove(lo, hi);
		i = -1;
	}
	return kernel_result(0);
}`,
  madvise: String.raw`static struct outcome advise(struct handle *map, __u64 offset, __u64 length, int advice)
{
	struct outcome o;
	char *p;

	if (!need(&o, map))
		return o;
	p = map->addr + offset;
	if ((uintptr_t)p % PAGE_SIZE == 0 && length && !maps_cover(p, p + length))
		return refuse(ENOMEM, "range is not fully inside the scenario's mappings");
	return kernel_result(madvise(p, length, advice));
}`,
  fallocate: String.raw`static struct outcome falloc(struct handle *file, int mode, __s64 offset, __s64 length)
{
	struct outcome o;

	if (!need(&o, file))
		return o;
	return kernel_result(fallocate(file->fd, mode, offset, length));
}`,
  ftruncate: String.raw`static struct outcome truncate_fd(struct handle *file, __s64 length)
{
	struct outcome o;

	if (!need(&o, file))
		return o;
	return kernel_result(ftruncate(file->fd, length));
}`,
  fd_read: String.raw`/* read(2); on a pipe without a length, whatever it holds (FIONREAD), without blocking. */
static struct outcome fd_read(struct handle *file, long long length)
{
	unsigned char *buf;
	struct outcome o;
	size_t n = length < 0 ? PAGE_SIZE : (size_t)length;
	int avail = 0;
	ssize_t r;

	if (!need(&o, file))
		return o;
	if (file->is_pipe && length < 0) {
		if (ioctl(file->fd, FIONREAD, &avail) < 0)
			avail = 0;
		if (!avail)
			return with_data(NULL, 0);
		n = avail;
	}
	buf = malloc(n < MAX_READ ? (n ? n : 1) : MAX_READ);
	r = read(file->fd, buf, n < MAX_READ ? n : MAX_READ);
	if (r < 0) {
		free(buf);
		if (file->is_pipe && errno == EAGAIN)
			return with_data(NULL, 0);
		return kernel_result(-1);
	}
	return with_data(buf, r);
}`,
  fd_write: String.raw`static struct outcome fd_write(struct handle *file, const char *data, size_t n)
{
	struct outcome o;

	if (!need(&o, file))
		return o;
	o = kernel_result(write(file->fd, data, n));
	o.fd = -1;
	return o;
}`,
  pread: String.raw`static struct outcome pread_fd(struct handle *file, __u64 length, __s64 offset)
{
	size_t n = length < MAX_READ ? length : MAX_READ;
	unsigned char *buf;
	struct outcome o;
	ssize_t r;

	if (!need(&o, file))
		return o;
	buf = malloc(n ? n : 1);
	r = pread(file->fd, buf, n, offset);
	if (r < 0) {
		free(buf);
		return kernel_result(-1);
	}
	return with_data(buf, r);
}`,
  pwrite: String.raw`static struct outcome pwrite_fd(struct handle *file, const char *data, size_t n, __s64 offset)
{
	struct outcome o;

	if (!need(&o, file))
		return o;
	o = kernel_result(pwrite(file->fd, data, n, offset));
	o.fd = -1;
	return o;
}`,
  lseek: String.raw`static struct outcome seek(struct handle *file, __s64 offset, int whence)
{
	struct outcome o;
	off_t r;

	if (!need(&o, file))
		return o;
	r = lseek(file->fd, offset, whence);
	o = kernel_result(r < 0 ? -1 : 0);
	o.has_value = r >= 0;
	o.value = r;
	return o;
}`,
  set_user_memory_region2: String.raw`static struct outcome set_user_memory_region2(struct handle *vm, __u32 slot, __u32 flags, __u64 gpa, __u64 size,
						struct handle *uaddr, struct handle *gmem, __u64 gmem_offset)
{
	struct kvm_userspace_memory_region2 region = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size,
		.guest_memfd_offset = gmem_offset, .guest_memfd = (__u32)-1,
	};
	const char *foreign;
	struct outcome o;

	if (!need(&o, uaddr) || !need(&o, vm) || !need(&o, gmem))
		return o;
	region.userspace_addr = uaddr ? (uintptr_t)uaddr->addr : 0;
	if (gmem)
		region.guest_memfd = gmem->fd;
	foreign = foreign_userspace_addr(region.userspace_addr, size);
	if (foreign)
		return unsupported("%s", foreign);
	return kernel_result(ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION2, &region));
}`,
  set_memory_attributes: String.raw`static struct outcome set_memory_attributes(struct handle *vm, __u64 address, __u64 size, __u64 attributes, __u64 flags)
{
	struct kvm_memory_attributes args = { .address = address, .size = size, .attributes = attributes, .flags = flags };
	struct outcome o;

	if (!need(&o, vm))
		return o;
	if (machine_has_memory_attributes && abi->vm_attributes && !kvm_cap(KVM_CAP_MEMORY_ATTRIBUTES, -1))
		return lacks("this kernel has no KVM_SET_MEMORY_ATTRIBUTES (KVM_CAP_MEMORY_ATTRIBUTES = 0)");
	return kernel_result(ioctl(vm->fd, KVM_SET_MEMORY_ATTRIBUTES, &args));
}`,
  set_memory_attributes2: String.raw`/* The in-place conversion on the guest_memfd; error_offset comes back on EAGAIN and ENOMEM. */
static struct outcome set_memory_attributes2(struct handle *gmem, __u64 offset, __u64 size, __u64 attributes,
					     __u64 flags, __u64 reserved0)
{
	struct kvm_memory_attributes2 args = {
		.offset = offset, .size = size, .attributes = attributes, .flags = flags, .reserved = { reserved0 },
	};
	struct outcome o;

	if (!need(&o, gmem))
		return o;
	if (abi->conversion_ioctl && (!abi->conversion_cap ||
				      !(kvm_cap(abi->conversion_cap, -1) & KVM_MEMORY_ATTRIBUTE_PRIVATE)))
		return lacks("this kernel has no guest_memfd conversion ioctl (%s)", abi->conversion_ioctl);
	o = kernel_result(ioctl(gmem->fd, KVM_SET_MEMORY_ATTRIBUTES2, &args));
	if (o.kind == OUT_ERRNO && (o.err == EAGAIN || o.err == ENOMEM)) {
		o.has_error_offset = true;
		o.error_offset = args.error_offset;
	}
	return o;
}`,
};
