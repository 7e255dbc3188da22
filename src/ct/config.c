/* config.c - see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "../lib/json.h"
#include "../lib/str.h"
#include "image.h"
#include "mounts.h"

#define CONFIG_FILE_MAX (1 << 20)
#define CT_CPUS_MIN	0.01
#define CT_SHARES_MIN	2
#define CT_SHARES_MAX	262144
#define CT_PIDS_MAX	4194304 /* the kernel's PID_MAX_LIMIT */
#define CT_BLKIO_MIN	10
#define CT_BLKIO_MAX	1000
#define CT_ENV_MAX	256

const char ct_config_run_usage[] =
    "usage: yun-ct run (--rootfs DIR | --image DIR) [options] [--] [CMD [ARG...]]\n"
    "       yun-ct run --config FILE [options] [--] [CMD [ARG...]]\n"
    "\n"
    "Starts a container under its own supervisor process and, unless -d is\n"
    "given, attaches to its console; exits with the container's status.\n"
    "\n"
    "  --rootfs DIR          the container's root directory (writes go to it\n"
    "                        unless --overlay)\n"
    "  --image DIR           an image from scripts/mkimage (read-only, shared;\n"
    "                        implies --overlay); CMD defaults to its command\n"
    "  --overlay             copy-on-write: writes go to an upper layer in the\n"
    "                        state dir, removed when the container ends\n"
    "  --name ID             container id (letters, digits, '_', '-', '.'; 1..64);\n"
    "                        default: 12 random hex digits\n"
    "  --hostname NAME       default: the id\n"
    "  --cpus N              CPU quota in cores (0.01 .. the host's CPUs), e.g. 0.5\n"
    "  --cpu-shares S        relative CPU weight, 2..262144 (default 1024)\n"
    "  --cpuset LIST         CPUs allowed, e.g. 0-1 or 0,2\n"
    "  --memory MIB          memory limit in MiB (also 512M, 2G); at least 4 MiB\n"
    "  --memory-swap MIB     swap allowed on top of --memory; -1 = unlimited\n"
    "  --pids N              maximum number of tasks, 1..4194304\n"
    "  --blkio-weight W      block I/O weight, 10..1000\n"
    "  --net MODE            none (default: empty namespace, lo up) | host |\n"
    "                        netns=PATH | veth=HOSTIF (eth0 inside, HOSTIF outside)\n"
    "  --mount SRC:DST[:ro]  bind-mount host SRC at DST (repeatable); SRC must\n"
    "                        not be a system path (see docs/ct.md)\n"
    "  --console MODE        stdio (pipes) | pty | socket=PATH; default: pty when\n"
    "                        stdin is a terminal, else stdio\n"
    "  -t, --tty             same as --console pty\n"
    "  --userns MODE         off (default) | auto: root maps to a free 65536-id\n"
    "                        range above 100000 (recommended for tenants)\n"
    "  --uid-map IN:OUT:N    explicit user namespace maps (repeatable, up to 5)\n"
    "  --gid-map IN:OUT:N\n"
    "  -e, --env K=V         environment variable (repeatable)\n"
    "  --cwd DIR             working directory inside, default /\n"
    "  -d, --detach          print the id and return once the container runs\n"
    "  --keep                keep the state dir (upper layer, exit status) after\n"
    "                        the container ends; `yun-ct rm ID` deletes it\n"
    "  --stop-signal SIG     what `stop` sends init first (default TERM; systemd\n"
    "                        wants RTMIN+3)\n"
    "  --config FILE         the same settings as JSON (see docs/ct.md)\n"
    "  -h, --help            this text\n"
    "\n"
    "Exit status: the container's (128+N when killed by signal N, 137 with the\n"
    "message \"out of memory\" after an OOM kill); 125 when yun-ct itself fails,\n"
    "126 when CMD cannot be executed, 127 when CMD is not found.\n";

void ct_config_init(struct ct_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->limits.swap_bytes = -1;
	cfg->net = CT_NET_NONE;
	cfg->console = CT_CONSOLE_AUTO;
	cfg->userns = CT_USERNS_OFF;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

void ct_config_free(struct ct_config *cfg)
{
	free(cfg->id);
	free(cfg->rootfs);
	free(cfg->image);
	free(cfg->hostname);
	free(cfg->net_arg);
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		free(cfg->mounts[i].src);
		free(cfg->mounts[i].dst);
	}
	free(cfg->console_path);
	free_strv(cfg->env);
	free(cfg->cwd);
	free_strv(cfg->argv);
	memset(cfg, 0, sizeof(*cfg));
}

static int set_memory(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	int64_t b;

	if (yun_parse_size_mib(s, &b) < 0)
		return yun_err_set(err, EINVAL,
				   "memory %s: not an amount of memory (MiB like 256, or 512M, 2G)",
				   s);
	if (b <= 0)
		return yun_err_set(err, EINVAL, "memory %s: must be at least %d MiB", s,
				   CT_MEMORY_MIN_MIB);
	cfg->limits.memory_bytes = (uint64_t)b;
	return 0;
}

static int set_swap(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	int64_t b;

	if (yun_parse_size_mib(s, &b) < 0)
		return yun_err_set(
		    err, EINVAL,
		    "memory-swap %s: not an amount of memory (MiB, or -1 for unlimited)", s);
	if (b < 0 && b != -((int64_t)1 << 20))
		return yun_err_set(err, EINVAL,
				   "memory-swap %s: must be 0 or more MiB, or -1 for unlimited", s);
	cfg->limits.swap_bytes = b < 0 ? -1 : b;
	return 0;
}

static int set_cpus(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || isspace((unsigned char)*s) || !isfinite(v))
		return yun_err_set(err, EINVAL, "cpus %s: not a number of CPUs (like 0.5 or 2)", s);
	if (v < CT_CPUS_MIN)
		return yun_err_set(err, EINVAL, "cpus %s: must be at least %.2f", s, CT_CPUS_MIN);
	cfg->limits.cpus = v;
	return 0;
}

