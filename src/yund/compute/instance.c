/* instance.c - see instance.h. */
#include "instance.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../../ct/state.h"
#include "../../lib/log.h"
#include "../core/fs.h"
#include "../core/notify.h"
#include "../core/proc.h"
#include "../store/store.h"
#include "../yund.h"
#include "ctdrv.h"
#include "host.h"
#include "../volume/volume.h"
#include "netplug.h"
#include "vmdrv.h"
#include "vmmapi.h"

#define START_TIMEOUT_MS 60000 /* a yun-ct run that has made nothing after this is killed */
#define STOP_GRACE_MS	 15000 /* beyond stop_timeout, before the container is removed by force */
#define QUICK_RUN_MS	 10000 /* a run shorter than this counts towards the restart backoff */
#define BACKOFF_MAX_MS	 30000
#define VM_STOP_GRACE_MS 5000 /* beyond a Shutdown's deadline (the VMM's own), before KILL */

/* Per instance, in memory only. */
struct inst_rt {
	char id[OBJ_ID_MAX];
	bool seen;    /* in this pass's list */
	pid_t client; /* the yun-ct run we started, until it is reaped */
	bool client_done;
	int client_status;
	int64_t start_ms; /* when we started it */
	off_t log_off;	  /* console.log size at that start */
	int64_t stop_ms;  /* when we asked it to stop (0: not asked) */
	bool stop_api;	  /* a microVM's API took the Shutdown (else it got SIGTERM) */
	int64_t backoff_until;
	int quick_failures;
};

struct inst_table {
	struct inst_rt *v;
	size_t n;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void instance_dir(const struct yund *y, const char *id, char *buf, size_t len)
{
	fs_path(buf, len, "%s/instances/%s", y->cfg->root, id);
}

void instance_log_path(const struct yund *y, const char *id, char *buf, size_t len)
{
	fs_path(buf, len, "%s/instances/%s/console.log", y->cfg->root, id);
}

bool instance_api_sock(const struct yund *y, const char *id, char *buf, size_t len)
{
	struct sockaddr_un sa;

	fs_path(buf, len, "%s/vm/%s.sock", y->cfg->run, id);
	return strlen(buf) < sizeof(sa.sun_path) && strlen(buf) + 1 < len;
}

struct inst_table *inst_table_new(void)
{
	return calloc(1, sizeof(struct inst_table));
}

void inst_table_free(struct inst_table *t)
{
	if (!t)
		return;
	free(t->v);
	free(t);
}

static struct inst_rt *rt_get(struct inst_table *t, const char *id)
{
	struct inst_rt *nv;

	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].id, id))
			return &t->v[i];
	nv = realloc(t->v, (t->n + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	t->v = nv;
	memset(&t->v[t->n], 0, sizeof(*nv));
	snprintf(t->v[t->n].id, sizeof(t->v[t->n].id), "%s", id);
	return &t->v[t->n++];
}

static void rt_drop_unseen(struct inst_table *t)
{
	size_t k = 0;

	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].seen) {
			t->v[i].seen = false;
			t->v[k++] = t->v[i];
		} else if (t->v[i].client > 0 && !t->v[i].client_done) {
			proc_forget(t->v[i].client);
		}
	}
	t->n = k;
}

static bool same(const struct st_observed *a, const struct st_observed *b)
{
	return !strcmp(a->state, b->state) && a->pid == b->pid && a->has_exit == b->has_exit &&
	       (!a->has_exit || a->exit_status == b->exit_status) &&
	       !strcmp(a->failure, b->failure) && a->restart_count == b->restart_count &&
	       a->reboot_done == b->reboot_done && !strcmp(a->ip, b->ip) && !strcmp(a->mac, b->mac);
}

/* Write the observed half if it changed, and tell the event stream. */
static void observe(struct yund *y, const struct st_instance *in, const struct st_observed *o,
		    const struct st_intent *intent)
{
	struct store *s = y->store;
	struct st_observed old;
	struct yun_err err = {0};
	int rc;

	st_instance_observed(in, &old);
	if (!intent && same(&old, o))
		return;
	rc = s->ops->instance_set_observed(s, in->m.id, o, intent, in->intent_gen, &err);
	if (rc == -EAGAIN) /* the user changed the intent meanwhile: theirs wins */
		rc = s->ops->instance_set_observed(s, in->m.id, o, NULL, 0, &err);
	if (rc < 0) {
		yun_warn("%s", err.msg);
		return;
	}
	notify_instance_id(y, "state", in->m.id);
}

