/*
 * ct_config_test.c - `yun-ct run` flags and --config JSON: the values users
 * type, range checks whose messages name the bad value, flag/file
 * precedence, and the JSON written to state.json reading back the same.
 */
#include "ct/config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[64];

static int parse_va(struct ct_config *cfg, struct yun_err *err, int validate, va_list ap)
{
	char *argv[64];
	int argc = 0, rc;

	argv[argc++] = "run";
	for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 63;)
		argv[argc++] = a;
	argv[argc] = NULL;
	ct_config_init(cfg);
	memset(err, 0, sizeof(*err));
	rc = ct_config_parse_args(cfg, argc, argv, err);
	if (rc == 0 && validate)
		rc = ct_config_validate(cfg, err);
	return rc;
}

/* Parse and validate "run ARGS... NULL"; returns the result, cfg stays for inspection. */
static int parse(struct ct_config *cfg, struct yun_err *err, ...)
{
	va_list ap;
	int rc;

	va_start(ap, err);
	rc = parse_va(cfg, err, 1, ap);
	va_end(ap);
	return rc;
}

/* Expect failure with a message containing `needle`. */
#define CHECK_FAILS(needle, ...)                                                                   \
	do {                                                                                       \
		struct ct_config c_;                                                               \
		struct yun_err e_;                                                                 \
		CHECK(parse(&c_, &e_, __VA_ARGS__, NULL) < 0);                                     \
		CHECK_STR_CONTAINS(e_.msg, needle);                                                \
		ct_config_free(&c_);                                                               \
	} while (0)

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_flags(void)
{
	struct ct_config cfg;
	struct yun_err err;

	CHECK_EQ(parse(&cfg, &err, "--image", "/img", "--name", "web-1", "--hostname", "web",
		       "--cpus", "0.5", "--cpu-shares", "512", "--cpuset", "0-1", "--memory",
		       "512M", "--memory-swap", "0", "--pids", "50", "--blkio-weight", "300",
		       "--net", "veth=ve0", "--mount", "/srv/a:/a:ro", "--mount", "/srv/b:/b", "-t",
		       "--userns", "auto", "-e", "A=1", "--cwd", "/tmp", "-d", "--keep", "--", "sh",
		       "-c", "echo hi", NULL),
		 0);
	CHECK(!strcmp(cfg.image, "/img"));
	CHECK(!strcmp(cfg.id, "web-1"));
	CHECK(!strcmp(cfg.hostname, "web"));
	CHECK(cfg.limits.cpus == 0.5);
	CHECK_EQ(cfg.limits.cpu_shares, 512);
	CHECK(!strcmp(cfg.limits.cpuset, "0-1"));
	CHECK_EQ(cfg.limits.memory_bytes, 512ull << 20);
	CHECK_EQ(cfg.limits.swap_bytes, 0);
	CHECK_EQ(cfg.limits.pids, 50);
	CHECK_EQ(cfg.limits.blkio_weight, 300);
	CHECK_EQ(cfg.net, CT_NET_VETH);
	CHECK(!strcmp(cfg.net_arg, "ve0"));
	CHECK_EQ(cfg.n_mounts, 2);
	CHECK(!strcmp(cfg.mounts[0].src, "/srv/a") && !strcmp(cfg.mounts[0].dst, "/a"));
	CHECK(cfg.mounts[0].ro && !cfg.mounts[1].ro);
	CHECK_EQ(cfg.console, CT_CONSOLE_PTY);
	CHECK_EQ(cfg.userns, CT_USERNS_AUTO);
	CHECK(cfg.n_env == 1 && !strcmp(cfg.env[0], "A=1"));
	CHECK(!strcmp(cfg.cwd, "/tmp"));
	CHECK(cfg.detach && cfg.keep);
	CHECK_EQ(cfg.argc, 3);
	CHECK(!strcmp(cfg.argv[2], "echo hi") && cfg.argv[3] == NULL);
	ct_config_free(&cfg);

	/* Defaults, and the command starts at the first non-option. */
	CHECK_EQ(parse(&cfg, &err, "--rootfs", "/r", "ls", "-l", NULL), 0);
	CHECK_EQ(cfg.net, CT_NET_NONE);
	CHECK_EQ(cfg.console, CT_CONSOLE_AUTO);
	CHECK_EQ(cfg.userns, CT_USERNS_OFF);
	CHECK_EQ(cfg.limits.swap_bytes, -1);
	CHECK(cfg.argc == 2 && !strcmp(cfg.argv[1], "-l"));
	ct_config_resolve_console(&cfg, false);
	CHECK_EQ(cfg.console, CT_CONSOLE_STDIO);
	ct_config_free(&cfg);

	CHECK_EQ(parse(&cfg, &err, "--rootfs", "/r", "--memory", "2G", "--memory-swap", "-1",
		       "--uid-map", "0:200000:1000", "--gid-map", "0:200000:1000", "--net",
		       "netns=/run/netns/x", "--console", "socket=/tmp/c.sock", NULL),
		 0);
	CHECK_EQ(cfg.limits.memory_bytes, 2ull << 30);
	CHECK_EQ(cfg.limits.swap_bytes, -1);
	CHECK_EQ(cfg.userns, CT_USERNS_MAP);
	CHECK(cfg.uid_map[0].inside == 0 && cfg.uid_map[0].outside == 200000 &&
	      cfg.uid_map[0].count == 1000);
	CHECK_EQ(cfg.net, CT_NET_NETNS);
	CHECK_EQ(cfg.console, CT_CONSOLE_SOCKET);
	CHECK(!strcmp(cfg.console_path, "/tmp/c.sock"));
	ct_config_free(&cfg);
}

