/* vmdrv.c - see vmdrv.h. */
#include "vmdrv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../../lib/file.h"
#include "../core/fs.h"
#include "../core/proc.h"

#define DEFAULT_CMDLINE "console=ttyS0 root=/dev/vda rw"
#define SEED_KIB	2048 /* vfat seed: meta-data (<= 16 x 8 KiB of keys) + <= 64 KiB user-data */
#define CMDLINE_MAX	4096
#define TOOL_PATH	"PATH=/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

static char vmm_exe[PATH_MAX] = "yun-vmm";

void vmdrv_set_binary(const char *yun_vmm)
{
	if (!realpath(yun_vmm, vmm_exe))
		snprintf(vmm_exe, sizeof(vmm_exe), "%s", yun_vmm);
}

const char *vmdrv_binary(void)
{
	return vmm_exe;
}

static void file_in(const char *dir, const char *name, char *buf, size_t len)
{
	fs_path(buf, len, "%s/%s", dir, name);
}

/* ---- the process ---- */

/* /proc/PID/cmdline is exactly `yun-vmm --config <dir>/vm.json`. */
static bool is_our_vmm(pid_t pid, const char *dir)
{
	char path[64], want[PATH_MAX * 2 + 32], got[sizeof(want)], cfg[PATH_MAX + 16];
	size_t wl;
	ssize_t n;
	int fd;

	file_in(dir, "vm.json", cfg, sizeof(cfg));
	wl = (size_t)snprintf(want, sizeof(want), "%s%c--config%c%s", vmm_exe, 0, 0, cfg) + 1;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, got, sizeof(got));
	close(fd);
	return n == (ssize_t)wl && !memcmp(got, want, wl) && proc_alive(pid);
}

pid_t vmdrv_pid(const char *dir)
{
	char path[PATH_MAX + 16], buf[32];
	int fd;
	ssize_t n;
	long pid;

	file_in(dir, "vmm.pid", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	if (pid <= 0 || pid > INT_MAX || !is_our_vmm((pid_t)pid, dir))
		return 0;
	return (pid_t)pid;
}

/* A yun-vmm of this instance without a pid file (yund died between spawn and write). */
static pid_t scan_proc(const char *dir)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0 || pid > INT_MAX)
			continue;
		if (is_our_vmm((pid_t)pid, dir))
			found = (pid_t)pid;
	}
	closedir(d);
	return found;
}

static int write_pid(const char *dir, pid_t pid, struct yun_err *err)
{
	char path[PATH_MAX + 16], buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);

	file_in(dir, "vmm.pid", path, sizeof(path));
	return fs_write_atomic(path, buf, (size_t)n, 0600, err);
}

bool vmdrv_recorded(const char *dir)
{
	char path[PATH_MAX + 16];

	file_in(dir, "vmm.pid", path, sizeof(path));
	return fs_exists(path);
}

void vmdrv_clear(const char *dir)
{
	char path[PATH_MAX + 16];

	file_in(dir, "vmm.pid", path, sizeof(path));
	unlink(path);
}

int vmdrv_signal(const char *dir, bool kill_it, struct yun_err *err)
{
	pid_t pid = vmdrv_pid(dir);

	if (!pid)
		return 0;
	if (kill(pid, kill_it ? SIGKILL : SIGTERM) < 0 && errno != ESRCH)
		return yun_err_errno(err, errno, "yun-vmm %d (%s)", (int)pid, dir);
	return 0;
}

/* ---- helper tools (mkfs.vfat, mcopy): run to the end, output to <dir>/prepare.log ---- */