static void set_state(struct st_observed *o, const char *state)
{
	snprintf(o->state, sizeof(o->state), "%s", state);
}

/* A hostname from the instance name: yun-ct takes [A-Za-z0-9.-]. */
static void hostname_of(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s", name);
	for (char *p = buf; *p; p++)
		if (*p == '_')
			*p = '-';
}

/* Start the container; on failure the caller records why. */
static int start(struct yund *y, struct inst_rt *rt, const struct st_instance *in,
		 struct st_observed *o, struct yun_err *err)
{
	struct store *s = y->store;
	struct st_host host;
	struct st_image img;
	char dir[PATH_MAX], cfg[PATH_MAX + 16], log[PATH_MAX + 16], netns[PATH_MAX];
	char hostname[OBJ_NAME_MAX];
	char *mounts = NULL; /* its volumes (volume/volume.h) */
	struct ctdrv_spec spec;
	pid_t client;
	int rc;

	if (s->ops->image_get(s, in->image_id, &img, err) < 0)
		return -err->code;
	if (s->ops->host_get(s, in->host_id, &host, err) < 0) {
		st_image_clear(&img);
		return -err->code;
	}
	instance_dir(y, in->m.id, dir, sizeof(dir));
	snprintf(cfg, sizeof(cfg), "%s/ct.json", dir);
	snprintf(log, sizeof(log), "%s/console.log", dir);
	rc = fs_mkdirs(dir, 0700, err);
	if (!rc)
		rc = netplug_instance_attach(y, in, netns, sizeof(netns), o->ip, sizeof(o->ip),
					     o->mac, sizeof(o->mac), err);
	if (!rc)
		rc = vol_ct_mounts(y, in->m.id, &mounts, err); /* -EAGAIN: not ready, wait */
	if (rc) {
		st_image_clear(&img);
		return rc;
	}
	hostname_of(in->m.name, hostname, sizeof(hostname));
	spec = (struct ctdrv_spec){
	    .id = in->m.id,
	    .hostname = hostname,
	    .image_dir = img.path,
	    /* The limits yun-ct can enforce: at most the host's CPUs and memory. */
	    .cpus = (double)(in->vcpus < host.vcpus ? in->vcpus : host.vcpus),
	    .memory_mib = in->memory_mib < host.memory_mib ? in->memory_mib : host.memory_mib,
	    .command = in->command,
	    .env = in->env,
	    .netns = netns,
	    .config_path = cfg,
	    .log_path = log,
	    .yun_ct = y->cfg->yun_ct,
	    .mounts = mounts,
	};
	if (rt->client > 0 && !rt->client_done)
		proc_forget(rt->client);
	rt->log_off = fs_size(log);
	rc = ctdrv_start(&spec, &client, err);
	st_image_clear(&img);
	free(mounts);
	if (rc)
		return rc;
	rt->client = client;
	rt->client_done = false;
	rt->start_ms = now_ms();
	rt->stop_ms = 0;
	set_state(o, "starting");
	o->pid = 0;
	o->reboot_done = in->reboot_gen; /* a pending reboot is served by this start */
	return 0;
}

/*
 * A run ended (or never got going): `reason` says how, status when known.
 * Record it, then go on as the desired state and the restart policy say.
 */
static void ended(struct yund *y, struct inst_rt *rt, const struct st_instance *in,
		  struct st_observed *o, bool has_status, int status, const char *reason)
{
	bool failed = !has_status || status != 0;
	bool restart = !strcmp(in->restart_policy, "always") ||
		       (failed && !strcmp(in->restart_policy, "on-failure"));
	struct st_intent stop_it;
	int64_t t = now_ms();