static void test_range_errors(void)
{
	CHECK_FAILS("memory -5", "--rootfs", "/r", "--memory", "-5");
	CHECK_FAILS("memory 1", "--rootfs", "/r", "--memory", "1");
	CHECK_FAILS("memory lots", "--rootfs", "/r", "--memory", "lots");
	CHECK_FAILS("memory 99999999999999999G", "--rootfs", "/r", "--memory",
		    "99999999999999999G");
	CHECK_FAILS("cpus 0", "--rootfs", "/r", "--cpus", "0");
	CHECK_FAILS("cpus -1", "--rootfs", "/r", "--cpus", "-1");
	CHECK_FAILS("cpus 2000", "--rootfs", "/r", "--cpus", "2000");
	CHECK_FAILS("cpus nan", "--rootfs", "/r", "--cpus", "nan");
	CHECK_FAILS("pids 0: must be from 1", "--rootfs", "/r", "--pids", "0");
	CHECK_FAILS("pids -3", "--rootfs", "/r", "--pids", "-3");
	CHECK_FAILS("pids 99999999", "--rootfs", "/r", "--pids", "99999999");
	CHECK_FAILS("cpu-shares 1", "--rootfs", "/r", "--cpu-shares", "1");
	CHECK_FAILS("blkio-weight 5", "--rootfs", "/r", "--blkio-weight", "5");
	CHECK_FAILS("cpuset", "--rootfs", "/r", "--cpuset", "1-0");
	CHECK_FAILS("cpuset", "--rootfs", "/r", "--cpuset", "0,,1");
	CHECK_FAILS("memory-swap: needs --memory", "--rootfs", "/r", "--memory-swap", "10");
	CHECK_FAILS("memory-swap -2", "--rootfs", "/r", "--memory", "64", "--memory-swap", "-2");
}

