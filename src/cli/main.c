/*
 * main.c - yun, the command line of the Yun cloud: global flags, then one
 * command (cli.h says what every command shares, the cmd_*.c files what
 * each does). Every command is a client of yund's REST API
 * (docs/api/yund.yaml), except `up` and `down`, which start and stop yund.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: yun [global options] COMMAND [options]\n"
    "\n"
    "The command line of Yun: instances (containers, microVMs), images, networks\n"
    "and volumes on a yund.\n"
    "\n"
    "Daemon:\n"
    "  up [--root DIR] [--run DIR] [yund flags]  start yund in the background\n"
    "  down                           stop yund (instances keep running)\n"
    "  version                        versions of yun and of the yund answering\n"
    "Instances:\n"
    "  run [options] IMAGE [-- CMD]   create and start an instance\n"
    "  ls                             list instances\n"
    "  show REF                       one instance, every field\n"
    "  start|stop|reboot REF...       change what should run\n"
    "  pause|resume REF...            pause a microVM, let it run on\n"
    "  rm [-f] REF...                 delete instances\n"
    "  logs REF                       the console log\n"
    "  exec REF -- CMD...             run a command in a container\n"
    "  console REF                    attach to the console\n"
    "  top                            live usage per instance\n"
    "  events                         follow state changes\n"
    "Resources:\n"
    "  image build|import|ls|show|rm  images\n"
    "  net create|ls|show|rm          networks\n"
    "  vol create|ls|show|rm|attach|detach|snapshot   volumes\n"
    "  flavor ls|show|create|rm       instance sizes\n"
    "  host ls|show                   hosts and their capacity\n"
    "\n"
    "Exit status: 0 done, 1 the operation failed, 2 usage error, 3 yund cannot\n"
    "be reached. Run 'yun COMMAND --help' for a command's options.\n";

struct command {
	const char *name;
	cli_cmd_fn fn;
};

static const struct command commands[] = {
    {"up", cmd_up},	    {"down", cmd_down},	      {"version", cmd_version},
    {"run", cmd_run},	    {"ls", cmd_ls},	      {"list", cmd_ls},
    {"ps", cmd_ls},	    {"show", cmd_show},	      {"start", cmd_start},
    {"stop", cmd_stop},	    {"reboot", cmd_reboot},   {"rm", cmd_rm},
    {"pause", cmd_pause},   {"resume", cmd_resume},   {"logs", cmd_logs},
    {"exec", cmd_exec},	    {"console", cmd_console}, {"top", cmd_top},
    {"events", cmd_events}, {"image", cmd_image},     {"net", cmd_net},
    {"network", cmd_net},   {"vol", cmd_vol},	      {"volume", cmd_vol},
    {"flavor", cmd_flavor}, {"host", cmd_host},	      {NULL, NULL},
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"version", no_argument, NULL, 'V'},
						 CLI_GLOBAL_OPTIONS};
	struct cli cli = {.usage = usage};
	bool first = true;
	const char *env;
	int opt, rc;

	/* Global flags before the command; the command's own come after it. */
	while ((opt = cli_getopt(&cli, argc, argv, "+hV", longopts, &first)) != CLI_OPT_END) {
		if (opt == 'V') {
			printf("yun %s\n", YUN_VERSION);
			return EXIT_OK;
		}
		return cli_opt_exit(opt);
	}
	if (!cli.socket_given && (env = getenv("YUN_SOCKET")) && *env) {
		cli.socket = env;
		cli.socket_given = true;
	}
	if (!cli.socket)
		cli.socket = YUN_DEFAULT_SOCKET;
	if (!cli.url && (env = getenv("YUN_URL")) && *env)
		cli.url = env;
	if (optind >= argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	if (!strcmp(argv[0], "help")) {
		fputs(usage, stdout);
		fputs(CLI_GLOBAL_HELP, stdout);
		return EXIT_OK;
	}
	rc = -1;
	for (const struct command *c = commands; c->name; c++) {
		if (!strcmp(c->name, argv[0])) {
			cli.cmd = c->name;
			rc = c->fn(&cli, argc, argv);
			break;
		}
	}
	if (rc < 0)
		rc = cli_usage_error(&cli, "unknown command '%s'", argv[0]);
	yc_free(cli.client);
	yc_cleanup();
	/* Output that cannot be written is a failure a script must see. */
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = cli_fail("writing the output failed");
	return rc;
}