static int set_count(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *out,
		     struct yun_err *err)
{
	int64_t v;

	if (yun_parse_i64(s, &v) < 0)
		return yun_err_set(err, EINVAL, "%s %s: not a number (must be from %llu to %llu)",
				   what, s, (unsigned long long)min, (unsigned long long)max);
	if (v < 0 || (uint64_t)v < min || (uint64_t)v > max)
		return yun_err_set(err, ERANGE, "%s %s: must be from %llu to %llu", what, s,
				   (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)v;
	return 0;
}

static int set_net(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	const char *arg = NULL;

	if (!strcmp(s, "none")) {
		cfg->net = CT_NET_NONE;
	} else if (!strcmp(s, "host")) {
		cfg->net = CT_NET_HOST;
	} else if (!strncmp(s, "netns=", 6)) {
		cfg->net = CT_NET_NETNS;
		arg = s + 6;
	} else if (!strncmp(s, "veth=", 5)) {
		cfg->net = CT_NET_VETH;
		arg = s + 5;
	} else {
		return yun_err_set(
		    err, EINVAL, "net %s: unknown mode (none, host, netns=PATH or veth=HOSTIF)", s);
	}
	free(cfg->net_arg);
	cfg->net_arg = NULL;
	return arg ? yun_str_set(&cfg->net_arg, arg, err) : 0;
}

static int set_console(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	free(cfg->console_path);
	cfg->console_path = NULL;
	if (!strcmp(s, "stdio"))
		cfg->console = CT_CONSOLE_STDIO;
	else if (!strcmp(s, "pty"))
		cfg->console = CT_CONSOLE_PTY;
	else if (!strncmp(s, "socket=", 7)) {
		cfg->console = CT_CONSOLE_SOCKET;
		return yun_str_set(&cfg->console_path, s + 7, err);
	} else
		return yun_err_set(err, EINVAL,
				   "console %s: unknown mode (stdio, pty, socket=PATH)", s);
	return 0;
}

/*
 * The last of --userns and --uid-map/--gid-map wins: "off" or "auto" after
 * explicit maps drops them, so no maps are kept that would not be used (and
 * state.json, which writes maps as maps, reads back the mode in effect).
 */
static int set_userns(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	if (!strcmp(s, "off") || !strcmp(s, "host"))
		cfg->userns = CT_USERNS_OFF;
	else if (!strcmp(s, "auto"))
		cfg->userns = CT_USERNS_AUTO;
	else
		return yun_err_set(err, EINVAL, "userns %s: unknown mode (off or auto)", s);
	cfg->n_uid_map = cfg->n_gid_map = 0;
	return 0;
}

int ct_parse_idmap(const char *what, const char *s, struct ct_idmap *map, struct yun_err *err)
{
	unsigned long long v[3];
	const char *p = s;
	char *end;

	for (int i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*p))
			goto bad;
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (errno || v[i] > UINT32_MAX)
			goto bad;
		if (i < 2 && *end != ':')
			goto bad;
		p = end + (i < 2);
	}
	if (*end)
		goto bad;
	if (v[2] == 0 || v[0] + v[2] > (1ull << 32) || v[1] + v[2] > (1ull << 32))
		return yun_err_set(err, ERANGE, "%s %s: the range is empty or wraps past 2^32",
				   what, s);
	map->inside = (uint32_t)v[0];
	map->outside = (uint32_t)v[1];
	map->count = (uint32_t)v[2];
	return 0;
bad:
	return yun_err_set(err, EINVAL, "%s %s: not INSIDE:OUTSIDE:COUNT", what, s);
}

static int add_idmap(struct ct_config *cfg, bool uid, const char *s, struct yun_err *err)
{
	struct ct_idmap *maps = uid ? cfg->uid_map : cfg->gid_map;
	size_t *n = uid ? &cfg->n_uid_map : &cfg->n_gid_map;
	const char *what = uid ? "uid-map" : "gid-map";
	int rc;

	if (*n >= CT_MAX_IDMAPS)
		return yun_err_set(err, E2BIG, "%s %s: more than %d maps", what, s, CT_MAX_IDMAPS);
	rc = ct_parse_idmap(what, s, &maps[*n], err);
	if (rc)
		return rc;
	(*n)++;
	cfg->userns = CT_USERNS_MAP;
	return 0;
}

int ct_parse_mount(const char *s, struct ct_mount *m, struct yun_err *err)
{
	const char *c1 = strchr(s, ':'), *c2;
	bool ro = false;
	size_t dlen;

	if (!c1 || c1 == s)
		return yun_err_set(err, EINVAL, "mount %s: not SRC:DST[:ro]", s);
	c2 = strchr(c1 + 1, ':');
	if (c2) {
		if (!strcmp(c2 + 1, "ro"))
			ro = true;
		else if (strcmp(c2 + 1, "rw"))
			return yun_err_set(err, EINVAL, "mount %s: option \"%s\" is not ro or rw",
					   s, c2 + 1);
		dlen = c2 - c1 - 1;
	} else {
		dlen = strlen(c1 + 1);
	}
	if (dlen == 0)
		return yun_err_set(err, EINVAL, "mount %s: not SRC:DST[:ro]", s);
	m->src = strndup(s, c1 - s);
	m->dst = strndup(c1 + 1, dlen);
	m->ro = ro;
	if (!m->src || !m->dst) {
		free(m->src);
		free(m->dst);
		m->src = m->dst = NULL;
		return yun_err_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int add_mount(struct ct_config *cfg, const char *src, const char *dst, bool ro,
		     struct yun_err *err)
{
	struct ct_mount *m;

	if (cfg->n_mounts >= CT_MAX_MOUNTS)
		return yun_err_set(err, E2BIG, "mount %s: more than %d mounts", dst, CT_MAX_MOUNTS);
	m = &cfg->mounts[cfg->n_mounts];
	m->src = strdup(src);
	m->dst = strdup(dst);
	m->ro = ro;
	if (!m->src || !m->dst) {
		free(m->src);
		free(m->dst);
		return yun_err_set(err, ENOMEM, "out of memory");
	}
	cfg->n_mounts++;
	return 0;
}

static int add_mount_spec(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	struct ct_mount m;
	int rc;

	if (cfg->n_mounts >= CT_MAX_MOUNTS)
		return yun_err_set(err, E2BIG, "mount %s: more than %d mounts", s, CT_MAX_MOUNTS);
	rc = ct_parse_mount(s, &m, err);
	if (rc)
		return rc;
	cfg->mounts[cfg->n_mounts++] = m;
	return 0;
}

/* Append to a NULL-terminated string vector. */
static int strv_push(char ***v, size_t *n, const char *s, struct yun_err *err)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(char *));

	if (!nv)
		return yun_err_set(err, ENOMEM, "out of memory");
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return yun_err_set(err, ENOMEM, "out of memory");
	nv[++*n] = NULL;
	return 0;
}

