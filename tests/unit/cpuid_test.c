/*
 * cpuid_test.c - the CPUID a guest sees: what it computes from it (its APIC
 * id, how many CPUs share its package, which core it is) must match Yun's
 * topology of one socket, one core per vCPU, APIC id = vCPU index.
 */
#include "vmm/cpuid.h"

#include <stdlib.h>

#include "check.h"

#define SIG_IDX KVM_CPUID_FLAG_SIGNIFCANT_INDEX

/* Host-like values the rewritten fields must replace or keep. */
#define HOST_1_EBX  0x12340800U  /* APIC id 0x12, 0x34 logical CPUs, CLFLUSH 8 */
#define HOST_1_ECX  0x7ffafbffU  /* hypervisor bit clear */
#define HOST_1_EDX  0xbfebfbffU  /* HTT set */
#define HOST_AMD_ECX 0x0003700fU /* NC 15, ApicIdCoreIdSize 7, PerfTscSize 3 */

/* A KVM_GET_SUPPORTED_CPUID-like list; caller frees. */
static struct kvm_cpuid2 *fake_supported(unsigned max_basic, int with_hv_leaf, int with_0x1f)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 32 * sizeof(c->entries[0]));
	unsigned n = 0;

#define ADD(fn, idx, fl, a, b, cc, d)                                                        \
	c->entries[n++] = (struct kvm_cpuid_entry2){ .function = (fn), .index = (idx),    \
						     .flags = (fl), .eax = (a), .ebx = (b), \
						     .ecx = (cc), .edx = (d) }
	/* "GenuineIntel" */
	ADD(0, 0, 0, max_basic, 0x756e6547, 0x6c65746e, 0x49656e69);
	ADD(1, 0, 0, 0x000906ea, HOST_1_EBX, HOST_1_ECX, HOST_1_EDX);
	/* Leaf 4: L1d, L1i, L2, L3 as a 6-core host reports them, then the null entry. */
	ADD(4, 0, SIG_IDX, 0x1c004121, 0x01c0003f, 0x3f, 0);
	ADD(4, 1, SIG_IDX, 0x1c004122, 0x01c0003f, 0x3f, 0);
	ADD(4, 2, SIG_IDX, 0x1c004143, 0x00c0003f, 0x3ff, 0);
	ADD(4, 3, SIG_IDX, 0x1c03c163, 0x02c0003f, 0x2fff, 6);
	ADD(4, 4, SIG_IDX, 0, 0, 0, 0);
	ADD(7, 0, SIG_IDX, 0, 0x029c6fbf, 0, 0);
	/* Host topology: 2 threads per core, 12 logical CPUs, host APIC id 5. */
	ADD(0xB, 0, SIG_IDX, 1, 2, 0x100, 5);
	ADD(0xB, 1, SIG_IDX, 4, 12, 0x201, 5);
	ADD(0xB, 2, SIG_IDX, 0, 0, 2, 5);
	ADD(0xD, 0, SIG_IDX, 0x7, 0x340, 0x340, 0);
	if (with_0x1f) {
		ADD(0x1F, 0, SIG_IDX, 1, 2, 0x100, 5);
		ADD(0x1F, 1, SIG_IDX, 4, 12, 0x201, 5);
		ADD(0x1F, 2, SIG_IDX, 0, 0, 2, 5);
	}
	if (with_hv_leaf) {
		ADD(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
		ADD(0x40000001, 0, 0, 0x01007afb, 0, 0, 0);
	}
	ADD(0x80000000, 0, 0, 0x8000001E, 0, 0, 0);
	ADD(0x80000008, 0, 0, 0x00003027, 0, HOST_AMD_ECX, 0);
	ADD(0x8000001E, 0, 0, 0x0b, 0x0105, 0x0300, 0);
#undef ADD
	c->nent = n;
	return c;
}

static unsigned count_function(const struct kvm_cpuid2 *c, unsigned function)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->nent; i++)
		n += c->entries[i].function == function;
	return n;
}