	o->pid = 0;
	o->has_exit = has_status;
	o->exit_status = has_status ? status : 0;
	rt->stop_ms = 0;
	if (!strcmp(in->desired, "stopped")) {
		/* Asked for (or already recorded as failed before a crash). */
		if (strcmp(in->state, "failed")) {
			set_state(o, "stopped");
			o->failure[0] = '\0';
		}
		observe(y, in, o, NULL);
		return;
	}
	if (in->reboot_gen > in->reboot_done) {
		o->reboot_done = in->reboot_gen;
		set_state(o, "starting");
		observe(y, in, o, NULL);
		return;
	}
	/* An init that exited 0 by itself did not fail; anything else says why. */
	snprintf(o->failure, sizeof(o->failure), "%s", failed ? reason : "");
	if (restart) {
		if (rt->start_ms && t - rt->start_ms < QUICK_RUN_MS)
			rt->quick_failures++;
		else
			rt->quick_failures = 0;
		if (rt->quick_failures) {
			int64_t d = 500LL
				    << (rt->quick_failures - 1 < 6 ? rt->quick_failures - 1 : 6);

			rt->backoff_until = t + (d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS);
		}
		o->restart_count++;
		set_state(o, "starting");
		yun_info("instance %s: %s; restarting (policy %s)", in->m.name, reason,
			 in->restart_policy);
		observe(y, in, o, NULL);
		return;
	}
	set_state(o, failed ? "failed" : "stopped");
	memset(&stop_it, 0, sizeof(stop_it));
	snprintf(stop_it.desired, sizeof(stop_it.desired), "stopped");
	stop_it.reboot_gen = in->reboot_gen;
	stop_it.stop_timeout = in->stop_timeout;
	yun_info("instance %s: %s", in->m.name, reason);
	/* One transaction: the record of the end and desired = stopped. */
	observe(y, in, o, &stop_it);
}

/* The container ended: how, from yun-ct's record; then remove it. */
static void container_ended(struct yund *y, struct inst_rt *rt, const struct st_instance *in,
			    struct st_observed *o, const struct ctdrv_obs *ob)
{
	struct yun_err err = {0};
	char reason[256];
	bool has = ob->phase == CTDRV_EXITED;

	if (!has)
		snprintf(reason, sizeof(reason), "the container's supervisor died");
	else if (!strcmp(ob->exit_reason, "exited") || !ob->exit_reason[0])
		snprintf(reason, sizeof(reason), "exited with status %d", ob->exit_status);
	else
		snprintf(reason, sizeof(reason), "%s", ob->exit_reason);
	/*
	 * Record first, remove second: a crash in between finds the ended
	 * container again and records the same end (idempotent), instead of
	 * finding nothing and not knowing why.
	 */
	ended(y, rt, in, o, has, ob->exit_status, reason);
	if (ctdrv_remove(in->m.id, &err) < 0)
		yun_warn("%s", err.msg);
}

/* ---- microVM instances (vmdrv.h): the same steps, on a yun-vmm process ---- */

static int vm_start(struct yund *y, struct inst_rt *rt, const struct st_instance *in,
		    struct st_observed *o, struct yun_err *err)
{
	struct store *s = y->store;
	struct st_image img;
	char dir[PATH_MAX], log[PATH_MAX], tap[32], hostname[OBJ_NAME_MAX];
	char sock[PATH_MAX], sockdir[PATH_MAX];
	struct vmdrv_spec spec;
	struct vmdrv_disk vols[VMDRV_MAX_VOLUMES];
	struct vol_attachment *va = NULL;
	size_t nva = 0;
	bool adopted;
	pid_t pid;
	int rc;

