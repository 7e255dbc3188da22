/* image.c - see image.h. */
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../../lib/file.h"
#include "../../lib/log.h"
#include "../core/fs.h"
#include "../core/notify.h"
#include "../core/proc.h"
#include "../store/store.h"
#include "../yund.h"

#define MANIFEST_MAX (1 << 20)

struct job {
	char id[OBJ_ID_MAX];
	pid_t pid;
};

struct img_jobs {
	struct job *v;
	size_t n;
};

int img_check_build_kind(const char *kind, struct yun_err *err)
{
	if (strcmp(kind, "busybox") && strcmp(kind, "debian"))
		return yun_err_set(err, ERANGE, "field build: \"%.40s\": must be busybox or debian",
				   kind);
	return 0;
}

static json_t *read_manifest(const char *dir, struct yun_err *err)
{
	char path[PATH_MAX + 32];
	uint8_t *buf;
	size_t len;
	json_t *m;
	json_error_t je;

	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	if (yun_file_read_all("manifest", path, MANIFEST_MAX, &buf, &len, err) < 0)
		return NULL;
	m = json_loadb((const char *)buf, len, 0, &je);
	free(buf);
	if (!json_is_object(m)) {
		json_decref(m);
		yun_err_set(err, EINVAL, "manifest %s: not a JSON object (%s)", path, je.text);
		return NULL;
	}
	return m;
}

int img_check_import_dir(const char *dir, struct yun_err *err)
{
	char path[PATH_MAX + 32];
	struct stat st;
	json_t *m;

	if (dir[0] != '/')
		return yun_err_set(err, ERANGE,
				   "field import: \"%.200s\": must be an absolute path", dir);
	if (stat(dir, &st) < 0)
		return yun_err_errno(err, errno == ENOENT ? ERANGE : errno, "import %.200s", dir);
	if (!S_ISDIR(st.st_mode))
		return yun_err_set(err, ERANGE, "import %.200s: not a directory", dir);
	snprintf(path, sizeof(path), "%s/rootfs", dir);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return yun_err_set(err, ERANGE,
				   "import %.200s: no rootfs/ directory (not an image "
				   "made by scripts/mkimage)",
				   dir);
	m = read_manifest(dir, err);
	if (!m) {
		char msg[YUN_ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		return yun_err_set(err, ERANGE,
				   "import %.200s: %s (not an image made by "
				   "scripts/mkimage)",
				   dir, msg);
	}
	json_decref(m);
	return 0;
}

/* ---- microVM images: kernel [+ initrd] + rootfs.ext4 + manifest.json ---- */

/* Read `len` bytes at `off` of an open file; false when it is shorter. */
static bool read_at(int fd, off_t off, void *buf, size_t len)
{
	return pread(fd, buf, len, off) == (ssize_t)len;
}

/* A regular file of min..max bytes, open for reading; the message names `what`. */
static int open_bounded(const char *field, const char *path, off_t min, off_t max, int *fd,
			struct yun_err *err)
{
	struct stat st;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return yun_err_errno(err, errno == ENOENT ? ERANGE : errno, "%s %.200s", field,
				     path);
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < min || st.st_size > max) {
		close(*fd);
		*fd = -1;
		return yun_err_set(err, ERANGE, "%s %.200s: must be a file of %lld..%lld bytes",
				   field, path, (long long)min, (long long)max);
	}
	return 0;
}

int img_check_kernel(const char *field, const char *path, struct yun_err *err)
{
	uint8_t elf[4], hdrs[4];
	int fd, rc;

	if (path[0] != '/')
		return yun_err_set(err, ERANGE, "field %s: \"%.200s\": must be an absolute path",
				   field, path);
	rc = open_bounded(field, path, 1024, IMG_KERNEL_MAX, &fd, err);
	if (rc)
		return rc;
	/* An ELF (PVH entry note: yun-vmm checks it at boot) or a bzImage ("HdrS" at 0x202). */
	rc = (read_at(fd, 0, elf, 4) && !memcmp(elf, "\177ELF", 4)) ||
	     (read_at(fd, 0x202, hdrs, 4) && !memcmp(hdrs, "HdrS", 4));
	close(fd);
	if (!rc)
		return yun_err_set(err, ERANGE,
				   "%s %.200s: not a kernel (neither a bzImage nor an ELF)", field,
				   path);
	return 0;
}

