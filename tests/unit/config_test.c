/*
 * config_test.c - yun-vmm's flags and JSON config file: the forms users
 * type (plain and cloud-hypervisor style), the file and flag precedence,
 * and error messages that name the bad key or value.
 */
#include "vmm/config.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

static char tmpdir[64];

/* Parse argv "yun-vmm ARGS..." into a fresh config; validate too if asked, as main() does. */
static int parse_va(struct vmm_config *cfg, struct yun_err *err, int validate, va_list ap)
{
	char *argv[32];
	int argc = 0, rc;

	argv[argc++] = "yun-vmm";
	for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
		argv[argc++] = a;
	argv[argc] = NULL;
	config_init(cfg);
	memset(err, 0, sizeof(*err));
	rc = config_parse_args(cfg, argc, argv, err);
	if (rc == 0 && validate)
		rc = config_validate(cfg, err);
	return rc;
}

/* The arguments end with NULL. */
static int parse(struct vmm_config *cfg, struct yun_err *err, ...)
{
	va_list ap;
	int rc;

	va_start(ap, err);
	rc = parse_va(cfg, err, 0, ap);
	va_end(ap);
	return rc;
}

static int parse_valid(struct vmm_config *cfg, struct yun_err *err, ...)
{
	va_list ap;
	int rc;

	va_start(ap, err);
	rc = parse_va(cfg, err, 1, ap);
	va_end(ap);
	return rc;
}

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return path;
}

static void test_defaults(void)
{
	struct vmm_config cfg;
	struct yun_err err;

	CHECK_EQ(parse(&cfg, &err, "--kernel", "/k", NULL), 0);
	CHECK_EQ(config_validate(&cfg, &err), 0);
	CHECK_EQ(cfg.cpus, CONFIG_DEFAULT_CPUS);
	CHECK_EQ(cfg.memory_mib, CONFIG_DEFAULT_MEMORY_MIB);
	CHECK(!cfg.debug_exit && !cfg.reboot && !cfg.help);
	CHECK(cfg.initrd == NULL);
	config_free(&cfg);
}

static void test_plain_forms(void)
{
	struct vmm_config cfg;
	struct yun_err err;

	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "/boot/k", "--cpus", "2", "--memory", "512",
			     "--cmdline", "console=ttyS0 yuntest=cmdline", "--initrd", "/i",
			     "--serial", "file=/tmp/x", "--debug-exit", "--reboot", "-v", NULL),
		 0);
	CHECK(!strcmp(cfg.kernel, "/boot/k"));
	CHECK(!strcmp(cfg.initrd, "/i"));
	CHECK(!strcmp(cfg.cmdline, "console=ttyS0 yuntest=cmdline"));
	CHECK(!strcmp(cfg.serial, "file=/tmp/x"));
	CHECK_EQ(cfg.cpus, 2);
	CHECK_EQ(cfg.memory_mib, 512);
	CHECK(cfg.debug_exit && cfg.reboot && cfg.verbose);
	config_free(&cfg);

	/* --opt=value works too (getopt_long). */
	CHECK_EQ(parse_valid(&cfg, &err, "--kernel=/k", "--cpus=4", "--memory=1024", NULL), 0);
	CHECK_EQ(cfg.cpus, 4);
	CHECK_EQ(cfg.memory_mib, 1024);
	config_free(&cfg);

	/* Limits are inclusive. */
	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "/k", "--cpus", "64", "--memory", "16", NULL),
		 0);
	config_free(&cfg);
	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "/k", "--cpus", "1", "--memory", "1048576",
			     NULL),
		 0);
	config_free(&cfg);
}

static void test_cloud_hypervisor_forms(void)
{
	struct vmm_config cfg;
	struct yun_err err;

	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "/k", "--cpus", "boot=2", "--memory",
			     "size=2G", NULL),
		 0);
	CHECK_EQ(cfg.cpus, 2);
	CHECK_EQ(cfg.memory_mib, 2048);
	config_free(&cfg);

	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "/k", "--memory", "size=512M", NULL), 0);
	CHECK_EQ(cfg.memory_mib, 512);
	config_free(&cfg);

	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "/k", "--memory", "size=65536K", NULL), 0);
	CHECK_EQ(cfg.memory_mib, 64);
	config_free(&cfg);

	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "/k", "--memory", "1G", NULL), 0);
	CHECK_EQ(cfg.memory_mib, 1024);
	config_free(&cfg);
}