	/*
	 * Attached volumes: extra virtio-blk disks after the root disk and the
	 * seed. Claimed first (-EAGAIN: still mounted for a container that has
	 * not ended, or not made yet), so two instances never open one file.
	 */
	rc = vol_vm_claim(y, in->m.id, err);
	if (!rc)
		rc = vol_attachments(s, in->m.id, &va, &nva, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < nva && !rc; i++) {
		if (i >= VMDRV_MAX_VOLUMES)
			rc = yun_err_set(err, E2BIG, "%zu volumes: a microVM takes at most %d", nva,
					 VMDRV_MAX_VOLUMES);
		else if (!va[i].ready)
			rc = yun_err_set(err, EAGAIN, "volume %s: not ready", va[i].name);
		else
			vols[i] =
			    (struct vmdrv_disk){.path = va[i].path, .readonly = va[i].readonly};
	}
	if (!rc && s->ops->image_get(s, in->image_id, &img, err) < 0)
		rc = -err->code;
	if (rc) {
		free(va);
		return rc;
	}
	instance_dir(y, in->m.id, dir, sizeof(dir));
	instance_log_path(y, in->m.id, log, sizeof(log));
	rc = netplug_instance_attach_tap(y, in, tap, sizeof(tap), o->ip, sizeof(o->ip), o->mac,
					 sizeof(o->mac), err);
	if (rc) {
		st_image_clear(&img);
		free(va);
		return rc;
	}
	hostname_of(in->m.name, hostname, sizeof(hostname));
	fs_path(sockdir, sizeof(sockdir), "%s/vm", y->cfg->run);
	if (!instance_api_sock(y, in->m.id, sock, sizeof(sock))) {
		yun_warn("instance %s: %s is too long for a Unix socket; no control API (stop "
			 "by signal, no pause)",
			 in->m.name, sock);
		sock[0] = '\0';
	} else if (fs_mkdirs(sockdir, 0700, err) < 0) {
		st_image_clear(&img);
		free(va);
		return -err->code;
	}
	spec = (struct vmdrv_spec){
	    .id = in->m.id,
	    .hostname = hostname,
	    .dir = dir,
	    .api_sock = sock,
	    .image_dir = img.path,
	    .vcpus = in->vcpus,
	    .memory_mib = in->memory_mib,
	    .disk_gib = in->disk_gib,
	    .user_data = in->user_data,
	    .ssh_keys = in->ssh_keys,
	    .tap = tap,
	    .mac = o->mac,
	    .volumes = vols,
	    .n_volumes = nva,
	};
	if (rt->client > 0 && !rt->client_done)
		proc_forget(rt->client);
	rt->client = 0;
	rt->log_off = fs_size(log);
	rc = vmdrv_start(&spec, &pid, &adopted, err);
	st_image_clear(&img);
	free(va);
	if (rc)
		return rc;
	rt->client = pid; /* 0 when adopted: not our child */
	rt->client_done = false;
	rt->start_ms = now_ms();
	rt->stop_ms = 0;
	rt->stop_api = false;
	set_state(o, "starting");
	o->reboot_done = in->reboot_gen;
	return 0;
}

/* The yun-vmm process is gone: how it ended, as far as we know. */
static void vm_ended(struct yund *y, struct inst_rt *rt, const struct st_instance *in,
		     struct st_observed *o)
{
	char dir[PATH_MAX], log[PATH_MAX], line[300], how[64], reason[512];
	bool has = rt->client > 0 && rt->client_done;
	int status = has ? rt->client_status : 0;

	instance_dir(y, in->m.id, dir, sizeof(dir));
	instance_log_path(y, in->m.id, log, sizeof(log));
	if (!has) {
		snprintf(reason, sizeof(reason),
			 "yun-vmm ended while yund was not its parent (status unknown)");
	} else if (status == 0) {
		snprintf(reason, sizeof(reason), "the guest powered off");
	} else if (status == 4) { /* yun-vmm --help: a Shutdown that passed its deadline */
		snprintf(reason, sizeof(reason),
			 "the guest did not shut down in time; yun-vmm stopped it hard");
	} else {
		proc_describe(status, how, sizeof(how));
		fs_last_line(log, rt->log_off, line, sizeof(line));
		snprintf(reason, sizeof(reason), "yun-vmm %s%s%s", how, line[0] ? ": " : "", line);
	}
	rt->client = 0;
	vmdrv_clear(dir);
	ended(y, rt, in, o, has, status, reason);
}

/*
 * Ask the VM to stop: the API's Shutdown (Ctrl-Alt-Del now, a hard stop by
 * yun-vmm itself at the deadline), else SIGTERM. True when the API took it.
 */
static bool vm_ask_stop(struct yund *y, const struct st_instance *in, const char *dir)
{
	struct yun_err err = {0};
	char sock[PATH_MAX], state[32];
	int rc;

	if (instance_api_sock(y, in->m.id, sock, sizeof(sock)))
		rc = vmmapi_shutdown(sock, in->m.name, in->stop_timeout * 1000, &err);
	else
		rc = yun_err_set(&err, ENAMETOOLONG, "no control API (%s too long)", sock);
	/* Asked before a restart of yund: the VMM is on it already. */
	if (rc == -EPROTO && vmmapi_state(sock, in->m.name, state, sizeof(state), &err) == 0 &&
	    !strcmp(state, "Shutting down"))
		rc = 0;
	if (!rc)
		return true;
	yun_warn("instance %s: stop: %s; stopping yun-vmm by signal", in->m.name, err.msg);
	if (vmdrv_signal(dir, false, &err) < 0)
		yun_warn("instance %s: stop: %s", in->m.name, err.msg);
	return false;
}

/*
 * Pause or resume a running VM as the intent says (PATCH /vm); the state
 * recorded is what the VMM confirmed.
 */
