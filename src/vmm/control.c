/* control.c - see control.h. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/str.h"
#include "layout.h"
#include "memory.h"
#include "metrics.h"
#include "migrate/vm_ops.h"
#include "snapshot/snapshot.h"
#include "snapshot/trigger.h"
#include "virtio/vsock.h"
#include "vm.h"

#define MIB_PAGES(mib) ((mib) << (20 - BALLOON_PAGE_SHIFT))

/* What the API knows of a drive beyond struct vmm_disk. */
struct ctl_drive_info {
	char id[CTL_ID_MAX + 1];
	bool root;
	struct ratelimit_update limits;  /* Firecracker's buckets as given (or from bw=/iops=) */
};

struct ctl_net_info {
	char id[CTL_ID_MAX + 1];
	struct ratelimit_update rx, tx;
};

struct ctl {
	pthread_mutex_t lock;
	pthread_cond_t cond;          /* state changes, start requests and answers */
	struct vmm_config *cfg;       /* in force: the command line's, or a snapshot's */
	struct vmm_config *base;      /* the command line's (triggers, --restore) */
	struct vmm_config restored;   /* a restored VM's configuration (cfg then points here) */
	struct console *con;
	enum ctl_state state;
	struct vm *vm;                /* while one exists (NULL during a reboot) */

	/* ctl_start's (and ctl_snapshot_load's) hand-over to the main thread. */
	bool start_requested, start_answered;
	int start_rc;
	struct yun_err start_err;
	bool restore;                 /* build the VM from a snapshot, not from a kernel */
	char *restore_state, *restore_mem;
	struct vm_restore_opts restore_opts;
	struct vm *shell;             /* vm_prebuild's, for a snapshot load; main thread's */
	unsigned shell_cpus;          /* its shape (also while being built, or when it failed) */
	uint64_t shell_mib;
	bool shell_stale;             /* to be (re)built: none yet, or the machine configuration
				       * changed since */

	/* API-only settings that struct vmm_config does not carry. */
	struct ctl_drive_info drive[CONFIG_MAX_DISKS]; /* beside cfg->disks[i] */
	struct ctl_net_info net[CONFIG_MAX_NETS];       /* beside cfg->nets[i] */
	bool track_dirty_pages;
	uint64_t balloon_stats_s;
	char *metrics_path;
	int metrics_fd;               /* opened by PUT /metrics, appended to by FlushMetrics */
	int status_fd;                /* /proc/self/status, for the RSS */

	/* Graceful shutdown. */
	bool shutdown_thread_started;
	pthread_t shutdown_thread;
	struct timespec deadline;     /* CLOCK_MONOTONIC */
	uint64_t shutdown_ms;

	struct timespec t_created, t_started;

	/* Live migration. */
	int migrate_lfd;              /* --migrate-listen: the first VM arrives here; -1 */
	char *migrate_token;
	struct vm_restore_opts migrate_opts;
	bool migrated_away;           /* the destination runs the guest: stop after the reply */
};

const char *ctl_state_name(enum ctl_state s)
{
	switch (s) {
	case CTL_NOT_STARTED:
	case CTL_STARTING:
		return "Not started";
	case CTL_RUNNING:
		return "Running";
	case CTL_PAUSED:
		return "Paused";
	case CTL_STOPPING:
		return "Shutting down";
	case CTL_STOPPED:
		return "Stopped";
	}
	return "?";
}

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - t0->tv_sec) * 1000 +
	       (uint64_t)((now.tv_nsec - t0->tv_nsec) / 1000000);
}

/* ---- functions of other work in progress ------------------------------------- */

static int dev_ctrl_alt_del(struct vm *vm, struct yun_err *err)
{
	int rc = i8042_send_ctrl_alt_del(&vm->i8042);

	if (rc == -ENOSPC)
		return yun_err_set(err, EBUSY, "Ctrl-Alt-Del: the guest's keyboard buffer is full "
				   "(it does not read its keyboard)");
	if (rc < 0)
		return yun_err_errno(err, -rc, "Ctrl-Alt-Del");
	return 0;
}

/* The limits of disk i / card i in force now, from the API's buckets (any thread). */
static int dev_blk_limits(struct vm *vm, unsigned i, const struct ratelimit_update *u,
			  struct yun_err *err)
{
	return virtio_pci_call(&vm->disk_pci[i], blk_call_update_limits, (void *)u, err);
}

static int dev_net_limits(struct vm *vm, unsigned i, const struct ratelimit_update *rx,
			  const struct ratelimit_update *tx, struct yun_err *err)
{
	struct net_limits_update u = { *rx, *tx };

	return virtio_pci_call(&vm->net_pci[i], net_call_update_limits, &u, err);
}

/* --restore's (or --migrate-override's) options as vm_restore takes them. */
static void restore_opts(const struct vmm_restore *r, struct vm_restore_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->resume = r->resume;
	o->track_dirty = r->dirty;
	o->vsock_cid = r->vsock_cid;
	o->vsock_socket = r->vsock_socket;
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		o->tap[i] = r->tap[i];
		o->mac[i] = r->mac[i];
	}
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		o->disk[i] = r->disk[i];
}

static void name_devices(struct ctl *c);

