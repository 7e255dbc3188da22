/* vm_ops.c - see vm_ops.h. */
#include "vm_ops.h"

#include <errno.h>
#include <string.h>

#include "../../lib/log.h"
#include "../dirty.h"
#include "../snapshot/devices.h"
#include "../snapshot/snapshot.h"
#include "../vm.h"

/* ---- source ------------------------------------------------------------------ */

struct out_ctx {
	struct vm *vm;
	bool was_paused;  /* paused before the migration: pause/resume leave it so */
};

static int out_dirty_start(void *ctx, struct yun_err *err)
{
	struct out_ctx *o = ctx;

	return dirty_start(&o->vm->dirty, DIRTY_MIGRATE, err);
}

static int out_dirty_fetch(void *ctx, int region, uint64_t *bitmap, struct yun_err *err)
{
	struct out_ctx *o = ctx;

	return dirty_fetch(&o->vm->dirty, DIRTY_MIGRATE, region, bitmap, err);
}

static void out_dirty_stop(void *ctx)
{
	struct out_ctx *o = ctx;

	dirty_stop(&o->vm->dirty, DIRTY_MIGRATE);
}

static int out_pause(void *ctx, struct yun_err *err)
{
	struct out_ctx *o = ctx;
	int rc = o->was_paused ? 0 : vm_pause(o->vm, err);

	/*
	 * Disk reads in flight land now, before the last round looks for them;
	 * then the images' locks go, for the destination to take before its
	 * guest runs.
	 */
	if (!rc) {
		vm_devices_quiesce(o->vm);
		vm_unlock_disks(o->vm);
	}
	return rc;
}

static int out_resume(void *ctx, struct yun_err *err)
{
	struct out_ctx *o = ctx;
	struct yun_err e = { 0 };

	/* The destination never started (or it would hold them): take them back. */
	if (vm_lock_disks(o->vm, &e) < 0)
		yun_warn("migration failed, and the disks' locks cannot be taken back: %s", e.msg);
	return o->was_paused ? 0 : vm_resume(o->vm, err);
}

static int out_save_state(void *ctx, struct snap_writer *w, struct yun_err *err)
{
	struct out_ctx *o = ctx;

	return vm_state_save(o->vm, w, err);
}

/* Auto-converge: the engine raises this while the dirty set does not shrink. */
static void out_throttle(void *ctx, unsigned percent)
{
	struct out_ctx *o = ctx;

	vm_throttle(o->vm, percent);
}

static const struct migrate_source_ops out_ops = {
	.dirty_start = out_dirty_start,
	.dirty_fetch = out_dirty_fetch,
	.dirty_stop = out_dirty_stop,
	.pause = out_pause,
	.resume = out_resume,
	.save_state = out_save_state,
	.throttle = out_throttle,
};

int vm_migrate_out(struct vm *vm, const char *addr, const struct migrate_params *p,
		   struct migrate_stats *st, struct yun_err *err)
{
	struct out_ctx o = { .vm = vm, .was_paused = vm_paused(vm) };
	struct migrate_source_vm src = { .ops = &out_ops, .ctx = &o };
	struct snap_writer info;
	int rc;

	snap_writer_init(&info);
	rc = snap_conf_save(&info, vm->cfg, err);
	if (!rc && info.len > MIGRATE_MAX_INFO)
		rc = yun_err_set(err, E2BIG, "migration: the configuration is %zu bytes (at most "
				 "%u)", info.len, MIGRATE_MAX_INFO);
	if (rc) {
		snap_writer_free(&info);
		memset(st, 0, sizeof(*st));
		st->outcome = MIGRATE_FAILED;
		st->source_running = !o.was_paused;
		return rc;
	}
	src.info = info.buf;
	src.info_len = info.len;
	for (int i = 0; i < vm->mem.nr_regions && i < MIGRATE_MAX_REGIONS; i++) {
		src.region[i] = (struct migrate_region){
			.gpa = vm->mem.region[i].gpa,
			.size = vm->mem.region[i].size,
			.host = vm->mem.region[i].host,
			.anonymous = !vm->mem.file_backed,
		};
		src.nr_regions++;
	}
	rc = migrate_source(addr, &src, p, st, err);
	snap_writer_free(&info);
	return rc;
}

