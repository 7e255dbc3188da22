/* config.c - see config.h. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/file.h"
#include "layout.h"
#include "memory.h"

#define CONFIG_FILE_MAX (1 << 20)

const char config_usage[] =
	"usage: yun-vmm --kernel PATH [options]\n"
	"       yun-vmm --config FILE [options]\n"
	"\n"
	"Runs one microVM on KVM until the guest powers off, resets or exits.\n"
	"\n"
	"  --kernel PATH       bzImage or ELF vmlinux with a PVH entry note\n"
	"  --initrd PATH       initial ramdisk\n"
	"  --cmdline STR       kernel command line\n"
	"  --cpus N            vCPUs (1..64; also boot=N), default 1\n"
	"  --memory MIB        RAM in MiB (also size=512M or size=2G), default 256\n"
	"  --serial MODE       stdio | pty | file=PATH | socket=PATH | off, default stdio\n"
	"                      (stdio on a terminal: Ctrl-A x quits)\n"
	"  --debug-exit        exit port at I/O 0x501 like QEMU's isa-debug-exit:\n"
	"                      writing v ends yun-vmm with status (v << 1) | 1\n"
	"  --reboot            restart the guest when it resets (default: exit 0)\n"
	"  --rng               add a virtio-rng device (PCI) fed by the host's getrandom\n"
	"  --config FILE       the same settings as JSON: {\"kernel\": ..., \"cpus\": 2,\n"
	"                      \"memory\": 512, \"serial\": \"stdio\", \"debug_exit\": true}\n"
	"  --kvm-device PATH   KVM device node, default /dev/kvm\n"
	"  -v, --verbose       log what the VMM does\n"
	"  -h, --help          this text\n"
	"  --version           print the version\n"
	"\n"
	"Exit status: 0 when the guest powers off or resets; (v << 1) | 1 for a\n"
	"debug-exit write of v; 1 for a configuration or host error; 2 when the\n"
	"guest crashes (triple fault, KVM internal error), with a register dump.\n";

void config_init(struct vmm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cpus = CONFIG_DEFAULT_CPUS;
	cfg->memory_mib = CONFIG_DEFAULT_MEMORY_MIB;
}

void config_free(struct vmm_config *cfg)
{
	free(cfg->kernel);
	free(cfg->initrd);
	free(cfg->cmdline);
	free(cfg->serial);
	free(cfg->kvm_device);
	memset(cfg, 0, sizeof(*cfg));
}

static int set_string(char **dst, const char *value, struct yun_err *err)
{
	char *copy = strdup(value);

	if (!copy)
		return yun_err_set(err, ENOMEM, "out of memory");
	free(*dst);
	*dst = copy;
	return 0;
}

/* Unsigned decimal with nothing after it. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	*out = v;
	return *end ? -EINVAL : 0;
}

/* "512", "size=512M", "size=2G", "size=1048576K" -> MiB. */
static int parse_memory(const char *value, uint64_t *mib, struct yun_err *err)
{
	const char *s = value;
	char num[32];
	size_t len;
	uint64_t v, shift_kib = 10; /* plain numbers are MiB */

	if (!strncmp(s, "size=", 5))
		s += 5;
	len = strlen(s);
	if (len == 0 || len >= sizeof(num))
		goto bad;
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 'K': case 'k': shift_kib = 0; num[--len] = '\0'; break;
	case 'M': case 'm': shift_kib = 10; num[--len] = '\0'; break;
	case 'G': case 'g': shift_kib = 20; num[--len] = '\0'; break;
	default: break;
	}
	if (parse_u64(num, &v) < 0 || v > (UINT64_MAX >> 30))
		goto bad;
	v <<= shift_kib; /* KiB */
	if (v % 1024)
		return yun_err_set(err, EINVAL, "memory %s: not a whole number of MiB", value);
	*mib = v / 1024;
	return 0;
bad:
	return yun_err_set(err, EINVAL,
			   "memory %s: not a size (use MiB like 512, or size=512M / size=2G)",
			   value);
}

/* "2" or "boot=2". */
static int parse_cpus(const char *value, unsigned *cpus, struct yun_err *err)
{
	const char *s = value;
	uint64_t v;

	if (!strncmp(s, "boot=", 5))
		s += 5;
	if (parse_u64(s, &v) < 0 || v > UINT_MAX)
		return yun_err_set(err, EINVAL, "cpus %s: not a number of vCPUs", value);
	*cpus = (unsigned)v;
	return 0;
}

static int json_string_field(json_t *v, const char *key, char **dst, const char *origin,
			     struct yun_err *err)
{
	if (!json_is_string(v))
		return yun_err_set(err, EINVAL, "config %s: \"%s\" must be a string", origin, key);
	return set_string(dst, json_string_value(v), err);
}

static int json_bool_field(json_t *v, const char *key, bool *dst, const char *origin,
			   struct yun_err *err)
{
	if (!json_is_boolean(v))
		return yun_err_set(err, EINVAL, "config %s: \"%s\" must be true or false", origin,
				   key);
	*dst = json_is_true(v);
	return 0;
}

static int json_count_field(json_t *v, const char *key, uint64_t *dst, const char *origin,
			    struct yun_err *err)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return yun_err_set(err, EINVAL, "config %s: \"%s\" must be a non-negative integer",
				   origin, key);
	*dst = (uint64_t)json_integer_value(v);
	return 0;
}