/* What a guest does with leaf 0xB/0x1F: its shifts, package and core ids. */
struct guest_topology {
	int ok;
	unsigned smt_shift, core_shift, threads_per_core, logical_per_pkg, x2apic_id, pkg_id,
		core_id, end_edx;
};

static struct guest_topology walk_topology(struct kvm_cpuid2 *c, unsigned function)
{
	struct guest_topology t = { 0 };
	struct kvm_cpuid_entry2 *smt = cpuid_find(c, function, 0);
	struct kvm_cpuid_entry2 *core = cpuid_find(c, function, 1);
	struct kvm_cpuid_entry2 *end = cpuid_find(c, function, 2);

	if (!smt || !core || !end)
		return t;
	/* Levels are valid while EBX[15:0] != 0; the level type is ECX[15:8]. */
	t.ok = (smt->ebx & 0xFFFF) && ((smt->ecx >> 8) & 0xFF) == 1 && (smt->ecx & 0xFF) == 0 &&
	       (core->ebx & 0xFFFF) && ((core->ecx >> 8) & 0xFF) == 2 && (core->ecx & 0xFF) == 1 &&
	       (end->ebx & 0xFFFF) == 0 && ((end->ecx >> 8) & 0xFF) == 0 &&
	       (end->ecx & 0xFF) == 2;
	t.smt_shift = smt->eax & 0x1F;
	t.core_shift = core->eax & 0x1F;
	t.threads_per_core = smt->ebx & 0xFFFF;
	t.logical_per_pkg = core->ebx & 0xFFFF;
	t.end_edx = end->edx;
	t.x2apic_id = core->edx;
	t.pkg_id = core->edx >> t.core_shift;
	t.core_id = (core->edx & ((1U << t.core_shift) - 1)) >> t.smt_shift;
	/* Every subleaf reports the same x2APIC id. */
	if (smt->edx != core->edx || end->edx != core->edx)
		t.ok = 0;
	return t;
}

static unsigned ceil_log2(unsigned n)
{
	unsigned s = 0;

	while ((1U << s) < n)
		s++;
	return s;
}