static void vm_pause_step(struct yund *y, const struct st_instance *in, struct st_observed *o)
{
	bool want = !strcmp(in->desired, "paused");
	bool is = !strcmp(in->state, "paused");
	struct yun_err err = {0};
	char sock[PATH_MAX];
	int rc;

	set_state(o, is ? "paused" : "running");
	if (want == is)
		return;
	if (!instance_api_sock(y, in->m.id, sock, sizeof(sock)))
		rc = yun_err_set(&err, ENAMETOOLONG, "instance %s: no control API (%s too long)",
				 in->m.name, sock);
	else
		rc = vmmapi_set_paused(sock, in->m.name, want, &err);
	if (rc < 0) {
		/* Tried again at the next pass; the state says what the VM is. */
		yun_warn("instance %s: %s: %s", in->m.name, want ? "pause" : "resume", err.msg);
		return;
	}
	set_state(o, want ? "paused" : "running");
}

static void vm_reconcile_one(struct yund *y, struct inst_rt *rt, struct st_instance *in, bool *busy)
{
	struct store *s = y->store;
	struct st_observed o;
	struct yun_err err = {0};
	char dir[PATH_MAX];
	int64_t now = now_ms();
	/* A paused VM is a running one whose vCPUs are parked. */
	bool want_run = !strcmp(in->desired, "running") || !strcmp(in->desired, "paused");
	pid_t pid;
	int rc;

	instance_dir(y, in->m.id, dir, sizeof(dir));
	st_instance_observed(in, &o);
	pid = vmdrv_pid(dir);

	if (!strcmp(in->desired, "deleted")) {
		*busy = true;
		if (pid) {
			if (vmdrv_signal(dir, true, &err) < 0)
				yun_warn("instance %s: %s", in->m.name, err.msg);
			return; /* gone by the next pass */
		}
		if (netplug_instance_detach(y, in, &err) < 0 || fs_remove_tree(dir, &err) < 0) {
			yun_warn("instance %s: %s", in->m.name, err.msg);
			return;
		}
		{
			char sock[PATH_MAX]; /* left behind by the KILL */

			if (instance_api_sock(y, in->m.id, sock, sizeof(sock)))
				unlink(sock);
		}
		if (s->ops->instance_delete(s, in->m.id, &err) < 0) {
			yun_warn("%s", err.msg);
			return;
		}
		if (rt->client > 0 && !rt->client_done)
			proc_forget(rt->client);
		rt->seen = false;
		snprintf(in->state, sizeof(in->state), "deleted");
		in->pid = 0;
		notify_instance(y, "deleted", in);
		return;
	}

	if (pid) {
		if (want_run && in->reboot_gen <= in->reboot_done) {
			o.pid = pid;
			vm_pause_step(y, in, &o);
		} else {
			/*
			 * To stop (asked, or for a reboot): the API's Shutdown, whose
			 * deadline yun-vmm keeps itself; KILL only when the VMM has
			 * not ended a little after it. Without the API: TERM, and
			 * KILL after stop_timeout.
			 */
			int64_t grace = rt->stop_api ? VM_STOP_GRACE_MS : 0;

			*busy = true;
			set_state(&o, "stopping");
			o.pid = pid;
			if (!rt->stop_ms) {
				rt->stop_api = vm_ask_stop(y, in, dir);
				rt->stop_ms = now;
			} else if (now - rt->stop_ms > in->stop_timeout * 1000 + grace) {
				if (vmdrv_signal(dir, true, &err) < 0)
					yun_warn("instance %s: %s", in->m.name, err.msg);
			}
		}
		observe(y, in, &o, NULL);
		return;
	}

	/*
	 * Our child ended after this pass reaped (a zombie now): the next pass
	 * has its status (else the end would be recorded as unknown).
	 */
	if (rt->client > 0 && !rt->client_done && !proc_alive(rt->client)) {
		*busy = true;
		return;
	}
	/* No yun-vmm: it ended (ours, or one we adopted, or one from before a crash). */
	if ((rt->client > 0 && rt->client_done) || o.pid || vmdrv_recorded(dir)) {
		*busy = true;
		vm_ended(y, rt, in, &o);
		return;
	}
	o.pid = 0;
	if (!want_run) {
		if (strcmp(in->state, "failed"))
			set_state(&o, "stopped");
	} else if (now < rt->backoff_until) {
		set_state(&o, "starting");
	} else {
		*busy = true;
		rc = vm_start(y, rt, in, &o, &err);
		if (rc == -EAGAIN) {
			set_state(&o, "starting"); /* its network is not up yet */
		} else if (rc < 0) {
			char msg[sizeof(err.msg) + 16];

			snprintf(msg, sizeof(msg), "start failed: %s", err.msg);
			rt->client = 0;
			rt->start_ms = now;
			ended(y, rt, in, &o, false, 0, msg);
			return;
		}
	}
	observe(y, in, &o, NULL);
}

