/* jail.c - see jail.h. */
#include "jail.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#define LDSO_LIST_MAX (64 * 1024) /* the dynamic loader's --list output */

/* Device nodes a VMM may open, made like the host's when the host has them. */
static const struct {
	const char *path;
	mode_t mode;
} jail_devices[] = {
	{ "/dev/kvm", 0600 },
	{ "/dev/net/tun", 0600 },
	{ "/dev/null", 0666 },
	{ "/dev/urandom", 0666 },
};

bool jail_id_valid(const char *id)
{
	size_t n = strlen(id);

	return n >= 1 && n <= JAIL_ID_MAX &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* ---- filling the root ------------------------------------------------------ */

/* "<root><inside>", refusing "..", and making the parent directories (0755, root's). */
static int inside_path(const struct jail *j, const char *inside, char *out, size_t size,
		       struct yun_err *err)
{
	char *p;

	if (inside[0] != '/' || strstr(inside, "/../") || !strcmp(inside, "/") ||
	    (strlen(inside) >= 3 && !strcmp(inside + strlen(inside) - 3, "/..")))
		return yun_err_set(err, EINVAL, "%s: not an absolute path inside the jail", inside);
	if (snprintf(out, size, "%s%s", j->root, inside) >= (int)size)
		return yun_err_set(err, ENAMETOOLONG, "%s: path too long", inside);
	for (p = out + strlen(j->root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(out, 0755) < 0 && errno != EEXIST) {
			int e = errno;

			*p = '/';
			return yun_err_errno(err, e, "jail %s", out);
		}
		*p = '/';
	}
	return 0;
}

/* Copy regular file src to dst (new), owned uid:gid, with `mode`. */
static int copy_file(const char *src, const char *dst, uid_t uid, gid_t gid, mode_t mode,
		     struct yun_err *err)
{
	char buf[64 * 1024];
	struct stat st;
	int in, out, rc = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return yun_err_errno(err, errno, "%s", src);
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = yun_err_set(err, EINVAL, "%s: not a regular file", src);
		close(in);
		return rc;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = yun_err_errno(err, errno, "jail %s", dst);
		close(in);
		return rc;
	}
	while (!rc && (n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno != EINTR)
				rc = yun_err_errno(err, errno, "%s: read", src);
			continue;
		}
		for (ssize_t off = 0, w; !rc && off < n; off += w) {
			w = write(out, buf + off, n - off);
			if (w < 0) {
				w = 0;
				if (errno != EINTR)
					rc = yun_err_errno(err, errno, "jail %s: write", dst);
			}
		}
	}
	if (!rc && (fchown(out, uid, gid) < 0 || fchmod(out, mode) < 0))
		rc = yun_err_errno(err, errno, "jail %s: owner and mode", dst);
	if (close(out) < 0 && !rc)
		rc = yun_err_errno(err, errno, "jail %s", dst);
	close(in);
	return rc;
}

/* The ELF interpreter (PT_INTERP) of `path`; "" for a static program. */
static int elf_interp(const char *path, char *out, size_t size, struct yun_err *err)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	out[0] = '\0';
	if (fd < 0)
		return yun_err_errno(err, errno, "%s", path);
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
		rc = yun_err_set(err, ENOEXEC, "%s: not a 64-bit ELF program", path);
		goto out;
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		if (pread(fd, &ph, sizeof(ph), eh.e_phoff + (off_t)i * sizeof(ph)) != sizeof(ph)) {
			rc = yun_err_set(err, ENOEXEC, "%s: truncated program headers", path);
			break;
		}
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz < 2 || ph.p_filesz > size ||
		    pread(fd, out, ph.p_filesz, ph.p_offset) != (ssize_t)ph.p_filesz ||
		    out[ph.p_filesz - 1] != '\0' || out[0] != '/') {
			out[0] = '\0';
			rc = yun_err_set(err, ENOEXEC, "%s: bad PT_INTERP", path);
		}
		break;
	}
out:
	close(fd);
	return rc;
}

/* Run `interp --list prog`: the libraries the loader would map, one per line. */
static int ldso_list(const char *interp, const char *prog, char *out, size_t size,
		     struct yun_err *err)
{
	int pfd[2], status;
	size_t len = 0;
	pid_t pid;
	ssize_t n;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return yun_err_errno(err, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return yun_err_errno(err, errno, "fork");
	}
	if (pid == 0) {
		char *argv[] = { (char *)interp, "--list", (char *)prog, NULL };
		char *envp[] = { NULL };

		dup2(pfd[1], STDOUT_FILENO);
		execve(interp, argv, envp);
		_exit(127);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], out + len, size - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (len += n) == size - 1)
			break;
	}
	out[len] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || len == size - 1)
		return yun_err_set(err, ENOEXEC, "%s --list %s: failed (status 0x%x)", interp, prog,
				   status);
	return 0;
}

