/*
 * ct_mounts_test.c - the path rules of yun-ct: which host paths may be
 * bind-mounted into a container, and resolving paths inside a rootfs
 * without symlinks or ".." leading out of it (command lookup, creating
 * mount destinations).
 */
#include "ct/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[64];

static void test_path_is_under(void)
{
	CHECK(ct_path_is_under("/etc", "/etc"));
	CHECK(ct_path_is_under("/etc/passwd", "/etc"));
	CHECK(ct_path_is_under("/etc/passwd", "/etc/"));
	CHECK(!ct_path_is_under("/etcetera", "/etc"));
	CHECK(!ct_path_is_under("/", "/etc"));
	CHECK(ct_path_is_under("/anything", "/"));
	CHECK(!ct_path_is_under("/proc", "/proc/sys"));
}

static void check_denied(const char *path, const char *needle)
{
	struct yun_err err = {0};

	CHECK_EQ(ct_mounts_source_allowed(path, "/run/yun-ct", NULL, &err), -EPERM);
	CHECK_STR_CONTAINS(err.msg, needle);
}

static void test_source_rule(void)
{
	struct yun_err err = {0};

	check_denied("/", "system path /");
	check_denied("/etc", "/etc");
	check_denied("/etc/ssh", "/etc");
	check_denied("/proc/1", "/proc");
	check_denied("/sys", "/sys");
	check_denied("/dev/sda", "/dev");
	check_denied("/boot", "/boot");
	check_denied("/usr/lib", "/usr");
	check_denied("/run/yun-ct/x", "/run");
	check_denied("/root/.ssh", "/root");
	check_denied("/var/lib/yun/images", "/var/lib/yun");
	/* Containing a system area is as bad as being in it. */
	check_denied("/var/lib", "contains the system path /var/lib/yun");
	CHECK_EQ(ct_mounts_source_allowed("/home/alice/data", "/run/yun-ct", NULL, &err), 0);
	CHECK_EQ(ct_mounts_source_allowed("/srv", "/run/yun-ct", NULL, &err), 0);
	CHECK_EQ(ct_mounts_source_allowed("/var/tmp/x", "/run/yun-ct", NULL, &err), 0);
	CHECK_EQ(ct_mounts_source_allowed("/etcetera", "/run/yun-ct", NULL, &err), 0);
	/* The state root, wherever it is. */
	CHECK_EQ(ct_mounts_source_allowed("/tmp/st/abc", "/tmp/st", NULL, &err), -EPERM);
	CHECK_STR_CONTAINS(err.msg, "state directory");
	CHECK_EQ(ct_mounts_source_allowed("/tmp", "/tmp/st", NULL, &err), -EPERM);
	/* The operator's allow list narrows it further. */
	CHECK_EQ(ct_mounts_source_allowed("/srv/data/a", "/run/yun-ct", "/data:/srv/data", &err),
		 0);
	CHECK_EQ(ct_mounts_source_allowed("/srv/other", "/run/yun-ct", "/data:/srv/data", &err),
		 -EPERM);
	CHECK_STR_CONTAINS(err.msg, "YUN_CT_MOUNT_ALLOW");
	/* ...but never widens past the system areas. */
	CHECK_EQ(ct_mounts_source_allowed("/etc", "/run/yun-ct", "/", &err), -EPERM);
}

static void test_check_source_resolves_symlinks(void)
{
	struct yun_err err = {0};
	char link[128], dir[128], *canon = NULL;

	snprintf(link, sizeof(link), "%s/to-etc", tmpdir);
	CHECK_EQ(symlink("/etc", link), 0);
	CHECK_EQ(ct_mounts_check_source(link, &canon, &err), -EPERM);
	CHECK_STR_CONTAINS(err.msg, "mount source /etc");
	snprintf(dir, sizeof(dir), "%s/data", tmpdir);
	mkdir(dir, 0755);
	CHECK_EQ(ct_mounts_check_source(dir, &canon, &err), 0);
	CHECK(canon && !strcmp(canon, dir));
	free(canon);
	CHECK_EQ(ct_mounts_check_source("/nonexistent/x", &canon, &err), -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "/nonexistent/x");
}

static void make_file(const char *root, const char *rel, mode_t mode)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fd = open(path, O_CREAT | O_WRONLY, mode);
	close(fd);
	chmod(path, mode);
}