static void test_syntax_errors(void)
{
	CHECK_FAILS("no root file system", "sh");
	CHECK_FAILS("give only one", "--rootfs", "/r", "--image", "/i");
	CHECK_FAILS("container id bad/id", "--rootfs", "/r", "--name", "bad/id");
	CHECK_FAILS("must not start", "--rootfs", "/r", "--name", ".hidden");
	CHECK_FAILS("hostname a_b", "--rootfs", "/r", "--hostname", "a_b");
	CHECK_FAILS("net wifi", "--rootfs", "/r", "--net", "wifi");
	CHECK_FAILS("veth=", "--rootfs", "/r", "--net", "veth=");
	CHECK_FAILS("veth=averyveryverylongname", "--rootfs", "/r", "--net",
		    "veth=averyveryverylongname");
	CHECK_FAILS("netns=rel", "--rootfs", "/r", "--net", "netns=rel");
	CHECK_FAILS("console tty9", "--rootfs", "/r", "--console", "tty9");
	CHECK_FAILS("userns maybe", "--rootfs", "/r", "--userns", "maybe");
	CHECK_FAILS("uid-map 0:1", "--rootfs", "/r", "--uid-map", "0:1");
	CHECK_FAILS("uid-map 0:1:0", "--rootfs", "/r", "--uid-map", "0:1:0");
	CHECK_FAILS("wraps", "--rootfs", "/r", "--uid-map", "0:4294967295:2");
	CHECK_FAILS("must map id 0", "--rootfs", "/r", "--uid-map", "1:100000:10", "--gid-map",
		    "0:100000:10");
	CHECK_FAILS("gid-map: none given", "--rootfs", "/r", "--uid-map", "0:100000:10");
	CHECK_FAILS("overlap", "--rootfs", "/r", "--uid-map", "0:100000:10", "--uid-map",
		    "5:200000:10", "--gid-map", "0:100000:10");
	/* Ranges that end at 2^32 (where 32-bit sums wrap to 0) still overlap. */
	CHECK_FAILS("overlap", "--rootfs", "/r", "--uid-map", "0:0:1", "--uid-map",
		    "4294967295:5:1", "--uid-map", "4294967295:6:1", "--gid-map", "0:0:1");
	CHECK_FAILS("mount data", "--rootfs", "/r", "--mount", "data");
	CHECK_FAILS("option \"rx\"", "--rootfs", "/r", "--mount", "/a:/b:rx");
	CHECK_FAILS("absolute", "--rootfs", "/r", "--mount", "rel:/b");
	CHECK_FAILS("destination b: must be an absolute", "--rootfs", "/r", "--mount", "/a:b");
	CHECK_FAILS("\"..\"", "--rootfs", "/r", "--mount", "/a:/x/../etc");
	CHECK_FAILS("/proc", "--rootfs", "/r", "--mount", "/a:/proc/sys");
	CHECK_FAILS("/sys", "--rootfs", "/r", "--mount", "/a:/sys");
	CHECK_FAILS("must not be /", "--rootfs", "/r", "--mount", "/a:/");
	CHECK_FAILS("env X", "--rootfs", "/r", "-e", "X");
	CHECK_FAILS("unknown option --frobnicate", "--rootfs", "/r", "--frobnicate");
	CHECK_FAILS("needs a value", "--rootfs", "/r", "--memory");
	CHECK_FAILS("cwd rel", "--rootfs", "/r", "--cwd", "rel");

	/* Destinations that merely start like a protected one are fine. */
	{
		struct ct_config cfg;
		struct yun_err err;

		CHECK_EQ(parse(&cfg, &err, "--rootfs", "/r", "--mount", "/a:/procfiles", "--mount",
			       "/a:/system", "--mount", "/a:/dev/data", NULL),
			 0);
		ct_config_free(&cfg);
	}
}

