/*
 * cmd_image.c - yun image build|import|ls|show|rm over /v1/images.
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
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "table.h"

extern char **environ;

static const char *const ST_AVAILABLE[] = {"available", NULL};
static const char *const ST_FAILED[] = {"failed", NULL};

enum { OPT_NAME = OPT_CMD_BASE, OPT_TIMEOUT };

/* POST the image, then follow it (unless detached) and print it. */
static int create_image(struct cli *cli, json_t *body, bool detach, unsigned timeout)
{
	struct yc_response r;
	json_t *img = NULL;
	int rc;

	rc = cli_call(cli, "POST", "/v1/images", body, &r);
	if (rc) {
		yc_response_free(&r);
		return rc;
	}
	if (!detach && jstr(r.json, "id")) {
		struct cli_wait w = {.collection = "images",
				     .ref = jstr(r.json, "id"),
				     .label = "image",
				     .want = ST_AVAILABLE,
				     .fail = ST_FAILED,
				     .timeout_s = timeout};

		rc = cli_wait(cli, &w, &img);
	}
	if (!rc) {
		json_t *show = img ? img : r.json;

		if (cli->json)
			cli_print_json(show);
		else
			printf("%s %s\n", jstr(show, "name") ? jstr(show, "name") : "-",
			       jstr(show, "id") ? jstr(show, "id") : "-");
	}
	json_decref(img);
	yc_response_free(&r);
	return rc;
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
	static const struct option longopts[] = {{"name", required_argument, NULL, OPT_NAME},
						 {"detach", no_argument, NULL, 'd'},
						 {"timeout", required_argument, NULL, OPT_TIMEOUT},
						 CLI_GLOBAL_OPTIONS};
	const char *name = NULL;
	bool first = true, detach = false;
	uint64_t timeout = 1800;
	json_t *body;
	int opt, rc;

	cli->usage = build_usage;
	while ((opt = cli_getopt(cli, argc, argv, "d", longopts, &first)) != CLI_OPT_END) {
		if (opt == OPT_NAME)
			name = optarg;
		else if (opt == 'd')
			detach = true;
		else if (opt == OPT_TIMEOUT) {
			if (cli_parse_uint(cli, "--timeout", optarg, 1, 86400, &timeout))
				return EXIT_USAGE;
		} else
			return cli_opt_exit(opt);
	}
	if (optind + 1 != argc)
		return cli_usage_error(cli, "which kind? busybox or debian");
	const char *kind = argv[optind];

	if (strcmp(kind, "busybox") && strcmp(kind, "debian"))
		return cli_usage_error(cli, "'%s': the kinds are busybox and debian", kind);
	body =
	    json_pack("{ssssss}", "name", name ? name : kind, "type", "container", "build", kind);
	if (!body)
		return cli_fail("out of memory");
	rc = create_image(cli, body, detach, (unsigned)timeout);
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
	static const struct option longopts[] = {{"name", required_argument, NULL, OPT_NAME},
						 {"detach", no_argument, NULL, 'd'},
						 {"timeout", required_argument, NULL, OPT_TIMEOUT},
						 CLI_GLOBAL_OPTIONS};
	char name[NAME_MAX + 1], dir[PATH_MAX], tmp[PATH_MAX] = "";
	const char *given = NULL;
	bool first = true, detach = false;
	uint64_t timeout = 1800;
	struct stat st;
	json_t *body;
	int opt, rc;

	cli->usage = import_usage;
	while ((opt = cli_getopt(cli, argc, argv, "d", longopts, &first)) != CLI_OPT_END) {
		if (opt == OPT_NAME)
			given = optarg;
		else if (opt == 'd')
			detach = true;
		else if (opt == OPT_TIMEOUT) {
			if (cli_parse_uint(cli, "--timeout", optarg, 1, 86400, &timeout))
				return EXIT_USAGE;
		} else
			return cli_opt_exit(opt);
	}
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
		detach = false; /* the directory goes away when we return */
	} else {
		return cli_fail("%s: neither a directory nor a tarball", src);
	}
	body =
	    json_pack("{ssssss}", "name", given ? given : name, "type", "container", "import", dir);
	if (!body)
		rc = cli_fail("out of memory");
	else
		rc = create_image(cli, body, detach, (unsigned)timeout);
	json_decref(body);
	if (tmp[0])
		rm_tree(tmp);
	return rc;
}

/* ---- ls, show, rm ---------------------------------------------------------------- */

static const char ls_usage[] = "usage: yun image ls [--json]\n"
			       "\n"
			       "Lists images: NAME ID TYPE STATE SIZE SOURCE AGE.\n";

static int image_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {CLI_GLOBAL_OPTIONS};
	static const char *const headers[] = {"NAME", "ID",	"TYPE", "STATE",
					      "SIZE", "SOURCE", "AGE",	NULL};
	struct yc_response r;
	struct table t;
	bool first = true;
	json_t *img;
	size_t i;
	int opt, rc;

	cli->usage = ls_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END)
		return cli_opt_exit(opt);
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	rc = cli_call(cli, "GET", "/v1/images", NULL, &r);
	if (rc || cli->json) {
		if (!rc)
			cli_print_json(r.json);
		yc_response_free(&r);
		return rc;
	}
	tbl_init(&t, headers);
	tbl_set_right(&t, 4, true);
	tbl_set_max_width(&t, 5, 40);
	time_t now = time(NULL);

	json_array_foreach(json_object_get(r.json, "items"), i, img) {
		char size[16] = "-", age[16];
		int64_t bytes = jint(img, "size", -1);

		if (bytes >= 0)
			tbl_size((uint64_t)bytes, size, sizeof(size));
		const char *cells[] = {
		    jstr(img, "name"),
		    jstr(img, "id"),
		    jstr(img, "type"),
		    jstr(img, "state"),
		    size,
		    jstr(img, "source"),
		    tbl_age_since(jstr(img, "created_at"), now, age, sizeof(age))};

		if (tbl_add_row(&t, cells)) {
			rc = cli_fail("out of memory");
			break;
		}
	}
	if (!rc)
		tbl_print(&t, stdout);
	tbl_free(&t);
	yc_response_free(&r);
	return rc;
}

static const char show_usage[] = "usage: yun image show REF\n\nShows every field of an image.\n";

static int image_show(struct cli *cli, int argc, char **argv)
{
	cli->usage = show_usage;
	return cli_cmd_show(cli, argc, argv, "images", "image");
}

static const char rm_usage[] =
    "usage: yun image rm REF...\n"
    "\n"
    "Deletes images; yund refuses while an instance uses one or while it builds.\n";

static int image_rm(struct cli *cli, int argc, char **argv)
{
	cli->usage = rm_usage;
	return cli_cmd_rm(cli, argc, argv, "images", "image", false);
}

int cmd_image(struct cli *cli, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"build", image_build, "build busybox|debian [--name N]   build a container image"},
	    {"import", image_import, "import DIR|TAR [--name N]        import a mkimage image"},
	    {"ls", image_ls, "ls                               list images"},
	    {"show", image_show, "show REF                         every field of an image"},
	    {"rm", image_rm, "rm REF...                        delete images"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch_sub(cli, "image", subs, argc, argv);
}