static void test_bad_values(void)
{
	static const struct {
		const char *opt, *value, *needle;
	} cases[] = {
		{ "--cpus", "0", "cpus 0" },
		{ "--cpus", "65", "cpus 65" },
		{ "--cpus", "-1", "cpus -1" },
		{ "--cpus", "two", "cpus two" },
		{ "--cpus", "", "cpus" },
		{ "--cpus", "boot=", "cpus boot=" },
		{ "--cpus", "4294967296", "cpus 4294967296" },
		{ "--cpus", "2x", "cpus 2x" },
		{ "--memory", "8", "memory 8" },
		{ "--memory", "0", "memory 0" },
		{ "--memory", "abc", "memory abc" },
		{ "--memory", "size=1.5G", "memory size=1.5G" },
		{ "--memory", "-512", "memory -512" },
		{ "--memory", "size=", "memory size=" },
		{ "--memory", "512T", "memory 512T" },
		{ "--memory", "2000000", "memory 2000000" },
		{ "--memory", "size=1025K", "memory size=1025K" },
		{ "--memory", "99999999999999999999", "memory 99999999999999999999" },
		{ "--memory", "size=17179869184G", "memory size=17179869184G" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmm_config cfg;
		struct yun_err err;
		int rc = parse_valid(&cfg, &err, "--kernel", "/k", cases[i].opt, cases[i].value,
				     NULL);

		if (rc >= 0)
			fprintf(stderr, "  %s \"%s\" accepted\n", cases[i].opt, cases[i].value);
		CHECK(rc < 0);
		CHECK_STR_CONTAINS(err.msg, cases[i].needle);
		CHECK(strchr(err.msg, '\n') == NULL);
		config_free(&cfg);
	}
}

static void test_missing_kernel(void)
{
	struct vmm_config cfg;
	struct yun_err err;

	CHECK(parse_valid(&cfg, &err, "--cpus", "2", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "kernel");
	config_free(&cfg);
	CHECK(parse_valid(&cfg, &err, "--kernel", "", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "kernel");
	config_free(&cfg);
}

static void test_bad_options(void)
{
	struct vmm_config cfg;
	struct yun_err err;

	CHECK(parse(&cfg, &err, "--kernel", "/k", "--frobnicate", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "--frobnicate");
	config_free(&cfg);
	CHECK(parse(&cfg, &err, "--kernel", "/k", "-q", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "-q");
	config_free(&cfg);
	CHECK(parse(&cfg, &err, "--kernel", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "--kernel");
	config_free(&cfg);
	CHECK(parse(&cfg, &err, "--kernel", "/k", "stray", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "stray");
	config_free(&cfg);
	CHECK(parse(&cfg, &err, "--debug-exit=yes", "--kernel", "/k", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "debug-exit");
	config_free(&cfg);

	CHECK_EQ(parse(&cfg, &err, "--help", NULL), 0);
	CHECK(cfg.help);
	config_free(&cfg);
}

static void test_config_file(void)
{
	struct vmm_config cfg;
	struct yun_err err;
	const char *path = write_file("vm.json",
				      "{\n"
				      "  \"kernel\": \"/boot/vmlinuz\",\n"
				      "  \"initrd\": \"/boot/initrd\",\n"
				      "  \"cmdline\": \"yuntest=cmdline\",\n"
				      "  \"cpus\": 2,\n"
				      "  \"memory\": 512,\n"
				      "  \"serial\": \"off\",\n"
				      "  \"debug_exit\": true,\n"
				      "  \"reboot\": false,\n"
				      "  \"kvm_device\": \"/dev/kvm\"\n"
				      "}\n");
	char *p = strdup(path);

	CHECK_EQ(parse_valid(&cfg, &err, "--config", p, NULL), 0);
	CHECK(cfg.kernel && !strcmp(cfg.kernel, "/boot/vmlinuz"));
	CHECK(cfg.initrd && !strcmp(cfg.initrd, "/boot/initrd"));
	CHECK(cfg.cmdline && !strcmp(cfg.cmdline, "yuntest=cmdline"));
	CHECK(cfg.serial && !strcmp(cfg.serial, "off"));
	CHECK(cfg.kvm_device && !strcmp(cfg.kvm_device, "/dev/kvm"));
	CHECK_EQ(cfg.cpus, 2);
	CHECK_EQ(cfg.memory_mib, 512);
	CHECK(cfg.debug_exit);
	CHECK(!cfg.reboot);
	config_free(&cfg);

	/* Flags after --config override it; flags before are overridden by it. */
	CHECK_EQ(parse_valid(&cfg, &err, "--config", p, "--cpus", "4", "--memory", "size=1G",
			     "--kernel", "/other", NULL),
		 0);
	CHECK_EQ(cfg.cpus, 4);
	CHECK_EQ(cfg.memory_mib, 1024);
	CHECK(!strcmp(cfg.kernel, "/other"));
	CHECK(!strcmp(cfg.cmdline, "yuntest=cmdline"));
	config_free(&cfg);
	CHECK_EQ(parse_valid(&cfg, &err, "--cpus", "4", "--config", p, NULL), 0);
	CHECK_EQ(cfg.cpus, 2);
	config_free(&cfg);

	/* A bad value in the file is caught like a bad flag. */
	free(p);
	p = strdup(write_file("zero.json", "{\"kernel\": \"/k\", \"cpus\": 0}"));
	CHECK(parse_valid(&cfg, &err, "--config", p, NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "cpus 0");
	config_free(&cfg);

	/* Memory as a string takes the --memory forms. */
	free(p);
	p = strdup(write_file("mem.json", "{\"kernel\": \"/k\", \"memory\": \"size=2G\"}"));
	CHECK_EQ(parse_valid(&cfg, &err, "--config", p, NULL), 0);
	CHECK_EQ(cfg.memory_mib, 2048);
	config_free(&cfg);
	free(p);

	/* A missing file is named. */
	CHECK(parse(&cfg, &err, "--config", "/nonexistent/vm.json", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "/nonexistent/vm.json");
	config_free(&cfg);
}

static void check_json_error(const char *text, const char *needle1, const char *needle2)
{
	struct vmm_config cfg;
	struct yun_err err = { 0 };

	config_init(&cfg);
	CHECK(config_parse_json(&cfg, text, "vm.json", &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "vm.json");
	CHECK_STR_CONTAINS(err.msg, needle1);
	if (needle2)
		CHECK_STR_CONTAINS(err.msg, needle2);
	CHECK(strchr(err.msg, '\n') == NULL);
	config_free(&cfg);
}

static void test_json_errors(void)
{
	/* Unknown key: named, so a typo is obvious. */
	check_json_error("{\"kernel\": \"/k\", \"cpu\": 2}", "\"cpu\"", "unknown");
	/* Wrong types: the key is named. */
	check_json_error("{\"cpus\": \"two\"}", "\"cpus\"", NULL);
	check_json_error("{\"cpus\": -2}", "\"cpus\"", NULL);
	check_json_error("{\"cpus\": 1.5}", "\"cpus\"", NULL);
	check_json_error("{\"memory\": true}", "\"memory\"", NULL);
	check_json_error("{\"kernel\": 5}", "\"kernel\"", NULL);
	check_json_error("{\"debug_exit\": \"yes\"}", "\"debug_exit\"", NULL);
	check_json_error("{\"reboot\": 1}", "\"reboot\"", NULL);
	check_json_error("{\"serial\": null}", "\"serial\"", NULL);
	check_json_error("{\"cpus\": 99999999999}", "\"cpus\"", NULL);
	/* Duplicate key: rejected, not last-wins. */
	check_json_error("{\"cpus\": 2, \"cpus\": 4}", "cpus", NULL);
	/* Not an object. */
	check_json_error("[1, 2]", "object", NULL);
	check_json_error("\"kernel\"", "line 1", "{"); /* jansson: '[' or '{' expected */
	/* Malformed: line and column of the problem. */
	check_json_error("{\n  \"kernel\": \"/k\",\n  \"cpus\": 2,,\n}\n", "line 3", "column");
	check_json_error("", "line", NULL);
	check_json_error("{\"kernel\": \"/k\"", "line 1", NULL);
}

static void test_json_partial_merge(void)
{
	struct vmm_config cfg;
	struct yun_err err = { 0 };

	config_init(&cfg);
	CHECK_EQ(config_parse_json(&cfg, "{}", "empty.json", &err), 0);
	CHECK_EQ(cfg.cpus, CONFIG_DEFAULT_CPUS);
	CHECK_EQ(cfg.memory_mib, CONFIG_DEFAULT_MEMORY_MIB);
	CHECK_EQ(config_parse_json(&cfg, "{\"kernel\": \"/a\"}", "a.json", &err), 0);
	CHECK_EQ(config_parse_json(&cfg, "{\"kernel\": \"/b\", \"cpus\": 3}", "b.json", &err), 0);
	CHECK(!strcmp(cfg.kernel, "/b"));
	CHECK_EQ(cfg.cpus, 3);
	CHECK_EQ(config_validate(&cfg, &err), 0);
	config_free(&cfg);
}

static void test_net_cards(void)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	struct vmm_config cfg;
	struct yun_err err;

	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "k", "--net", "tap=yt0,mac=52:54:00:12:34:56",
			     "--net", "tap=yt1", NULL), 0);
	CHECK_EQ(cfg.nr_nets, 2);
	CHECK(!strcmp(cfg.nets[0].tap, "yt0") && cfg.nets[0].has_mac);
	CHECK(!memcmp(cfg.nets[0].mac, mac, 6));
	CHECK(!strcmp(cfg.nets[1].tap, "yt1") && !cfg.nets[1].has_mac);
	config_free(&cfg);

	CHECK_EQ(parse(&cfg, &err, "--net", "tap=yt0,mac=52:54:00:12:34", NULL), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "mac \"52:54:00:12:34\"");
	config_free(&cfg);
	CHECK_EQ(parse(&cfg, &err, "--net", "tap=0123456789abcdef", NULL), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "0123456789abcdef");
	config_free(&cfg);
	CHECK_EQ(parse(&cfg, &err, "--net", "tap=yt0,queues=2", NULL), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "unknown option \"queues\"");
	config_free(&cfg);
	CHECK_EQ(parse(&cfg, &err, "--net", "mac=52:54:00:12:34:56", NULL), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "no tap=NAME");
	config_free(&cfg);
	CHECK_EQ(parse(&cfg, &err, "--net", "tap=a", "--net", "tap=b", "--net", "tap=c", "--net",
		       "tap=d", "--net", "tap=e", NULL), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "more than 4");
	config_free(&cfg);
	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "k", "--net", "tap=a", "--net", "tap=a", NULL),
		 -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "given twice");
	config_free(&cfg);

	config_init(&cfg);
	CHECK_EQ(config_parse_json(&cfg, "{\"net\": [{\"tap\": \"yt0\", \"mac\": "
				   "\"52:54:00:12:34:56\"}, {\"tap\": \"yt1\"}]}", "n.json", &err), 0);
	CHECK_EQ(cfg.nr_nets, 2);
	CHECK(!memcmp(cfg.nets[0].mac, mac, 6) && !cfg.nets[1].has_mac);
	config_free(&cfg);
	config_init(&cfg);
	CHECK_EQ(config_parse_json(&cfg, "{\"net\": [{\"tap\": \"yt0\", \"speed\": \"1G\"}]}",
				   "n.json", &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "n.json net[0]: unknown setting \"speed\"");
	CHECK_EQ(cfg.nr_nets, 0);
	config_free(&cfg);
	config_init(&cfg);
	CHECK_EQ(config_parse_json(&cfg, "{\"net\": {\"tap\": \"yt0\"}}", "n.json", &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "must be a list");
	config_free(&cfg);
}

static void test_rate_limits(void)
{
	static const char *const bad[] = { "-5", "abc", "1.5", "", "10M", "99999999999999999999" };
	struct vmm_config cfg;
	struct yun_err err;
	char arg[96];

	CHECK_EQ(parse_valid(&cfg, &err, "--kernel", "k", "--disk", "path=d.img,bw=1048576,iops=100",
			     "--net", "tap=yt0,bw=1000,tx_pps=50", "--net", "tap=yt1,rx_bw=7,pps=9",
			     NULL), 0);
	CHECK_EQ(cfg.disks[0].bw, 1048576);
	CHECK_EQ(cfg.disks[0].iops, 100);
	CHECK(cfg.nets[0].rx_bw == 1000 && cfg.nets[0].tx_bw == 1000);
	CHECK(cfg.nets[0].rx_pps == 0 && cfg.nets[0].tx_pps == 50);
	CHECK(cfg.nets[1].rx_bw == 7 && cfg.nets[1].tx_bw == 0);
	CHECK(cfg.nets[1].rx_pps == 9 && cfg.nets[1].tx_pps == 9);
	config_free(&cfg);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(arg, sizeof(arg), "path=d.img,bw=%s", bad[i]);
		CHECK_EQ(parse(&cfg, &err, "--disk", arg, NULL), -EINVAL);
		CHECK_STR_CONTAINS(err.msg, "want a whole number per second");
		CHECK_EQ(cfg.nr_disks, 0);
		config_free(&cfg);
		snprintf(arg, sizeof(arg), "tap=yt0,tx_pps=%s", bad[i]);
		CHECK_EQ(parse(&cfg, &err, "--net", arg, NULL), -EINVAL);
		CHECK_STR_CONTAINS(err.msg, "tx_pps=");
		CHECK_EQ(cfg.nr_nets, 0);
		config_free(&cfg);
	}
	CHECK_EQ(parse(&cfg, &err, "--net", "tap=yt0,rx_iops=5", NULL), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "unknown option \"rx_iops\"");
	config_free(&cfg);

	config_init(&cfg);
	CHECK_EQ(config_parse_json(&cfg, "{\"disks\": [{\"path\": \"d\", \"iops\": 10}], \"net\": "
				   "[{\"tap\": \"yt0\", \"rx_pps\": 3}]}", "r.json", &err), 0);
	CHECK(cfg.disks[0].iops == 10 && cfg.nets[0].rx_pps == 3);
	config_free(&cfg);
	config_init(&cfg);
	CHECK_EQ(config_parse_json(&cfg, "{\"disks\": [{\"path\": \"d\", \"bw\": -1}]}", "r.json",
				   &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "\"bw\" must be a non-negative integer");
	config_free(&cfg);
	config_init(&cfg);
	CHECK_EQ(config_parse_json(&cfg, "{\"net\": [{\"tap\": \"yt0\", \"tx_bw\": \"1M\"}]}",
				   "r.json", &err), -EINVAL);
	CHECK_STR_CONTAINS(err.msg, "\"tx_bw\" must be a non-negative integer");
	config_free(&cfg);
}

/* config_to_json then config_parse_json gives back the same VM (what a snapshot keeps). */
static void test_json_round_trip(void)
{
	struct vmm_config a, b;
	struct yun_err err;
	json_t *o;
	char *text;

	CHECK_EQ(parse(&a, &err, "--kernel", "/k", "--initrd", "/i", "--cmdline", "a=b c", "--cpus",
		       "3", "--memory", "512", "--debug-exit", "--rng", "--disk",
		       "path=/d0,readonly=on,id=disk0,bw=100", "--disk", "/d1,direct=on,iops=7",
		       "--balloon", "target=64,deflate_after_ms=9", "--net",
		       "tap=t0,mac=52:54:00:00:00:01,rx_pps=5", "--net", "tap=t1,tx_bw=6",
		       "--vsock", "cid=42,socket=/v.sock", "--serial", "off", NULL), 0);
	o = config_to_json(&a);
	CHECK(o != NULL);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	config_init(&b);
	CHECK_EQ(config_parse_json(&b, text, "round trip", &err), 0);
	free(text);
	CHECK(!strcmp(b.kernel, "/k") && !strcmp(b.initrd, "/i") && !strcmp(b.cmdline, "a=b c"));
	CHECK_EQ(b.cpus, 3);
	CHECK_EQ(b.memory_mib, 512);
	CHECK(b.debug_exit && b.rng && b.balloon && b.vsock && !b.reboot);
	CHECK_EQ(b.nr_disks, 2);
	CHECK(!strcmp(b.disks[0].path, "/d0") && b.disks[0].readonly && !b.disks[0].direct);
	CHECK(!strcmp(b.disks[0].id, "disk0") && b.disks[0].bw == 100);
	CHECK(!strcmp(b.disks[1].path, "/d1") && b.disks[1].direct && b.disks[1].iops == 7);
	CHECK(b.disks[1].id == NULL);
	CHECK_EQ(b.balloon_target_mib, 64);
	CHECK_EQ(b.balloon_deflate_after_ms, 9);
	CHECK_EQ(b.nr_nets, 2);
	CHECK(!strcmp(b.nets[0].tap, "t0") && b.nets[0].has_mac && b.nets[0].mac[5] == 1);
	CHECK(b.nets[0].rx_pps == 5 && !strcmp(b.nets[1].tap, "t1") && !b.nets[1].has_mac);
	CHECK_EQ(b.nets[1].tx_bw, 6);
	CHECK(b.vsock_cid == 42 && !strcmp(b.vsock_socket, "/v.sock"));
	CHECK(b.serial == NULL); /* host-side settings stay out */
	config_free(&a);
	config_free(&b);
}

/* --restore and the tests' --snapshot-on-line. */
static void test_restore_flags(void)
{
	struct vmm_config c;
	struct yun_err err;

	CHECK_EQ(parse(&c, &err, "--restore",
		       "state=/s,mem=/m,resume=on,dirty=on,vsock_cid=9,vsock_socket=/v,tap1=tp,"
		       "mac0=random,disk3=/d", NULL), 0);
	CHECK(!strcmp(c.restore.state, "/s") && !strcmp(c.restore.mem, "/m"));
	CHECK(c.restore.resume && c.restore.dirty && c.restore.vsock_cid == 9);
	CHECK(!strcmp(c.restore.tap[1], "tp") && !strcmp(c.restore.mac[0], "random"));
	CHECK(!strcmp(c.restore.disk[3], "/d") && c.restore.tap[0] == NULL);
	CHECK_EQ(config_validate(&c, &err), 0); /* no --kernel needed */
	config_free(&c);
	CHECK_EQ(parse(&c, &err, "--restore", "state=/s,mem=/m", "--kernel", "/k", NULL), 0);
	CHECK(config_validate(&c, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "--kernel");
	config_free(&c);
	CHECK(parse(&c, &err, "--restore", "state=/s", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "mem=");
	config_free(&c);
	CHECK(parse(&c, &err, "--restore", "state=/s,mem=/m,tap4=x", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "tap4");
	config_free(&c);
	CHECK_EQ(parse(&c, &err, "--kernel", "/k", "--snapshot-on-line",
		       "match=YT COUNT 5,state=/s,mem=/m,diff=on,then=resume", NULL), 0);
	CHECK(c.nr_triggers == 1 && c.triggers[0].diff && c.triggers[0].resume);
	CHECK(!strcmp(c.triggers[0].match, "YT COUNT 5"));
	config_free(&c);
	CHECK(parse(&c, &err, "--kernel", "/k", "--snapshot-on-line", "state=/s,mem=/m", NULL) < 0);
	config_free(&c);
}

/* A live migration's destination: --migrate-listen, its token file and overrides. */
static void test_migrate_flags(void)
{
	struct vmm_config c;
	struct yun_err err;

	CHECK_EQ(parse(&c, &err, "--migrate-listen", "10.0.0.2:4711", "--migrate-token-file",
		       "/t", "--migrate-override", "tap0=tp,disk1=/d,mac0=random,vsock_cid=7",
		       NULL), 0);
	CHECK(!strcmp(c.migrate_listen, "10.0.0.2:4711") && !strcmp(c.migrate_token_file, "/t"));
	CHECK(!strcmp(c.migrate_override.tap[0], "tp") && !strcmp(c.migrate_override.disk[1], "/d"));
	CHECK(c.migrate_override.vsock_cid == 7 && c.restore.state == NULL);
	CHECK_EQ(config_validate(&c, &err), 0); /* no --kernel: it comes from the source */
	config_free(&c);
	CHECK_EQ(parse(&c, &err, "--migrate-listen", "[::1]:1", NULL), 0);
	CHECK(config_validate(&c, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "--migrate-token-file");
	config_free(&c);
	CHECK_EQ(parse(&c, &err, "--migrate-listen", ":1", "--migrate-token-file", "/t",
		       "--kernel", "/k", NULL), 0);
	CHECK(config_validate(&c, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "no --kernel");
	config_free(&c);
	CHECK_EQ(parse(&c, &err, "--kernel", "/k", "--migrate-token-file", "/t", NULL), 0);
	CHECK(config_validate(&c, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, "only with --migrate-listen");
	config_free(&c);
	/* Overrides only: the files and run options are --restore's. */
	CHECK(parse(&c, &err, "--migrate-override", "state=/s", NULL) < 0);
	CHECK_STR_CONTAINS(err.msg, "not an override");
	config_free(&c);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/yun-config-test.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_defaults);
	RUN(test_plain_forms);
	RUN(test_cloud_hypervisor_forms);
	RUN(test_bad_values);
	RUN(test_missing_kernel);
	RUN(test_bad_options);
	RUN(test_config_file);
	RUN(test_json_errors);
	RUN(test_json_partial_merge);
	RUN(test_net_cards);
	RUN(test_rate_limits);
	RUN(test_json_round_trip);
	RUN(test_restore_flags);
	RUN(test_migrate_flags);

	static const char *const names[] = { "vm.json", "zero.json", "mem.json" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	CHECK_EQ(rmdir(tmpdir), 0);
	return CHECK_DONE();
}