static int add_env(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	const char *eq = strchr(s, '=');

	if (!eq || eq == s)
		return yun_err_set(err, EINVAL, "env %s: not NAME=VALUE", s);
	if (cfg->n_env >= CT_ENV_MAX)
		return yun_err_set(err, E2BIG, "env %s: more than %d variables", s, CT_ENV_MAX);
	return strv_push(&cfg->env, &cfg->n_env, s, err);
}

static void clear_argv(struct ct_config *cfg)
{
	free_strv(cfg->argv);
	cfg->argv = NULL;
	cfg->argc = 0;
}

int ct_parse_id(const char *s, struct yun_err *err)
{
	size_t len = strlen(s);

	if (len == 0 || len > CT_ID_MAX)
		return yun_err_set(err, EINVAL, "container id \"%s\": must be 1 to %d characters",
				   s, CT_ID_MAX);
	if (s[0] == '.' || s[0] == '-')
		return yun_err_set(err, EINVAL, "container id %s: must not start with '%c'", s,
				   s[0]);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			return yun_err_set(
			    err, EINVAL,
			    "container id %s: only letters, digits, '_', '-' and '.' "
			    "are allowed",
			    s);
	}
	return 0;
}

int ct_parse_signal(const char *s, int *sig, struct yun_err *err)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = {
	    {"HUP", SIGHUP},   {"INT", SIGINT},	    {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
	    {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"TERM", SIGTERM}, {"CONT", SIGCONT},
	    {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}, {"PWR", SIGPWR},   {"ALRM", SIGALRM},
	};
	const char *n = s;
	int64_t v;

	if (yun_parse_i64(s, &v) == 0) {
		if (v < 1 || v > SIGRTMAX)
			return yun_err_set(err, EINVAL, "signal %s: must be from 1 to %d", s,
					   SIGRTMAX);
		*sig = (int)v;
		return 0;
	}
	if (!strncasecmp(n, "SIG", 3))
		n += 3;
	/* RTMIN, RTMIN+3 (systemd's halt signal) */
	if (!strncasecmp(n, "RTMIN", 5)) {
		int64_t off = 0;

		/* off <= RTMAX - RTMIN, not RTMIN + off <= RTMAX: off can be near 2^63. */
		if ((n[5] == '\0' || (n[5] == '+' && yun_parse_i64(n + 6, &off) == 0)) &&
		    off >= 0 && off <= SIGRTMAX - SIGRTMIN) {
			*sig = SIGRTMIN + (int)off;
			return 0;
		}
		return yun_err_set(err, EINVAL, "signal %s: RTMIN+N must stay below RTMAX", s);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(n, names[i].name)) {
			*sig = names[i].sig;
			return 0;
		}
	}
	return yun_err_set(err, EINVAL, "signal %s: unknown (use a number or a name like TERM)", s);
}

/* ---- JSON ---- */

/* A number or a string, handed to the same parser as the flag. */
static int json_as_text(json_t *v, const char *key, const char *origin, char *buf, size_t len,
			struct yun_err *err)
{
	int n;

	if (json_is_string(v))
		n = snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		n = snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		n = snprintf(buf, len, "%.17g", json_real_value(v));
	else
		return yun_err_set(err, EINVAL, "%s: \"%s\" must be a number", origin, key);
	/* Cut short, "0.5<60 zeros>1" would pass as 0.5. */
	if (n < 0 || (size_t)n >= len)
		return yun_err_set(err, EINVAL, "%s: \"%s\" is too long for a number", origin, key);
	return 0;
}

static int json_string_list(json_t *v, const char *key, const char *origin,
			    int (*add)(struct ct_config *, const char *, struct yun_err *),
			    struct ct_config *cfg, struct yun_err *err)
{
	size_t i;
	json_t *e;
	int rc;

	if (!json_is_array(v))
		return yun_err_set(err, EINVAL, "%s: \"%s\" must be a list of strings",
				   origin, key);
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e))
			return yun_err_set(err, EINVAL, "%s: \"%s\"[%zu] must be a string",
					   origin, key, i);
		rc = add(cfg, json_string_value(e), err);
		if (rc)
			return rc;
	}
	return 0;
}

static int add_uid_map(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	return add_idmap(cfg, true, s, err);
}

static int add_gid_map(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	return add_idmap(cfg, false, s, err);
}

static int add_arg(struct ct_config *cfg, const char *s, struct yun_err *err)
{
	return strv_push(&cfg->argv, &cfg->argc, s, err);
}

