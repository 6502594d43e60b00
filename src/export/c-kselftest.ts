// The kselftest flavour of an exported scenario: steps as STEP()/STEP_AS() over the harness's
// ASSERT_TRUE and TH_LOG (tools/testing/selftests/kselftest_harness.h), a step the kernel cannot
// do logged and the test skipped at its end (SKIP) when the kernel lacks what it needs.
export const KSELFTEST = String.raw`static void catch_faults(void);

/* /dev/kvm with guest_memfd for one test, or why not. */
static const char *kvm_unusable(void)
{
	if (kvm_fd < 0)
		kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		return "cannot open /dev/kvm read-write";
	if (kvm_cap(KVM_CAP_GUEST_MEMFD, -1) != 1)
		return "KVM_CAP_GUEST_MEMFD is not 1 on this kernel";
	catch_faults();
	return NULL;
}

#define start_test(_metadata) do {						\
	const char *unusable_ = kvm_unusable();					\
	if (unusable_)								\
		SKIP(return, "%s", unusable_);					\
} while (0)

/* Keep what step n made as handle h for later steps. */
static __maybe_unused void keep(struct handle *h, int n, const struct outcome *o)
{
	h->step = n;
	if (o->kind == OUT_OK) {
		h->made = true;
		h->fd = o->fd;
		h->is_pipe = o->is_pipe;
		h->vm_type = o->vm_type;
		h->addr = o->addr;
		h->length = o->length;
		h->pin = o->pin;
	} else if (o->kind == OUT_UNSUPPORTED) {
		snprintf(h->unsupported, sizeof(h->unsupported), "%.300s", o->cause ? o->cause : o->why);
	}
}

/* Step n: a step this kernel cannot do is logged; any other difference fails the test. */
#define STEP(n, title, call, x) do {						\
	struct outcome o_ = (call);						\
	struct expect x_ = (x);							\
	char why_[600];								\
	const char *bad_ = NULL;						\
	if (o_.kind == OUT_UNSUPPORTED)						\
		TH_LOG("step %d %s: skipped: %s", n, title, o_.why);		\
	else									\
		bad_ = o_.kind == OUT_NOT_RUN ? o_.why : mismatch(&o_, &x_, why_, sizeof(why_)); \
	free(o_.data);								\
	ASSERT_TRUE(bad_ == NULL) TH_LOG("step %d %s: %s", n, title, bad_);	\
} while (0)

#define STEP_AS(h, n, title, call, x) do {					\
	struct outcome p_ = (call);						\
	keep(h, n, &p_);							\
	STEP(n, title, p_, x);							\
} while (0)`;
