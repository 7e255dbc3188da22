/*
 * cmd_image.c - yun image build|import over /v1/images, and the image kind
 * (its ls/show/rm columns and texts; kind.c does the rest).
 *
 * Builds and imports happen in yund (202, state building); the command
 * follows the image to available or failed with a spinner on a terminal.
 * A tarball to import is unpacked by `tar` into a temporary directory
 * first (yund imports directories), which is removed once yund has copied
 * it.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "kind.h"

extern char **environ;

enum { OPT_NAME = OPT_CMD_BASE, OPT_TIMEOUT };

/* POST the image, then follow it (unless detached) and print it. */
static int create_image(struct cli *cli, json_t *body, bool detach, unsigned timeout)
{
	json_t *img;
	int rc = kind_create(cli, &kind_image, body, detach, timeout, &img);

	if (!rc)
		cli_print_obj(cli, img, NULL);
	json_decref(img);
	return rc;
}

/* The options build and import share; false with *rc set: return it. */
struct create_opts {
	const char *name;
	bool detach;
	uint64_t timeout;
};

static bool parse_create_opts(struct cli *cli, int argc, char **argv, struct create_opts *o,
			      int *rc)
{
	static const struct option longopts[] = {{"name", required_argument, NULL, OPT_NAME},
						 {"detach", no_argument, NULL, 'd'},
						 {"timeout", required_argument, NULL, OPT_TIMEOUT},
						 CLI_GLOBAL_OPTIONS};
	bool first = true;
	int opt;

	*o = (struct create_opts){.timeout = 1800};
	while ((opt = cli_getopt(cli, argc, argv, "d", longopts, &first)) != CLI_OPT_END) {
		if (opt == OPT_NAME) {
			o->name = optarg;
		} else if (opt == 'd') {
			o->detach = true;
		} else if (opt == OPT_TIMEOUT) {
			if (cli_parse_uint(cli, "--timeout", optarg, 1, 86400, &o->timeout)) {
				*rc = EXIT_USAGE;
				return false;
			}
		} else {
			*rc = cli_opt_exit(opt);
			return false;
		}
	}
	return true;
}

static const char build_usage[] =
    "usage: yun image build busybox|debian [--name NAME] [-d]\n"
    "\n"
    "Builds a container image in yund (scripts/mkimage KIND) and waits until\n"
    "it is available; prints its name and id.\n"
    "\n"
    "  --name NAME      the image's name (default: KIND)\n"
    "  -d, --detach     return once the build started\n"
    "  --timeout SECS   how long to wait (default 1800)\n";

static int image_build(struct cli *cli, int argc, char **argv)
{
	struct create_opts o;
	json_t *body;
	int rc;

	cli->usage = build_usage;
	if (!parse_create_opts(cli, argc, argv, &o, &rc))
		return rc;
	if (optind + 1 != argc)
		return cli_usage_error(cli, "which kind? busybox or debian");
	const char *kind = argv[optind];

	if (strcmp(kind, "busybox") && strcmp(kind, "debian"))
		return cli_usage_error(cli, "'%s': the kinds are busybox and debian", kind);
	body = json_pack("{ssssss}", "name", o.name ? o.name : kind, "type", "container", "build",
			 kind);
	if (!body)
		return cli_fail("out of memory");
	rc = create_image(cli, body, o.detach, (unsigned)o.timeout);
	json_decref(body);
	return rc;
}

