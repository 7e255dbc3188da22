/*
 * cmd_vol.c - yun vol create|ls|show|rm|attach|detach|snapshot over
 * /v1/volumes (docs/yund.md: sparse raw files, bind-mounted into
 * containers, virtio-blk disks of microVMs).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kind.h"

enum { OPT_SIZE = OPT_CMD_BASE, OPT_NAME };

static const char create_usage[] = "usage: yun vol create NAME --size GIB\n"
				   "\n"
				   "Creates a volume (a sparse raw file of GIB GiB).\n"
				   "\n"
				   "  --size GIB    its size in GiB (1..65536)\n";

static int vol_create(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"size", required_argument, NULL, OPT_SIZE},
						 CLI_GLOBAL_OPTIONS};
	bool first = true, has_size = false;
	uint64_t size = 0;
	struct yc_response r;
	json_t *body;
	int opt, rc;

	cli->usage = create_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END) {
		if (opt == OPT_SIZE) {
			if (cli_parse_uint(cli, "--size", optarg, 1, 65536, &size))
				return EXIT_USAGE;
			has_size = true;
		} else {
			return cli_opt_exit(opt);
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli, "which name?");
	if (optind + 1 < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (!has_size)
		return cli_usage_error(cli, "--size GIB is required");
	body = json_pack("{sssI}", "name", argv[optind], "size_gib", (json_int_t)size);
	if (!body)
		return cli_fail("out of memory");
	rc = cli_call(cli, "POST", "/v1/volumes", body, &r);
	json_decref(body);
	if (!rc)
		cli_print_obj(cli, r.json, argv[optind]);
	yc_response_free(&r);
	return rc;
}

/* POST /v1/volumes/{vol}/{action} with body; prints the answer. */
static int vol_action(struct cli *cli, const char *vol, const char *action, json_t *body)
{
	struct yc_response r;
	char path[256];
	int rc;

	rc = cli_call(cli, "POST", yc_path(path, sizeof(path), "volumes", vol, action), body, &r);
	if (!rc)
		cli_print_obj(cli, r.json, vol);
	yc_response_free(&r);
	return rc;
}

static const char attach_usage[] =
    "usage: yun vol attach VOL INSTANCE\n"
    "\n"
    "Attaches volume VOL to INSTANCE (a bind mount in a container, a virtio\n"
    "disk in a microVM).\n";

static int vol_attach(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {CLI_GLOBAL_OPTIONS};
	bool first = true;
	json_t *body;
	int opt, rc;

	cli->usage = attach_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END)
		return cli_opt_exit(opt);
	if (argc - optind != 2)
		return cli_usage_error(cli, "needs VOL and INSTANCE");
	body = json_pack("{ss}", "instance", argv[optind + 1]);
	if (!body)
		return cli_fail("out of memory");
	rc = vol_action(cli, argv[optind], "attach", body);
	json_decref(body);
	return rc;
}

static const char detach_usage[] = "usage: yun vol detach VOL\n"
				   "\n"
				   "Detaches volume VOL from the instance it is attached to.\n";

static int vol_detach(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {CLI_GLOBAL_OPTIONS};
	struct yc_response r;
	char path[256];
	bool first = true;
	json_t *body = NULL;
	int opt, rc;

	cli->usage = detach_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END)
		return cli_opt_exit(opt);
	if (argc - optind != 1)
		return cli_usage_error(cli,
				       optind >= argc ? "which volume?" : "one volume at a time");
	/* The API names the instance too: the one it is attached to. */
	rc = cli_call(cli, "GET", yc_path(path, sizeof(path), "volumes", argv[optind], NULL), NULL,
		      &r);
	if (rc) {
		yc_response_free(&r);
		return rc;
	}
	if (jstr(r.json, "attached_to"))
		body = json_pack("{ss}", "instance", jstr(r.json, "attached_to"));
	yc_response_free(&r);
	rc = vol_action(cli, argv[optind], "detach", body);
	json_decref(body);
	return rc;
}

static const char snapshot_usage[] =
    "usage: yun vol snapshot VOL [--name NAME]\n"
    "\n"
    "Takes a snapshot of volume VOL (a reflink where the file system can,\n"
    "a copy otherwise).\n"
    "\n"
    "  --name NAME    the snapshot's name (default: one yund picks)\n";

static int vol_snapshot(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {{"name", required_argument, NULL, OPT_NAME},
						 CLI_GLOBAL_OPTIONS};
	const char *name = NULL;
	bool first = true;
	json_t *body = NULL;
	int opt, rc;

	cli->usage = snapshot_usage;
	while ((opt = cli_getopt(cli, argc, argv, "", longopts, &first)) != CLI_OPT_END) {
		if (opt == OPT_NAME)
			name = optarg;
		else
			return cli_opt_exit(opt);
	}
	if (argc - optind != 1)
		return cli_usage_error(cli,
				       optind >= argc ? "which volume?" : "one volume at a time");
	if (name && !(body = json_pack("{ss}", "name", name)))
		return cli_fail("out of memory");
	rc = vol_action(cli, argv[optind], "snapshot", body);
	json_decref(body);
	return rc;
}

/* ---- the kind: ls, show, rm ------------------------------------------------------- */

static const struct kind_col vol_cols[] = {
    {"NAME", "name", .fmt = KF_STRING},
    {"ID", "id", .fmt = KF_STRING},
    {"SIZE", "size_gib", .fmt = KF_GIB, .right = true},
    {"STATE", "state", .fmt = KF_STATE},
    {"ATTACHED", "attached_to", .fmt = KF_REF, .ref = "instances"},
    {"AGE", "created_at", .fmt = KF_AGE},
    {NULL},
};

const struct kind kind_volume = {
    .what = "volume",
    .collection = "volumes",
    .ls_usage = "usage: yun vol ls [-q] [--json]\n"
		"\n"
		"Lists volumes: NAME ID SIZE STATE ATTACHED AGE.\n"
		"\n"
		"  -q, --quiet    names only\n",
    .show_usage = "usage: yun vol show REF\n\nShows every field of a volume.\n",
    .rm_usage = "usage: yun vol rm REF...\n"
		"\n"
		"Deletes volumes and their data; yund refuses while one is attached.\n",
    .cols = vol_cols,
};

int cmd_vol(struct cli *cli, int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"create", vol_create, "create NAME --size GIB    create a volume"},
	    {"ls", NULL, "ls                        list volumes"},
	    {"show", NULL, "show REF                  every field of a volume"},
	    {"rm", NULL, "rm REF...                 delete volumes"},
	    {"attach", vol_attach, "attach VOL INSTANCE       attach a volume"},
	    {"detach", vol_detach, "detach VOL                detach a volume"},
	    {"snapshot", vol_snapshot, "snapshot VOL [--name N]   snapshot a volume"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch_sub(cli, "vol", &kind_volume, subs, argc, argv);
}
