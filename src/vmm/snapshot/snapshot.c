/* snapshot.c - see snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/log.h"
#include "../dirty.h"
#include "../vm.h"
#include "conf.h"
#include "devices.h"
#include "stream.h"

#define PAGE 4096ULL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- memory file ---------------------------------------------------------- */

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned i = 0; i < PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

static int pwrite_all(int fd, const uint8_t *p, uint64_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n > (1ULL << 30) ? (1ULL << 30) : n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (uint64_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* fsync the directory holding path, so a rename in it is durable. */
static void fsync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) ? (int)(slash - path) : 1,
			 path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/*
 * Which pages of [host, host + pages * PAGE) were ever touched (present or
 * swapped, from /proc/self/pagemap): one byte per page, malloc'd; NULL when
 * pagemap cannot be read (then every page is looked at). Untouched pages of
 * anonymous RAM are zero, so a full snapshot of a big idle guest does not
 * fault in every page to find that out.
 */
static uint8_t *touched_pages(const uint8_t *host, uint64_t pages)
{
	const uint64_t chunk = 65536;
	uint64_t *ent = malloc(chunk * sizeof(uint64_t));
	uint8_t *out = malloc(pages ? pages : 1);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	bool ok = ent && out && fd >= 0;

	for (uint64_t pg = 0; ok && pg < pages; pg += chunk) {
		uint64_t n = pages - pg < chunk ? pages - pg : chunk;
		off_t at = (off_t)(((uintptr_t)host / PAGE + pg) * sizeof(uint64_t));

		ok = pread(fd, ent, n * sizeof(uint64_t), at) == (ssize_t)(n * sizeof(uint64_t));
		for (uint64_t i = 0; ok && i < n; i++)
			out[pg + i] = (ent[i] >> 62) != 0; /* bit 63 present, 62 swapped */
	}
	if (fd >= 0)
		close(fd);
	free(ent);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

/*
 * RAM to a sparse file of the RAM's size: full, every non-zero page (zero
 * pages stay holes); diff, every page in the dirty bitmap (zero or not: a
 * hole in a diff means "unchanged"). Runs of pages go in one pwrite.
 */
static int mem_file_write(struct vm *vm, const char *path, bool diff, uint64_t *written,
			  struct yun_err *err)
{
	const struct guest_mem *gm = &vm->mem;
	char tmp[4096];
	int fd, rc = 0;

	*written = 0;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return yun_err_set(err, ENAMETOOLONG, "memory file %s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return yun_err_errno(err, errno, "memory file %s", tmp);
	if (ftruncate(fd, (off_t)gm->size) < 0)
		rc = -errno;
	for (int r = 0; !rc && r < gm->nr_regions; r++) {
		const struct gm_region *reg = &gm->region[r];
		uint64_t base = (uint64_t)(reg->host - gm->map), pages = reg->size / PAGE;
		uint64_t run = 0, start = 0;
		uint8_t *touched = diff || gm->file_backed ? NULL : touched_pages(reg->host, pages);

		for (uint64_t pg = 0; !rc && pg <= pages; pg++) {
			bool want = pg < pages &&
				    (diff ? dirty_test(&vm->dirty, DIRTY_SNAPSHOT, r, pg)
					  : (!touched || touched[pg]) &&
						    !page_is_zero(reg->host + pg * PAGE));

			if (want) {
				if (!run)
					start = pg;
				run++;
				continue;
			}
			if (run) {
				rc = pwrite_all(fd, reg->host + start * PAGE, run * PAGE,
						base + start * PAGE);
				*written += run * PAGE;
				run = 0;
			}
		}
		free(touched);
	}
	rc = snap_file_commit(fd, tmp, path, rc);
	if (rc)
		return yun_err_errno(err, -rc, "memory file %s: writing", path);
	fsync_dir(path);
	return 0;
}

int snap_mem_merge(const char *base, const char *diff, struct yun_err *err)
{
	struct stat sb, sd;
	int bfd, dfd, rc = 0;
	off_t off = 0;
	uint8_t *buf = malloc(1 << 20);

	if (!buf)
		return yun_err_set(err, ENOMEM, "merge: out of memory");
	bfd = open(base, O_WRONLY | O_CLOEXEC);
	if (bfd < 0) {
		free(buf);
		return yun_err_errno(err, errno, "memory file %s", base);
	}
	dfd = open(diff, O_RDONLY | O_CLOEXEC);
	if (dfd < 0) {
		rc = yun_err_errno(err, errno, "memory file %s", diff);
		goto out;
	}
	if (fstat(bfd, &sb) < 0 || fstat(dfd, &sd) < 0) {
		rc = yun_err_errno(err, errno, "merge %s into %s: stat", diff, base);
		goto out;
	}
	if (sb.st_size != sd.st_size) {
		rc = yun_err_set(err, EINVAL, "merge: diff %s holds %lld bytes, base %s %lld: not "
				 "the same VM's memory", diff, (long long)sd.st_size, base,
				 (long long)sb.st_size);
		goto out;
	}
	for (;;) {
		off_t data = lseek(dfd, off, SEEK_DATA), hole;

		if (data < 0) {
			if (errno != ENXIO)
				rc = yun_err_errno(err, errno, "memory file %s: SEEK_DATA", diff);
			break; /* ENXIO: no data after off */
		}
		hole = lseek(dfd, data, SEEK_HOLE);
		if (hole < 0) {
			rc = yun_err_errno(err, errno, "memory file %s: SEEK_HOLE", diff);
			break;
		}
		for (off = data; off < hole && !rc;) {
			size_t n = hole - off > (1 << 20) ? (1 << 20) : (size_t)(hole - off);
			ssize_t got = pread(dfd, buf, n, off);

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				rc = yun_err_errno(err, got < 0 ? errno : EIO, "memory file %s: read",
						   diff);
				break;
			}
			if (pwrite_all(bfd, buf, (uint64_t)got, (uint64_t)off) < 0)
				rc = yun_err_errno(err, errno, "memory file %s: write", base);
			off += got;
		}
		if (rc)
			break;
	}
	if (!rc && fsync(bfd) < 0)
		rc = yun_err_errno(err, errno, "memory file %s: fsync", base);
out:
	if (dfd >= 0)
		close(dfd);
	close(bfd);
	free(buf);
	return rc;
}

/* ---- save ----------------------------------------------------------------- */

int vm_state_save(struct vm *vm, struct snap_writer *w, struct yun_err *err)
{
	int rc;

	if (!vm_paused(vm))
		return yun_err_set(err, EBUSY, "VM state: the VM is running (pause it first)");
	rc = snap_conf_save(w, vm->cfg, err);
	/* Devices first: finishing their in-flight work may raise interrupts. */
	if (!rc)
		rc = vm_devices_save(vm, w, err);
	if (!rc)
		rc = kvm_save_platform(&vm->kvm, w, err);
	for (unsigned i = 0; !rc && i < vm->nr_vcpus; i++)
		rc = vcpu_save(&vm->vcpu[i], w, err);
	if (!rc)
		rc = kvm_save_clock(&vm->kvm, w, err);
	return rc;
}

/* Pages changed since the last snapshot, for a diff (the tracker's snapshot consumer). */
static int collect_diff(struct vm *vm, struct yun_err *err)
{
	if (!dirty_active(&vm->dirty, DIRTY_SNAPSHOT))
		return yun_err_set(err, ENOTSUP, "diff snapshot: no base to diff against (take a "
				   "full snapshot first, or restore with dirty=on)");
	return dirty_collect(&vm->dirty, DIRTY_SNAPSHOT, -1, err);
}

int vm_snapshot_save(struct vm *vm, const char *state_path, const char *mem_path, bool diff,
		     struct yun_err *err)
{
	struct snap_writer w;
	uint64_t t0 = now_ns(), written = 0;
	int rc;

	if (!vm_paused(vm))
		return yun_err_set(err, EBUSY, "snapshot: the VM is running (pause it first)");
	snap_writer_init(&w);
	rc = vm_state_save(vm, &w, err);
	if (!rc && diff)
		rc = collect_diff(vm, err);
	if (!rc)
		rc = mem_file_write(vm, mem_path, diff, &written, err);
	if (!rc)
		rc = snap_file_write(state_path, w.buf, w.len, err);
	snap_writer_free(&w);
	if (rc)
		return rc;
	/* The next diff is relative to this snapshot. */
	if (diff) {
		dirty_clear(&vm->dirty, DIRTY_SNAPSHOT);
	} else {
		struct yun_err e = { 0 };

		if (dirty_start(&vm->dirty, DIRTY_SNAPSHOT, &e) < 0)
			yun_warn("snapshot: no diff snapshots after this one: %s", e.msg);
	}
	yun_info("snapshot: %s state %s, memory %s (%llu MiB of data) in %llu ms",
		 diff ? "diff" : "full", state_path, mem_path,
		 (unsigned long long)(written >> 20),
		 (unsigned long long)((now_ns() - t0) / 1000000));
	return 0;
}

/* ---- restore -------------------------------------------------------------- */

int vm_state_load(struct vm *vm, struct snap_reader *r, struct yun_err *err)
{
	/* Parked before anything can run; the I/O thread starts once devices are loaded. */
	int rc = vm_pause(vm, err);

	if (!rc)
		rc = vm_devices_load(vm, r, err);
	if (!rc)
		rc = kvm_load_platform(&vm->kvm, r, err);
	for (unsigned i = 0; !rc && i < vm->nr_vcpus; i++)
		rc = vcpu_load(&vm->vcpu[i], r, err);
	if (!rc)
		rc = kvm_load_clock(&vm->kvm, r, err);
	if (!rc)
		rc = snap_reader_done(r, err);
	return rc;
}

/* Under the card's lock: show the guest another MAC (its configuration space). */
static int set_mac(void *dev, void *arg, struct yun_err *err)
{
	struct net *net = dev;

	(void)err;
	memcpy(net->mac, arg, 6);
	return VIRTIO_PCI_CONFIG_CHANGED;
}

/*
 * The MACs a clone asked for (opts->mac), once the cards' saved state is in:
 * each card's configuration space changes and the guest's driver gets a
 * configuration-change interrupt; cfg follows, so the clone's own
 * snapshots keep its address.
 */
static int apply_macs(struct vm *vm, struct vmm_config *cfg, const struct vm_restore_opts *o,
		      struct yun_err *err)
{
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		uint8_t mac[6];
		int rc;

		if (!o->mac[i])
			continue;
		if (!strcmp(o->mac[i], "random")) {
			if (getrandom(mac, sizeof(mac), 0) != sizeof(mac))
				return yun_err_errno(err, errno, "mac%u=random: getrandom", i);
			mac[0] = (uint8_t)((mac[0] & ~1u) | 2u); /* unicast, locally administered */
		} else if (net_parse_mac(o->mac[i], mac) < 0) {
			return yun_err_set(err, EINVAL, "mac%u=%s: not a unicast MAC", i, o->mac[i]);
		}
		rc = virtio_pci_call(&vm->net_pci[i], set_mac, mac, err);
		if (rc)
			return rc;
		memcpy(cfg->nets[i].mac, mac, sizeof(mac));
		cfg->nets[i].has_mac = true;
	}
	return 0;
}

/* err = "<what> <path>: <err>". */
static int prefix_err(struct yun_err *err, int rc, const char *what, const char *path)
{
	char msg[YUN_ERR_MSG_MAX];

	if (!strncmp(err->msg, what, strlen(what)))
		return rc; /* already names the file (snap_file_read, gm_init_file) */
	snprintf(msg, sizeof(msg), "%s", err->msg);
	yun_err_set(err, -rc, "%s %s: %s", what, path, msg);
	return rc;
}

int vm_restore(struct vm *vm, struct vmm_config *cfg_out, struct console *con,
	       const char *state_path, const char *mem_path, const struct vm_restore_opts *opts,
	       struct yun_err *err)
{
	static const struct vm_restore_opts none;
	uint64_t t0 = now_ns(), t_read = 0, t_built = 0, t_kvm = 0;
	uint8_t *payload = NULL;
	size_t len = 0;
	struct snap_reader r;
	int rc, fd;

	if (!opts)
		opts = &none;
	config_init(cfg_out);
	rc = snap_file_read(state_path, &payload, &len, err);
	if (rc)
		goto fail_cfg;
	snap_reader_init(&r, payload, len, "sections");
	rc = snap_conf_load(&r, cfg_out, opts, err);
	if (rc) {
		prefix_err(err, rc, "state file", state_path);
		goto fail_cfg;
	}
	fd = open(mem_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = yun_err_errno(err, errno, "memory file %s", mem_path);
		goto fail_cfg;
	}
	t_read = now_ns();
	rc = vm_create_from_memory(vm, cfg_out, con, fd, opts->track_dirty, err);
	close(fd); /* the mapping keeps the file */
	t_built = now_ns();
	if (rc) {
		if (!strncmp(err->msg, "memory file: ", 13)) {
			char msg[YUN_ERR_MSG_MAX];

			snprintf(msg, sizeof(msg), "%s", err->msg + 13);
			yun_err_set(err, -rc, "memory file %s: %s", mem_path, msg);
		}
		goto fail_cfg; /* vm_create_from_memory destroyed the VM */
	}
	/* Logging from before the state is loaded: KVM's own writes count too. */
	if (opts->track_dirty)
		rc = dirty_start(&vm->dirty, DIRTY_SNAPSHOT, err);
	if (!rc)
		rc = vm_state_load(vm, &r, err);
	t_kvm = now_ns();
	if (rc) {
		prefix_err(err, rc, "state file", state_path);
		goto fail_vm;
	}
	rc = apply_macs(vm, cfg_out, opts, err);
	if (rc)
		goto fail_vm;
	if (opts->resume)
		rc = vm_resume(vm, err);
	if (!rc)
		rc = vm_start_io(vm, err);
	if (rc)
		goto fail_vm;
	free(payload);
	vm->restore_t0_ns = t0;
	vm->restore_req_ns = opts->t_request_ns;
	yun_info("restore: %s VM; us from vm_restore: state file read %llu, VM built and "
		 "memory mapped %llu, device, KVM and vCPU state loaded %llu, "
		 "ready %llu", vm->from_shell ? "pre-built" : "new",
		 (unsigned long long)((t_read - t0) / 1000),
		 (unsigned long long)((t_built - t0) / 1000),
		 (unsigned long long)((t_kvm - t0) / 1000),
		 (unsigned long long)((now_ns() - t0) / 1000));
	yun_info("restored %s + %s: %u vCPU(s), %llu MiB, %s, in %llu us", state_path, mem_path,
		 vm->nr_vcpus, (unsigned long long)cfg_out->memory_mib,
		 opts->resume ? "running" : "paused", (unsigned long long)((now_ns() - t0) / 1000));
	return 0;
fail_vm:
	vm_destroy(vm);
fail_cfg:
	if (vm->prebuilt)
		vm_destroy(vm); /* an unused shell */
	free(payload);
	config_free(cfg_out);
	return rc;
}
