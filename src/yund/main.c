/*
 * main.c - yund, Yun's single-node cloud daemon (docs/yund.md).
 *
 * Start-up: settings, the root and run directories (one yund per root: a
 * lock), the store, this host's row, the default flavors, the reconcile
 * loop, the HTTP server. Then the main thread waits for SIGTERM/SIGINT
 * and shuts down in the reverse order. Instances keep running: their
 * yun-ct processes are in sessions of their own, and the next yund adopts
 * them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "api/server.h"
#include "compute/ctdrv.h"
#include "compute/vmdrv.h"
#include "compute/vmmapi.h"
#include "compute/host.h"
#include "compute/reconcile.h"
#include "core/events.h"
#include "core/fs.h"
#include "core/object.h"
#include "store/sqlite.h"
#include "yund.h"

#ifndef YUND_SOURCE_ROOT
#define YUND_SOURCE_ROOT ""
#endif

static const char usage[] =
    "usage: yund [options]\n"
    "\n"
    "Yun's single-node cloud daemon: the REST API (docs/api/yund.yaml) on a\n"
    "Unix socket, the store, and the loop that runs instances. Runs in the\n"
    "foreground (`yun up` starts it in the background); SIGTERM stops it,\n"
    "instances keep running and are adopted at the next start.\n"
    "\n"
    "  --root DIR               state: yund.db, images/, instances/, token\n"
    "                           (default $YUN_ROOT or /var/lib/yun)\n"
    "  --run DIR                run-time files: yund.sock, ct/ (yun-ct's state)\n"
    "                           (default $YUN_RUN or /run/yun)\n"
    "  --socket PATH            the API's Unix socket (default <run>/yund.sock)\n"
    "  --listen ADDR:PORT       also serve on TCP, with a bearer token (off by default)\n"
    "  --token-file FILE        the token for TCP (default <root>/token; made 0600\n"
    "                           with a random token when missing)\n"
    "  --cpu-overcommit R       vCPUs handed out per host CPU (default 4)\n"
    "  --memory-overcommit R    memory handed out per MiB of host memory (default 1)\n"
    "  --yun-ct PATH            the yun-ct binary (default: next to yund in the\n"
    "                           build tree, or in --libexec)\n"
    "  --yun-vmm PATH           the yun-vmm binary (default: next to yund in the\n"
    "                           build tree, or in --libexec)\n"
    "  --mkimage PATH           scripts/mkimage (default: the source tree's, or in\n"
    "                           --libexec)\n"
    "  --libexec DIR            where yun-ct and mkimage are\n"
    "  -v, --verbose            log every request\n"
    "  -h, --help               this text\n";

enum {
	OPT_ROOT = 256,
	OPT_RUN,
	OPT_SOCKET,
	OPT_LISTEN,
	OPT_TOKEN_FILE,
	OPT_CPU_OC,
	OPT_MEM_OC,
	OPT_YUN_CT,
	OPT_MKIMAGE,
	OPT_YUN_VMM,
	OPT_LIBEXEC,
};

static const struct option options[] = {
    {"root", required_argument, NULL, OPT_ROOT},
    {"run", required_argument, NULL, OPT_RUN},
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"cpu-overcommit", required_argument, NULL, OPT_CPU_OC},
    {"memory-overcommit", required_argument, NULL, OPT_MEM_OC},
    {"yun-ct", required_argument, NULL, OPT_YUN_CT},
    {"mkimage", required_argument, NULL, OPT_MKIMAGE},
    {"yun-vmm", required_argument, NULL, OPT_YUN_VMM},
    {"libexec", required_argument, NULL, OPT_LIBEXEC},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int set_path(char *dst, size_t len, const char *what, const char *v)
{
	if (!*v || strlen(v) >= len) {
		yun_error("%s \"%s\": must be a path of 1..%zu characters", what, v, len - 1);
		return -1;
	}
	snprintf(dst, len, "%s", v);
	return 0;
}

static int set_ratio(double *dst, const char *what, const char *v)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (!*v || *end || errno || !(d >= 0.1 && d <= 100)) {
		yun_error("%s %s: must be a number from 0.1 to 100", what, v);
		return -1;
	}
	*dst = d;
	return 0;
}

static bool executable(const char *p)
{
	return access(p, X_OK) == 0;
}

/* A helper binary: the flag, --libexec, next to yund (build tree or installed). */
static void find_helper(char *dst, size_t len, const char *libexec, const char *name,
			const char *build_rel, const char *source_rel)
{
	char exe[PATH_MAX], cand[PATH_MAX * 2];
	ssize_t n;

	if (dst[0])
		return;
	if (libexec[0]) {
		fs_path(dst, len, "%s/%s", libexec, name);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		dirname(exe);
		snprintf(cand, sizeof(cand), "%s/%s", exe, build_rel);
		if (executable(cand) && fs_path(dst, len, "%s", cand) == 0)
			return;
		snprintf(cand, sizeof(cand), "%s/%s", exe, name);
		if (executable(cand) && fs_path(dst, len, "%s", cand) == 0)
			return;
	}
	if (source_rel && YUND_SOURCE_ROOT[0]) {
		snprintf(cand, sizeof(cand), "%s/%s", YUND_SOURCE_ROOT, source_rel);
		if (executable(cand) && fs_path(dst, len, "%s", cand) == 0)
			return;
	}
	snprintf(dst, len, "/usr/libexec/yun/%s", name);
}