/* Copy the program's shared libraries and loader into the root, at the same paths. */
static int copy_libraries(const struct jail *j, struct yun_err *err)
{
	char interp[PATH_MAX], *list, *line, *save = NULL;
	int rc;

	rc = elf_interp(j->exec, interp, sizeof(interp), err);
	if (rc || !interp[0])
		return rc;
	list = malloc(LDSO_LIST_MAX);
	if (!list)
		return yun_err_set(err, ENOMEM, "out of memory");
	rc = ldso_list(interp, j->exec, list, LDSO_LIST_MAX, err);
	/* Lines: "libx.so.1 => /lib/.../libx.so.1 (0x...)", "/lib64/ld-linux...so.2 (0x...)". */
	for (line = strtok_r(rc ? NULL : list, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *arrow = strstr(line, "=> "), *path, *end, dst[PATH_MAX];
		struct stat st;

		path = arrow ? arrow + 3 : line + strspn(line, " \t");
		if (path[0] != '/')
			continue; /* linux-vdso.so.1: in the kernel */
		end = strchr(path, ' ');
		if (end)
			*end = '\0';
		rc = inside_path(j, path, dst, sizeof(dst), err);
		if (rc)
			break;
		if (lstat(dst, &st) == 0)
			continue; /* listed twice */
		rc = copy_file(path, dst, 0, 0, 0755, err);
		if (rc)
			break;
	}
	free(list);
	return rc;
}

static int make_devices(const struct jail *j, struct yun_err *err)
{
	for (size_t i = 0; i < sizeof(jail_devices) / sizeof(jail_devices[0]); i++) {
		char dst[PATH_MAX];
		struct stat st;
		int rc;

		if (stat(jail_devices[i].path, &st) < 0 || !S_ISCHR(st.st_mode))
			continue; /* this host has none */
		rc = inside_path(j, jail_devices[i].path, dst, sizeof(dst), err);
		if (rc)
			return rc;
		if (mknod(dst, S_IFCHR | jail_devices[i].mode, st.st_rdev) < 0 ||
		    chown(dst, j->uid, j->gid) < 0 || chmod(dst, jail_devices[i].mode) < 0)
			return yun_err_errno(err, errno, "jail %s: mknod %u:%u", dst,
					     major(st.st_rdev), minor(st.st_rdev));
	}
	return 0;
}

static int fill_root(struct jail *j, struct yun_err *err)
{
	const char *base = strrchr(j->exec, '/') ? strrchr(j->exec, '/') + 1 : j->exec;
	char dst[PATH_MAX];
	int rc;

	snprintf(j->exec_inside, sizeof(j->exec_inside), "/%s", base);
	rc = inside_path(j, j->exec_inside, dst, sizeof(dst), err);
	if (!rc)
		rc = copy_file(j->exec, dst, 0, 0, 0755, err);
	if (!rc)
		rc = copy_libraries(j, err);
	if (!rc)
		rc = make_devices(j, err);
	if (!rc && snprintf(dst, sizeof(dst), "%s/proc", j->root) >= (int)sizeof(dst))
		rc = yun_err_set(err, ENAMETOOLONG, "jail %s: path too long", j->root);
	if (!rc && mkdir(dst, 0555) < 0)
		rc = yun_err_errno(err, errno, "jail %s", dst);
	for (unsigned i = 0; !rc && i < j->nr_copies; i++) {
		struct stat st;

		rc = inside_path(j, j->copies[i].dst, dst, sizeof(dst), err);
		if (rc)
			break;
		if (stat(j->copies[i].src, &st) < 0) {
			rc = yun_err_errno(err, errno, "--copy %s", j->copies[i].src);
			break;
		}
		rc = copy_file(j->copies[i].src, dst, j->uid, j->gid, st.st_mode & 0777, err);
	}
	/* Last: the VMM's own directory, where it may make its sockets. */
	if (!rc && (chown(j->root, j->uid, j->gid) < 0 || chmod(j->root, 0700) < 0))
		rc = yun_err_errno(err, errno, "jail %s: owner and mode", j->root);
	return rc;
}

int jail_prepare(struct jail *j, const char *chroot_base, struct yun_err *err)
{
	char parent[PATH_MAX];
	int rc;

	if (snprintf(parent, sizeof(parent), "%s/yun-vmm", chroot_base) >= (int)sizeof(parent) ||
	    snprintf(j->dir, sizeof(j->dir), "%s/%s", parent, j->id) >= (int)sizeof(j->dir) ||
	    snprintf(j->root, sizeof(j->root), "%s/root", j->dir) >= (int)sizeof(j->root))
		return yun_err_set(err, ENAMETOOLONG, "--chroot-base %s: path too long",
				   chroot_base);
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return yun_err_errno(err, errno, "jail %s", parent);
	if (mkdir(j->dir, 0700) < 0)
		return yun_err_errno(err, errno, "jail %s%s", j->dir,
				     errno == EEXIST ? " (another jail with this id, or left over)"
						     : "");
	if (mkdir(j->root, 0700) < 0)
		rc = yun_err_errno(err, errno, "jail %s", j->root);
	else
		rc = fill_root(j, err);
	if (rc) {
		struct yun_err ignored;

		jail_remove(j, &ignored);
	}
	return rc;
}

/* ---- entering -------------------------------------------------------------- */

/* The bounding and ambient sets; setresuid then clears the others. */
static int drop_capability_sets(struct yun_err *err)
{
	/* Needs CAP_SETPCAP, which we still have. */
	for (int cap = 0;; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL)
			break; /* past the last capability this kernel knows */
		return yun_err_errno(err, errno, "drop capability %d from the bounding set", cap);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return yun_err_errno(err, errno, "clear ambient capabilities");
	return 0;
}

/* After setresuid: no capability may be left in any set. */
static int check_no_capabilities(struct yun_err *err)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0 || syscall(SYS_capget, &hdr, data) < 0)
		return yun_err_errno(err, errno, "capabilities");
	for (int i = 0; i < 2; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return yun_err_set(err, EPERM, "capabilities left after setresuid");
	return 0;
}