int img_check_microvm_import(const char *dir, struct yun_err *err)
{
	char path[PATH_MAX + 32];
	struct stat st;
	uint8_t magic[2];
	int fd, rc;

	if (dir[0] != '/')
		return yun_err_set(err, ERANGE,
				   "field import: \"%.200s\": must be an absolute path", dir);
	if (stat(dir, &st) < 0)
		return yun_err_errno(err, errno == ENOENT ? ERANGE : errno, "import %.200s", dir);
	if (!S_ISDIR(st.st_mode))
		return yun_err_set(err, ERANGE, "import %.200s: not a directory", dir);
	snprintf(path, sizeof(path), "%s/kernel", dir);
	if (stat(path, &st) < 0)
		return yun_err_set(err, ERANGE,
				   "import %.200s: no kernel (a microVM image directory has "
				   "kernel, [initrd], rootfs.ext4 or rootfs/)",
				   dir);
	rc = img_check_kernel("import kernel", path, err);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/initrd", dir);
	if (stat(path, &st) == 0) {
		rc = open_bounded("import initrd", path, 1, IMG_INITRD_MAX, &fd, err);
		if (rc)
			return rc;
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/rootfs.ext4", dir);
	if (stat(path, &st) == 0) {
		rc = open_bounded("import rootfs.ext4", path, 2048, IMG_ROOTFS_MAX, &fd, err);
		if (rc)
			return rc;
		/* The ext2/3/4 superblock's magic 0xEF53 at byte 1080. */
		rc = read_at(fd, 1080, magic, 2) && magic[0] == 0x53 && magic[1] == 0xef;
		close(fd);
		if (!rc)
			return yun_err_set(err, ERANGE,
					   "import %.200s: rootfs.ext4 is not an ext2/3/4 "
					   "filesystem",
					   dir);
	} else {
		snprintf(path, sizeof(path), "%s/rootfs", dir);
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			return yun_err_set(err, ERANGE,
					   "import %.200s: neither rootfs.ext4 nor a rootfs/ "
					   "directory",
					   dir);
	}
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	if (stat(path, &st) == 0) {
		json_t *m = read_manifest(dir, err), *c;

		if (!m) {
			char msg[YUN_ERR_MSG_MAX];

			snprintf(msg, sizeof(msg), "%s", err->msg);
			return yun_err_set(err, ERANGE, "import %.200s: %s", dir, msg);
		}
		c = json_object_get(m, "cmdline");
		rc = !c || (json_is_string(c) && json_string_length(c) < IMG_CMDLINE_MAX);
		json_decref(m);
		if (!rc)
			return yun_err_set(err, ERANGE,
					   "import %.200s: manifest.json: cmdline must be a "
					   "string of less than %d bytes",
					   dir, IMG_CMDLINE_MAX);
	}
	return 0;
}

void img_dir(const struct yund *y, const char *id, char *buf, size_t len)
{
	fs_path(buf, len, "%s/images/%s", y->cfg->root, id);
}

static void tmp_dir(const struct yund *y, const char *id, char *buf, size_t len)
{
	fs_path(buf, len, "%s/images/.tmp-%s", y->cfg->root, id);
}

struct img_jobs *img_jobs_new(void)
{
	return calloc(1, sizeof(struct img_jobs));
}

void img_jobs_free(struct img_jobs *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++)
		if (j->v[i].pid > 0)
			kill(-j->v[i].pid, SIGKILL); /* its own process group */
	free(j->v);
	free(j);
}

static struct job *job_find(struct img_jobs *j, const char *id)
{
	for (size_t i = 0; i < j->n; i++)
		if (!strcmp(j->v[i].id, id))
			return &j->v[i];
	return NULL;
}

static void job_drop(struct img_jobs *j, struct job *jb)
{
	size_t i = (size_t)(jb - j->v);

	memmove(&j->v[i], &j->v[i + 1], (j->n - i - 1) * sizeof(*jb));
	j->n--;
}