/* ---- destination ---------------------------------------------------------------- */

struct in_ctx {
	struct vm *vm;
	struct vmm_config *cfg;
	struct console *con;
	const struct vm_restore_opts *opts;
	bool built;
};

static int in_prepare(void *ctx, struct migrate_region *region, int nr_regions,
		      const uint8_t *info, size_t info_len, struct yun_err *err)
{
	struct in_ctx *c = ctx;
	struct snap_reader r;
	int rc;

	snap_reader_init(&r, info, info_len, "the source's configuration");
	rc = snap_conf_load(&r, c->cfg, c->opts, err);
	if (!rc)
		rc = snap_reader_done(&r, err);
	if (rc)
		return rc;
	rc = vm_create_from_memory(c->vm, c->cfg, c->con, -1, false, err);
	if (rc)
		return rc; /* destroyed by vm_create_from_memory */
	c->built = true;
	if (nr_regions != c->vm->mem.nr_regions)
		return yun_err_set(err, EINVAL, "the source sends %d RAM regions, %llu MiB of RAM "
				   "here has %d", nr_regions,
				   (unsigned long long)c->cfg->memory_mib, c->vm->mem.nr_regions);
	for (int i = 0; i < nr_regions; i++) {
		const struct gm_region *g = &c->vm->mem.region[i];

		if (region[i].gpa != g->gpa || region[i].size != g->size)
			return yun_err_set(err, EINVAL, "RAM region %d: the source sends 0x%llx+%llu "
					   "MiB, the configuration makes 0x%llx+%llu MiB", i,
					   (unsigned long long)region[i].gpa,
					   (unsigned long long)(region[i].size >> 20),
					   (unsigned long long)g->gpa,
					   (unsigned long long)(g->size >> 20));
		region[i].host = g->host; /* straight into guest RAM */
	}
	yun_info("migration: receiving %u vCPU(s), %llu MiB", c->vm->nr_vcpus,
		 (unsigned long long)c->cfg->memory_mib);
	return 0;
}

static int in_load_state(void *ctx, const uint8_t *state, size_t len, struct yun_err *err)
{
	struct in_ctx *c = ctx;
	struct snap_reader r, conf;
	uint32_t version;
	int rc;

	if (!c->built)
		return yun_err_set(err, EPROTO, "state before the configuration");
	snap_reader_init(&r, state, len, "migrated state");
	/* CONF came with SETUP (prepare built the VM from it). */
	rc = snap_section(&r, "CONF", SNAP_CONF_VERSION, &version, &conf);
	if (rc)
		return yun_err_set(err, EINVAL, "%s", r.err.msg);
	return vm_state_load(c->vm, &r, err);
}

static int in_start(void *ctx, struct yun_err *err)
{
	struct in_ctx *c = ctx;
	int rc = vm_lock_disks(c->vm, err);

	if (!rc)
		rc = vm_resume(c->vm, err);
	return rc ? rc : vm_start_io(c->vm, err);
}

static void in_abort(void *ctx)
{
	struct in_ctx *c = ctx;

	if (c->built)
		vm_destroy(c->vm);
	c->built = false;
}

static const struct migrate_dest_ops in_ops = {
	.prepare = in_prepare,
	.load_state = in_load_state,
	.start = in_start,
	.abort = in_abort,
};

int vm_migrate_in(struct vm *vm, struct vmm_config *cfg_out, struct console *con, int lfd,
		  const struct migrate_params *p, const struct vm_restore_opts *opts,
		  struct migrate_stats *st, struct yun_err *err)
{
	static const struct vm_restore_opts none;
	struct in_ctx c = { .vm = vm, .cfg = cfg_out, .con = con, .opts = opts ? opts : &none };
	struct migrate_dest_vm dst = { .ops = &in_ops, .ctx = &c, .ram_zeroed = true };
	int rc;

	config_init(cfg_out);
	rc = migrate_dest(lfd, &dst, p, st, err);
	if (rc) {
		in_abort(&c); /* migrate_dest called it already; a second call does nothing */
		config_free(cfg_out);
	}
	return rc;
}