static void test_json(void)
{
	struct ct_config cfg, back;
	struct yun_err err;
	const char *path;
	char *text;
	json_t *j;

	path = write_file("c.json",
			  "{\"rootfs\": \"/r\", \"hostname\": \"h1\", \"cpus\": 0.25,\n"
			  " \"memory\": 256, \"pids\": \"64\", \"net\": \"host\",\n"
			  " \"mounts\": [\"/srv/a:/a:ro\", {\"source\": \"/srv/b\",\n"
			  "   \"destination\": \"/b\", \"readonly\": false}],\n"
			  " \"env\": [\"X=1\"], \"uid_map\": [\"0:100000:65536\"],\n"
			  " \"gid_map\": [\"0:100000:65536\"], \"command\": [\"sleep\", \"5\"]}\n");
	CHECK_EQ(parse(&cfg, &err, "--config", path, "--hostname", "h2", NULL), 0);
	CHECK(!strcmp(cfg.rootfs, "/r"));
	CHECK(!strcmp(cfg.hostname, "h2")); /* the flag after --config wins */
	CHECK(cfg.limits.cpus == 0.25);
	CHECK_EQ(cfg.limits.memory_bytes, 256ull << 20);
	CHECK_EQ(cfg.limits.pids, 64);
	CHECK_EQ(cfg.net, CT_NET_HOST);
	CHECK_EQ(cfg.n_mounts, 2);
	CHECK(cfg.mounts[0].ro && !strcmp(cfg.mounts[1].dst, "/b"));
	CHECK_EQ(cfg.userns, CT_USERNS_MAP);
	CHECK(cfg.argc == 2 && !strcmp(cfg.argv[0], "sleep"));

	/* What state.json records reads back as the same settings. */
	j = ct_config_to_json(&cfg);
	text = json_dumps(j, 0);
	ct_config_init(&back);
	CHECK_EQ(ct_config_parse_json(&back, text, "state", &err), 0);
	CHECK(!strcmp(back.hostname, "h2"));
	CHECK(back.limits.cpus == 0.25);
	CHECK_EQ(back.limits.memory_bytes, cfg.limits.memory_bytes);
	CHECK_EQ(back.limits.pids, 64);
	CHECK_EQ(back.n_mounts, 2);
	CHECK(back.mounts[0].ro);
	CHECK(back.n_uid_map == 1 && back.uid_map[0].outside == 100000);
	CHECK(back.argc == 2 && !strcmp(back.argv[1], "5"));
	CHECK_EQ(ct_config_validate(&back, &err), 0);
	free(text);
	json_decref(j);
	ct_config_free(&back);
	ct_config_free(&cfg);

	/* Flags before the file's command keep the file's command unless one is given. */
	CHECK_EQ(parse(&cfg, &err, "--config", path, "true", NULL), 0);
	CHECK(cfg.argc == 1 && !strcmp(cfg.argv[0], "true"));
	ct_config_free(&cfg);

	CHECK_FAILS("unknown setting \"cpu\"", "--config",
		    write_file("u.json", "{\"rootfs\": \"/r\", \"cpu\": 1}"));
	CHECK_FAILS("\"hostname\" must be a string", "--config",
		    write_file("t.json", "{\"rootfs\": \"/r\", \"hostname\": 5}"));
	CHECK_FAILS("pids 0", "--config",
		    write_file("p.json", "{\"rootfs\": \"/r\", \"pids\": 0}"));
	CHECK_FAILS("memory -5", "--config",
		    write_file("m.json", "{\"rootfs\": \"/r\", \"memory\": -5}"));
	CHECK_FAILS("line 1", "--config", write_file("s.json", "{\"rootfs\": "));
	CHECK_FAILS("duplicate", "--config",
		    write_file("d.json", "{\"rootfs\": \"/r\", \"rootfs\": \"/s\"}"));
	CHECK_FAILS("must be a JSON object", "--config", write_file("a.json", "[1]"));
	CHECK_FAILS("\"command\"[1] must be a string", "--config",
		    write_file("c2.json", "{\"rootfs\": \"/r\", \"command\": [\"a\", 1]}"));
	CHECK_FAILS("No such file", "--config", "/nonexistent/c.json");
	/* A number is not cut to fit the parser's buffer and then accepted. */
	CHECK_FAILS("\"cpus\" is too long", "--config",
		    write_file("n.json", "{\"rootfs\": \"/r\", \"cpus\": \"0.5000000000000000"
					 "0000000000000000000000000000000000000000000000001\"}"));
}