static void reconcile_one(struct yund *y, struct inst_table *t, struct st_instance *in, bool *busy)
{
	struct store *s = y->store;
	struct inst_rt *rt = rt_get(t, in->m.id);
	struct ctdrv_obs ob;
	struct st_observed o;
	struct yun_err err = {0};
	int64_t now = now_ms();
	bool want_run = !strcmp(in->desired, "running");
	int rc;

	if (!rt)
		return;
	rt->seen = true;
	if (rt->client > 0 && !rt->client_done &&
	    proc_poll(rt->client, &rt->client_done, &rt->client_status) < 0) {
		rt->client_done = true; /* not ours to wait for (should not happen) */
		rt->client_status = 255;
	}
	if (!strcmp(in->type, "microvm")) {
		vm_reconcile_one(y, rt, in, busy);
		return;
	}
	st_instance_observed(in, &o);
	ctdrv_observe(in->m.id, &ob);
	/*
	 * Once the container got as far as running, its yun-ct run has done
	 * its part (it relays the console until the end): only a run that
	 * ends before that is a failed start. (A duplicate start that lost
	 * the race against an earlier one ends here too, harmlessly.)
	 */
	if (rt->client > 0 && ob.phase != CTDRV_NONE && ob.phase != CTDRV_CREATING) {
		if (!rt->client_done)
			proc_forget(rt->client);
		rt->client = 0;
	}

	if (!strcmp(in->desired, "deleted")) {
		char dir[PATH_MAX];

		*busy = true;
		/* A start in flight makes its container soon: remove it once it is there. */
		if (ob.phase == CTDRV_NONE && rt->client > 0 && !rt->client_done &&
		    now - rt->start_ms < START_TIMEOUT_MS)
			return;
		if (ob.phase != CTDRV_NONE && ctdrv_remove(in->m.id, &err) < 0) {
			yun_warn("instance %s: %s", in->m.name, err.msg);
			return;
		}
		if (netplug_instance_detach(y, in, &err) < 0) {
			yun_warn("instance %s: %s", in->m.name, err.msg);
			return;
		}
		instance_dir(y, in->m.id, dir, sizeof(dir));
		if (fs_remove_tree(dir, &err) < 0) {
			yun_warn("instance %s: %s", in->m.name, err.msg);
			return;
		}
		if (s->ops->instance_delete(s, in->m.id, &err) < 0) {
			yun_warn("%s", err.msg);
			return;
		}
		rt->seen = false;
		snprintf(in->state, sizeof(in->state), "deleted");
		in->pid = 0;
		notify_instance(y, "deleted", in);
		return;
	}

	switch (ob.phase) {
	case CTDRV_EXITED:
	case CTDRV_DEAD:
		*busy = true;
		container_ended(y, rt, in, &o, &ob);
		return;
	case CTDRV_CREATING:
		*busy = true;
		set_state(&o, want_run ? "starting" : "stopping");
		break;
	case CTDRV_RUNNING:
	case CTDRV_STOPPING:
		if (want_run && in->reboot_gen <= in->reboot_done) {
			if (ob.phase == CTDRV_RUNNING) {
				set_state(&o, "running");
				o.pid = ob.pid;
			} else {
				*busy = true; /* ending by itself: the record says how, soon */
			}
			break;
		}
		/* To stop (asked, or for a reboot). */
		*busy = true;
		set_state(&o, "stopping");
		o.pid = ob.pid;
		if (!rt->stop_ms) {
			if (ob.phase == CTDRV_RUNNING &&
			    ctdrv_stop(in->m.id, in->stop_timeout, &err) < 0)
				yun_warn("instance %s: stop: %s", in->m.name, err.msg);
			rt->stop_ms = now;
		} else if (now - rt->stop_ms > in->stop_timeout * 1000 + STOP_GRACE_MS) {
			yun_warn("instance %s: still not stopped after %llds; removing it",
				 in->m.name, (long long)in->stop_timeout);
			if (ctdrv_remove(in->m.id, &err) < 0)
				yun_warn("%s", err.msg);
		}
		break;
	case CTDRV_NONE:
		o.pid = 0;
		if (!want_run) {
			if (rt->client > 0 && !rt->client_done) {
				*busy = true; /* a start in flight: stop it once it shows up */
				break;
			}
			if (strcmp(in->state, "failed"))
				set_state(&o, "stopped");
			break;
		}
		if (rt->client > 0 && !rt->client_done) {
			*busy = true;
			if (now - rt->start_ms > START_TIMEOUT_MS) {
				kill(rt->client, SIGKILL);
				yun_warn("instance %s: yun-ct run made nothing in %ds; killed it",
					 in->m.name, START_TIMEOUT_MS / 1000);
			}
			break;
		}
		if (rt->client > 0 && rt->client_done) {
			char log[PATH_MAX], line[400], reason[512];

			/* yun-ct run ended without a container: its last words say why. */
			instance_log_path(y, in->m.id, log, sizeof(log));
			fs_last_line(log, rt->log_off, line, sizeof(line));
			if (strstr(line, "already exists")) {
				/*
				 * A start from before a restart of yund was still making
				 * it; that one has finished or failed since: look again.
				 */
				rt->client = 0;
				*busy = true;
				break;
			}
			if (line[0])
				snprintf(reason, sizeof(reason), "start failed: %s", line);
			else
				snprintf(reason, sizeof(reason),
					 "start failed: yun-ct exited with "
					 "status %d",
					 rt->client_status);
			rt->client = 0;
			*busy = true;
			ended(y, rt, in, &o, true, rt->client_status, reason);
			return;
		}
		if (!strcmp(in->state, "running") || !strcmp(in->state, "stopping")) {
			/* It was running and left no record (removed from outside). */
			*busy = true;
			rt->start_ms = 0;
			ended(y, rt, in, &o, false, 0, "the container vanished");
			return;
		}
		if (now < rt->backoff_until) {
			set_state(&o, "starting");
			break;
		}
		*busy = true;
		rc = start(y, rt, in, &o, &err);
		if (rc == -EAGAIN) {
			set_state(&o, "starting"); /* its network is not up yet */
			break;
		}
		if (rc < 0) {
			rt->client = 0;
			rt->start_ms = now;
			ended(y, rt, in, &o, false, 0, err.msg);
			return;
		}
		break;
	}
	observe(y, in, &o, NULL);
}