static int run_tool(const char *dir, char *const argv[], struct yun_err *err)
{
	char log[PATH_MAX + 16], line[300], what[64];
	char *envp[] = {TOOL_PATH, "MTOOLS_SKIP_CHECK=1", "LC_ALL=C", NULL};
	posix_spawn_file_actions_t fa;
	off_t from;
	pid_t pid;
	int rc, ws;

	file_in(dir, "prepare.log", log, sizeof(log));
	from = fs_size(log);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return yun_err_errno(err, rc, "%s (is %s installed? scripts/setup installs it)",
				     argv[0], argv[0]);
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return yun_err_errno(err, errno, "%s: wait", argv[0]);
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return 0;
	fs_last_line(log, from, line, sizeof(line));
	snprintf(what, sizeof(what), "status %d", WIFEXITED(ws) ? WEXITSTATUS(ws) : 128);
	return yun_err_set(err, EIO, "%s failed (%s): %s", argv[0], what, line[0] ? line : "-");
}

/* ---- the root disk ---- */

/* Copy src to dst: a reflink when the filesystem can, else a sparse copy. */
static int copy_sparse(int in, int out, const char *src, struct yun_err *err)
{
	off_t end = lseek(in, 0, SEEK_END), data = 0, hole;

	if (end < 0)
		return yun_err_errno(err, errno, "%s: seek", src);
	if (ioctl(out, FICLONE, in) == 0)
		return 0;
	while (data < end) {
		data = lseek(in, data, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole is left */
			return yun_err_errno(err, errno, "%s: SEEK_DATA", src);
		}
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return yun_err_errno(err, errno, "%s: SEEK_HOLE", src);
		while (data < hole) {
			loff_t ioff = data, ooff = data;
			ssize_t n =
			    copy_file_range(in, &ioff, out, &ooff, (size_t)(hole - data), 0);

			if (n < 0)
				return yun_err_errno(err, errno, "%s: copy", src);
			if (n == 0)
				return yun_err_set(err, EIO, "%s: shorter than it was", src);
			data += n;
		}
	}
	if (ftruncate(out, end) < 0)
		return yun_err_errno(err, errno, "%s: size of the copy", src);
	return 0;
}

