/* ctdrv.c - see ctdrv.h. */
#include "ctdrv.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../../ct/client.h"
#include "../../ct/proto.h"
#include "../../ct/state.h"
#include "../core/fs.h"
#include "../core/proc.h"

/* A state dir still "creating" this long after it was written is a leftover. */
#define CREATE_GRACE_S 30

static char supervisor_exe[PATH_MAX];

const char *ctdrv_state_root(void)
{
	return ct_state_root();
}

void ctdrv_set_binary(const char *yun_ct)
{
	if (!realpath(yun_ct, supervisor_exe))
		snprintf(supervisor_exe, sizeof(supervisor_exe), "%s", yun_ct);
}

/* The supervisor's process exists: a live yun-ct with that pid (not a reused pid). */
static bool supervisor_alive(pid_t pid)
{
	char link[64], exe[PATH_MAX];
	ssize_t n;

	if (!proc_alive(pid))
		return false;
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n < 0)
		return errno != ENOENT;
	exe[n] = '\0';
	return !supervisor_exe[0] || !strcmp(exe, supervisor_exe);
}

static bool supervisor_answers(const struct ct_state *st)
{
	int fd;

	if (ct_proto_connect(st->id, &fd, NULL) < 0)
		return false;
	close(fd);
	return true;
}

static bool recent(const char *id, const char *name)
{
	char path[4096];
	struct stat sb;

	return ct_state_path(id, name, path, sizeof(path), NULL) == 0 && stat(path, &sb) == 0 &&
	       time(NULL) - sb.st_mtime < CREATE_GRACE_S;
}

void ctdrv_observe(const char *id, struct ctdrv_obs *o)
{
	struct ct_state st;
	bool alive;

	memset(o, 0, sizeof(*o));
	if (ct_state_read(id, &st, NULL) < 0) {
		/* No state.json: nothing, or yun-ct between mkdir and its first write. */
		char path[4096];
		struct stat sb;

		if (ct_state_path(id, NULL, path, sizeof(path), NULL) == 0 && stat(path, &sb) == 0)
			o->phase = recent(id, NULL) ? CTDRV_CREATING : CTDRV_DEAD;
		else
			o->phase = CTDRV_NONE;
		return;
	}
	o->pid = st.pid;
	alive = st.supervisor_pid > 0 && supervisor_alive(st.supervisor_pid);
	switch (st.status) {
	case CT_STATUS_EXITED:
		o->phase = CTDRV_EXITED;
		o->exit_status = st.exit_status;
		snprintf(o->exit_reason, sizeof(o->exit_reason), "%s", st.exit_reason);
		break;
	case CT_STATUS_CREATING:
	case CT_STATUS_CREATED:
		/* Before the supervisor exists (its pid is not recorded yet): give it time. */
		o->phase = alive || recent(id, "state.json") ? CTDRV_CREATING : CTDRV_DEAD;
		break;
	case CT_STATUS_RUNNING:
	case CT_STATUS_STOPPING:
		/*
		 * A supervisor that no longer answers but still lives is tearing
		 * down (it closes its socket before it records the exit).
		 */
		if (!alive)
			o->phase = CTDRV_DEAD;
		else if (st.status == CT_STATUS_RUNNING && supervisor_answers(&st))
			o->phase = CTDRV_RUNNING;
		else
			o->phase = CTDRV_STOPPING;
		break;
	}
	ct_state_release(&st);
}

static json_t *config_json(const struct ctdrv_spec *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", s->id, "image", s->image_dir,
			      "hostname", s->hostname, "keep", 1, "console", "pty");
	char buf[64];

	if (!o)
		return NULL;
	snprintf(buf, sizeof(buf), "%.2f", s->cpus);
	json_object_set_new(o, "cpus", json_string(buf));
	snprintf(buf, sizeof(buf), "%lld", (long long)s->memory_mib);
	json_object_set_new(o, "memory", json_string(buf));
	if (s->netns && *s->netns) {
		char net[4200];

		snprintf(net, sizeof(net), "netns=%s", s->netns);
		json_object_set_new(o, "net", json_string(net));
	} else {
		json_object_set_new(o, "net", json_string("none"));
	}
	if (s->command)
		json_object_set_new(o, "command", json_loads(s->command, 0, NULL));
	if (s->env)
		json_object_set_new(o, "env", json_loads(s->env, 0, NULL));
	if (s->mounts)
		json_object_set_new(o, "mounts", json_loads(s->mounts, 0, NULL));
	return o;
}

int ctdrv_start(const struct ctdrv_spec *spec, pid_t *client, struct yun_err *err)
{
	struct proc_opts po = {.out_path = spec->log_path, .setsid = true};
	json_t *cfg = config_json(spec);
	char *text;
	int rc;

	if (!cfg)
		return yun_err_set(err, ENOMEM, "out of memory");
	text = json_dumps(cfg, JSON_INDENT(2));
	json_decref(cfg);
	if (!text)
		return yun_err_set(err, ENOMEM, "out of memory");
	rc = fs_write_atomic(spec->config_path, text, strlen(text), 0600, err);
	free(text);
	if (rc)
		return rc;
	{
		char *argv[] = {(char *)spec->yun_ct, "run", "--config", (char *)spec->config_path,
				NULL};

		return proc_spawn(argv, &po, client, err);
	}
}

int ctdrv_stop(const char *id, int64_t timeout_s, struct yun_err *err)
{
	json_t *req = json_pack("{s:s, s:I}", "op", "stop", "timeout", (json_int_t)timeout_s);
	json_t *rep = NULL;
	int fd, rc;

	if (!req)
		return yun_err_set(err, ENOMEM, "out of memory");
	rc = ct_proto_connect(id, &fd, err);
	if (!rc) {
		/* The supervisor goes on after we hang up; the loop watches the state. */
		rc = ct_proto_call(fd, req, &rep, err);
		close(fd);
	}
	json_decref(req);
	json_decref(rep);
	return rc;
}

int ctdrv_remove(const char *id, struct yun_err *err)
{
	struct ct_state st;
	char path[4096];
	int rc = ct_client_remove(id, true, err);

	if (rc == 0)
		return 0;
	/* A state dir yun-ct cannot read (a run killed while it made it): just the dir. */
	if (ct_state_read(id, &st, NULL) == 0) {
		ct_state_release(&st);
		return rc;
	}
	if (ct_state_path(id, NULL, path, sizeof(path), err) < 0)
		return -err->code;
	return fs_remove_tree(path, err);
}