static void check_vcpu_set(const struct kvm_cpuid2 *sup, unsigned nr, int expect_0x1f)
{
	unsigned seen_cores = 0;

	for (unsigned id = 0; id < nr; id++) {
		struct kvm_cpuid2 *c = cpuid_for_vcpu(sup, id, nr);
		struct kvm_cpuid_entry2 *e;
		struct guest_topology t;

		CHECK(c != NULL);
		if (!c)
			return;

		/* Leaf 0: max basic leaf reaches the topology leaf. */
		e = cpuid_find(c, 0, 0);
		CHECK(e && e->eax >= 0xB);

		/* Leaf 1: APIC id, logical count, HTT, hypervisor present. */
		e = cpuid_find(c, 1, 0);
		CHECK(e != NULL);
		if (e) {
			CHECK_EQ(e->ebx >> 24, id);
			CHECK_EQ((e->ebx >> 16) & 0xFF, nr);
			CHECK_EQ(e->ebx & 0xFFFF, HOST_1_EBX & 0xFFFF); /* CLFLUSH size kept */
			CHECK_EQ(!!(e->edx & (1U << 28)), nr > 1);
			CHECK(e->ecx & (1U << 31));
			CHECK_EQ(e->eax, 0x000906ea);
		}

		/* Leaf 0xB: SMT level of 1 thread, core level of nr, then invalid. */
		CHECK_EQ(count_function(c, 0xB), 3);
		t = walk_topology(c, 0xB);
		CHECK(t.ok);
		CHECK_EQ(t.threads_per_core, 1);
		CHECK_EQ(t.smt_shift, 0);
		CHECK_EQ(t.core_shift, ceil_log2(nr));
		CHECK_EQ(t.logical_per_pkg, nr);
		CHECK_EQ(t.x2apic_id, id);
		CHECK_EQ(t.pkg_id, 0);
		CHECK_EQ(t.core_id, id);
		CHECK_EQ(t.end_edx, id);
		if (t.core_id < 32)
			seen_cores |= 1U << t.core_id;

		/* Leaf 0x1F only where the guest may read it. */
		if (expect_0x1f) {
			struct guest_topology v2 = walk_topology(c, 0x1F);

			CHECK_EQ(count_function(c, 0x1F), 3);
			CHECK(v2.ok);
			CHECK_EQ(v2.core_shift, ceil_log2(nr));
			CHECK_EQ(v2.pkg_id, 0);
			CHECK_EQ(v2.core_id, id);
		} else {
			CHECK_EQ(count_function(c, 0x1F), 0);
		}

		/* Leaf 4: cores per package - 1 in EAX[31:26]; L1/L2 per core, L3 shared. */
		for (unsigned sub = 0; sub < 4; sub++) {
			e = cpuid_find(c, 4, sub);
			CHECK(e != NULL);
			if (!e)
				continue;
			unsigned level = (e->eax >> 5) & 7;

			CHECK_EQ(e->eax >> 26, nr - 1);
			CHECK_EQ((e->eax >> 14) & 0xFFF, level >= 3 ? nr - 1 : 0);
			CHECK_EQ(e->eax & 0x3FFF, sup->entries[2 + sub].eax & 0x3FFF);
			CHECK_EQ(e->ebx, sup->entries[2 + sub].ebx);
		}
		e = cpuid_find(c, 4, 4);
		CHECK(e && e->eax == 0); /* the null entry ends the list */

		/* Hypervisor leaf: exactly one, with KVM's signature. */
		CHECK_EQ(count_function(c, 0x40000000), 1);
		e = cpuid_find(c, 0x40000000, 0);
		CHECK(e != NULL);
		if (e) {
			char sig[13] = { 0 };

			memcpy(sig, &e->ebx, 4);
			memcpy(sig + 4, &e->ecx, 4);
			memcpy(sig + 8, &e->edx, 4);
			CHECK(!strcmp(sig, "KVMKVMKVM"));
			CHECK(e->eax >= 0x40000000);
		}

		/* AMD: NC = nr - 1, ApicIdCoreIdSize fits the ids, other bits kept. */
		e = cpuid_find(c, 0x80000008, 0);
		CHECK(e != NULL);
		if (e) {
			unsigned size = (e->ecx >> 12) & 0xF;

			CHECK_EQ(e->ecx & 0xFF, nr - 1);
			CHECK((1U << size) >= nr);
			CHECK_EQ(e->ecx & ~0xF0FFU, HOST_AMD_ECX & ~0xF0FFU);
			CHECK_EQ(e->eax, 0x00003027);
		}
		e = cpuid_find(c, 0x8000001E, 0);
		CHECK(e != NULL);
		if (e) {
			CHECK_EQ(e->eax, id);                 /* extended APIC id */
			CHECK_EQ(e->ebx & 0xFF, id);          /* core id */
			CHECK_EQ((e->ebx >> 8) & 0xFF, 0);    /* one thread per core */
		}

		/* Untouched leaves stay as KVM listed them. */
		e = cpuid_find(c, 7, 0);
		CHECK(e && e->ebx == 0x029c6fbf);
		e = cpuid_find(c, 0xD, 0);
		CHECK(e && e->eax == 0x7 && e->ebx == 0x340);
		free(c);
	}
	if (nr <= 32)
		CHECK_EQ(seen_cores, nr == 32 ? 0xFFFFFFFFU : (1U << nr) - 1); /* all distinct */
}

static void test_four_vcpus(void)
{
	struct kvm_cpuid2 *sup = fake_supported(0xD, 0, 0);

	check_vcpu_set(sup, 4, 0);
	free(sup);
}

static void test_four_vcpus_with_hypervisor_leaf(void)
{
	struct kvm_cpuid2 *sup = fake_supported(0xD, 1, 0);

	check_vcpu_set(sup, 4, 0);
	/* KVM's own 0x40000001 (features) is kept. */
	struct kvm_cpuid2 *c = cpuid_for_vcpu(sup, 1, 4);

	CHECK(c && cpuid_find(c, 0x40000001, 0) && cpuid_find(c, 0x40000001, 0)->eax == 0x01007afb);
	free(c);
	free(sup);
}