/* A VM built from a snapshot's or a migration's configuration: it is in force now. */
static void adopt_restored(struct ctl *c)
{
	pthread_mutex_lock(&c->lock);
	c->cfg = &c->restored;
	memset(c->drive, 0, sizeof(c->drive));
	memset(c->net, 0, sizeof(c->net));
	name_devices(c);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Build the VM from the snapshot files. Its configuration (in the state
 * file) is in force from then on: the API shows it and a reboot boots its
 * kernel afresh.
 */
static int vm_do_restore(struct ctl *c, struct vm *vm, struct yun_err *err)
{
	int rc = vm_restore(vm, &c->restored, c->con, c->restore_state, c->restore_mem,
			    &c->restore_opts, err);

	if (!rc)
		adopt_restored(c);
	return rc;
}

/*
 * --migrate-listen: receive the VM (migrate/vm_ops.h). As with a restore,
 * the source's configuration is in force from then on.
 */
static int vm_do_migrate_in(struct ctl *c, struct vm *vm, struct yun_err *err)
{
	struct migrate_params p = { .token = c->migrate_token };
	struct migrate_stats st;
	int rc;

	rc = vm_migrate_in(vm, &c->restored, c->con, c->migrate_lfd, &p, &c->migrate_opts, &st,
			   err);
	close(c->migrate_lfd);
	c->migrate_lfd = -1;
	if (rc) {
		char msg[YUN_ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		return yun_err_set(err, -rc, "incoming migration failed (the source keeps the "
				   "guest): %s", msg);
	}
	yun_info("migration: the guest arrived (%u rounds, %llu pages)", st.rounds,
		 (unsigned long long)st.pages);
	adopt_restored(c);
	return 0;
}

void ctl_set_migrate_in(struct ctl *c, int lfd, const char *token,
			const struct vmm_restore *opts)
{
	c->migrate_lfd = lfd;
	c->migrate_token = strdup(token);
	restore_opts(opts, &c->migrate_opts);
}

/* ---- creation ----------------------------------------------------------------- */

/* A rate given as bw=/iops= on the command line: a bucket holding the default window. */
static struct ratelimit_update rates(uint64_t bytes, uint64_t ops)
{
	return (struct ratelimit_update){ bytes != 0, ops != 0, { .rate = bytes }, { .rate = ops } };
}

/* Names and limits of the devices the command line gave. */
static void name_devices(struct ctl *c)
{
	const struct vmm_config *cfg = c->cfg;

	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		struct ctl_drive_info *d = &c->drive[i];

		if (cfg->disks[i].id)
			snprintf(d->id, sizeof(d->id), "%s", cfg->disks[i].id);
		else
			snprintf(d->id, sizeof(d->id), "drive%u", i);
		d->limits = rates(cfg->disks[i].bw, cfg->disks[i].iops);
	}
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		snprintf(c->net[i].id, sizeof(c->net[i].id), "net%u", i);
		c->net[i].rx = rates(cfg->nets[i].rx_bw, cfg->nets[i].rx_pps);
		c->net[i].tx = rates(cfg->nets[i].tx_bw, cfg->nets[i].tx_pps);
	}
}

/*
 * Give a new VM the buckets the API configured (burst and window included;
 * struct vmm_config only carries the rates). Before vm_run.
 */
static int apply_limits(struct ctl *c, struct vm *vm, struct yun_err *err)
{
	int rc = 0;

	for (unsigned i = 0; !rc && i < vm->nr_disks; i++)
		if (c->drive[i].limits.set_bytes || c->drive[i].limits.set_ops)
			rc = dev_blk_limits(vm, i, &c->drive[i].limits, err);
	for (unsigned i = 0; !rc && i < vm->nr_nets; i++)
		if (c->net[i].rx.set_bytes || c->net[i].rx.set_ops || c->net[i].tx.set_bytes ||
		    c->net[i].tx.set_ops)
			rc = dev_net_limits(vm, i, &c->net[i].rx, &c->net[i].tx, err);
	return rc;
}

/* Fold an update into what is in force (a bucket not in u stays). */
static void merge_limits(struct ratelimit_update *to, const struct ratelimit_update *u)
{
	if (u->set_bytes) {
		to->set_bytes = true;
		to->bytes = u->bytes;
	}
	if (u->set_ops) {
		to->set_ops = true;
		to->ops = u->ops;
	}
}

int ctl_create(struct ctl **out, struct vmm_config *cfg, struct console *con,
	       struct yun_err *err)
{
	struct ctl *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;

	if (!c)
		return yun_err_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->cfg = c->base = cfg;
	config_init(&c->restored);
	c->con = con;
	c->metrics_fd = -1;
	c->migrate_lfd = -1;
	c->status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	clock_gettime(CLOCK_MONOTONIC, &c->t_created);
	name_devices(c);
	*out = c;
	return 0;
}