/* ---- import ----------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Unpack tarball into dir with tar(1); 0 or an exit status (printed). */
static int untar(const char *tarball, const char *dir)
{
	/* As root, tar keeps the owners the tarball records (an image's files
	 * belong to root and to its users). */
	char *args[] = {"tar", "-xf", (char *)tarball, "-C", (char *)dir, NULL};
	pid_t pid;
	int status;

	if ((errno = posix_spawnp(&pid, "tar", NULL, NULL, args, environ)))
		return cli_fail("cannot run tar to unpack %s: %s", tarball, strerror(errno));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cli_fail("waiting for tar: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return cli_fail("tarball %s: tar could not unpack it", tarball);
	return 0;
}

/* The image directory inside an unpacked tarball: dir itself or its only
 * sub-directory, whichever holds manifest.json. */
static int find_image_dir(const char *dir, char *out, size_t n)
{
	char probe[PATH_MAX];
	struct dirent **list = NULL;
	int count, found = 0;

	snprintf(probe, sizeof(probe), "%s/manifest.json", dir);
	if (!access(probe, F_OK)) {
		snprintf(out, n, "%s", dir);
		return 0;
	}
	count = scandir(dir, &list, NULL, alphasort);
	for (int i = 0; i < count; i++) {
		if (list[i]->d_name[0] != '.') {
			snprintf(probe, sizeof(probe), "%s/%s/manifest.json", dir, list[i]->d_name);
			if (!found && !access(probe, F_OK)) {
				snprintf(out, n, "%s/%s", dir, list[i]->d_name);
				found = 1;
			}
		}
		free(list[i]);
	}
	free(list);
	return found ? 0 : -ENOENT;
}

/* The default name: the file's name without its directory and extension. */
static void default_name(const char *path, char *out, size_t n)
{
	static const char *const exts[] = {".tar.gz", ".tar.xz", ".tar.zst", ".tar.bz2",
					   ".tgz",    ".tar",	 NULL};
	char copy[PATH_MAX];
	size_t len;

	snprintf(copy, sizeof(copy), "%s", path);
	len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	const char *base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;

	snprintf(out, n, "%s", base);
	len = strlen(out);
	for (const char *const *e = exts; *e; e++) {
		size_t el = strlen(*e);

		if (len > el && !strcmp(out + len - el, *e)) {
			out[len - el] = '\0';
			break;
		}
	}
}

static const char import_usage[] =
    "usage: yun image import DIR|TARBALL [--name NAME]\n"
    "\n"
    "Imports a container image made by scripts/mkimage: a directory with\n"
    "manifest.json and rootfs/, or a tarball of one (unpacked here first).\n"
    "Waits until yund has it; prints its name and id.\n"
    "\n"
    "  --name NAME      the image's name (default: the directory's or file's name)\n"
    "  -d, --detach     return once the import started (directories only)\n"
    "  --timeout SECS   how long to wait (default 1800)\n";

static int image_import(struct cli *cli, int argc, char **argv)
{
	char name[NAME_MAX + 1], dir[PATH_MAX], tmp[PATH_MAX] = "";
	struct create_opts o;
	struct stat st;
	json_t *body;
	int rc;

	cli->usage = import_usage;
	if (!parse_create_opts(cli, argc, argv, &o, &rc))
		return rc;
	if (optind + 1 != argc)
		return cli_usage_error(cli, "which directory or tarball?");
	const char *src = argv[optind];

	if (stat(src, &st) < 0)
		return cli_fail("%s: %s", src, strerror(errno));
	default_name(src, name, sizeof(name));
	if (S_ISDIR(st.st_mode)) {
		/* yund reads the directory itself: give it an absolute path. */
		if (!realpath(src, dir))
			return cli_fail("%s: %s", src, strerror(errno));
	} else if (S_ISREG(st.st_mode)) {
		const char *base = getenv("TMPDIR");
		char parent[PATH_MAX];

		if (!base || !*base)
			base = "/tmp";
		snprintf(tmp, sizeof(tmp), "%s/yun-import-XXXXXX", base);
		if (!mkdtemp(tmp))
			return cli_fail("a temporary directory in %s: %s", base, strerror(errno));
		rc = untar(src, tmp);
		if (!rc && find_image_dir(tmp, parent, sizeof(parent)))
			rc = cli_fail("tarball %s: no manifest.json at its top or in its one "
				      "directory (not a scripts/mkimage image)",
				      src);
		if (rc) {
			rm_tree(tmp);
			return rc;
		}
		if (!realpath(parent, dir)) {
			rm_tree(tmp);
			return cli_fail("%s: %s", parent, strerror(errno));
		}
		o.detach = false; /* the directory goes away when we return */
	} else {
		return cli_fail("%s: neither a directory nor a tarball", src);
	}
	body = json_pack("{ssssss}", "name", o.name ? o.name : name, "type", "container", "import",
			 dir);
	if (!body)
		rc = cli_fail("out of memory");
	else
		rc = create_image(cli, body, o.detach, (unsigned)o.timeout);
	json_decref(body);
	if (tmp[0])
		rm_tree(tmp);
	return rc;
}

/* ---- the kind: ls, show, rm ------------------------------------------------------- */

static const char *const ST_AVAILABLE[] = {"available", NULL};
static const char *const ST_FAILED[] = {"failed", NULL};

static const struct kind_col image_cols[] = {
    {"NAME", "name", .fmt = KF_STRING},
    {"ID", "id", .fmt = KF_STRING},
    {"TYPE", "type", .fmt = KF_STRING},
    {"STATE", "state", .fmt = KF_STATE},
    {"SIZE", "size", .fmt = KF_BYTES, .right = true},
    {"SOURCE", "source", .fmt = KF_STRING, .max_width = 40},
    {"AGE", "created_at", .fmt = KF_AGE},
    {NULL},
};

const struct kind kind_image = {
    .what = "image",
    .collection = "images",
    .ls_usage = "usage: yun image ls [-q] [--json]\n"
		"\n"
		"Lists images: NAME ID TYPE STATE SIZE SOURCE AGE.\n"
		"\n"
		"  -q, --quiet    names only\n",
    .show_usage = "usage: yun image show REF\n\nShows every field of an image.\n",
    .rm_usage = "usage: yun image rm REF...\n"
		"\n"
		"Deletes images; yund refuses while an instance uses one or while it builds.\n",
    .cols = image_cols,
    .ready = ST_AVAILABLE,
    .failed = ST_FAILED,
};

int cmd_image(struct cli *cli, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"build", image_build, "build busybox|debian [--name N]   build a container image"},
	    {"import", image_import, "import DIR|TAR [--name N]        import a mkimage image"},
	    {"ls", NULL, "ls                               list images"},
	    {"show", NULL, "show REF                         every field of an image"},
	    {"rm", NULL, "rm REF...                        delete images"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch_sub(cli, "image", &kind_image, subs, argc, argv);
}