void inst_reconcile(struct yund *y, struct inst_table *t, bool *busy)
{
	struct store *s = y->store;
	struct st_instance *v;
	struct yun_err err = {0};
	size_t n;

	if (s->ops->instance_list(s, &v, &n, &err) < 0) {
		yun_warn("%s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		reconcile_one(y, t, &v[i], busy);
	st_instances_free(v, n);
	rt_drop_unseen(t);
}

static bool row_exists(struct yund *y, const char *id)
{
	struct st_instance in;
	struct yun_err err = {0};
	int rc = y->store->ops->instance_get(y->store, id, &in, &err);

	if (rc == 0)
		st_instance_clear(&in);
	/* Only "not found" counts as absent; a database error keeps things. */
	return rc != -ENOENT;
}

void inst_sweep(struct yund *y)
{
	struct yun_err err = {0};
	char path[PATH_MAX + 300];
	char **ids;
	size_t n;
	DIR *d;
	struct dirent *e;

	if (ct_state_list(&ids, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (obj_looks_like_id(ids[i]) && !strncmp(ids[i], "i-", 2) &&
			    !row_exists(y, ids[i])) {
				yun_info("container %s: belongs to no instance; removing it",
					 ids[i]);
				if (ctdrv_remove(ids[i], &err) < 0)
					yun_warn("%s", err.msg);
			}
		}
		ct_state_free_ids(ids, n);
	}
	snprintf(path, sizeof(path), "%s/instances", y->cfg->root);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || row_exists(y, e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/instances/%s", y->cfg->root, e->d_name);
		yun_info("%s: belongs to no instance; removing it", path);
		if (vmdrv_pid(path)) { /* a microVM's: its yun-vmm goes first */
			if (vmdrv_signal(path, true, &err) < 0)
				yun_warn("%s", err.msg);
			continue;
		}
		if (fs_remove_tree(path, &err) < 0)
			yun_warn("%s", err.msg);
	}
	closedir(d);
}
