/* loader.c - the boot entry point the VM calls; see loader.h. */
#include "loader.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../../lib/file.h"
#include "../layout.h"
#include "acpi.h"
#include "bzimage.h"
#include "handoff.h"
#include "mptable.h"
#include "pvh.h"

/*
 * Read the initrd, refusing early (before reading it) one that cannot fit
 * in RAM below 4 GiB whatever the kernel; the exact fit is handoff's job.
 */
static int boot_read_initrd(const struct guest_mem *gm, const char *path, uint8_t **buf,
			    size_t *len, struct yun_err *err)
{
	uint64_t room = gm_low_end(gm);
	struct stat st;
	char sz[32];

	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > room)
		return yun_err_set(err, ENOSPC,
				   "initrd %s: %s does not fit in %llu MiB of RAM below 4 GiB",
				   path, handoff_fmt_size(sz, sizeof(sz), (uint64_t)st.st_size),
				   (unsigned long long)(room >> 20));
	return yun_file_read_all("initrd", path, room, buf, len, err);
}

static int boot_load_kernel(struct guest_mem *gm, const struct boot_config *cfg,
			    const uint8_t *kbuf, size_t klen, const struct handoff *h,
			    struct boot_entry *entry, struct yun_err *err)
{
	int rc;

	if (bzimage_probe(kbuf, klen)) {
		struct bzimage_loaded bz;

		rc = bzimage_load_buf(gm, cfg->kernel_path, kbuf, klen, h, &bz, err);
		if (rc)
			return rc;
		*entry = (struct boot_entry){ .mode = BOOT_LINUX64,
					      .rip = bz.entry,
					      .boot_info = LAYOUT_ZERO_PAGE };
		return 0;
	}
	if (pvh_probe(kbuf, klen)) {
		struct pvh_loaded pvh;

		rc = pvh_load_buf(gm, cfg->kernel_path, kbuf, klen, h, &pvh, err);
		if (rc)
			return rc;
		*entry = (struct boot_entry){ .mode = BOOT_PVH32,
					      .rip = pvh.entry,
					      .boot_info = LAYOUT_PVH_INFO };
		return 0;
	}
	return yun_err_set(err, EINVAL,
			   "kernel %s: not a bzImage or ELF (no HdrS at 0x%x, no ELF magic)",
			   cfg->kernel_path, BZ_HDR_MAGIC);
}

int boot_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_entry *entry,
	      struct yun_err *err)
{
	uint8_t *kbuf = NULL, *ibuf = NULL;
	size_t klen = 0, ilen = 0;
	struct handoff h = { 0 };
	int rc;

	if (!cfg->kernel_path)
		return yun_err_set(err, EINVAL, "boot: no kernel given");
	if (cfg->nr_vcpus == 0 || cfg->nr_vcpus > LAYOUT_MAX_VCPUS)
		return yun_err_set(err, EINVAL, "vcpus %u: must be 1 to %d", cfg->nr_vcpus,
				   LAYOUT_MAX_VCPUS);

	rc = yun_file_read_all("kernel", cfg->kernel_path, BOOT_KERNEL_MAX_BYTES, &kbuf, &klen,
			       err);
	if (rc)
		return rc;
	if (klen == 0) {
		rc = yun_err_set(err, EINVAL, "kernel %s: empty file", cfg->kernel_path);
		goto out;
	}
	if (cfg->initrd_path) {
		rc = boot_read_initrd(gm, cfg->initrd_path, &ibuf, &ilen, err);
		if (rc)
			goto out;
	}

	rc = mptable_build_pci(gm, cfg->nr_vcpus, cfg->pci_irqs, cfg->nr_pci_irqs, err);
	if (rc)
		goto out;
	rc = acpi_build_pci(gm, cfg->nr_vcpus, cfg->pci, cfg->pci_irqs, cfg->nr_pci_irqs,
			    &h.rsdp_gpa, err);
	if (rc)
		goto out;

	h.cmdline = cfg->cmdline;
	h.initrd = ibuf;
	h.initrd_len = ilen;
	h.initrd_name = cfg->initrd_path;
	rc = boot_load_kernel(gm, cfg, kbuf, klen, &h, entry, err);
out:
	free(ibuf);
	free(kbuf);
	return rc;
}