/* Parse JSON, validate, write state.json's form and read it back the same. */
static void check_round_trip(const char *text, struct ct_config *cfg, json_t **j)
{
	struct ct_config back;
	struct yun_err err = {0};
	json_t *jb;
	char *again;

	ct_config_init(cfg);
	CHECK_EQ(ct_config_parse_json(cfg, text, "test", &err), 0);
	CHECK_EQ(ct_config_validate(cfg, &err), 0);
	*j = ct_config_to_json(cfg);
	again = json_dumps(*j, JSON_SORT_KEYS);
	CHECK(again != NULL);
	ct_config_init(&back);
	CHECK_EQ(ct_config_parse_json(&back, again, "state", &err), 0);
	CHECK_EQ(ct_config_validate(&back, &err), 0);
	CHECK_EQ(back.userns, cfg->userns);
	jb = ct_config_to_json(&back);
	CHECK(json_equal(*j, jb));
	json_decref(jb);
	ct_config_free(&back);
	free(again);
}

/* Inputs that broke ct_config_fuzz's round trip: state.json did not read back. */
static void test_json_round_trip(void)
{
	struct ct_config cfg;
	struct yun_err err;
	json_t *j;
	const char *net;
	char *text, *path;
	size_t len;

	/*
	 * "userns": "off" after maps: the maps were kept (unused) and written
	 * out, reading back as explicit maps, here invalid (no gid_map).
	 */
	check_round_trip("{\"rootfs\": \"/r\", \"uid_map\": [\"1:1:1\"], \"userns\": \"off\"}",
			 &cfg, &j);
	CHECK_EQ(cfg.userns, CT_USERNS_OFF);
	CHECK_EQ(cfg.n_uid_map, 0);
	CHECK(json_object_get(j, "uid_map") == NULL);
	json_decref(j);
	ct_config_free(&cfg);
	check_round_trip("{\"rootfs\": \"/r\", \"uid_map\": [\"0:1:1\"], \"gid_map\": [\"0:1:1\"],"
			 " \"userns\": \"auto\"}",
			 &cfg, &j);
	CHECK_EQ(cfg.userns, CT_USERNS_AUTO);
	CHECK(json_object_get(j, "uid_map") == NULL);
	json_decref(j);
	ct_config_free(&cfg);
	/* Maps after --userns still win. */
	CHECK_EQ(parse(&cfg, &err, "--rootfs", "/r", "--userns", "auto", "--uid-map", "0:1:1",
		       "--gid-map", "0:1:1", NULL),
		 0);
	CHECK_EQ(cfg.userns, CT_USERNS_MAP);
	ct_config_free(&cfg);
	CHECK_EQ(parse(&cfg, &err, "--rootfs", "/r", "--uid-map", "1:1:1", "--userns", "off", NULL),
		 0);
	CHECK_EQ(cfg.n_uid_map, 0);
	ct_config_free(&cfg);

	/*
	 * A netns path longer than the old 4 KiB buffer, cut inside the UTF-8
	 * of its last character: "net" went missing from the JSON.
	 */
	len = 4200;
	path = malloc(len + 1);
	text = malloc(len + 64);
	CHECK(path && text);
	path[0] = '/';
	memset(path + 1, 'a', len - 1);
	memcpy(path + 4088, "\xc3\xa9", 2);
	path[len] = '\0';
	snprintf(text, len + 64, "{\"rootfs\": \"/r\", \"net\": \"netns=%s\"}", path);
	check_round_trip(text, &cfg, &j);
	net = json_string_value(json_object_get(j, "net"));
	CHECK(net && !strncmp(net, "netns=", 6) && !strcmp(net + 6, path));
	json_decref(j);
	ct_config_free(&cfg);
	free(text);
	free(path);
}