static int parse_args(int argc, char **argv, struct yund_config *c)
{
	const char *env;
	char libexec[PATH_MAX] = "";
	int opt;

	memset(c, 0, sizeof(*c));
	c->cpu_overcommit = 4.0;
	c->memory_overcommit = 1.0;
	env = getenv("YUN_ROOT");
	snprintf(c->root, sizeof(c->root), "%s", env && *env ? env : "/var/lib/yun");
	env = getenv("YUN_RUN");
	snprintf(c->run, sizeof(c->run), "%s", env && *env ? env : "/run/yun");
	while ((opt = getopt_long(argc, argv, "vh", options, NULL)) != -1) {
		int rc = 0;

		switch (opt) {
		case OPT_ROOT:
			rc = set_path(c->root, sizeof(c->root), "--root", optarg);
			break;
		case OPT_RUN:
			rc = set_path(c->run, sizeof(c->run), "--run", optarg);
			break;
		case OPT_SOCKET:
			rc = set_path(c->socket, sizeof(c->socket), "--socket", optarg);
			break;
		case OPT_LISTEN:
			rc = set_path(c->listen, sizeof(c->listen), "--listen", optarg);
			break;
		case OPT_TOKEN_FILE:
			rc = set_path(c->token_file, sizeof(c->token_file), "--token-file", optarg);
			break;
		case OPT_CPU_OC:
			rc = set_ratio(&c->cpu_overcommit, "--cpu-overcommit", optarg);
			break;
		case OPT_MEM_OC:
			rc = set_ratio(&c->memory_overcommit, "--memory-overcommit", optarg);
			break;
		case OPT_YUN_CT:
			rc = set_path(c->yun_ct, sizeof(c->yun_ct), "--yun-ct", optarg);
			break;
		case OPT_MKIMAGE:
			rc = set_path(c->mkimage, sizeof(c->mkimage), "--mkimage", optarg);
			break;
		case OPT_YUN_VMM:
			rc = set_path(c->yun_vmm, sizeof(c->yun_vmm), "--yun-vmm", optarg);
			break;
		case OPT_LIBEXEC:
			rc = set_path(libexec, sizeof(libexec), "--libexec", optarg);
			break;
		case 'v':
			c->verbose = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs("yund: see yund --help\n", stderr);
			return -1;
		}
		if (rc)
			return -1;
	}
	if (optind < argc) {
		yun_error("unexpected argument \"%s\" (see --help)", argv[optind]);
		return -1;
	}
	if (!c->socket[0] && (size_t)snprintf(c->socket, sizeof(c->socket), "%s/yund.sock",
					      c->run) >= sizeof(c->socket)) {
		yun_error("--run %s: too long", c->run);
		return -1;
	}
	if (c->listen[0] && !c->token_file[0] &&
	    fs_path(c->token_file, sizeof(c->token_file), "%s/token", c->root) < 0) {
		yun_error("--root %s: too long", c->root);
		return -1;
	}
	find_helper(c->yun_ct, sizeof(c->yun_ct), libexec, "yun-ct", "../ct/yun-ct", NULL);
	find_helper(c->mkimage, sizeof(c->mkimage), libexec, "mkimage", "../../scripts/mkimage",
		    "scripts/mkimage");
	find_helper(c->yun_vmm, sizeof(c->yun_vmm), libexec, "yun-vmm", "../vmm/yun-vmm", NULL);
	{
		char real[PATH_MAX];

		if (realpath(c->yun_ct, real))
			snprintf(c->yun_ct, sizeof(c->yun_ct), "%s", real);
		if (realpath(c->mkimage, real))
			snprintf(c->mkimage, sizeof(c->mkimage), "%s", real);
	}
	if (!executable(c->yun_ct)) {
		yun_error("yun-ct %s: not an executable (give --yun-ct PATH)", c->yun_ct);
		return -1;
	}
	return 0;
}