static int json_mounts(struct ct_config *cfg, json_t *v, const char *origin, struct yun_err *err)
{
	size_t i;
	json_t *e;
	int rc;

	if (!json_is_array(v))
		return yun_err_set(err, EINVAL, "%s: \"mounts\" must be a list", origin);
	json_array_foreach(v, i, e)
	{
		if (json_is_string(e)) {
			rc = add_mount_spec(cfg, json_string_value(e), err);
		} else if (json_is_object(e)) {
			json_t *src = json_object_get(e, "source");
			json_t *dst = json_object_get(e, "destination");
			json_t *ro = json_object_get(e, "readonly");

			if (!json_is_string(src) || !json_is_string(dst) ||
			    (ro && !json_is_boolean(ro)))
				return yun_err_set(
				    err, EINVAL,
				    "%s: \"mounts\"[%zu] needs \"source\" and "
				    "\"destination\" strings (and \"readonly\": bool)",
				    origin, i);
			rc = add_mount(cfg, json_string_value(src), json_string_value(dst),
				       json_is_true(ro), err);
		} else {
			return yun_err_set(err, EINVAL,
					   "%s: \"mounts\"[%zu] must be \"SRC:DST[:ro]\" or "
					   "an object",
					   origin, i);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int json_field(struct ct_config *cfg, const char *key, json_t *v, const char *origin,
		      struct yun_err *err)
{
	char text[64];
	int rc;

	if (!strcmp(key, "rootfs") || !strcmp(key, "image") || !strcmp(key, "name") ||
	    !strcmp(key, "hostname") || !strcmp(key, "cwd") || !strcmp(key, "cpuset") ||
	    !strcmp(key, "net") || !strcmp(key, "console") || !strcmp(key, "userns")) {
		rc = yun_json_want_string(v, key, origin, err);
		if (rc)
			return rc;
		const char *s = json_string_value(v);

		if (!strcmp(key, "rootfs"))
			return yun_str_set(&cfg->rootfs, s, err);
		if (!strcmp(key, "image"))
			return yun_str_set(&cfg->image, s, err);
		if (!strcmp(key, "name"))
			return yun_str_set(&cfg->id, s, err);
		if (!strcmp(key, "hostname"))
			return yun_str_set(&cfg->hostname, s, err);
		if (!strcmp(key, "cwd"))
			return yun_str_set(&cfg->cwd, s, err);
		if (!strcmp(key, "net"))
			return set_net(cfg, s, err);
		if (!strcmp(key, "console"))
			return set_console(cfg, s, err);
		if (!strcmp(key, "userns"))
			return set_userns(cfg, s, err);
		if (strlen(s) >= sizeof(cfg->limits.cpuset))
			return yun_err_set(err, EINVAL, "cpuset %s: too long", s);
		snprintf(cfg->limits.cpuset, sizeof(cfg->limits.cpuset), "%s", s);
		return 0;
	}
	if (!strcmp(key, "overlay"))
		return yun_json_get_bool(v, key, &cfg->overlay, origin, err);
	if (!strcmp(key, "keep"))
		return yun_json_get_bool(v, key, &cfg->keep, origin, err);
	if (!strcmp(key, "stop_signal")) {
		rc = json_as_text(v, key, origin, text, sizeof(text), err);
		return rc ? rc : ct_parse_signal(text, &cfg->stop_signal, err);
	}
	if (!strcmp(key, "detach"))
		return yun_json_get_bool(v, key, &cfg->detach, origin, err);
	if (!strcmp(key, "mounts"))
		return json_mounts(cfg, v, origin, err);
	if (!strcmp(key, "env"))
		return json_string_list(v, key, origin, add_env, cfg, err);
	if (!strcmp(key, "uid_map"))
		return json_string_list(v, key, origin, add_uid_map, cfg, err);
	if (!strcmp(key, "gid_map"))
		return json_string_list(v, key, origin, add_gid_map, cfg, err);
	if (!strcmp(key, "command")) {
		clear_argv(cfg);
		return json_string_list(v, key, origin, add_arg, cfg, err);
	}
	if (!strcmp(key, "cpus") || !strcmp(key, "memory") || !strcmp(key, "memory_swap") ||
	    !strcmp(key, "pids") || !strcmp(key, "cpu_shares") || !strcmp(key, "blkio_weight")) {
		uint64_t n;

		rc = json_as_text(v, key, origin, text, sizeof(text), err);
		if (rc)
			return rc;
		if (!strcmp(key, "cpus"))
			return set_cpus(cfg, text, err);
		if (!strcmp(key, "memory"))
			return set_memory(cfg, text, err);
		if (!strcmp(key, "memory_swap"))
			return set_swap(cfg, text, err);
		if (!strcmp(key, "pids"))
			return set_count("pids", text, 1, CT_PIDS_MAX, &cfg->limits.pids, err);
		if (!strcmp(key, "cpu_shares"))
			return set_count("cpu-shares", text, CT_SHARES_MIN, CT_SHARES_MAX,
					 &cfg->limits.cpu_shares, err);
		rc = set_count("blkio-weight", text, CT_BLKIO_MIN, CT_BLKIO_MAX, &n, err);
		if (!rc)
			cfg->limits.blkio_weight = (uint16_t)n;
		return rc;
	}
	return yun_err_set(err, EINVAL, "%s: unknown setting \"%s\"", origin, key);
}

static int config_apply_json(struct ct_config *cfg, json_t *root, const char *origin,
			     struct yun_err *err)
{
	json_t *v;
	const char *key;
	int rc = 0;

	json_object_foreach(root, key, v)
	{
		rc = json_field(cfg, key, v, origin, err);
		if (rc)
			break;
	}
	return rc;
}

int ct_config_parse_json(struct ct_config *cfg, const char *text, const char *origin,
			 struct yun_err *err)
{
	char where[YUN_ERR_MSG_MAX / 2];
	json_t *root;
	int rc;

	snprintf(where, sizeof(where), "config %s", origin);
	rc = yun_json_parse_object(text, strlen(text), where, &root, err);
	if (rc)
		return rc;
	rc = config_apply_json(cfg, root, where, err);
	json_decref(root);
	return rc;
}

static int config_load_file(struct ct_config *cfg, const char *path, struct yun_err *err)
{
	char where[YUN_ERR_MSG_MAX / 2];
	json_t *root;
	int rc;

	rc = yun_json_load_object("config", path, CONFIG_FILE_MAX, &root, err);
	if (rc)
		return rc;
	snprintf(where, sizeof(where), "config %s", path);
	rc = config_apply_json(cfg, root, where, err);
	json_decref(root);
	return rc;
}

static json_t *strv_json(char **v)
{
	json_t *a = json_array();

	for (char **p = v; a && p && *p; p++)
		json_array_append_new(a, json_string(*p));
	return a;
}

static json_t *idmap_json(const struct ct_idmap *m, size_t n)
{
	json_t *a = json_array();
	char buf[48];

	for (size_t i = 0; a && i < n; i++) {
		snprintf(buf, sizeof(buf), "%u:%u:%u", m[i].inside, m[i].outside, m[i].count);
		json_array_append_new(a, json_string(buf));
	}
	return a;
}

static const char *net_name(enum ct_net_mode m)
{
	switch (m) {
	case CT_NET_HOST:
		return "host";
	case CT_NET_NETNS:
		return "netns";
	case CT_NET_VETH:
		return "veth";
	default:
		return "none";
	}
}

/*
 * "MODE" or "MODE=ARG" as a JSON string. Allocated to fit: a fixed buffer
 * would cut a long netns path, perhaps inside a UTF-8 sequence, and then
 * json_string() refuses it and the key goes missing.
 */
static json_t *mode_arg_json(const char *mode, const char *arg)
{
	json_t *j;
	char *s;

	if (!arg)
		return json_string(mode);
	if (asprintf(&s, "%s=%s", mode, arg) < 0)
		return NULL;
	j = json_string(s);
	free(s);
	return j;
}

json_t *ct_config_to_json(const struct ct_config *cfg)
{
	json_t *o = json_object(), *mounts = json_array();
	char buf[64];

	if (!o || !mounts) {
		json_decref(o);
		json_decref(mounts);
		return NULL;
	}
	if (cfg->id)
		json_object_set_new(o, "name", json_string(cfg->id));
	/* With an image, rootfs is derived from it: writing both would not read back. */
	if (cfg->rootfs && !cfg->image)
		json_object_set_new(o, "rootfs", json_string(cfg->rootfs));
	if (cfg->image)
		json_object_set_new(o, "image", json_string(cfg->image));
	json_object_set_new(o, "overlay", json_boolean(cfg->overlay));
	if (cfg->hostname)
		json_object_set_new(o, "hostname", json_string(cfg->hostname));
	if (cfg->limits.cpus > 0)
		json_object_set_new(o, "cpus", json_real(cfg->limits.cpus));
	if (cfg->limits.cpu_shares)
		json_object_set_new(o, "cpu_shares", json_integer(cfg->limits.cpu_shares));
	if (cfg->limits.cpuset[0])
		json_object_set_new(o, "cpuset", json_string(cfg->limits.cpuset));
	if (cfg->limits.memory_bytes) {
		snprintf(buf, sizeof(buf), "%lluK",
			 (unsigned long long)(cfg->limits.memory_bytes >> 10));
		json_object_set_new(o, "memory", json_string(buf));
	}
	if (cfg->limits.swap_bytes >= 0) {
		snprintf(buf, sizeof(buf), "%lldK", (long long)(cfg->limits.swap_bytes >> 10));
		json_object_set_new(o, "memory_swap", json_string(buf));
	}
	if (cfg->limits.pids)
		json_object_set_new(o, "pids", json_integer(cfg->limits.pids));
	if (cfg->limits.blkio_weight)
		json_object_set_new(o, "blkio_weight", json_integer(cfg->limits.blkio_weight));
	json_object_set_new(o, "net", mode_arg_json(net_name(cfg->net), cfg->net_arg));
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		json_t *m =
		    json_pack("{s:s, s:s, s:b}", "source", cfg->mounts[i].src, "destination",
			      cfg->mounts[i].dst, "readonly", cfg->mounts[i].ro);
		json_array_append_new(mounts, m);
	}
	json_object_set_new(o, "mounts", mounts);
	switch (cfg->console) {
	case CT_CONSOLE_STDIO:
		json_object_set_new(o, "console", json_string("stdio"));
		break;
	case CT_CONSOLE_PTY:
		json_object_set_new(o, "console", json_string("pty"));
		break;
	case CT_CONSOLE_SOCKET:
		json_object_set_new(o, "console", mode_arg_json("socket", cfg->console_path));
		break;
	default:
		break;
	}
	if (cfg->userns == CT_USERNS_AUTO)
		json_object_set_new(o, "userns", json_string("auto"));
	/* Maps read back as CT_USERNS_MAP: write them only in that mode. */
	if (cfg->userns == CT_USERNS_MAP) {
		json_object_set_new(o, "uid_map", idmap_json(cfg->uid_map, cfg->n_uid_map));
		json_object_set_new(o, "gid_map", idmap_json(cfg->gid_map, cfg->n_gid_map));
	}
	if (cfg->env)
		json_object_set_new(o, "env", strv_json(cfg->env));
	if (cfg->cwd)
		json_object_set_new(o, "cwd", json_string(cfg->cwd));
	if (cfg->argv)
		json_object_set_new(o, "command", strv_json(cfg->argv));
	json_object_set_new(o, "keep", json_boolean(cfg->keep));
	if (cfg->stop_signal)
		json_object_set_new(o, "stop_signal", json_integer(cfg->stop_signal));
	return o;
}

/* ---- flags ---- */

enum {
	OPT_ROOTFS = 256,
	OPT_IMAGE,
	OPT_OVERLAY,
	OPT_NAME,
	OPT_HOSTNAME,
	OPT_CPUS,
	OPT_SHARES,
	OPT_CPUSET,
	OPT_MEMORY,
	OPT_SWAP,
	OPT_PIDS,
	OPT_BLKIO,
	OPT_NET,
	OPT_MOUNT,
	OPT_CONSOLE,
	OPT_USERNS,
	OPT_UID_MAP,
	OPT_GID_MAP,
	OPT_CWD,
	OPT_KEEP,
	OPT_STOP_SIGNAL,
	OPT_CONFIG,
};

static const struct option run_options[] = {
    {"rootfs", required_argument, NULL, OPT_ROOTFS},
    {"image", required_argument, NULL, OPT_IMAGE},
    {"overlay", no_argument, NULL, OPT_OVERLAY},
    {"name", required_argument, NULL, OPT_NAME},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"cpu-shares", required_argument, NULL, OPT_SHARES},
    {"cpuset", required_argument, NULL, OPT_CPUSET},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"memory-swap", required_argument, NULL, OPT_SWAP},
    {"pids", required_argument, NULL, OPT_PIDS},
    {"blkio-weight", required_argument, NULL, OPT_BLKIO},
    {"net", required_argument, NULL, OPT_NET},
    {"mount", required_argument, NULL, OPT_MOUNT},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"tty", no_argument, NULL, 't'},
    {"userns", required_argument, NULL, OPT_USERNS},
    {"uid-map", required_argument, NULL, OPT_UID_MAP},
    {"gid-map", required_argument, NULL, OPT_GID_MAP},
    {"env", required_argument, NULL, 'e'},
    {"cwd", required_argument, NULL, OPT_CWD},
    {"detach", no_argument, NULL, 'd'},
    {"keep", no_argument, NULL, OPT_KEEP},
    {"stop-signal", required_argument, NULL, OPT_STOP_SIGNAL},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int run_option(struct ct_config *cfg, int c, const char *arg, struct yun_err *err)
{
	uint64_t n = 0;
	int rc;

	switch (c) {
	case OPT_ROOTFS:
		return yun_str_set(&cfg->rootfs, arg, err);
	case OPT_IMAGE:
		return yun_str_set(&cfg->image, arg, err);
	case OPT_OVERLAY:
		cfg->overlay = true;
		return 0;
	case OPT_NAME:
		return yun_str_set(&cfg->id, arg, err);
	case OPT_HOSTNAME:
		return yun_str_set(&cfg->hostname, arg, err);
	case OPT_CPUS:
		return set_cpus(cfg, arg, err);
	case OPT_SHARES:
		return set_count("cpu-shares", arg, CT_SHARES_MIN, CT_SHARES_MAX,
				 &cfg->limits.cpu_shares, err);
	case OPT_CPUSET:
		if (strlen(arg) >= sizeof(cfg->limits.cpuset))
			return yun_err_set(err, EINVAL, "cpuset %s: too long", arg);
		snprintf(cfg->limits.cpuset, sizeof(cfg->limits.cpuset), "%s", arg);
		return 0;
	case OPT_MEMORY:
		return set_memory(cfg, arg, err);
	case OPT_SWAP:
		return set_swap(cfg, arg, err);
	case OPT_PIDS:
		return set_count("pids", arg, 1, CT_PIDS_MAX, &cfg->limits.pids, err);
	case OPT_BLKIO:
		rc = set_count("blkio-weight", arg, CT_BLKIO_MIN, CT_BLKIO_MAX, &n, err);
		if (!rc)
			cfg->limits.blkio_weight = (uint16_t)n;
		return rc;
	case OPT_NET:
		return set_net(cfg, arg, err);
	case OPT_MOUNT:
		return add_mount_spec(cfg, arg, err);
	case OPT_CONSOLE:
		return set_console(cfg, arg, err);
	case 't':
		cfg->console = CT_CONSOLE_PTY;
		return 0;
	case OPT_USERNS:
		return set_userns(cfg, arg, err);
	case OPT_UID_MAP:
		return add_idmap(cfg, true, arg, err);
	case OPT_GID_MAP:
		return add_idmap(cfg, false, arg, err);
	case 'e':
		return add_env(cfg, arg, err);
	case OPT_CWD:
		return yun_str_set(&cfg->cwd, arg, err);
	case 'd':
		cfg->detach = true;
		return 0;
	case OPT_KEEP:
		cfg->keep = true;
		return 0;
	case OPT_STOP_SIGNAL:
		return ct_parse_signal(arg, &cfg->stop_signal, err);
	case OPT_CONFIG:
		return config_load_file(cfg, arg, err);
	case 'h':
		cfg->help = true;
		return 0;
	default:
		return yun_err_set(err, EINVAL, "internal: option %d", c);
	}
}

