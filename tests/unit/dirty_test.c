/*
 * dirty_test.c - the VM's one dirty tracker (dirty.h) on this machine's
 * /dev/kvm: a tiny real-mode guest writes three pages and halts; a fetch
 * names exactly those pages, a second fetch is empty, the VMM's own writes
 * (which KVM does not log) are in the same fetch through gm_track_*, and a
 * migration's fetches do not take the pages a diff snapshot's consumer
 * waits for. Skipped (exit 77) without a usable /dev/kvm.
 */
#include "vmm/memory.h"
#include "vmm/dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define CODE_GPA 0x1000

static int sys_fd = -1, vm_fd = -1, vcpu_fd = -1;
static struct kvm_run *run;
static struct guest_mem gm;

static bool bit(const uint64_t *bm, uint64_t page)
{
	return bm[page / 64] >> (page % 64) & 1;
}

static uint64_t count(const uint64_t *bm, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

/*
 * Pages the guest wrote: all but page 1, the code page, which run_writes
 * writes through gm_write (the VMM's own write: in the fetches too, via
 * gm_track, for two fetches in a row).
 */
static uint64_t guest_count(const uint64_t *bm, uint64_t words)
{
	return count(bm, words) - bit(bm, CODE_GPA >> 12);
}

static int setup(void)
{
	struct kvm_userspace_memory_region r;
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 2, .rip = CODE_GPA };
	struct yun_err err;
	int run_size;

	sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (sys_fd < 0)
		return -1;
	vm_fd = ioctl(sys_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0 || gm_init(&gm, 16ULL << 20, &err) < 0)
		return -1;
	/* As kvm_map_memory: slot i = region i. */
	r = (struct kvm_userspace_memory_region){ .slot = 0, .guest_phys_addr = 0,
		.memory_size = gm.region[0].size, .userspace_addr = (uintptr_t)gm.region[0].host };
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -1;
	vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	run_size = ioctl(sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu_fd < 0 || run_size <= 0)
		return -1;
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED || ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -1;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -1;
	return 0;
}

/* Real mode at CODE_GPA: mov byte [a], 1 for each address, then hlt. */
static int run_writes(const uint16_t *addr, int n)
{
	struct kvm_regs regs = { .rflags = 2, .rip = CODE_GPA };
	uint8_t code[64], *p = code;

	for (int i = 0; i < n; i++) {
		*p++ = 0xc6;
		*p++ = 0x06;
		*p++ = (uint8_t)addr[i];
		*p++ = (uint8_t)(addr[i] >> 8);
		*p++ = 0x01;
	}
	*p++ = 0xf4;
	if (gm_write(&gm, CODE_GPA, code, (uint64_t)(p - code)) < 0 ||
	    ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -1;
	if (ioctl(vcpu_fd, KVM_RUN, 0) < 0)
		return -errno;
	if (run->exit_reason != KVM_EXIT_HLT) {
		fprintf(stderr, "guest exit reason %u\n", run->exit_reason);
		return -1;
	}
	return 0;
}

static void test_vcpu_writes_are_logged(void)
{
	const uint16_t first[] = { 0x2000, 0x5000, 0x9ffc };
	const uint16_t second[] = { 0x7000 };
	uint64_t words = (gm.region[0].size >> 12) / 64;
	uint64_t *bm = calloc(words, 8);
	struct dirty d;
	struct yun_err err;
	int rc;

	CHECK_EQ(dirty_init(&d, vm_fd, &gm, false, &err), 0);
	CHECK_EQ(dirty_start(&d, DIRTY_MIGRATE, &err), 0);
	rc = run_writes(first, 3);
	CHECK_EQ(rc, 0);
	CHECK_EQ(dirty_fetch(&d, DIRTY_MIGRATE, 0, bm, &err), 0);
	fprintf(stderr, "dirty pages after the first run: %llu:",
		(unsigned long long)count(bm, words));
	for (uint64_t i = 0; i < words * 64; i++)
		if (bit(bm, i))
			fprintf(stderr, " %llu", (unsigned long long)i);
	fprintf(stderr, "\n");
	CHECK(bit(bm, 2) && bit(bm, 5) && bit(bm, 9));
	CHECK(!bit(bm, 7));
	/* Exactly the written pages, and the code page the VMM wrote. */
	CHECK(bit(bm, CODE_GPA >> 12));
	CHECK_EQ(guest_count(bm, words), 3);

	memset(bm, 0, words * 8);
	CHECK_EQ(dirty_fetch(&d, DIRTY_MIGRATE, 0, bm, &err), 0);
	CHECK_EQ(guest_count(bm, words), 0);

	/* Logging re-arms: a page written again after a fetch is logged again. */
	rc = run_writes(first, 1);
	CHECK_EQ(rc, 0);
	rc = run_writes(second, 1);
	CHECK_EQ(rc, 0);
	CHECK_EQ(dirty_fetch(&d, DIRTY_MIGRATE, 0, bm, &err), 0);
	CHECK(bit(bm, 2) && bit(bm, 7));
	CHECK_EQ(guest_count(bm, words), 2);

	/* The VMM's own writes (gm_track) are in the same fetch. */
	memset(bm, 0, words * 8);
	CHECK_EQ(gm_write(&gm, 0x30000, "x", 1), 0);
	CHECK_EQ(dirty_fetch(&d, DIRTY_MIGRATE, 0, bm, &err), 0);
	CHECK(bit(bm, 0x30));

	/*
	 * Two consumers: a snapshot's tracking started while a migration's
	 * runs. A migration round's fetch must not take the snapshot's pages.
	 */
	CHECK_EQ(dirty_start(&d, DIRTY_SNAPSHOT, &err), 0);
	rc = run_writes(second, 1);
	CHECK_EQ(rc, 0);
	memset(bm, 0, words * 8);
	CHECK_EQ(dirty_fetch(&d, DIRTY_MIGRATE, 0, bm, &err), 0);
	CHECK(bit(bm, 7));
	CHECK_EQ(dirty_collect(&d, DIRTY_SNAPSHOT, -1, &err), 0);
	CHECK(dirty_test(&d, DIRTY_SNAPSHOT, 0, 7));
	CHECK(!dirty_test(&d, DIRTY_SNAPSHOT, 0, 5));
	dirty_clear(&d, DIRTY_SNAPSHOT);
	CHECK(!dirty_test(&d, DIRTY_SNAPSHOT, 0, 7));

	/* The migration ends; the snapshot's consumer still logs. */
	dirty_stop(&d, DIRTY_MIGRATE);
	CHECK(dirty_fetch(&d, DIRTY_MIGRATE, 0, bm, &err) < 0);
	rc = run_writes(first, 1);
	CHECK_EQ(rc, 0);
	CHECK_EQ(dirty_collect(&d, DIRTY_SNAPSHOT, -1, &err), 0);
	CHECK(dirty_test(&d, DIRTY_SNAPSHOT, 0, 2));

	dirty_stop(&d, DIRTY_SNAPSHOT);
	CHECK(dirty_collect(&d, DIRTY_SNAPSHOT, -1, &err) < 0);
	/* Off again: the guest still runs and writes. */
	rc = run_writes(second, 1);
	CHECK_EQ(rc, 0);
	dirty_free(&d);
	free(bm);
}

int main(void)
{
	if (setup() < 0) {
		fprintf(stderr, "skip: no usable /dev/kvm (%s)\n", strerror(errno));
		return 77;
	}
	RUN(test_vcpu_writes_are_logged);
	gm_free(&gm);
	return CHECK_DONE();
}