/* Read the token, or make one (0600, 32 random bytes as hex) when the file is missing. */
static int load_token(const char *path, char *token, size_t len)
{
	unsigned char r[32];
	char buf[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 && errno == ENOENT) {
		if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
			yun_error("token: no random bytes");
			return -1;
		}
		for (size_t i = 0; i < sizeof(r); i++)
			snprintf(buf + 2 * i, 3, "%02x", r[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, buf, 64) != 64 || write(fd, "\n", 1) != 1 ||
		    fsync(fd) < 0) {
			yun_error("token file %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
		yun_info("token file %s: made a new token", path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		yun_error("token file %s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		yun_error("token file %s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 16 || strlen(buf) >= len) {
		yun_error("token file %s: the token must be 16..%zu characters on the first line",
			  path, len - 1);
		return -1;
	}
	snprintf(token, len, "%s", buf);
	return 0;
}

#define LOCK_RETRIES  20
#define LOCK_RETRY_US 50000

static int lock_root(const char *root)
{
	char path[PATH_MAX + 16];
	int fd;

	snprintf(path, sizeof(path), "%s/yund.lock", root);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		yun_error("%s: %s", path, strerror(errno));
		return -1;
	}
	/*
	 * A yund killed while forking leaves a child holding the lock (the fd
	 * is close-on-exec) for the few milliseconds until it execs: retry for
	 * up to a second before calling the root taken.
	 */
	for (int i = 0; i < LOCK_RETRIES && flock(fd, LOCK_EX | LOCK_NB) < 0 &&
			errno == EWOULDBLOCK;
	     i++)
		usleep(LOCK_RETRY_US);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		yun_error("root %s: %s", root,
			  errno == EWOULDBLOCK ? "another yund is using it" : strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int prepare_dirs(const struct yund_config *c)
{
	char p[PATH_MAX + 32];
	struct yun_err err = {0};
	int rc;

	/* 0711: a container with its own user namespace must reach its image below. */
	rc = fs_mkdirs(c->root, 0711, &err);
	if (!rc) {
		snprintf(p, sizeof(p), "%s/images", c->root);
		rc = fs_mkdirs(p, 0711, &err);
	}
	if (!rc) {
		snprintf(p, sizeof(p), "%s/instances", c->root);
		rc = fs_mkdirs(p, 0700, &err);
	}
	if (!rc)
		rc = fs_mkdirs(c->run, 0755, &err);
	if (!rc) {
		snprintf(p, sizeof(p), "%s", c->socket);
		rc = fs_mkdirs(dirname(p), 0755, &err);
	}
	if (rc)
		yun_error("%s", err.msg);
	return rc;
}

/* This host's row: the id is made once and kept in the store. */
static int register_host(struct yund *y)
{
	struct store *s = y->store;
	struct yun_err err = {0};
	struct st_host h = {0};
	int rc;

	rc = s->ops->meta_get(s, "host_id", y->host_id, sizeof(y->host_id), &err);
	if (rc == -ENOENT) {
		obj_new_id("h", y->host_id);
		rc = s->ops->meta_set(s, "host_id", y->host_id, &err);
	}
	if (!rc)
		rc = host_probe(y->cfg->root, &h, &err);
	if (rc) {
		yun_error("%s", err.msg);
		return rc;
	}
	snprintf(h.m.id, sizeof(h.m.id), "%s", y->host_id);
	snprintf(h.m.name, sizeof(h.m.name), "%.63s", h.hostname);
	if (obj_check_name("host", h.m.name, NULL) < 0)
		snprintf(h.m.name, sizeof(h.m.name), "%s", y->host_id);
	snprintf(h.m.project, sizeof(h.m.project), OBJ_PROJECT_DEFAULT);
	h.cpu_overcommit = y->cfg->cpu_overcommit;
	h.memory_overcommit = y->cfg->memory_overcommit;
	rc = s->ops->host_put(s, &h, &err);
	if (rc)
		yun_error("%s", err.msg);
	return rc;
}

/* The default flavors, once (a user may delete them afterwards). */
static int seed_flavors(struct yund *y)
{
	static const struct {
		const char *name;
		int64_t vcpus, memory_mib, disk_gib;
	} seeds[] = {
	    {"small", 1, 1024, 20},
	    {"medium", 2, 4096, 40},
	    {"large", 4, 8192, 80},
	    {"xlarge", 8, 16384, 160},
	};
	struct store *s = y->store;
	struct yun_err err = {0};
	char v[8];

	if (s->ops->meta_get(s, "flavors_seeded", v, sizeof(v), NULL) == 0)
		return 0;
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct st_flavor f = {0};
		int rc;

		obj_new_id("fl", f.m.id);
		snprintf(f.m.name, sizeof(f.m.name), "%s", seeds[i].name);
		snprintf(f.m.project, sizeof(f.m.project), OBJ_PROJECT_DEFAULT);
		obj_now(f.m.created_at);
		memcpy(f.m.updated_at, f.m.created_at, sizeof(f.m.updated_at));
		f.vcpus = seeds[i].vcpus;
		f.memory_mib = seeds[i].memory_mib;
		f.disk_gib = seeds[i].disk_gib;
		rc = s->ops->flavor_create(s, &f, &err);
		if (rc && rc != -EEXIST) {
			yun_error("%s", err.msg);
			return rc;
		}
	}
	if (s->ops->meta_set(s, "flavors_seeded", "1", &err) < 0) {
		yun_error("%s", err.msg);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct yund_config cfg;
	struct yund y = {.cfg = &cfg};
	struct api_server *srv = NULL;
	struct yun_err err = {0};
	char ct_root[PATH_MAX + 8], pid_path[PATH_MAX + 16];
	sigset_t sigs;
	int lock_fd, sig, status = 1;

	yun_log_init("yund", YUN_LOG_INFO);
	if (parse_args(argc, argv, &cfg) < 0)
		return 2;
	if (cfg.verbose)
		yun_log_init("yund", YUN_LOG_DEBUG);

	/* Every thread inherits this mask; the main thread takes the signals with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (prepare_dirs(&cfg) < 0)
		return 1;
	lock_fd = lock_root(cfg.root);
	if (lock_fd < 0)
		return 1;
	/* yun-ct's state for our containers: private to this yund (tests run several). */
	snprintf(ct_root, sizeof(ct_root), "%s/ct", cfg.run);
	setenv("YUN_CT_ROOT", ct_root, 1);
	ctdrv_set_binary(cfg.yun_ct);
	vmdrv_set_binary(cfg.yun_vmm); /* a missing one fails microVM starts, not yund */
	if (vmmapi_global_init(&err) < 0) { /* before any thread may use libcurl */
		yun_error("%s", err.msg);
		goto out_lock;
	}
	if (cfg.listen[0] && load_token(cfg.token_file, y.token, sizeof(y.token)) < 0)
		goto out_lock;

	{
		char db[PATH_MAX + 16];

		snprintf(db, sizeof(db), "%s/yund.db", cfg.root);
		if (store_sqlite_open(db, &y.store, &err) < 0) {
			yun_error("%s", err.msg);
			goto out_lock;
		}
	}
	if (register_host(&y) < 0 || seed_flavors(&y) < 0)
		goto out_store;
	y.events = ev_new();
	if (!y.events) {
		yun_error("out of memory");
		goto out_store;
	}
	if (rec_start(&y, &y.rec, &err) < 0) {
		yun_error("%s", err.msg);
		goto out_events;
	}
	if (api_server_start(&y, &srv, &err) < 0) {
		yun_error("%s", err.msg);
		goto out_rec;
	}
	/* For `yun down` when the socket does not answer; the lock is what guards the root. */
	snprintf(pid_path, sizeof(pid_path), "%s/yund.pid", cfg.run);
	{
		char pid[32];

		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		if (fs_write_atomic(pid_path, pid, strlen(pid), 0644, &err) < 0)
			yun_warn("%s", err.msg);
	}
	yun_info("serving on %s%s%s (root %s, yun-ct %s)", cfg.socket,
		 cfg.listen[0] ? " and tcp " : "", cfg.listen, cfg.root, cfg.yun_ct);

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP)
			continue;
		yun_info("%s: shutting down (instances keep running)", strsignal(sig));
		break;
	}
	status = 0;
	ev_close(y.events); /* event streams end, so their connections can close */
	api_server_stop(srv);
	unlink(pid_path);
out_rec:
	rec_stop(y.rec);
out_events:
	ev_close(y.events);
	ev_free(y.events);
out_store:
	y.store->ops->close(y.store);
out_lock:
	close(lock_fd);
	return status;
}