static void test_find_command(void)
{
	struct yun_err err = {0};
	char root[128], path[256], found[256];

	snprintf(root, sizeof(root), "%s/rootfs", tmpdir);
	mkdir(root, 0755);
	snprintf(path, sizeof(path), "%s/bin", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/opt", root);
	mkdir(path, 0755);
	make_file(root, "bin/busybox", 0755);
	make_file(root, "bin/notexec", 0644);
	make_file(root, "opt/tool", 0755);
	snprintf(path, sizeof(path), "%s/bin/sh", root);
	symlink("busybox", path);
	/* An absolute symlink means the container's /, not the host's. */
	snprintf(path, sizeof(path), "%s/bin/abs", root);
	symlink("/bin/busybox", path);
	snprintf(path, sizeof(path), "%s/bin/escape", root);
	symlink("../../../../../../usr/bin/env", path);

	CHECK_EQ(ct_mounts_find_command(root, "sh", NULL, found, sizeof(found), &err), 0);
	CHECK(!strcmp(found, "/bin/sh"));
	CHECK_EQ(ct_mounts_find_command(root, "/bin/abs", NULL, found, sizeof(found), &err), 0);
	CHECK_EQ(ct_mounts_find_command(root, "bin/sh", NULL, NULL, 0, &err), 0);
	CHECK_EQ(ct_mounts_find_command(root, "escape", NULL, NULL, 0, &err), -ENOENT);
	CHECK_EQ(ct_mounts_find_command(root, "notexec", NULL, NULL, 0, &err), -EACCES);
	CHECK_STR_CONTAINS(err.msg, "not an executable");
	CHECK_EQ(ct_mounts_find_command(root, "/bin", NULL, NULL, 0, &err), -EACCES);
	CHECK_EQ(ct_mounts_find_command(root, "tool", NULL, NULL, 0, &err), -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "PATH=");
	{
		char *env[] = {"PATH=/opt", NULL};

		CHECK_EQ(ct_mounts_find_command(root, "tool", env, found, sizeof(found), &err), 0);
		CHECK(!strcmp(found, "/opt/tool"));
	}
}

static void test_open_in_root(void)
{
	struct yun_err err = {0};
	char root[128], path[256], outside[128];
	struct stat st;
	int rootfd, fd;

	snprintf(root, sizeof(root), "%s/root2", tmpdir);
	mkdir(root, 0755);
	snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
	mkdir(outside, 0755);
	/* Links that point out of the root, absolute and relative. */
	snprintf(path, sizeof(path), "%s/abs", root);
	symlink(outside, path);
	snprintf(path, sizeof(path), "%s/rel", root);
	symlink("../outside", path);
	rootfd = open(root, O_PATH | O_DIRECTORY);

	fd = ct_mounts_open_in_root(rootfd, "/a/b/c", CT_CREATE_DIR, O_PATH, &err);
	CHECK(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/a/b/c", root);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));

	fd = ct_mounts_open_in_root(rootfd, "/a/file", CT_CREATE_FILE, O_PATH, &err);
	CHECK(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/a/file", root);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));

	/*
	 * Through links leading out: they resolve inside the root, where their
	 * targets do not exist, so the call fails and nothing appears outside.
	 */
	CHECK(ct_mounts_open_in_root(rootfd, "/abs/x", CT_CREATE_DIR, O_PATH, &err) < 0);
	CHECK(ct_mounts_open_in_root(rootfd, "/rel/y", CT_CREATE_DIR, O_PATH, &err) < 0);
	CHECK(ct_mounts_open_in_root(rootfd, "/abs", CT_CREATE_FILE, O_PATH, &err) < 0);
	fd = ct_mounts_open_in_root(rootfd, "/../../z", CT_CREATE_DIR, O_PATH, &err);
	CHECK(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/x", outside);
	CHECK(stat(path, &st) < 0);
	snprintf(path, sizeof(path), "%s/y", outside);
	CHECK(stat(path, &st) < 0);
	snprintf(path, sizeof(path), "%s/z", tmpdir);
	CHECK(stat(path, &st) < 0);
	snprintf(path, sizeof(path), "%s/z", root);
	CHECK(stat(path, &st) == 0);

	CHECK(ct_mounts_open_in_root(rootfd, "/missing", CT_CREATE_NONE, O_PATH, &err) == -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "/missing");
	close(rootfd);
}

static void test_default_lists(void)
{
	bool kcore = false, sys = false;

	for (const char *const *p = ct_masked_paths; *p; p++)
		kcore |= !strcmp(*p, "/proc/kcore");
	for (const char *const *p = ct_readonly_paths; *p; p++)
		sys |= !strcmp(*p, "/proc/sys");
	CHECK(kcore && sys);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ct_mounts_test.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	RUN(test_path_is_under);
	RUN(test_source_rule);
	RUN(test_check_source_resolves_symlinks);
	RUN(test_find_command);
	RUN(test_open_in_root);
	RUN(test_default_lists);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return CHECK_DONE();
}