void ctl_destroy(struct ctl *c)
{
	if (!c)
		return;
	if (c->metrics_fd >= 0)
		close(c->metrics_fd);
	if (c->status_fd >= 0)
		close(c->status_fd);
	free(c->metrics_path);
	if (c->migrate_lfd >= 0)
		close(c->migrate_lfd);
	free(c->migrate_token);
	free(c->restore_state);
	free(c->restore_mem);
	config_free(&c->restored);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

enum ctl_state ctl_state(struct ctl *c)
{
	enum ctl_state s;

	pthread_mutex_lock(&c->lock);
	s = c->state;
	pthread_mutex_unlock(&c->lock);
	return s;
}

/* ---- the main thread ------------------------------------------------------------ */

static void console_quit(void *ctx)
{
	vm_request_stop(ctx, VM_STOP_POWEROFF, 0, "quit from the console (Ctrl-A x)", NULL);
}

/* Whether the shell built or being built fits the machine configuration (lock held). */
static bool shell_fits(struct ctl *c)
{
	return c->shell_cpus == c->cfg->cpus && c->shell_mib == c->cfg->memory_mib;
}

/*
 * Main thread, lock held, no start requested yet: (re)build the shell a
 * snapshot load will take over (vm_prebuild), for the vCPUs and memory
 * the machine configuration says, so that the load only maps the memory
 * file and loads state. A snapshot of another shape still loads
 * (vm_create_from_memory builds afresh). The lock is dropped meanwhile:
 * API requests go on, and a start waits for the build to finish.
 */
static void prebuild_shell(struct ctl *c)
{
	unsigned cpus = c->cfg->cpus;
	uint64_t mib = c->cfg->memory_mib;
	char *dev = c->cfg->kvm_device ? strdup(c->cfg->kvm_device) : NULL;
	struct vm *old = c->shell, *vm = calloc(1, sizeof(*vm));
	struct yun_err err = { 0 };
	struct timespec t0;

	c->shell = NULL;
	c->shell_cpus = cpus;
	c->shell_mib = mib;
	pthread_mutex_unlock(&c->lock);
	if (old) {
		vm_destroy(old);
		free(old);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (vm && vm_prebuild(vm, cpus, mib, dev, &err) < 0) {
		yun_info("restore: no pre-built VM: %s", err.msg);
		free(vm);
		vm = NULL;
	} else if (vm) {
		yun_info("restore: pre-built VM ready (%u vCPU(s), %llu MiB) in %llu ms", cpus,
			 (unsigned long long)mib, (unsigned long long)ms_since(&t0));
	}
	free(dev);
	pthread_mutex_lock(&c->lock);
	c->shell = vm;
	if (!shell_fits(c))
		c->shell_stale = true; /* a machine-config came meanwhile */
}

/* Wait for ctl_start() (or return at once with a kernel from the command line). */
static void wait_for_start(struct ctl *c)
{
	pthread_mutex_lock(&c->lock);
	while (!c->start_requested) {
		if (c->shell_stale) {
			c->shell_stale = false;
			prebuild_shell(c);
			continue;
		}
		pthread_cond_wait(&c->cond, &c->lock);
	}
	c->state = CTL_STARTING;
	pthread_mutex_unlock(&c->lock);
}

/* Tell a waiting ctl_start() how building the VM went. */
static void answer_start(struct ctl *c, int rc, const struct yun_err *err)
{
	c->start_answered = true;
	c->start_rc = rc;
	if (rc)
		c->start_err = *err;
	pthread_cond_broadcast(&c->cond);
}

/* After vm_run: log why the VM stopped, as yun-vmm always has. */
static int report_stop(struct vm *vm, bool *reset)
{
	*reset = false;
	switch (vm->stop_reason) {
	case VM_STOP_ERROR:
		yun_error("%s", vm->stop_msg);
		if (vm->stop_detail[0])
			fputs(vm->stop_detail, stderr);
		break;
	case VM_STOP_RESET:
		*reset = true;
		/* fall through */
	default:
		yun_info("%s (exit status %d)", vm->stop_msg, vm->exit_status);
		break;
	}
	return vm->exit_status;
}

int ctl_run(struct ctl *c)
{
	const struct vmm_restore *r = &c->base->restore;
	bool from_api = !c->cfg->kernel && !r->state && c->migrate_lfd < 0, first = true;
	int status = CTL_EXIT_HOST_ERROR;

	if (r->state) {
		struct yun_err err;

		/* --restore: the command line's snapshot. */
		if (yun_str_set(&c->restore_state, r->state, &err) ||
		    yun_str_set(&c->restore_mem, r->mem, &err)) {
			yun_error("%s", err.msg);
			return CTL_EXIT_HOST_ERROR;
		}
		restore_opts(r, &c->restore_opts);
		c->restore = true;
	}
	if (from_api)
		c->shell_stale = true; /* a snapshot load may come */
	if (!from_api) {
		pthread_mutex_lock(&c->lock);
		c->start_requested = true;
		c->state = CTL_STARTING;
		pthread_mutex_unlock(&c->lock);
	}
	for (;;) {
		struct yun_err err = { 0 };
		struct snap_trigger trigger = { 0 };
		struct vm *vm;
		bool reset, reboot;
		int rc;

		if (from_api)
			wait_for_start(c);
		vm = calloc(1, sizeof(*vm));
		if (!vm)
			rc = yun_err_set(&err, ENOMEM, "out of memory");
		else if (c->restore && first) {
			if (c->shell) { /* vm_restore adopts it, or destroys it */
				free(vm);
				vm = c->shell;
				c->shell = NULL;
			}
			rc = vm_do_restore(c, vm, &err);
		} else if (c->migrate_lfd >= 0 && first) {
			rc = vm_do_migrate_in(c, vm, &err);
		} else {
			rc = vm_create(vm, c->cfg, c->con, &err);
		}
		if (!rc) {
			/* Tests' --snapshot-on-line: the command line's, for the first VM. */
			rc = apply_limits(c, vm, &err);
			if (!rc)
				rc = snap_trigger_start(&trigger, vm, first ? c->base : c->cfg, &err);
			if (rc)
				vm_destroy(vm);
		}
		if (rc < 0) {
			free(vm);
			pthread_mutex_lock(&c->lock);
			if (from_api) {
				/* The API's caller gets the error; we wait for the next try. */
				c->state = CTL_NOT_STARTED;
				c->start_requested = false;
				c->restore = false;
				c->shell_stale = !c->shell; /* a load took it: ready another */
				answer_start(c, rc, &err);
				pthread_mutex_unlock(&c->lock);
				continue;
			}
			c->state = CTL_STOPPED;
			pthread_mutex_unlock(&c->lock);
			yun_error("%s", err.msg);
			return CTL_EXIT_HOST_ERROR;
		}
		console_attach(c->con, &vm->serial);
		if (console_start(c->con, console_quit, vm, &err) < 0)
			yun_warn("%s (console input disabled)", err.msg);

		pthread_mutex_lock(&c->lock);
		c->vm = vm;
		if (c->state == CTL_STARTING && c->restore && first && !c->restore_opts.resume) {
			c->state = CTL_PAUSED; /* a restored VM waits parked for PATCH /vm */
			clock_gettime(CLOCK_MONOTONIC, &c->t_started);
		} else if (c->state == CTL_STARTING) {
			c->state = CTL_RUNNING;
			clock_gettime(CLOCK_MONOTONIC, &c->t_started);
		}
		if (from_api)
			answer_start(c, 0, NULL);
		from_api = false;
		first = false;
		pthread_mutex_unlock(&c->lock);

		vm_run(vm, &err);
		snap_trigger_stop(&trigger);

		pthread_mutex_lock(&c->lock);
		c->vm = NULL;
		status = report_stop(vm, &reset);
		reboot = reset && c->cfg->reboot && c->state != CTL_STOPPING;
		if (!reboot)
			c->state = CTL_STOPPED;
		else if (c->state == CTL_PAUSED)
			c->state = CTL_RUNNING; /* a reset while pausing: the new VM runs */
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		if (c->shutdown_thread_started) {
			pthread_join(c->shutdown_thread, NULL);
			c->shutdown_thread_started = false;
		}
		vm_destroy(vm);
		free(vm);
		if (!reboot)
			break;
		yun_info("rebooting");
	}
	if (c->shell) { /* not needed: the VM was booted */
		vm_destroy(c->shell);
		free(c->shell);
		c->shell = NULL;
	}
	return status;
}

bool ctl_stop_by_signal(struct ctl *c, int sig)
{
	bool stopped = false;

	pthread_mutex_lock(&c->lock);
	if (c->vm) {
		char msg[64];

		snprintf(msg, sizeof(msg), "stopped by signal %s", strsignal(sig));
		vm_request_stop(c->vm, VM_STOP_ERROR, 128 + sig, msg, NULL);
		stopped = true;
	}
	pthread_mutex_unlock(&c->lock);
	return stopped;
}

/* ---- state checks ----------------------------------------------------------------- */

/* Configuration may change: Not started. Call with the lock held. */
static int need_not_started(struct ctl *c, struct yun_err *err)
{
	switch (c->state) {
	case CTL_NOT_STARTED:
		return 0;
	case CTL_STARTING:
		return yun_err_set(err, EBUSY, "not allowed while the VM is starting");
	default:
		return yun_err_set(err, EBUSY, "not allowed after the VM started");
	}
}

/* A VM to act on: Running or Paused (with paused_ok). Call with the lock held. */
static int need_vm(struct ctl *c, bool paused_ok, struct yun_err *err)
{
	switch (c->state) {
	case CTL_NOT_STARTED:
	case CTL_STARTING:
		return yun_err_set(err, EBUSY, "not allowed before the VM started");
	case CTL_PAUSED:
		if (!paused_ok)
			return yun_err_set(err, EBUSY, "not allowed while the VM is paused");
		break;
	case CTL_STOPPING:
		return yun_err_set(err, EBUSY, "not allowed while the VM shuts down");
	case CTL_STOPPED:
		return yun_err_set(err, EBUSY, "the VM has stopped");
	case CTL_RUNNING:
		break;
	}
	if (!c->vm)
		return yun_err_set(err, EBUSY, "the VM is restarting (guest reset)");
	return 0;
}

/* ---- configuration ---------------------------------------------------------------- */

int ctl_set_machine(struct ctl *c, const struct ctl_machine *m, bool patch, struct yun_err *err)
{
	struct vmm_config *cfg = c->cfg;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_not_started(c, err);
	if (!rc && !patch && (!m->has_vcpu_count || !m->has_mem_size_mib))
		rc = yun_err_set(err, EINVAL, "%s: required",
				 m->has_vcpu_count ? "mem_size_mib" : "vcpu_count");
	if (!rc && m->has_vcpu_count && (m->vcpu_count < 1 || m->vcpu_count > LAYOUT_MAX_VCPUS))
		rc = yun_err_set(err, ERANGE, "vcpu_count %llu: must be 1 to %d",
				 (unsigned long long)m->vcpu_count, LAYOUT_MAX_VCPUS);
	if (!rc && m->has_mem_size_mib &&
	    (m->mem_size_mib < GM_MIN_MIB || m->mem_size_mib > GM_MAX_MIB))
		rc = yun_err_set(err, ERANGE, "mem_size_mib %llu: must be %llu to %llu",
				 (unsigned long long)m->mem_size_mib, GM_MIN_MIB, GM_MAX_MIB);
	if (!rc && m->has_smt && m->smt)
		rc = yun_err_set(err, EINVAL, "smt true: yun-vmm gives the guest no SMT siblings "
				 "(only false)");
	if (!rc && m->has_mem_size_mib && cfg->balloon &&
	    MIB_PAGES(cfg->balloon_target_mib) > MIB_PAGES(m->mem_size_mib))
		rc = yun_err_set(err, ERANGE, "mem_size_mib %llu: less than the balloon's "
				 "amount_mib %llu", (unsigned long long)m->mem_size_mib,
				 (unsigned long long)cfg->balloon_target_mib);
	if (!rc) {
		if (m->has_vcpu_count)
			cfg->cpus = (unsigned)m->vcpu_count;
		if (m->has_mem_size_mib)
			cfg->memory_mib = m->mem_size_mib;
		if (m->has_track_dirty_pages)
			c->track_dirty_pages = m->track_dirty_pages;
		else if (!patch)
			c->track_dirty_pages = false;
		/* The main thread rebuilds the snapshot-load shell for this shape. */
		if ((m->has_vcpu_count || m->has_mem_size_mib) && !shell_fits(c)) {
			c->shell_stale = true;
			pthread_cond_broadcast(&c->cond);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_set_boot_source(struct ctl *c, const char *kernel, const char *boot_args,
			const char *initrd, struct yun_err *err)
{
	struct vmm_config *cfg = c->cfg;
	char *k = NULL, *a = NULL, *i = NULL;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_not_started(c, err);
	if (!rc && !*kernel)
		rc = yun_err_set(err, EINVAL, "kernel_image_path: must not be empty");
	if (!rc && (yun_str_set(&k, kernel, err) || yun_str_set(&a, boot_args ? boot_args : "", err) ||
		    (initrd && yun_str_set(&i, initrd, err))))
		rc = -ENOMEM;
	if (!rc) {
		free(cfg->kernel);
		free(cfg->cmdline);
		free(cfg->initrd);
		cfg->kernel = k;
		cfg->cmdline = a;
		cfg->initrd = i;
		k = a = i = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(k);
	free(a);
	free(i);
	return rc;
}

static int find_drive(struct ctl *c, const char *id)
{
	for (unsigned i = 0; i < c->cfg->nr_disks; i++)
		if (!strcmp(c->drive[i].id, id))
			return (int)i;
	return -1;
}

static int find_net(struct ctl *c, const char *id)
{
	for (unsigned i = 0; i < c->cfg->nr_nets; i++)
		if (!strcmp(c->net[i].id, id))
			return (int)i;
	return -1;
}

/* The PCI slots the configuration needs (vm.c's order and limit). */
static unsigned pci_devices(const struct vmm_config *cfg)
{
	return cfg->rng + cfg->nr_disks + cfg->balloon + cfg->nr_nets + cfg->vsock;
}

int ctl_put_drive(struct ctl *c, const struct ctl_drive *d, struct yun_err *err)
{
	struct vmm_config *cfg = c->cfg;
	struct vmm_disk nd = { 0 };
	int rc, at;

	pthread_mutex_lock(&c->lock);
	rc = need_not_started(c, err);
	at = find_drive(c, d->drive_id);
	if (!rc && strlen(d->drive_id) > CTL_ID_MAX)
		rc = yun_err_set(err, ERANGE, "drive_id: longer than %d bytes", CTL_ID_MAX);
	if (!rc && !d->path_on_host)
		rc = yun_err_set(err, EINVAL, "path_on_host: required");
	if (!rc && at < 0 && (cfg->nr_disks == CONFIG_MAX_DISKS || pci_devices(cfg) >= 8))
		rc = yun_err_set(err, ENOSPC, "drive_id \"%s\": no room for another drive (at most "
				 "%d, and 8 PCI devices in all)", d->drive_id, CONFIG_MAX_DISKS);
	if (!rc && d->is_root_device)
		for (unsigned i = 0; i < cfg->nr_disks; i++)
			if (c->drive[i].root && (int)i != at)
				rc = yun_err_set(err, EINVAL, "is_root_device: drive \"%s\" is "
						 "already the root device", c->drive[i].id);
	if (!rc) {
		char id[BLK_ID_BYTES + 1];

		/* The guest reads the drive_id as the disk's serial (GET_ID): 20 bytes. */
		snprintf(id, sizeof(id), "%s", d->drive_id);
		if (yun_str_set(&nd.path, d->path_on_host, err) || yun_str_set(&nd.id, id, err))
			rc = -ENOMEM;
		nd.readonly = d->is_read_only;
		nd.bw = d->limits.set_bytes ? d->limits.bytes.rate : 0;
		nd.iops = d->limits.set_ops ? d->limits.ops.rate : 0;
	}
	if (!rc) {
		unsigned slot;

		if (at >= 0) {
			/* Replace: drop the old one, keep the order of the rest. */
			free(cfg->disks[at].path);
			free(cfg->disks[at].id);
			for (unsigned i = at; i + 1 < cfg->nr_disks; i++) {
				cfg->disks[i] = cfg->disks[i + 1];
				c->drive[i] = c->drive[i + 1];
			}
			cfg->nr_disks--;
		}
		/* The root device is the guest's first disk, as with Firecracker. */
		slot = d->is_root_device ? 0 : cfg->nr_disks;
		for (unsigned i = cfg->nr_disks; i > slot; i--) {
			cfg->disks[i] = cfg->disks[i - 1];
			c->drive[i] = c->drive[i - 1];
		}
		cfg->disks[slot] = nd;
		c->drive[slot].root = d->is_root_device;
		c->drive[slot].limits = d->limits;
		snprintf(c->drive[slot].id, sizeof(c->drive[slot].id), "%s", d->drive_id);
		cfg->nr_disks++;
		nd = (struct vmm_disk){ 0 };
	}
	pthread_mutex_unlock(&c->lock);
	free(nd.path);
	free(nd.id);
	return rc;
}

int ctl_put_net(struct ctl *c, const struct ctl_net *n, struct yun_err *err)
{
	struct vmm_config *cfg = c->cfg;
	struct vmm_net nn = { 0 };
	int rc, at;

	pthread_mutex_lock(&c->lock);
	rc = need_not_started(c, err);
	at = find_net(c, n->iface_id);
	if (!rc && strlen(n->iface_id) > CTL_ID_MAX)
		rc = yun_err_set(err, ERANGE, "iface_id: longer than %d bytes", CTL_ID_MAX);
	if (!rc && !n->host_dev_name)
		rc = yun_err_set(err, EINVAL, "host_dev_name: required");
	if (!rc && !net_tap_name_ok(n->host_dev_name))
		rc = yun_err_set(err, EINVAL, "host_dev_name \"%s\": not an interface name (1 to %d "
				 "characters, no '/', ':', '%%' or spaces)", n->host_dev_name,
				 IFNAMSIZ - 1);
	if (!rc && n->guest_mac && net_parse_mac(n->guest_mac, nn.mac) < 0)
		rc = yun_err_set(err, EINVAL, "guest_mac \"%s\": not a unicast MAC address like "
				 "52:54:00:12:34:56", n->guest_mac);
	for (unsigned i = 0; !rc && i < cfg->nr_nets; i++)
		if ((int)i != at && !strcmp(cfg->nets[i].tap, n->host_dev_name))
			rc = yun_err_set(err, EINVAL, "host_dev_name \"%s\": already used by "
					 "iface_id \"%s\"", n->host_dev_name, c->net[i].id);
	if (!rc && at < 0 && (cfg->nr_nets == CONFIG_MAX_NETS || pci_devices(cfg) >= 8))
		rc = yun_err_set(err, ENOSPC, "iface_id \"%s\": no room for another interface (at "
				 "most %d, and 8 PCI devices in all)", n->iface_id, CONFIG_MAX_NETS);
	if (!rc && yun_str_set(&nn.tap, n->host_dev_name, err))
		rc = -ENOMEM;
	if (!rc) {
		unsigned slot = at >= 0 ? (unsigned)at : cfg->nr_nets++;

		nn.has_mac = n->guest_mac != NULL;
		nn.rx_bw = n->rx.set_bytes ? n->rx.bytes.rate : 0;
		nn.rx_pps = n->rx.set_ops ? n->rx.ops.rate : 0;
		nn.tx_bw = n->tx.set_bytes ? n->tx.bytes.rate : 0;
		nn.tx_pps = n->tx.set_ops ? n->tx.ops.rate : 0;
		if (at >= 0)
			free(cfg->nets[slot].tap);
		cfg->nets[slot] = nn;
		snprintf(c->net[slot].id, sizeof(c->net[slot].id), "%s", n->iface_id);
		c->net[slot].rx = n->rx;
		c->net[slot].tx = n->tx;
		nn.tap = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(nn.tap);
	return rc;
}

int ctl_set_vsock(struct ctl *c, uint64_t guest_cid, const char *uds_path, struct yun_err *err)
{
	struct vmm_config *cfg = c->cfg;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_not_started(c, err);
	if (!rc && (guest_cid < 3 || guest_cid >= UINT32_MAX))
		rc = yun_err_set(err, ERANGE, "guest_cid %llu: must be 3 to %u",
				 (unsigned long long)guest_cid, UINT32_MAX - 1);
	if (!rc && (!*uds_path || strlen(uds_path) > VSOCK_PATH_MAX))
		rc = yun_err_set(err, ERANGE, "uds_path: empty or longer than %zu bytes (PATH_<port> "
				 "must fit a Unix socket address)", VSOCK_PATH_MAX);
	if (!rc && !cfg->vsock && pci_devices(cfg) >= 8)
		rc = yun_err_set(err, ENOSPC, "vsock: no room for another PCI device (8 in all)");
	if (!rc && yun_str_set(&cfg->vsock_socket, uds_path, err))
		rc = -ENOMEM;
	if (!rc) {
		cfg->vsock = true;
		cfg->vsock_cid = guest_cid;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_set_balloon(struct ctl *c, uint64_t amount_mib, bool deflate_on_oom,
		    uint64_t stats_polling_interval_s, struct yun_err *err)
{
	struct vmm_config *cfg = c->cfg;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_not_started(c, err);
	if (!rc && amount_mib > cfg->memory_mib)
		rc = yun_err_set(err, ERANGE, "amount_mib %llu: more than the VM's %llu MiB "
				 "(mem_size_mib)", (unsigned long long)amount_mib,
				 (unsigned long long)cfg->memory_mib);
	if (!rc && deflate_on_oom)
		rc = yun_err_set(err, EINVAL, "deflate_on_oom true: yun-vmm's balloon does not "
				 "offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM (only false)");
	if (!rc && !cfg->balloon && pci_devices(cfg) >= 8)
		rc = yun_err_set(err, ENOSPC, "balloon: no room for another PCI device (8 in all)");
	if (!rc) {
		cfg->balloon = true;
		cfg->balloon_target_mib = amount_mib;
		cfg->balloon_deflate_after_ms = 0;
		c->balloon_stats_s = stats_polling_interval_s;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_set_metrics_path(struct ctl *c, const char *path, struct yun_err *err)
{
	int rc, fd = -1;

	pthread_mutex_lock(&c->lock);
	rc = need_not_started(c, err);
	if (!rc && c->metrics_path)
		rc = yun_err_set(err, EEXIST, "metrics_path: already set to %s", c->metrics_path);
	if (!rc) {
		/* Opened now, so FlushMetrics works in a sandbox that cannot open files. */
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
		if (fd < 0)
			rc = yun_err_errno(err, errno, "metrics_path %s", path);
	}
	if (!rc && yun_str_set(&c->metrics_path, path, err)) {
		close(fd);
		rc = -ENOMEM;
	}
	if (!rc)
		c->metrics_fd = fd;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* One bucket as Firecracker shows it: size tokens every refill_time ms. */
static json_t *bucket_json(const struct ratelimit_params *p)
{
	uint64_t ms = p->window_ms ? p->window_ms : RATELIMIT_WINDOW_MS;
	unsigned __int128 size = (unsigned __int128)p->rate * ms / 1000;

	return json_pack("{s:I, s:I, s:I}", "size",
			 (json_int_t)(size > INT64_MAX ? INT64_MAX : size ? size : 1),
			 "one_time_burst", (json_int_t)p->burst, "refill_time", (json_int_t)ms);
}

static json_t *limits_json(const struct ratelimit_update *u)
{
	json_t *o = json_object();

	if (o && u->set_bytes && u->bytes.rate)
		json_object_set_new(o, "bandwidth", bucket_json(&u->bytes));
	if (o && u->set_ops && u->ops.rate)
		json_object_set_new(o, "ops", bucket_json(&u->ops));
	return o;
}

static json_t *describe_locked(struct ctl *c)
{
	struct vmm_config *cfg = c->cfg;
	json_t *drives = json_array(), *nets = json_array();
	json_t *o;

	for (unsigned i = 0; i < cfg->nr_disks; i++)
		json_array_append_new(drives, json_pack("{s:s, s:s, s:b, s:b, s:o, s:s, s:s}",
			"drive_id", c->drive[i].id, "path_on_host", cfg->disks[i].path,
			"is_root_device", c->drive[i].root, "is_read_only", cfg->disks[i].readonly,
			"rate_limiter", limits_json(&c->drive[i].limits),
			"cache_type", "Writeback", "io_engine", "Async"));
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		const struct vmm_net *n = &cfg->nets[i];
		char mac[18] = "";

		if (n->has_mac)
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
				 n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
		json_array_append_new(nets, json_pack("{s:s, s:s, s:s?, s:o, s:o}",
			"iface_id", c->net[i].id, "host_dev_name", n->tap, "guest_mac",
			n->has_mac ? mac : NULL, "rx_rate_limiter", limits_json(&c->net[i].rx),
			"tx_rate_limiter", limits_json(&c->net[i].tx)));
	}
	o = json_pack("{s:{s:I, s:I, s:b, s:b, s:s, s:s}, s:o, s:o}",
		      "machine-config", "vcpu_count", (json_int_t)cfg->cpus, "mem_size_mib",
		      (json_int_t)cfg->memory_mib, "smt", 0, "track_dirty_pages",
		      c->track_dirty_pages, "cpu_template", "None", "huge_pages", "None",
		      "drives", drives, "network-interfaces", nets);
	if (!o)
		return NULL;
	json_object_set_new(o, "boot-source",
			    cfg->kernel ? json_pack("{s:s, s:s, s:s?}", "kernel_image_path",
						    cfg->kernel, "boot_args",
						    cfg->cmdline ? cfg->cmdline : "", "initrd_path",
						    cfg->initrd)
					: json_null());
	json_object_set_new(o, "balloon",
			    cfg->balloon ? json_pack("{s:I, s:b, s:I}", "amount_mib",
						     (json_int_t)cfg->balloon_target_mib,
						     "deflate_on_oom", 0, "stats_polling_interval_s",
						     (json_int_t)c->balloon_stats_s)
					 : json_null());
	json_object_set_new(o, "vsock",
			    cfg->vsock ? json_pack("{s:I, s:s}", "guest_cid",
						   (json_int_t)cfg->vsock_cid, "uds_path",
						   cfg->vsock_socket)
				       : json_null());
	json_object_set_new(o, "metrics",
			    c->metrics_path ? json_pack("{s:s}", "metrics_path", c->metrics_path)
					    : json_null());
	return o;
}

json_t *ctl_describe(struct ctl *c)
{
	json_t *o;

	pthread_mutex_lock(&c->lock);
	o = describe_locked(c);
	if (o && c->vm && c->cfg->balloon)
		/* The target in force, which PATCH /balloon may have changed. */
		json_object_set_new(json_object_get(o, "balloon"), "amount_mib",
				    json_integer((json_int_t)(balloon_target(&c->vm->balloon) >>
							      (20 - BALLOON_PAGE_SHIFT))));
	pthread_mutex_unlock(&c->lock);
	return o;
}

/* ---- life cycle ------------------------------------------------------------------ */

/* Hand the start to the main thread and wait for its answer. Lock held. */
static int request_start(struct ctl *c, struct yun_err *err)
{
	c->start_requested = true;
	c->start_answered = false;
	pthread_cond_broadcast(&c->cond);
	while (!c->start_answered)
		pthread_cond_wait(&c->cond, &c->lock);
	if (c->start_rc)
		*err = c->start_err;
	return c->start_rc;
}

int ctl_start(struct ctl *c, struct yun_err *err)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_not_started(c, err);
	if (!rc && (!c->cfg->kernel || !*c->cfg->kernel))
		rc = yun_err_set(err, EINVAL, "no boot source: PUT /boot-source with a "
				 "kernel_image_path first");
	if (!rc)
		rc = config_validate(c->cfg, err);
	if (!rc)
		rc = request_start(c, err);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_pause(struct ctl *c, struct yun_err *err)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_vm(c, true, err);
	if (!rc && c->state == CTL_PAUSED)
		rc = yun_err_set(err, EBUSY, "the VM is already paused");
	if (!rc)
		rc = vm_pause(c->vm, err);
	if (!rc)
		c->state = CTL_PAUSED;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_resume(struct ctl *c, struct yun_err *err)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_vm(c, true, err);
	if (!rc && c->state != CTL_PAUSED)
		rc = yun_err_set(err, EBUSY, "the VM is not paused");
	if (!rc)
		rc = vm_resume(c->vm, err);
	if (!rc)
		c->state = CTL_RUNNING;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_send_ctrl_alt_del(struct ctl *c, struct yun_err *err)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_vm(c, false, err);
	if (!rc)
		rc = dev_ctrl_alt_del(c->vm, err);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void *shutdown_deadline(void *arg)
{
	struct ctl *c = arg;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	while (c->state == CTL_STOPPING && c->vm && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&c->cond, &c->lock, &c->deadline);
	if (c->state == CTL_STOPPING && c->vm) {
		char msg[128];

		snprintf(msg, sizeof(msg), "graceful shutdown: the guest was still running after "
			 "%llu ms; stopped it", (unsigned long long)c->shutdown_ms);
		vm_request_stop(c->vm, VM_STOP_ERROR, CTL_EXIT_HARD_STOP, msg, NULL);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int ctl_shutdown(struct ctl *c, uint64_t timeout_ms, struct yun_err *err)
{
	struct yun_err cad = { 0 };
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_vm(c, true, err);
	if (!rc && c->shutdown_thread_started)
		rc = yun_err_set(err, EBUSY, "the VM is already shutting down");
	if (!rc && timeout_ms > CTL_SHUTDOWN_MAX_MS)
		rc = yun_err_set(err, ERANGE, "timeout_ms %llu: must be 0 to %d",
				 (unsigned long long)timeout_ms, CTL_SHUTDOWN_MAX_MS);
	/* A paused guest cannot hear Ctrl-Alt-Del. */
	if (!rc && c->state == CTL_PAUSED)
		rc = vm_resume(c->vm, err);
	if (!rc) {
		c->state = CTL_STOPPING;
		c->shutdown_ms = timeout_ms;
		clock_gettime(CLOCK_MONOTONIC, &c->deadline);
		c->deadline.tv_sec += (time_t)(timeout_ms / 1000);
		c->deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (c->deadline.tv_nsec >= 1000000000L) {
			c->deadline.tv_sec++;
			c->deadline.tv_nsec -= 1000000000L;
		}
		if (dev_ctrl_alt_del(c->vm, &cad) < 0)
			yun_warn("graceful shutdown: %s; stopping the VM after %llu ms", cad.msg,
				 (unsigned long long)timeout_ms);
		rc = pthread_create(&c->shutdown_thread, NULL, shutdown_deadline, c);
		if (rc) {
			vm_request_stop(c->vm, VM_STOP_ERROR, CTL_EXIT_HARD_STOP,
					"graceful shutdown: no thread for the deadline; stopped "
					"the VM", NULL);
			rc = 0;
		} else {
			c->shutdown_thread_started = true;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- run-time changes -------------------------------------------------------------- */

int ctl_patch_drive(struct ctl *c, const struct ctl_drive *d, struct yun_err *err)
{
	bool limits = d->limits.set_bytes || d->limits.set_ops;
	int rc, i;

	pthread_mutex_lock(&c->lock);
	rc = need_vm(c, true, err);
	i = find_drive(c, d->drive_id);
	if (!rc && i < 0)
		rc = yun_err_set(err, ENOENT, "drive_id \"%s\": no such drive", d->drive_id);
	if (!rc && d->path_on_host && !*d->path_on_host)
		rc = yun_err_set(err, EINVAL, "path_on_host: must not be empty");
	/* The backing file first: if it is refused, the limits stay as they were too. */
	if (!rc && d->path_on_host)
		rc = virtio_pci_call(&c->vm->disk_pci[i], blk_call_replace_backing,
				     (void *)d->path_on_host, err);
	if (!rc && d->path_on_host && yun_str_set(&c->cfg->disks[i].path, d->path_on_host, err))
		rc = -ENOMEM;
	if (!rc && limits)
		rc = dev_blk_limits(c->vm, (unsigned)i, &d->limits, err);
	if (!rc && limits) {
		merge_limits(&c->drive[i].limits, &d->limits);
		c->cfg->disks[i].bw = c->drive[i].limits.bytes.rate;
		c->cfg->disks[i].iops = c->drive[i].limits.ops.rate;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_patch_net(struct ctl *c, const struct ctl_net *n, struct yun_err *err)
{
	int rc, i;

	pthread_mutex_lock(&c->lock);
	rc = need_vm(c, true, err);
	i = find_net(c, n->iface_id);
	if (!rc && i < 0)
		rc = yun_err_set(err, ENOENT, "iface_id \"%s\": no such network interface",
				 n->iface_id);
	if (!rc)
		rc = dev_net_limits(c->vm, (unsigned)i, &n->rx, &n->tx, err);
	if (!rc) {
		struct vmm_net *cn = &c->cfg->nets[i];

		merge_limits(&c->net[i].rx, &n->rx);
		merge_limits(&c->net[i].tx, &n->tx);
		cn->rx_bw = c->net[i].rx.bytes.rate;
		cn->rx_pps = c->net[i].rx.ops.rate;
		cn->tx_bw = c->net[i].tx.bytes.rate;
		cn->tx_pps = c->net[i].tx.ops.rate;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_balloon_target(struct ctl *c, uint64_t amount_mib, struct yun_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->cfg->balloon)
		rc = yun_err_set(err, ENOENT, "no balloon device (PUT /balloon before the start)");
	if (!rc && c->state != CTL_NOT_STARTED)
		rc = need_vm(c, true, err);
	if (!rc && amount_mib > c->cfg->memory_mib)
		rc = yun_err_set(err, ERANGE, "amount_mib %llu: more than the VM's %llu MiB",
				 (unsigned long long)amount_mib,
				 (unsigned long long)c->cfg->memory_mib);
	if (!rc && c->vm)
		rc = balloon_set_amount_mib(&c->vm->balloon, amount_mib, err);
	if (!rc)
		c->cfg->balloon_target_mib = amount_mib;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_balloon_stats_interval(struct ctl *c, uint64_t seconds, struct yun_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->cfg->balloon)
		rc = yun_err_set(err, ENOENT, "no balloon device (PUT /balloon before the start)");
	/* As Firecracker: statistics cannot be switched on or off after the start. */
	if (!rc && c->state != CTL_NOT_STARTED && (seconds == 0) != (c->balloon_stats_s == 0))
		rc = yun_err_set(err, EINVAL, "stats_polling_interval_s %llu: statistics cannot be "
				 "switched %s after the start", (unsigned long long)seconds,
				 seconds ? "on" : "off");
	if (!rc)
		c->balloon_stats_s = seconds;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_balloon_stats(struct ctl *c, json_t **out, struct yun_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->cfg->balloon)
		rc = yun_err_set(err, ENOENT, "no balloon device (PUT /balloon before the start)");
	if (!rc && !c->balloon_stats_s)
		rc = yun_err_set(err, EINVAL, "balloon statistics are off "
				 "(stats_polling_interval_s 0)");
	if (!rc)
		rc = need_vm(c, true, err);
	if (!rc) {
		*out = balloon_statistics_json(&c->vm->balloon);
		/* Fresh figures for the next read: the driver answers at its own pace. */
		balloon_request_stats(&c->vm->balloon);
		if (!*out)
			rc = yun_err_set(err, ENOMEM, "out of memory");
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- metrics ----------------------------------------------------------------------- */

static json_t *metrics_locked(struct ctl *c)
{
	const char *drives[CONFIG_MAX_DISKS], *ifaces[CONFIG_MAX_NETS];
	json_t *o = NULL;

	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		drives[i] = c->drive[i].id;
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++)
		ifaces[i] = c->net[i].id;
	if (c->vm)
		o = metrics_vm_json(c->vm, drives, ifaces, c->status_fd);
	else
		o = json_pack("{s:{s:I, s:I}}", "memory", "guest_mib",
			      (json_int_t)c->cfg->memory_mib, "rss_kib",
			      (json_int_t)metrics_rss_kib(c->status_fd));
	if (!o)
		return NULL;
	json_object_set_new(o, "utc_timestamp_ms", json_integer((json_int_t)(time(NULL) * 1000LL)));
	json_object_set_new(o, "state", json_string(ctl_state_name(c->state)));
	json_object_set_new(o, "uptime_ms", json_integer((json_int_t)ms_since(&c->t_created)));
	json_object_set_new(o, "vm_uptime_ms",
			    json_integer(c->t_started.tv_sec ? (json_int_t)ms_since(&c->t_started)
							     : 0));
	return o;
}

int ctl_metrics(struct ctl *c, json_t **out, struct yun_err *err)
{
	pthread_mutex_lock(&c->lock);
	*out = metrics_locked(c);
	pthread_mutex_unlock(&c->lock);
	return *out ? 0 : yun_err_set(err, ENOMEM, "out of memory");
}

int ctl_flush_metrics(struct ctl *c, struct yun_err *err)
{
	json_t *o;
	char *line = NULL;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (c->metrics_fd < 0)
		rc = yun_err_set(err, EINVAL, "no metrics file: PUT /metrics with a metrics_path "
				 "first");
	if (!rc) {
		o = metrics_locked(c);
		line = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!line)
			rc = yun_err_set(err, ENOMEM, "out of memory");
	}
	if (!rc) {
		size_t len = strlen(line);
		ssize_t n;

		line[len] = '\n'; /* json_dumps left room for its NUL: replace it */
		n = write(c->metrics_fd, line, len + 1);
		if (n < 0)
			rc = yun_err_errno(err, errno, "metrics_path %s", c->metrics_path);
		else if ((size_t)n != len + 1)
			rc = yun_err_set(err, EIO, "metrics_path %s: short write", c->metrics_path);
	}
	pthread_mutex_unlock(&c->lock);
	free(line);
	return rc;
}

/* ---- snapshots and migration ---------------------------------------------------------- */

int ctl_snapshot_create(struct ctl *c, const char *snapshot_path, const char *mem_path,
			bool diff, struct yun_err *err)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = need_vm(c, true, err);
	if (!rc && c->state != CTL_PAUSED)
		rc = yun_err_set(err, EBUSY, "the VM must be paused first (PATCH /vm "
				 "{\"state\": \"Paused\"})");
	if (!rc)
		rc = vm_snapshot_save(c->vm, snapshot_path, mem_path, diff, err);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ctl_snapshot_load(struct ctl *c, const char *snapshot_path, const char *mem_path,
		      bool track_dirty_pages, bool resume_vm, struct yun_err *err)
{
	struct timespec t;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t); /* the request's arrival, for the timing log */
	pthread_mutex_lock(&c->lock);
	rc = need_not_started(c, err);
	if (!rc && (!*snapshot_path || !*mem_path))
		rc = yun_err_set(err, EINVAL, "%s: must not be empty",
				 *snapshot_path ? "mem_backend.backend_path" : "snapshot_path");
	if (!rc && (yun_str_set(&c->restore_state, snapshot_path, err) ||
		    yun_str_set(&c->restore_mem, mem_path, err)))
		rc = -ENOMEM;
	if (!rc) {
		c->restore = true;
		memset(&c->restore_opts, 0, sizeof(c->restore_opts));
		c->restore_opts.track_dirty = track_dirty_pages;
		c->restore_opts.resume = resume_vm;
		c->restore_opts.t_request_ns = (uint64_t)t.tv_sec * 1000000000ULL +
					       (uint64_t)t.tv_nsec;
		rc = request_start(c, err);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static json_t *migrate_stats_json(const struct migrate_stats *st)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:b, s:I}",
			      "outcome", migrate_outcome_name(st->outcome),
			      "rounds", (json_int_t)st->rounds,
			      "pages", (json_int_t)st->pages,
			      "zero_pages", (json_int_t)st->zero_pages,
			      "final_pages", (json_int_t)st->final_pages,
			      "bytes", (json_int_t)st->bytes,
			      "downtime_ms", st->downtime_ms,
			      "total_ms", st->total_ms,
			      "bandwidth_mib_s", st->bandwidth_mib_s,
			      "forced", st->forced,
			      "throttle", (json_int_t)st->throttle);
	json_t *rounds = json_array();

	for (unsigned i = 0; o && rounds && i < st->rounds && i < MIGRATE_STATS_ROUNDS; i++)
		json_array_append_new(rounds, json_integer((json_int_t)st->round_pages[i]));
	if (o && rounds)
		json_object_set_new(o, "round_pages", rounds);
	else
		json_decref(rounds);
	return o;
}

int ctl_migrate(struct ctl *c, const struct ctl_migrate_req *req, json_t **stats,
		enum ctl_migrate_result *result, struct yun_err *err)
{
	struct migrate_params p = {
		.token = req->token,
		.downtime_ms = req->downtime_ms,
		.max_rounds = req->max_rounds,
		.timeout_ms = req->timeout_ms,
	};
	struct migrate_stats st;
	int rc;

	*stats = NULL;
	*result = CTL_MIGRATE_FAILED;
	pthread_mutex_lock(&c->lock);
	rc = need_vm(c, true, err);
	if (!rc && c->migrated_away)
		rc = yun_err_set(err, EBUSY, "the VM has migrated away");
	if (rc) {
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	yun_info("migration to %s: starting (downtime budget %u ms)", req->destination,
		 p.downtime_ms ? p.downtime_ms : 50);
	rc = vm_migrate_out(c->vm, req->destination, &p, &st, err);
	*stats = migrate_stats_json(&st);
	switch (st.outcome) {
	case MIGRATE_DONE:
		*result = CTL_MIGRATED;
		c->migrated_away = true;
		c->state = CTL_STOPPING;
		yun_info("migration to %s: done in %.0f ms, %.1f ms downtime, %u rounds; this VM "
			 "stops", req->destination, st.total_ms, st.downtime_ms, st.rounds);
		rc = 0;
		break;
	case MIGRATE_UNKNOWN:
		*result = CTL_MIGRATE_UNKNOWN;
		c->state = CTL_PAUSED;
		yun_error("migration to %s: outcome unknown, the VM stays paused: %s",
			  req->destination, err->msg);
		break;
	case MIGRATE_FAILED:
		if (!rc)
			rc = yun_err_set(err, EIO, "migration failed");
		yun_warn("migration to %s failed, the VM goes on here: %s", req->destination,
			 err->msg);
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void ctl_migrated_reply_sent(struct ctl *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->migrated_away && c->vm)
		vm_request_stop(c->vm, VM_STOP_POWEROFF, 0,
				"the guest migrated to the destination", NULL);
	pthread_mutex_unlock(&c->lock);
}