int config_parse_json(struct vmm_config *cfg, const char *text, const char *origin,
		      struct yun_err *err)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	uint64_t n = 0;
	int rc = 0;

	root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return yun_err_set(err, EINVAL, "config %s: line %d column %d: %s", origin,
				   jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return yun_err_set(err, EINVAL, "config %s: must be a JSON object", origin);
	}
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "kernel")) {
			rc = json_string_field(v, key, &cfg->kernel, origin, err);
		} else if (!strcmp(key, "initrd")) {
			rc = json_string_field(v, key, &cfg->initrd, origin, err);
		} else if (!strcmp(key, "cmdline")) {
			rc = json_string_field(v, key, &cfg->cmdline, origin, err);
		} else if (!strcmp(key, "serial")) {
			rc = json_string_field(v, key, &cfg->serial, origin, err);
		} else if (!strcmp(key, "kvm_device")) {
			rc = json_string_field(v, key, &cfg->kvm_device, origin, err);
		} else if (!strcmp(key, "debug_exit")) {
			rc = json_bool_field(v, key, &cfg->debug_exit, origin, err);
		} else if (!strcmp(key, "rng")) {
			rc = json_bool_field(v, key, &cfg->rng, origin, err);
		} else if (!strcmp(key, "reboot")) {
			rc = json_bool_field(v, key, &cfg->reboot, origin, err);
		} else if (!strcmp(key, "cpus")) {
			rc = json_count_field(v, key, &n, origin, err);
			if (!rc && n > UINT_MAX)
				rc = yun_err_set(err, EINVAL, "config %s: \"cpus\" %llu is too many",
						 origin, (unsigned long long)n);
			if (!rc)
				cfg->cpus = (unsigned)n;
		} else if (!strcmp(key, "memory")) {
			if (json_is_string(v))
				rc = parse_memory(json_string_value(v), &cfg->memory_mib, err);
			else
				rc = json_count_field(v, key, &cfg->memory_mib, origin, err);
		} else {
			rc = yun_err_set(err, EINVAL, "config %s: unknown setting \"%s\"", origin,
					 key);
		}
		if (rc)
			break;
	}
	json_decref(root);
	return rc;
}

static int config_load_file(struct vmm_config *cfg, const char *path, struct yun_err *err)
{
	uint8_t *buf, *text;
	size_t len;
	int rc;

	rc = yun_file_read_all("config", path, CONFIG_FILE_MAX, &buf, &len, err);
	if (rc)
		return rc;
	text = realloc(buf, len + 1);
	if (!text) {
		free(buf);
		return yun_err_set(err, ENOMEM, "config %s: out of memory", path);
	}
	text[len] = '\0';
	rc = config_parse_json(cfg, (char *)text, path, err);
	free(text);
	return rc;
}

enum {
	OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_SERIAL,
	OPT_DEBUG_EXIT, OPT_REBOOT, OPT_CONFIG, OPT_KVM_DEVICE, OPT_VERSION, OPT_RNG,
};

static const struct option options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "reboot", no_argument, NULL, OPT_REBOOT },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "kvm-device", required_argument, NULL, OPT_KVM_DEVICE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

int config_parse_args(struct vmm_config *cfg, int argc, char **argv, struct yun_err *err)
{
	int c, rc = 0;

	optind = 1;
	opterr = 0;
	while (!rc && (c = getopt_long(argc, argv, ":vh", options, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: rc = set_string(&cfg->kernel, optarg, err); break;
		case OPT_INITRD: rc = set_string(&cfg->initrd, optarg, err); break;
		case OPT_CMDLINE: rc = set_string(&cfg->cmdline, optarg, err); break;
		case OPT_SERIAL: rc = set_string(&cfg->serial, optarg, err); break;
		case OPT_KVM_DEVICE: rc = set_string(&cfg->kvm_device, optarg, err); break;
		case OPT_CPUS: rc = parse_cpus(optarg, &cfg->cpus, err); break;
		case OPT_MEMORY: rc = parse_memory(optarg, &cfg->memory_mib, err); break;
		case OPT_DEBUG_EXIT: cfg->debug_exit = true; break;
		case OPT_RNG: cfg->rng = true; break;
		case OPT_REBOOT: cfg->reboot = true; break;
		case OPT_CONFIG: rc = config_load_file(cfg, optarg, err); break;
		case 'v': cfg->verbose = true; break;
		case 'h': cfg->help = true; break;
		case OPT_VERSION: cfg->version = true; break;
		case ':':
			rc = yun_err_set(err, EINVAL, "option %s needs a value", argv[optind - 1]);
			break;
		default:
			rc = yun_err_set(err, EINVAL, "unknown option %s (see --help)",
					 argv[optind - 1]);
			break;
		}
	}
	if (!rc && optind < argc)
		rc = yun_err_set(err, EINVAL, "unexpected argument \"%s\" (see --help)",
				 argv[optind]);
	return rc;
}

int config_validate(const struct vmm_config *cfg, struct yun_err *err)
{
	if (!cfg->kernel || !*cfg->kernel)
		return yun_err_set(err, EINVAL, "no kernel given (--kernel PATH)");
	if (cfg->cpus == 0 || cfg->cpus > LAYOUT_MAX_VCPUS)
		return yun_err_set(err, EINVAL, "cpus %u: must be from 1 to %d", cfg->cpus,
				   LAYOUT_MAX_VCPUS);
	if (cfg->memory_mib < GM_MIN_MIB || cfg->memory_mib > GM_MAX_MIB)
		return yun_err_set(err, EINVAL, "memory %llu MiB: must be from %llu to %llu MiB",
				   (unsigned long long)cfg->memory_mib, GM_MIN_MIB, GM_MAX_MIB);
	return 0;
}