/* disk.img: made once from the image's rootfs.ext4; grown (never shrunk) to disk_gib. */
static int make_disk(const struct vmdrv_spec *s, struct yun_err *err)
{
	char disk[PATH_MAX + 16], tmp[PATH_MAX + 16], src[PATH_MAX + 16];
	off_t want = (off_t)s->disk_gib << 30;
	struct stat st;
	int in, out, rc = 0;

	file_in(s->dir, "disk.img", disk, sizeof(disk));
	if (stat(disk, &st) < 0) {
		file_in(s->dir, "disk.img.tmp", tmp, sizeof(tmp));
		file_in(s->image_dir, "rootfs.ext4", src, sizeof(src));
		in = open(src, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			return yun_err_errno(err, errno, "image disk %s", src);
		out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (out < 0) {
			rc = yun_err_errno(err, errno, "%s", tmp);
			close(in);
			return rc;
		}
		rc = copy_sparse(in, out, src, err);
		if (!rc && fsync(out) < 0)
			rc = yun_err_errno(err, errno, "%s: fsync", tmp);
		close(in);
		close(out);
		if (!rc && rename(tmp, disk) < 0)
			rc = yun_err_errno(err, errno, "%s", disk);
		if (rc) {
			unlink(tmp);
			return rc;
		}
		if (stat(disk, &st) < 0)
			return yun_err_errno(err, errno, "%s", disk);
	}
	/* The guest grows its filesystem into the room (cloud-init's resize_rootfs). */
	if (want > st.st_size && truncate(disk, want) < 0)
		return yun_err_errno(err, errno, "%s: grow to %lld GiB", disk,
				     (long long)s->disk_gib);
	return 0;
}

/* ---- the NoCloud seed ---- */

static int write_text(const char *path, const char *text, struct yun_err *err)
{
	return fs_write_atomic(path, text, strlen(text), 0600, err);
}

/*
 * meta-data: YAML as cloud-init's NoCloud reads it. Key lines are checked
 * at the API (printable, one line); each is a double-quoted scalar with
 * '"' and '\\' escaped.
 */
static char *meta_data(const struct vmdrv_spec *s, struct yun_err *err)
{
	json_t *keys = s->ssh_keys ? json_loads(s->ssh_keys, 0, NULL) : NULL, *k;
	char *text = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		json_decref(keys);
		yun_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	fprintf(f, "instance-id: %s\nlocal-hostname: %s\n", s->id, s->hostname);
	if (json_array_size(keys))
		fputs("public-keys:\n", f);
	json_array_foreach(keys, i, k)
	{
		fputs("  - \"", f);
		for (const char *p = json_string_value(k); p && *p; p++) {
			if (*p == '"' || *p == '\\')
				fputc('\\', f);
			fputc(*p, f);
		}
		fputs("\"\n", f);
	}
	json_decref(keys);
	if (fclose(f) != 0 || !text) {
		free(text);
		yun_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	return text;
}

static int make_seed(const struct vmdrv_spec *s, struct yun_err *err)
{
	char md[PATH_MAX + 32], ud[PATH_MAX + 32], tmp[PATH_MAX + 16], seed[PATH_MAX + 16];
	char *meta, *dflt = NULL;
	int rc;

	file_in(s->dir, "meta-data", md, sizeof(md));
	file_in(s->dir, "user-data", ud, sizeof(ud));
	file_in(s->dir, "seed.img.tmp", tmp, sizeof(tmp));
	file_in(s->dir, "seed.img", seed, sizeof(seed));
	meta = meta_data(s, err);
	if (!meta)
		return -err->code;
	rc = write_text(md, meta, err);
	free(meta);
	if (!rc && !s->user_data) {
		if (asprintf(&dflt, "#cloud-config\nhostname: %s\n", s->hostname) < 0)
			return yun_err_set(err, ENOMEM, "out of memory");
	}
	if (!rc)
		rc = write_text(ud, s->user_data ? s->user_data : dflt, err);
	free(dflt);
	unlink(tmp);
	if (!rc) {
		char kib[16];
		char *mkfs[] = {"mkfs.vfat", "-n", "CIDATA", "-C", tmp, kib, NULL};

		snprintf(kib, sizeof(kib), "%d", SEED_KIB);
		rc = run_tool(s->dir, mkfs, err);
	}
	if (!rc) {
		char *mcopy[] = {"mcopy", "-o", "-i", tmp, md, ud, "::", NULL};

		rc = run_tool(s->dir, mcopy, err);
	}
	if (!rc && rename(tmp, seed) < 0)
		rc = yun_err_errno(err, errno, "%s", seed);
	if (rc)
		unlink(tmp);
	unlink(md);
	unlink(ud);
	return rc;
}

/* ---- the VMM config ---- */

void vmdrv_image_cmdline(const char *image_dir, char *buf, size_t len)
{
	char path[PATH_MAX + 32];
	json_t *m, *c;

	snprintf(buf, len, "%s", DEFAULT_CMDLINE);
	file_in(image_dir, "manifest.json", path, sizeof(path));
	m = json_load_file(path, 0, NULL);
	c = json_object_get(m, "cmdline");
	if (json_is_string(c) && json_string_length(c) < CMDLINE_MAX)
		snprintf(buf, len, "%s", json_string_value(c));
	json_decref(m);
}

bool vmdrv_console_socket(const char *dir, char *buf, size_t len)
{
	struct sockaddr_un sa;

	file_in(dir, "console.sock", buf, len);
	return strlen(buf) < sizeof(sa.sun_path) && strlen(buf) + 1 < len;
}

static int write_config(const struct vmdrv_spec *s, struct yun_err *err)
{
	char kernel[PATH_MAX + 16], initrd[PATH_MAX + 16], disk[PATH_MAX + 16];
	char seed[PATH_MAX + 16], cfg[PATH_MAX + 16], cmdline[CMDLINE_MAX];
	char sock[PATH_MAX + 16], serial[PATH_MAX + 32], log[PATH_MAX + 16];
	json_t *o, *disks, *nets;
	char *text;
	int rc;

	file_in(s->image_dir, "kernel", kernel, sizeof(kernel));
	file_in(s->image_dir, "initrd", initrd, sizeof(initrd));
	file_in(s->dir, "disk.img", disk, sizeof(disk));
	file_in(s->dir, "seed.img", seed, sizeof(seed));
	file_in(s->dir, "vm.json", cfg, sizeof(cfg));
	file_in(s->dir, "console.log", log, sizeof(log));
	/* The guest's output goes to the log whether or not a console client is there. */
	if (vmdrv_console_socket(s->dir, sock, sizeof(sock)))
		snprintf(serial, sizeof(serial), "socket=%s", sock);
	else
		snprintf(serial, sizeof(serial), "off"); /* the path does not fit a socket */
	vmdrv_image_cmdline(s->image_dir, cmdline, sizeof(cmdline));
	disks = json_pack("[{s:s, s:s}, {s:s, s:b, s:s}]", "path", disk, "id", "root", "path", seed,
			  "readonly", 1, "id", "cidata");
	if (s->n_volumes > VMDRV_MAX_VOLUMES) {
		json_decref(disks);
		return yun_err_set(err, E2BIG,
				   "instance %s: %zu volumes; a microVM takes at most %d", s->id,
				   s->n_volumes, VMDRV_MAX_VOLUMES);
	}
	for (size_t i = 0; disks && i < s->n_volumes; i++)
		json_array_append_new(disks, json_pack("{s:s, s:b}", "path", s->volumes[i].path,
						       "readonly", s->volumes[i].readonly));
	nets = json_array();
	if (nets && s->tap && *s->tap)
		json_array_append_new(nets, json_pack("{s:s, s:s}", "tap", s->tap, "mac", s->mac));
	o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:o, s:o}", "kernel", kernel, "cmdline",
		      cmdline, "cpus", (json_int_t)s->vcpus, "memory", (json_int_t)s->memory_mib,
		      "serial", serial, "serial_log", log, "disks", disks, "net", nets);
	if (o && fs_exists(initrd))
		json_object_set_new(o, "initrd", json_string(initrd));
	/* In the config, not on the command line: that stays the VM's identity (is_our_vmm). */
	if (o && s->api_sock && *s->api_sock)
		json_object_set_new(o, "api_sock", json_string(s->api_sock));
	text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	if (!text)
		return yun_err_set(err, ENOMEM, "out of memory");
	rc = fs_write_atomic(cfg, text, strlen(text), 0600, err);
	free(text);
	return rc;
}

int vmdrv_start(const struct vmdrv_spec *s, pid_t *pid, bool *adopted, struct yun_err *err)
{
	char cfg[PATH_MAX + 16], log[PATH_MAX + 16];
	struct proc_opts po = {.out_path = log, .setsid = true};
	pid_t found;
	int rc;

	*pid = 0;
	*adopted = false;
	file_in(s->dir, "vm.json", cfg, sizeof(cfg));
	file_in(s->dir, "console.log", log, sizeof(log));
	rc = fs_mkdirs(s->dir, 0700, err);
	if (rc)
		return rc;
	found = scan_proc(s->dir);
	if (found) {
		*adopted = true;
		return write_pid(s->dir, found, err);
	}
	rc = make_disk(s, err);
	if (!rc)
		rc = make_seed(s, err);
	if (!rc)
		rc = write_config(s, err);
	if (rc)
		return rc;
	{
		char *argv[] = {vmm_exe, "--config", cfg, NULL};

		rc = proc_spawn(argv, &po, pid, err);
	}
	if (rc)
		return rc;
	rc = write_pid(s->dir, *pid, err);
	if (rc) {
		kill(*pid, SIGKILL);
		return rc;
	}
	return 0;
}
