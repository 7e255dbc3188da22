/* kvm.c - see kvm.h. */
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "snapshot/stream.h"

/* The TSS (3 pages) and EPT identity map page KVM wants, placed in the hole. */
#define KVM_TSS_ADDR      0xFFFBD000ULL
#define KVM_IDENTITY_ADDR 0xFFFBC000ULL

static int kvm_get_cpuid(struct kvm *kvm, struct yun_err *err)
{
	for (int n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return yun_err_set(err, ENOMEM, "kvm: out of memory");
		c->nent = n;
		if (ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			kvm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return yun_err_errno(err, errno, "kvm: KVM_GET_SUPPORTED_CPUID");
	}
	return yun_err_set(err, E2BIG, "kvm: KVM_GET_SUPPORTED_CPUID: too many entries");
}

int kvm_open(struct kvm *kvm, const char *dev, struct yun_err *err)
{
	int version, rc;

	memset(kvm, 0, sizeof(*kvm));
	kvm->vm_fd = -1;
	pthread_mutex_init(&kvm->routing_lock, NULL);
	kvm->sys_fd = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm->sys_fd < 0) {
		if (errno == ENOENT)
			return yun_err_set(err, ENOENT,
					   "%s: no such device (is the kvm module loaded? this host "
					   "needs KVM to run microVMs)", dev);
		if (errno == EACCES || errno == EPERM)
			return yun_err_set(err, errno,
					   "%s: permission denied (run as root or join the group "
					   "owning %s)", dev, dev);
		return yun_err_errno(err, errno, "%s", dev);
	}
	version = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		rc = yun_err_set(err, ENOTSUP, "%s: KVM API version %d, need %d", dev, version,
				 KVM_API_VERSION);
		goto fail;
	}
	if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0 ||
	    ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0 ||
	    ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		rc = yun_err_set(err, ENOTSUP,
				 "%s: KVM lacks in-kernel irqchip, user memory or immediate exit",
				 dev);
		goto fail;
	}
	kvm->max_vcpus = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = 4;
	kvm->run_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_size <= 0) {
		rc = yun_err_errno(err, errno, "%s: KVM_GET_VCPU_MMAP_SIZE", dev);
		goto fail;
	}
	rc = kvm_get_cpuid(kvm, err);
	if (rc)
		goto fail;
	do {
		kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
	} while (kvm->vm_fd < 0 && errno == EINTR);
	if (kvm->vm_fd < 0) {
		rc = yun_err_errno(err, errno, "%s: KVM_CREATE_VM", dev);
		goto fail;
	}
	return 0;
fail:
	kvm_close(kvm);
	return rc;
}