int ct_config_parse_args(struct ct_config *cfg, int argc, char **argv, struct yun_err *err)
{
	int c, rc = 0;

	optind = 1;
	opterr = 0;
	/* "+": stop at the first non-option, the command. */
	while (!rc && (c = getopt_long(argc, argv, "+:e:tdh", run_options, NULL)) != -1) {
		if (c == ':')
			return yun_err_set(err, EINVAL, "option %s needs a value",
					   argv[optind - 1]);
		if (c == '?')
			return yun_err_set(err, EINVAL, "unknown option %s (see yun-ct run --help)",
					   argv[optind - 1]);
		rc = run_option(cfg, c, optarg, err);
	}
	if (rc)
		return rc;
	if (optind < argc) {
		clear_argv(cfg);
		for (int i = optind; i < argc; i++) {
			rc = strv_push(&cfg->argv, &cfg->argc, argv[i], err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- validation ---- */

static int check_hostname(const char *h, struct yun_err *err)
{
	size_t len = strlen(h);

	if (len == 0 || len > CT_HOSTNAME_MAX)
		return yun_err_set(err, EINVAL, "hostname \"%s\": must be 1 to %d characters", h,
				   CT_HOSTNAME_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = h[i];

		if (!isalnum(c) && c != '-' && c != '.')
			return yun_err_set(err, EINVAL,
					   "hostname %s: only letters, digits, '-' and '.' allowed",
					   h);
	}
	if (h[0] == '-' || h[0] == '.')
		return yun_err_set(err, EINVAL, "hostname %s: must start with a letter or digit",
				   h);
	return 0;
}

static int check_ifname(const char *n, struct yun_err *err)
{
	size_t len = strlen(n);

	if (len == 0 || len > 15)
		return yun_err_set(err, EINVAL,
				   "net veth=%s: interface names are 1 to 15 characters", n);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = n[i];

		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return yun_err_set(err, EINVAL,
					   "net veth=%s: only letters, digits, '-', '_' and '.' "
					   "allowed in interface names",
					   n);
	}
	if (!strcmp(n, ".") || !strcmp(n, ".."))
		return yun_err_set(err, EINVAL, "net veth=%s: not an interface name", n);
	return 0;
}

/* cpuset list syntax: "0", "0-3", "0,2-3"; each CPU below 1024. */
static int check_cpuset(const char *s, struct yun_err *err)
{
	const char *p = s;

	while (*p) {
		unsigned long a, b;
		char *end;

		if (!isdigit((unsigned char)*p))
			goto bad;
		a = strtoul(p, &end, 10);
		b = a;
		if (*end == '-') {
			p = end + 1;
			if (!isdigit((unsigned char)*p))
				goto bad;
			b = strtoul(p, &end, 10);
		}
		if (a > b || b >= 1024)
			goto bad;
		p = end;
		if (*p == ',' && p[1])
			p++;
		else if (*p)
			goto bad;
	}
	return 0;
bad:
	return yun_err_set(err, EINVAL, "cpuset \"%s\": not a CPU list like 0-1 or 0,2", s);
}

/* Container paths: absolute, no "..", no empty components beyond slashes. */
static int check_container_path(const char *what, const char *p, struct yun_err *err)
{
	const char *c = p;

	if (p[0] != '/')
		return yun_err_set(err, EINVAL, "%s %s: must be an absolute path", what, p);
	if (strlen(p) >= PATH_MAX)
		return yun_err_set(err, ENAMETOOLONG, "%s: path too long", what);
	while ((c = strstr(c, "..")) != NULL) {
		if ((c == p || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
			return yun_err_set(err, EINVAL, "%s %s: must not contain \"..\"", what, p);
		c += 2;
	}
	return 0;
}

static int check_idmaps(const char *what, const struct ct_idmap *m, size_t n, struct yun_err *err)
{
	bool root = false;

	if (n == 0)
		return yun_err_set(err, EINVAL,
				   "%s: none given (a user namespace needs both "
				   "--uid-map and --gid-map)",
				   what);
	for (size_t i = 0; i < n; i++) {
		if (m[i].inside == 0)
			root = true;
		/* In 64 bits: a range may end at 2^32, which wraps to 0 in 32. */
		for (size_t j = 0; j < i; j++) {
			bool in = m[i].inside < (uint64_t)m[j].inside + m[j].count &&
				  m[j].inside < (uint64_t)m[i].inside + m[i].count;
			bool out = m[i].outside < (uint64_t)m[j].outside + m[j].count &&
				   m[j].outside < (uint64_t)m[i].outside + m[i].count;

			if (in || out)
				return yun_err_set(err, EINVAL, "%s: ranges %zu and %zu overlap",
						   what, j + 1, i + 1);
		}
	}
	if (!root)
		return yun_err_set(err, EINVAL, "%s: must map id 0 (the container's root)", what);
	return 0;
}

int ct_config_validate(const struct ct_config *cfg, struct yun_err *err)
{
	int rc;

	if (!cfg->rootfs && !cfg->image)
		return yun_err_set(err, EINVAL,
				   "no root file system given (--rootfs DIR or "
				   "--image DIR)");
	if (cfg->rootfs && cfg->image)
		return yun_err_set(err, EINVAL, "--rootfs and --image: give only one");
	if (cfg->id && (rc = ct_parse_id(cfg->id, err)))
		return rc;
	if (cfg->hostname && (rc = check_hostname(cfg->hostname, err)))
		return rc;
	if (cfg->limits.cpus != 0 && (cfg->limits.cpus < CT_CPUS_MIN || cfg->limits.cpus > 1024))
		return yun_err_set(err, ERANGE, "cpus %g: must be from %.2f to 1024",
				   cfg->limits.cpus, CT_CPUS_MIN);
	if (cfg->limits.cpu_shares &&
	    (cfg->limits.cpu_shares < CT_SHARES_MIN || cfg->limits.cpu_shares > CT_SHARES_MAX))
		return yun_err_set(err, ERANGE, "cpu-shares %llu: must be from %d to %d",
				   (unsigned long long)cfg->limits.cpu_shares, CT_SHARES_MIN,
				   CT_SHARES_MAX);
	if (cfg->limits.cpuset[0] && (rc = check_cpuset(cfg->limits.cpuset, err)))
		return rc;
	if (cfg->limits.memory_bytes && cfg->limits.memory_bytes < (CT_MEMORY_MIN_MIB << 20))
		return yun_err_set(err, ERANGE, "memory %llu KiB: must be at least %d MiB",
				   (unsigned long long)(cfg->limits.memory_bytes >> 10),
				   CT_MEMORY_MIN_MIB);
	if (cfg->limits.swap_bytes >= 0 && !cfg->limits.memory_bytes)
		return yun_err_set(err, EINVAL, "memory-swap: needs --memory as well");
	if (cfg->limits.pids > CT_PIDS_MAX)
		return yun_err_set(err, ERANGE, "pids %llu: must be from 1 to %d",
				   (unsigned long long)cfg->limits.pids, CT_PIDS_MAX);
	if (cfg->limits.blkio_weight &&
	    (cfg->limits.blkio_weight < CT_BLKIO_MIN || cfg->limits.blkio_weight > CT_BLKIO_MAX))
		return yun_err_set(err, ERANGE, "blkio-weight %u: must be from %d to %d",
				   cfg->limits.blkio_weight, CT_BLKIO_MIN, CT_BLKIO_MAX);
	if (cfg->net == CT_NET_VETH && (rc = check_ifname(cfg->net_arg, err)))
		return rc;
	if (cfg->net == CT_NET_NETNS && (!cfg->net_arg || cfg->net_arg[0] != '/'))
		return yun_err_set(err, EINVAL, "net netns=%s: must be an absolute path",
				   cfg->net_arg ? cfg->net_arg : "");
	if (cfg->console == CT_CONSOLE_SOCKET &&
	    (!cfg->console_path || cfg->console_path[0] != '/' || strlen(cfg->console_path) >= 108))
		return yun_err_set(err, EINVAL,
				   "console socket=%s: must be an absolute path under 108 bytes",
				   cfg->console_path ? cfg->console_path : "");
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct ct_mount *m = &cfg->mounts[i];

		if (m->src[0] != '/')
			return yun_err_set(err, EINVAL,
					   "mount %s: the source must be an absolute path", m->src);
		rc = check_container_path("mount destination", m->dst, err);
		if (rc)
			return rc;
		if (!strcmp(m->dst, "/") || !strcmp(m->dst, "/dev") ||
		    !strcmp(m->dst, "/dev/pts") || ct_path_is_under(m->dst, "/proc") ||
		    ct_path_is_under(m->dst, "/sys"))
			return yun_err_set(err, EINVAL,
					   "mount destination %s: must not be /, /dev, /dev/pts or "
					   "under /proc or /sys",
					   m->dst);
	}
	if (cfg->cwd && (rc = check_container_path("cwd", cfg->cwd, err)))
		return rc;
	if (cfg->userns == CT_USERNS_MAP) {
		rc = check_idmaps("uid-map", cfg->uid_map, cfg->n_uid_map, err);
		if (!rc)
			rc = check_idmaps("gid-map", cfg->gid_map, cfg->n_gid_map, err);
		if (rc)
			return rc;
	}
	if (cfg->argv && !cfg->argv[0][0])
		return yun_err_set(err, EINVAL, "command: empty program name");
	return 0;
}

/* ---- host checks ---- */

static int check_dir(const char *what, const char *path, struct yun_err *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return yun_err_errno(err, errno, "%s %s", what, path);
	if (!S_ISDIR(st.st_mode))
		return yun_err_set(err, ENOTDIR, "%s %s: not a directory", what, path);
	return 0;
}

/* Directories whose paths end up in overlayfs's option string. */
static int check_overlay_path(const char *what, const char *path, struct yun_err *err)
{
	if (strpbrk(path, ",:\\"))
		return yun_err_set(err, EINVAL,
				   "%s %s: ',', ':' and '\\' cannot be used in an "
				   "overlay layer path",
				   what, path);
	return 0;
}

/*
 * -ENOENT and -EACCES are kept for "the command is not there / not
 * executable" (exit status 127 / 126); other failures use other codes.
 */
static int not_command(int rc, struct yun_err *err)
{
	if (rc == -ENOENT || rc == -EACCES) {
		if (err)
			err->code = EINVAL;
		return -EINVAL;
	}
	return rc;
}

static long host_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? n : 1;
}

int ct_config_check_host(struct ct_config *cfg, struct yun_err *err)
{
	struct sysinfo si;
	const char *root;
	char *canon;
	int rc;

	if (cfg->image) {
		struct image img;

		rc = image_open(cfg->image, &img, err);
		if (rc)
			return not_command(rc, err);
		free(cfg->rootfs);
		cfg->rootfs = img.rootfs;
		img.rootfs = NULL;
		cfg->overlay = true;
		if (!cfg->argv) {
			cfg->argv = img.command;
			cfg->argc = img.command_len;
			img.command = NULL;
		}
		image_close(&img);
		if (!cfg->rootfs)
			return yun_err_set(err, ENOMEM, "out of memory");
	}
	root = cfg->rootfs;
	rc = check_dir(cfg->image ? "image rootfs" : "rootfs", root, err);
	if (rc)
		return not_command(rc, err);
	/* Store the canonical path: the supervisor does not run in the caller's cwd. */
	canon = realpath(root, NULL);
	if (!canon)
		return not_command(yun_err_errno(err, errno, "rootfs %s", root), err);
	free(cfg->rootfs);
	cfg->rootfs = canon;
	if (cfg->overlay && (rc = check_overlay_path("rootfs", cfg->rootfs, err)))
		return rc;
	if (!cfg->argv) {
		rc = strv_push(&cfg->argv, &cfg->argc, "/bin/sh", err);
		if (rc)
			return rc;
	}
	rc = ct_mounts_find_command(cfg->rootfs, cfg->argv[0], cfg->env, NULL, 0, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < cfg->n_mounts; i++) {
		char *src = NULL;

		rc = ct_mounts_check_source(cfg->mounts[i].src, &src, err);
		if (rc)
			return not_command(rc, err);
		free(cfg->mounts[i].src);
		cfg->mounts[i].src = src;
	}
	if (cfg->limits.cpus > (double)host_cpus())
		return yun_err_set(err, ERANGE, "cpus %g: this host has only %ld CPUs",
				   cfg->limits.cpus, host_cpus());
	if (cfg->limits.memory_bytes && sysinfo(&si) == 0 &&
	    cfg->limits.memory_bytes > (uint64_t)si.totalram * si.mem_unit)
		return yun_err_set(err, ERANGE, "memory %llu MiB: this host has only %llu MiB",
				   (unsigned long long)(cfg->limits.memory_bytes >> 20),
				   (unsigned long long)((uint64_t)si.totalram * si.mem_unit >> 20));
	if (cfg->net == CT_NET_NETNS) {
		struct stat st;

		if (stat(cfg->net_arg, &st) < 0)
			return not_command(yun_err_errno(err, errno, "net netns=%s", cfg->net_arg),
					   err);
	}
	if (cfg->console == CT_CONSOLE_SOCKET) {
		struct stat st;

		if (lstat(cfg->console_path, &st) == 0)
			return yun_err_set(err, EEXIST,
					   "console socket=%s: the path already exists",
					   cfg->console_path);
	}
	return 0;
}

void ct_config_resolve_console(struct ct_config *cfg, bool stdin_is_tty)
{
	if (cfg->console == CT_CONSOLE_AUTO)
		cfg->console = stdin_is_tty ? CT_CONSOLE_PTY : CT_CONSOLE_STDIO;
}