static void test_one_vcpu_has_no_htt(void)
{
	struct kvm_cpuid2 *sup = fake_supported(0xD, 0, 0);

	check_vcpu_set(sup, 1, 0);
	free(sup);
}

static void test_odd_counts(void)
{
	struct kvm_cpuid2 *sup = fake_supported(0xD, 0, 0);

	check_vcpu_set(sup, 3, 0); /* shift 2: ids 0..2 in package 0 */
	check_vcpu_set(sup, 5, 0); /* shift 3 */
	check_vcpu_set(sup, 2, 0);
	free(sup);
}

static void test_max_vcpus(void)
{
	struct kvm_cpuid2 *sup = fake_supported(0xD, 0, 0);

	check_vcpu_set(sup, 64, 0);
	free(sup);
}

static void test_leaf_0x1f_when_listed(void)
{
	struct kvm_cpuid2 *sup = fake_supported(0x1F, 0, 1);

	check_vcpu_set(sup, 4, 1);
	free(sup);
	/* Max leaf >= 0x1F but KVM listed no 0x1F: Yun still describes it. */
	sup = fake_supported(0x20, 1, 0);
	check_vcpu_set(sup, 4, 1);
	free(sup);
}

static void test_low_max_leaf_is_raised(void)
{
	struct kvm_cpuid2 *sup = fake_supported(0x7, 0, 0);
	struct kvm_cpuid2 *c = cpuid_for_vcpu(sup, 0, 2);

	CHECK(c != NULL);
	CHECK(cpuid_find(c, 0, 0) && cpuid_find(c, 0, 0)->eax == 0xB);
	CHECK(walk_topology(c, 0xB).ok);
	CHECK_EQ(count_function(c, 0x1F), 0);
	free(c);
	free(sup);
}

static void test_input_is_not_modified(void)
{
	struct kvm_cpuid2 *sup = fake_supported(0xD, 0, 0);
	size_t size = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *copy = malloc(size);
	struct kvm_cpuid2 *c;

	memcpy(copy, sup, size);
	c = cpuid_for_vcpu(sup, 3, 4);
	CHECK(c != NULL);
	CHECK(!memcmp(copy, sup, size));
	free(c);
	free(copy);
	free(sup);
}

/* A minimal list (no leaf 4, no AMD leaves) must not grow into junk. */
static void test_sparse_input(void)
{
	struct kvm_cpuid2 *sup = calloc(1, sizeof(*sup) + 2 * sizeof(sup->entries[0]));
	struct kvm_cpuid2 *c;

	sup->nent = 2;
	sup->entries[0] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0x1F };
	sup->entries[1] = (struct kvm_cpuid_entry2){ .function = 1, .ebx = 0 };
	c = cpuid_for_vcpu(sup, 2, 4);
	CHECK(c != NULL);
	if (c) {
		CHECK(cpuid_find(c, 1, 0) && cpuid_find(c, 1, 0)->ebx >> 24 == 2);
		CHECK(walk_topology(c, 0xB).ok);
		CHECK(walk_topology(c, 0x1F).ok);
		CHECK(cpuid_find(c, 0x40000000, 0) != NULL);
		CHECK(cpuid_find(c, 0x80000008, 0) == NULL);
		CHECK_EQ(c->nent, 2 + 3 + 3 + 1);
	}
	free(c);
	free(sup);
}

int main(void)
{
	RUN(test_four_vcpus);
	RUN(test_four_vcpus_with_hypervisor_leaf);
	RUN(test_one_vcpu_has_no_htt);
	RUN(test_odd_counts);
	RUN(test_max_vcpus);
	RUN(test_leaf_0x1f_when_listed);
	RUN(test_low_max_leaf_is_raised);
	RUN(test_input_is_not_modified);
	RUN(test_sparse_input);
	return CHECK_DONE();
}