static void set_failed(struct yund *y, struct st_image *img, const char *fmt, const char *arg)
{
	snprintf(img->state, sizeof(img->state), "failed");
	snprintf(img->failure, sizeof(img->failure), fmt, arg);
	yun_warn("image %s: %s", img->m.name, img->failure);
	if (y->store->ops->image_update(y->store, img, NULL) == 0)
		notify_image(y, "state", img);
}

/* The image directory is complete: read its manifest, mark it available. */
static void finish(struct yund *y, struct st_image *img, const char *dir)
{
	struct yun_err err = {0};
	json_t *m = read_manifest(dir, &err), *cmd;

	if (!m) {
		set_failed(y, img, "%s", err.msg);
		return;
	}
	snprintf(img->state, sizeof(img->state), "available");
	snprintf(img->path, sizeof(img->path), "%s", dir);
	img->size = json_integer_value(json_object_get(m, "size"));
	snprintf(img->os, sizeof(img->os), "%s", json_string_value(json_object_get(m, "os")) ?: "");
	snprintf(img->version, sizeof(img->version), "%s",
		 json_string_value(json_object_get(m, "version")) ?: "");
	cmd = json_object_get(m, "command");
	free(img->command);
	img->command = json_is_array(cmd) ? json_dumps(cmd, JSON_COMPACT) : NULL;
	img->failure[0] = '\0';
	json_decref(m);
	if (y->store->ops->image_update(y->store, img, &err) < 0) {
		yun_warn("%s", err.msg);
		return;
	}
	yun_info("image %s: available", img->m.name);
	notify_image(y, "state", img);
}

/*
 * The microVM image job: the kernel (and initrd) copied, rootfs.ext4
 * copied or made with mkfs.ext4 -d from a root directory (an import's
 * rootfs/, or the one scripts/mkimage built), sized 1.5 x the tree + 64 MiB.
 * Arguments: KIND (build|import) SRC OUT MKIMAGE KERNEL.
 */
static const char microvm_job[] =
    "set -eu\n"
    "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
    "kind=$1 src=$2 out=$3 mkimage=$4 kernel=$5 root=\n"
    "mkdir -p \"$out\"\n"
    "if [ \"$kind\" = build ]; then\n"
    "  \"$mkimage\" \"$src\" \"$out/tree\"\n"
    "  cp \"$out/tree/manifest.json\" \"$out/manifest.src.json\"\n"
    "  cp \"$kernel\" \"$out/kernel\"\n"
    "  root=$out/tree/rootfs\n"
    "else\n"
    "  cp --reflink=auto \"$src/kernel\" \"$out/kernel\"\n"
    "  if [ -e \"$src/initrd\" ]; then cp --reflink=auto \"$src/initrd\" \"$out/initrd\"; fi\n"
    "  if [ -e \"$src/manifest.json\" ]; then cp \"$src/manifest.json\" "
    "\"$out/manifest.src.json\"; fi\n"
    "  if [ -e \"$src/rootfs.ext4\" ]; then\n"
    "    cp --reflink=auto --sparse=always \"$src/rootfs.ext4\" \"$out/rootfs.ext4\"\n"
    "  else\n"
    "    root=$src/rootfs\n"
    "  fi\n"
    "fi\n"
    "if [ -n \"$root\" ]; then\n"
    "  mib=$(du -sm \"$root\" | cut -f1)\n"
    "  mkfs.ext4 -q -F -L rootfs -d \"$root\" \"$out/rootfs.ext4\" $((mib * 3 / 2 + 64))M\n"
    "fi\n"
    "rm -rf \"$out/tree\"\n";

/* "build:KIND;kernel=PATH" -> KIND and PATH (microVM builds). */
static void split_build(const char *src, char *kind, size_t klen, const char **kernel)
{
	const char *k = strstr(src, ";kernel=");
	size_t n = k ? (size_t)(k - src) : strlen(src);

	snprintf(kind, klen, "%.*s", (int)n, src);
	*kernel = k ? k + 8 : "";
}