static void test_signals_and_ids(void)
{
	struct yun_err err;
	int sig = 0;

	CHECK(ct_parse_signal("TERM", &sig, &err) == 0 && sig == SIGTERM);
	CHECK(ct_parse_signal("sigkill", &sig, &err) == 0 && sig == SIGKILL);
	CHECK(ct_parse_signal("9", &sig, &err) == 0 && sig == 9);
	CHECK(ct_parse_signal("0", &sig, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "signal 0");
	CHECK(ct_parse_signal("NOPE", &sig, &err) < 0);
	CHECK(ct_parse_signal("99", &sig, &err) < 0);
	CHECK(ct_parse_signal("RTMIN+3", &sig, &err) == 0 && sig == SIGRTMIN + 3);
	CHECK(ct_parse_signal("SIGRTMIN", &sig, &err) == 0 && sig == SIGRTMIN);
	CHECK(ct_parse_signal("RTMIN+99", &sig, &err) < 0);
	/* SIGRTMIN + N overflowed (UBSan in ct_config_fuzz) before the range check. */
	CHECK(ct_parse_signal("RTMIN+9223372036854775807", &sig, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "RTMIN+N must stay below RTMAX");
	CHECK(ct_parse_signal("RTMIN+9223372036854775790", &sig, &err) < 0);
	CHECK_EQ(ct_parse_id("web.1_a-b", &err), 0);
	CHECK(ct_parse_id("", &err) < 0);
	CHECK(ct_parse_id("a b", &err) < 0);
	CHECK(ct_parse_id("-x", &err) < 0);
	{
		char long_id[80];

		memset(long_id, 'a', 65);
		long_id[65] = '\0';
		CHECK(ct_parse_id(long_id, &err) < 0);
	}
}

/* Host checks that need no privilege: rootfs and command lookups. */
static void test_check_host(void)
{
	struct ct_config cfg;
	struct yun_err err;
	char root[128], prog[160];
	FILE *f;

	snprintf(root, sizeof(root), "%s/rootfs", tmpdir);
	mkdir(root, 0755);
	snprintf(prog, sizeof(prog), "%s/bin", root);
	mkdir(prog, 0755);
	snprintf(prog, sizeof(prog), "%s/bin/prog", root);
	f = fopen(prog, "w");
	fclose(f);
	chmod(prog, 0755);

	CHECK_EQ(parse(&cfg, &err, "--rootfs", root, "prog", NULL), 0);
	CHECK_EQ(ct_config_check_host(&cfg, &err), 0);
	ct_config_free(&cfg);

	CHECK_EQ(parse(&cfg, &err, "--rootfs", root, "nothere", NULL), 0);
	CHECK_EQ(ct_config_check_host(&cfg, &err), -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "command nothere: not found");
	ct_config_free(&cfg);

	CHECK_EQ(parse(&cfg, &err, "--rootfs", prog, "prog", NULL), 0);
	CHECK_EQ(ct_config_check_host(&cfg, &err), -ENOTDIR);
	CHECK_STR_CONTAINS(err.msg, "not a directory");
	ct_config_free(&cfg);

	/* A missing rootfs is not "command not found" (exit status 127). */
	CHECK_EQ(parse(&cfg, &err, "--rootfs", "/nonexistent/r", "prog", NULL), 0);
	CHECK_EQ(ct_config_check_host(&cfg, &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "/nonexistent/r");
	ct_config_free(&cfg);

	CHECK_EQ(parse(&cfg, &err, "--rootfs", root, "--cpus", "1024", "prog", NULL), 0);
	CHECK(ct_config_check_host(&cfg, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "this host has only");
	ct_config_free(&cfg);
	CHECK_EQ(parse(&cfg, &err, "--rootfs", root, "--memory", "100000G", "prog", NULL), 0);
	CHECK(ct_config_check_host(&cfg, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "this host has only");
	ct_config_free(&cfg);
	CHECK_EQ(parse(&cfg, &err, "--rootfs", root, "--mount", "/etc:/e", "prog", NULL), 0);
	CHECK_EQ(ct_config_check_host(&cfg, &err), -EPERM);
	CHECK_STR_CONTAINS(err.msg, "mount source /etc");
	ct_config_free(&cfg);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ct_config_test.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	RUN(test_flags);
	RUN(test_range_errors);
	RUN(test_syntax_errors);
	RUN(test_json);
	RUN(test_json_round_trip);
	RUN(test_signals_and_ids);
	RUN(test_check_host);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return CHECK_DONE();
}