int jail_enter(const struct jail *j, int netns_fd, struct yun_err *err)
{
	char proc[PATH_MAX];

	if (netns_fd >= 0 ? setns(netns_fd, CLONE_NEWNET) < 0 : unshare(CLONE_NEWNET) < 0)
		return yun_err_errno(err, errno, netns_fd >= 0 ? "setns (--netns)"
							       : "new network namespace");
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return yun_err_errno(err, errno, "new mount, IPC and UTS namespaces");
	/* Nothing we mount from here on may reach the host's mount tree. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return yun_err_errno(err, errno, "make / private");
	/* pivot_root wants a mount point; the remount drops nodev/noexec for the nodes and program. */
	if (mount(j->root, j->root, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, j->root, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID, NULL) < 0)
		return yun_err_errno(err, errno, "bind mount %s", j->root);
	if (snprintf(proc, sizeof(proc), "%s/proc", j->root) >= (int)sizeof(proc))
		return yun_err_set(err, ENAMETOOLONG, "jail %s: path too long", j->root);
	if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return yun_err_errno(err, errno, "mount proc on %s", proc);
	if (chdir(j->root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return yun_err_errno(err, errno, "pivot_root into %s", j->root);
	if (drop_capability_sets(err) < 0)
		return -err->code;
	if (setgroups(0, NULL) < 0)
		return yun_err_errno(err, errno, "setgroups");
	if (setresgid(j->gid, j->gid, j->gid) < 0)
		return yun_err_errno(err, errno, "setresgid %u", (unsigned)j->gid);
	if (setresuid(j->uid, j->uid, j->uid) < 0)
		return yun_err_errno(err, errno, "setresuid %u", (unsigned)j->uid);
	if (check_no_capabilities(err) < 0)
		return -err->code;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return yun_err_errno(err, errno, "no_new_privs");
	/* After setresuid, which clears it: the VMM dies with the jailer. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return yun_err_errno(err, errno, "parent-death signal");
	return 0;
}

/* ---- removing -------------------------------------------------------------- */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int jail_remove(const struct jail *j, struct yun_err *err)
{
	if (!j->dir[0] || access(j->dir, F_OK) < 0)
		return 0;
	if (nftw(j->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
		return yun_err_errno(err, errno, "jail %s: cannot remove", j->dir);
	return 0;
}