static int start_microvm_job(struct yund *y, const struct st_image *img, const char *out,
			     const struct proc_opts *po, pid_t *pid, struct yun_err *err)
{
	const char *colon = strchr(img->source, ':'), *kernel = "";
	bool build = !strncmp(img->source, "build:", 6);
	char kind[64] = "";

	if (build)
		split_build(colon + 1, kind, sizeof(kind), &kernel);
	{
		char *argv[] = {"/bin/sh",
				"-c",
				(char *)microvm_job,
				"microvm-image",
				build ? "build" : "import",
				build ? kind : (char *)colon + 1,
				(char *)out,
				(char *)y->cfg->mkimage,
				(char *)kernel,
				NULL};

		return proc_spawn(argv, po, pid, err);
	}
}

/* After the job: check what it made, write the image's manifest.json. */
static int finish_microvm(const char *out, struct yun_err *err)
{
	char path[PATH_MAX + 64], cmdline[IMG_CMDLINE_MAX] = "console=ttyS0 root=/dev/vda rw";
	static const char *const files[] = {"kernel", "initrd", "rootfs.ext4"};
	json_t *src, *m, *c;
	struct stat st;
	int64_t size = 0;
	char *text;
	int rc;

	snprintf(path, sizeof(path), "%s/kernel", out);
	rc = img_check_kernel("kernel", path, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", out, files[i]);
		if (stat(path, &st) == 0)
			size += st.st_size;
		else if (i != 1)
			return yun_err_set(err, ENOENT, "%s: the job made no %s", out, files[i]);
	}
	snprintf(path, sizeof(path), "%s/manifest.src.json", out);
	src = json_load_file(path, 0, NULL);
	c = json_object_get(src, "cmdline");
	if (json_is_string(c) && json_string_length(c) < sizeof(cmdline))
		snprintf(cmdline, sizeof(cmdline), "%s", json_string_value(c));
	m = json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", "microvm", "kernel", "kernel", "rootfs",
		      "rootfs.ext4", "cmdline", cmdline, "size", (json_int_t)size);
	snprintf(path, sizeof(path), "%s/initrd", out);
	if (m && fs_exists(path))
		json_object_set_new(m, "initrd", json_string("initrd"));
	if (m && json_is_string(json_object_get(src, "os")))
		json_object_set(m, "os", json_object_get(src, "os"));
	if (m && json_is_string(json_object_get(src, "version")))
		json_object_set(m, "version", json_object_get(src, "version"));
	json_decref(src);
	text = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
	json_decref(m);
	if (!text)
		return yun_err_set(err, ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/manifest.json", out);
	rc = fs_write_atomic(path, text, strlen(text), 0644, err);
	free(text);
	return rc;
}

static int start_job(struct yund *y, struct img_jobs *j, struct st_image *img, struct yun_err *err)
{
	char tmp[PATH_MAX], out[PATH_MAX + 16], log[PATH_MAX + 16];
	struct proc_opts po = {.out_path = log, .die_with_parent = true};
	const char *colon = strchr(img->source, ':');
	struct job *nv;
	pid_t pid;
	int rc;

	if (!colon)
		return yun_err_set(err, EINVAL, "source %s: unknown", img->source);
	tmp_dir(y, img->m.id, tmp, sizeof(tmp));
	snprintf(out, sizeof(out), "%s/image", tmp);
	snprintf(log, sizeof(log), "%s/log", tmp);
	rc = fs_remove_tree(tmp, err);
	if (!rc)
		rc = fs_mkdirs(tmp, 0755, err);
	if (rc)
		return rc;
	if (!strcmp(img->type, "microvm")) {
		rc = start_microvm_job(y, img, out, &po, &pid, err);
	} else if (!strncmp(img->source, "build:", 6)) {
		char *argv[] = {(char *)y->cfg->mkimage, (char *)colon + 1, out, NULL};

		rc = proc_spawn(argv, &po, &pid, err);
	} else {
		char *argv[] = {"/bin/cp", "-a", "--reflink=auto", (char *)colon + 1, out, NULL};

		rc = proc_spawn(argv, &po, &pid, err);
	}
	if (rc)
		return rc;
	nv = realloc(j->v, (j->n + 1) * sizeof(*nv));
	if (!nv) {
		kill(-pid, SIGKILL);
		return yun_err_set(err, ENOMEM, "out of memory");
	}
	j->v = nv;
	snprintf(j->v[j->n].id, sizeof(j->v[j->n].id), "%s", img->m.id);
	j->v[j->n++].pid = pid;
	yun_info("image %s: %s", img->m.name, img->source);
	return 0;
}