/* Hand the whole routing table to KVM. Caller holds routing_lock. */
static int kvm_commit_routing(struct kvm *kvm)
{
	struct kvm_irq_routing *r;
	int rc = 0;

	r = calloc(1, sizeof(*r) + kvm->routing.nr * sizeof(r->entries[0]));
	if (!r)
		return -ENOMEM;
	r->nr = kvm->routing.nr;
	memcpy(r->entries, kvm->routing.e, kvm->routing.nr * sizeof(r->entries[0]));
	if (ioctl(kvm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0)
		rc = -errno;
	free(r);
	return rc;
}

/*
 * GSI routing as PCs wire it and as our MP table / MADT describe it (see
 * irq_routing.c); KVM's default routing would put IRQ0 on pin 0.
 */
static int kvm_set_pc_routing(struct kvm *kvm, struct yun_err *err)
{
	int rc;

	pthread_mutex_lock(&kvm->routing_lock);
	irq_routing_init_pc(&kvm->routing);
	rc = kvm_commit_routing(kvm);
	pthread_mutex_unlock(&kvm->routing_lock);
	if (rc)
		return yun_err_errno(err, -rc, "kvm: KVM_SET_GSI_ROUTING");
	return 0;
}

int kvm_set_msi_route(struct kvm *kvm, uint32_t gsi, uint64_t addr, uint32_t data, bool enabled)
{
	int rc = 0;

	pthread_mutex_lock(&kvm->routing_lock);
	if (enabled)
		rc = irq_routing_set_msi(&kvm->routing, gsi, addr, data);
	else
		irq_routing_clear(&kvm->routing, gsi);
	if (!rc)
		rc = kvm_commit_routing(kvm);
	pthread_mutex_unlock(&kvm->routing_lock);
	return rc;
}

int kvm_irqfd(struct kvm *kvm, int fd, uint32_t gsi, bool assign)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi,
				   .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	return ioctl(kvm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int kvm_ioeventfd(struct kvm *kvm, uint64_t gpa, uint32_t len, int fd, bool assign)
{
	struct kvm_ioeventfd io = { .addr = gpa, .len = len, .fd = fd,
				    .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN };

	return ioctl(kvm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int kvm_create_platform(struct kvm *kvm, struct yun_err *err)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = KVM_IDENTITY_ADDR;

	/* Both are VMX needs; other KVM flavours may refuse them harmlessly. */
	if (ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0 && errno != ENOTTY &&
	    errno != EINVAL)
		return yun_err_errno(err, errno, "kvm: KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0 &&
	    errno != ENOTTY && errno != EINVAL)
		return yun_err_errno(err, errno, "kvm: KVM_SET_TSS_ADDR");
	if (ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return yun_err_errno(err, errno, "kvm: KVM_CREATE_IRQCHIP");
	if (kvm_set_pc_routing(kvm, err) < 0)
		return -err->code;
	if (ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return yun_err_errno(err, errno, "kvm: KVM_CREATE_PIT2");
	return 0;
}

int kvm_map_memory(struct kvm *kvm, const struct guest_mem *gm, struct yun_err *err)
{
	for (int i = 0; i < gm->nr_regions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = gm->region[i].gpa,
			.memory_size = gm->region[i].size,
			.userspace_addr = (uintptr_t)gm->region[i].host,
			.flags = kvm->log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		};

		if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return yun_err_errno(err, errno,
					     "kvm: map %llu MiB of guest RAM at 0x%llx",
					     (unsigned long long)(r.memory_size >> 20),
					     (unsigned long long)r.guest_phys_addr);
	}
	return 0;
}

int kvm_irq_line(struct kvm *kvm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	return ioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

void kvm_close(struct kvm *kvm)
{
	if (kvm->vm_fd >= 0)
		close(kvm->vm_fd);
	if (kvm->sys_fd >= 0)
		close(kvm->sys_fd);
	free(kvm->cpuid);
	kvm->cpuid = NULL;
	kvm->vm_fd = kvm->sys_fd = -1;
}

/* ---- saved state (snapshots) ------------------------------------------------ */

#define KVM_SNAP_VERSION 1

static const struct {
	uint32_t chip;
	const char *name;
} kvm_chips[] = {
	{ KVM_IRQCHIP_PIC_MASTER, "PIC master" },
	{ KVM_IRQCHIP_PIC_SLAVE, "PIC slave" },
	{ KVM_IRQCHIP_IOAPIC, "IOAPIC" },
};

int kvm_save_platform(struct kvm *kvm, struct snap_writer *w, struct yun_err *err)
{
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;

	for (unsigned i = 0; i < 3; i++) {
		memset(&chip[i], 0, sizeof(chip[i]));
		chip[i].chip_id = kvm_chips[i].chip;
		if (ioctl(kvm->vm_fd, KVM_GET_IRQCHIP, &chip[i]) < 0)
			return yun_err_errno(err, errno, "kvm: saving the %s (KVM_GET_IRQCHIP)",
					     kvm_chips[i].name);
	}
	if (ioctl(kvm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return yun_err_errno(err, errno, "kvm: saving the PIT (KVM_GET_PIT2)");
	snap_begin(w, "KVM", KVM_SNAP_VERSION);
	for (unsigned i = 0; i < 3; i++) {
		snap_put_u32(w, chip[i].chip_id);
		snap_put_u32(w, sizeof(chip[i].chip));
		snap_put_bytes(w, &chip[i].chip, sizeof(chip[i].chip));
	}
	snap_put_u32(w, sizeof(pit));
	snap_put_bytes(w, &pit, sizeof(pit));
	snap_end(w);
	return snap_writer_error(w, err);
}

int kvm_load_platform(struct kvm *kvm, struct snap_reader *r, struct yun_err *err)
{
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct snap_reader s;

	if (snap_section(r, "KVM", KVM_SNAP_VERSION, NULL, &s))
		return snap_reader_done(&s, err);
	for (unsigned i = 0; i < 3 && !s.failed; i++) {
		uint32_t id = snap_get_u32(&s), len = snap_get_u32(&s);

		memset(&chip[i], 0, sizeof(chip[i]));
		chip[i].chip_id = kvm_chips[i].chip;
		if (!s.failed && (id != kvm_chips[i].chip || len != sizeof(chip[i].chip)))
			snap_reader_fail(&s, "%s: chip %u of %u bytes, expected chip %u of %zu",
					 kvm_chips[i].name, id, len, kvm_chips[i].chip,
					 sizeof(chip[i].chip));
		snap_get_bytes(&s, &chip[i].chip, sizeof(chip[i].chip));
	}
	if (!s.failed && snap_get_u32(&s) != sizeof(pit))
		snap_reader_fail(&s, "PIT state is not %zu bytes", sizeof(pit));
	snap_get_bytes(&s, &pit, sizeof(pit));
	if (snap_reader_done(&s, err))
		return -EINVAL;
	for (unsigned i = 0; i < 3; i++)
		if (ioctl(kvm->vm_fd, KVM_SET_IRQCHIP, &chip[i]) < 0)
			return yun_err_errno(err, errno, "kvm: KVM refused the saved %s "
					     "(KVM_SET_IRQCHIP)", kvm_chips[i].name);
	if (ioctl(kvm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return yun_err_errno(err, errno, "kvm: KVM refused the saved PIT (KVM_SET_PIT2)");
	return 0;
}

int kvm_save_clock(struct kvm *kvm, struct snap_writer *w, struct yun_err *err)
{
	struct kvm_clock_data clock;

	memset(&clock, 0, sizeof(clock));
	if (ioctl(kvm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return yun_err_errno(err, errno, "kvm: saving kvmclock (KVM_GET_CLOCK)");
	snap_begin(w, "CLCK", KVM_SNAP_VERSION);
	snap_put_u64(w, clock.clock);
	snap_put_u32(w, clock.flags);
	snap_end(w);
	return snap_writer_error(w, err);
}

int kvm_load_clock(struct kvm *kvm, struct snap_reader *r, struct yun_err *err)
{
	struct kvm_clock_data clock;
	struct snap_reader s;

	memset(&clock, 0, sizeof(clock));
	if (snap_section(r, "CLCK", KVM_SNAP_VERSION, NULL, &s))
		return snap_reader_done(&s, err);
	clock.clock = snap_get_u64(&s);
	(void)snap_get_u32(&s); /* flags at save time: informative only */
	if (snap_reader_done(&s, err))
		return -EINVAL;
	if (ioctl(kvm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return yun_err_errno(err, errno, "kvm: KVM refused the saved kvmclock "
				     "(KVM_SET_CLOCK)");
	return 0;
}