static void job_done(struct yund *y, struct st_image *img, int status)
{
	char tmp[PATH_MAX], out[PATH_MAX + 16], log[PATH_MAX + 16], dir[PATH_MAX];
	char line[400], rootfs[PATH_MAX + 32];
	struct yun_err err = {0};
	struct stat st;

	tmp_dir(y, img->m.id, tmp, sizeof(tmp));
	snprintf(out, sizeof(out), "%s/image", tmp);
	snprintf(log, sizeof(log), "%s/log", tmp);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", out);
	img_dir(y, img->m.id, dir, sizeof(dir));
	if (status != 0) {
		char what[64];

		fs_last_line(log, 0, line, sizeof(line));
		snprintf(what, sizeof(what), "exited with status %d", status);
		set_failed(y, img, "%.400s", line[0] ? line : what);
	} else if (!strcmp(img->type, "microvm")) {
		if (finish_microvm(out, &err) < 0)
			set_failed(y, img, "%s", err.msg);
		else if (rename(out, dir) < 0)
			set_failed(y, img, "rename into %.400s failed", dir);
		else
			finish(y, img, dir);
	} else if (stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
		set_failed(y, img, "%.400s: the job made no rootfs/", out);
	} else if (rename(out, dir) < 0) {
		set_failed(y, img, "rename into %.400s failed", dir);
	} else {
		finish(y, img, dir);
	}
	if (fs_remove_tree(tmp, &err) < 0)
		yun_warn("%s", err.msg);
}

void img_reconcile(struct yund *y, struct img_jobs *j, bool *busy)
{
	struct store *s = y->store;
	struct st_image *v;
	struct yun_err err = {0};
	size_t n;

	if (s->ops->image_list(s, &v, &n, &err) < 0) {
		yun_warn("%s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct st_image *img = &v[i];
		struct job *jb;
		char dir[PATH_MAX + 32];
		bool exited;
		int status;

		if (strcmp(img->state, "building"))
			continue;
		*busy = true;
		jb = job_find(j, img->m.id);
		if (jb) {
			if (proc_poll(jb->pid, &exited, &status) < 0) {
				exited = true;
				status = 255;
			}
			if (exited) {
				job_drop(j, jb);
				job_done(y, img, status);
			}
			continue;
		}
		/* No job: made before a crash (then it is whole), or to start. */
		img_dir(y, img->m.id, dir, sizeof(dir));
		if (fs_exists(dir)) {
			finish(y, img, dir);
			continue;
		}
		if (start_job(y, j, img, &err) < 0)
			set_failed(y, img, "%s", err.msg);
	}
	st_images_free(v, n);
}

void img_sweep(struct yund *y, struct img_jobs *j)
{
	struct st_image img;
	struct yun_err err = {0};
	char path[PATH_MAX + 300];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/images", y->cfg->root);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		bool tmp = !strncmp(e->d_name, ".tmp-", 5);
		const char *id = tmp ? e->d_name + 5 : e->d_name;
		int rc;

		if ((!tmp && id[0] == '.') || (tmp && job_find(j, id)))
			continue;
		rc = y->store->ops->image_get(y->store, id, &img, &err);
		if (rc == 0) {
			/* A building image without a job gets one (which clears .tmp) next pass. */
			bool keep = !tmp || !strcmp(img.state, "building");

			st_image_clear(&img);
			if (keep)
				continue;
		} else if (rc != -ENOENT) {
			continue; /* the database failed: keep everything */
		}
		snprintf(path, sizeof(path), "%s/images/%s", y->cfg->root, e->d_name);
		yun_info("%s: belongs to no image; removing it", path);
		if (fs_remove_tree(path, &err) < 0)
			yun_warn("%s", err.msg);
	}
	closedir(d);
}
