/* config.c - see config.h. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/json.h"
#include "../lib/str.h"
#include "layout.h"
#include "memory.h"
#include "virtio/net.h"
#include "virtio/vsock.h"

#define CONFIG_FILE_MAX (1 << 20)

const char config_usage[] =
	"usage: yun-vmm --kernel PATH [options]\n"
	"       yun-vmm --config FILE [options]\n"
	"       yun-vmm --api-sock PATH [options]\n"
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
	"  --serial-log PATH   also append all guest serial output to PATH (created\n"
	"                      0600), whatever the --serial mode; a socket= console\n"
	"                      then keeps its whole history there with no client\n"
	"  --debug-exit        exit port at I/O 0x501 like QEMU's isa-debug-exit:\n"
	"                      writing v ends yun-vmm with status (v << 1) | 1\n"
	"  --reboot            restart the guest when it resets (default: exit 0)\n"
	"  --rng               add a virtio-rng device (PCI) fed by the host's getrandom\n"
	"  --disk path=F[,readonly=on][,direct=on][,id=NAME][,bw=N][,iops=N]\n"
	"                      add a virtio-blk disk (PCI) backed by raw image or block\n"
	"                      device F (repeatable, up to 4); id: GET_ID answer (<= 20\n"
	"                      bytes, default the file's name); direct=on: O_DIRECT;\n"
	"                      bw: at most N bytes/s, iops: at most N requests/s\n"
	"                      (token buckets holding 100 ms; 0 or absent: unlimited);\n"
	"                      JSON: \"disks\": [{\"path\": F, \"readonly\": true, ...}]\n"
	"  --balloon [target=MIB][,deflate_after_ms=N]\n"
	"                      add a virtio-balloon device (PCI); target: memory the host\n"
	"                      asks back from the start (default 0); deflate_after_ms: a\n"
	"                      stop-gap until the control API sets targets at run time,\n"
	"                      the target drops to 0 N ms after the guest first reaches\n"
	"                      it; JSON: \"balloon\": {\"target\": MIB, ...} or true\n"
	"  --net tap=NAME[,mac=MAC][,rx_bw=N][,rx_pps=N][,tx_bw=N][,tx_pps=N]\n"
	"                      add a virtio-net card (PCI) on TAP device NAME, created if\n"
	"                      absent (and removed at exit); MAC like 52:54:00:12:34:56,\n"
	"                      default random (repeatable, up to 4); rate limits per\n"
	"                      direction (rx: to the guest, tx: from it) in bytes/s and\n"
	"                      frames/s, bw=N / pps=N set both directions (0: unlimited);\n"
	"                      JSON: \"net\": [{\"tap\": NAME, \"mac\": MAC, \"tx_pps\": N}]\n"
	"  --vsock cid=N,socket=PATH\n"
	"                      add a virtio-vsock device (PCI), guest CID N (>= 3); the\n"
	"                      host connects to guest port P through Unix socket PATH\n"
	"                      (write \"CONNECT P\\n\", read \"OK <host port>\\n\"); guest\n"
	"                      connections to host port P go to Unix socket PATH_P;\n"
	"                      JSON: \"vsock\": {\"cid\": N, \"socket\": PATH}\n"
	"  --restore state=F,mem=M[,resume=on][,dirty=on][,vsock_cid=N][,vsock_socket=P]\n"
	"           [,tapI=NAME][,macI=MAC|random][,diskI=PATH]\n"
	"                      start from a snapshot instead of a kernel: the VM's settings\n"
	"                      come from state file F, its RAM is mapped copy-on-write\n"
	"                      from memory file M (never written, so one snapshot serves\n"
	"                      many clones); resume=on runs it at once (else it stays\n"
	"                      paused for the control API); dirty=on logs dirty pages for\n"
	"                      a later diff snapshot; the rest give a clone its own\n"
	"                      identity (card or disk I from 0)\n"
	"  --migrate-listen HOST:PORT --migrate-token-file FILE\n"
	"                      receive a VM by live migration (no --kernel); exits 1 if it\n"
	"                      fails (the source keeps the guest)\n"
	"  --migrate-override tapI=NAME,macI=MAC,diskI=PATH,vsock_cid=N,vsock_socket=P\n"
	"                      replace parts of the migrated VM's settings\n"
	"  --merge-snapshot BASE DIFF\n"
	"                      apply diff memory file DIFF onto memory file BASE in place\n"
	"                      (its data extents; holes keep BASE's pages), then exit\n"
	"  --config FILE       the same settings as JSON: {\"kernel\": ..., \"cpus\": 2,\n"
	"                      \"memory\": 512, \"serial\": \"stdio\", \"debug_exit\": true}\n"
	"  --api-sock PATH     serve the control API (HTTP/1.1 + JSON, Firecracker's\n"
	"                      resource names; docs/api/vmm.yaml) on Unix socket PATH\n"
	"                      (created 0600, removed at exit): pause/resume, shutdown,\n"
	"                      balloon, drives, rate limits, metrics; without --kernel\n"
	"                      the VM waits for PUT /actions {\"action_type\": \"InstanceStart\"}\n"
	"  --kvm-device PATH   KVM device node, default /dev/kvm\n"
	"  --seccomp on|off    per-thread seccomp filters (default on): a syscall off\n"
	"                      a thread's list stops yun-vmm (SIGSYS) with a line\n"
	"                      naming the thread and the syscall; for tests,\n"
	"                      YUN_VMM_DEBUG_FORBIDDEN=vcpu|io|api|main makes that\n"
	"                      thread make a forbidden syscall once filtered\n"
	"  -v, --verbose       log what the VMM does\n"
	"  -h, --help          this text\n"
	"  --version           print the version\n"
	"\n"
	"Exit status: 0 when the guest powers off or resets; (v << 1) | 1 for a\n"
	"debug-exit write of v; 1 for a configuration or host error; 2 when the\n"
	"guest crashes (triple fault, KVM internal error), with a register dump;\n"
	"4 when a graceful shutdown through the API passed its deadline and the VM\n"
	"was stopped hard; 128 + N when stopped by signal N; killed by SIGSYS (a\n"
	"shell shows 159) when a thread breaks its seccomp list.\n";

void config_init(struct vmm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cpus = CONFIG_DEFAULT_CPUS;
	cfg->memory_mib = CONFIG_DEFAULT_MEMORY_MIB;
	cfg->seccomp = true;
}

void config_free(struct vmm_config *cfg)
{
	free(cfg->kernel);
	free(cfg->initrd);
	free(cfg->cmdline);
	free(cfg->serial);
	free(cfg->serial_log);
	free(cfg->kvm_device);
	free(cfg->api_sock);
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		free(cfg->disks[i].path);
		free(cfg->disks[i].id);
	}
	for (unsigned i = 0; i < cfg->nr_nets; i++)
		free(cfg->nets[i].tap);
	free(cfg->vsock_socket);
	free(cfg->restore.state);
	free(cfg->restore.mem);
	free(cfg->restore.vsock_socket);
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		free(cfg->restore.tap[i]);
		free(cfg->restore.mac[i]);
	}
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		free(cfg->restore.disk[i]);
	free(cfg->migrate_listen);
	free(cfg->migrate_token_file);
	free(cfg->migrate_override.vsock_socket);
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		free(cfg->migrate_override.tap[i]);
		free(cfg->migrate_override.mac[i]);
	}
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		free(cfg->migrate_override.disk[i]);
	for (unsigned i = 0; i < cfg->nr_triggers; i++) {
		free(cfg->triggers[i].match);
		free(cfg->triggers[i].state);
		free(cfg->triggers[i].mem);
	}
	memset(cfg, 0, sizeof(*cfg));
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
	if (yun_parse_u64(num, &v) < 0 || v > (UINT64_MAX >> 30))
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
	if (yun_parse_u64(s, &v) < 0 || v > UINT_MAX)
		return yun_err_set(err, EINVAL, "cpus %s: not a number of vCPUs", value);
	*cpus = (unsigned)v;
	return 0;
}

/* ---- disks ------------------------------------------------------------------ */

static int parse_on_off(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

/* A rate limit: a whole number (bytes or operations per second), 0 meaning unlimited. */
static int parse_rate(const char *dev, const char *what, const char *key, const char *v,
		      uint64_t *out, struct yun_err *err)
{
	if (yun_parse_u64(v, out) < 0)
		return yun_err_set(err, EINVAL, "%s %s: %s=%s: want a whole number per second "
				   "(0: unlimited)", dev, what, key, v);
	return 0;
}

/* A new disk slot, or an error naming `what`. */
static struct vmm_disk *new_disk(struct vmm_config *cfg, const char *what, struct yun_err *err)
{
	if (cfg->nr_disks == CONFIG_MAX_DISKS) {
		yun_err_set(err, EINVAL, "disk %s: more than %d disks", what, CONFIG_MAX_DISKS);
		return NULL;
	}
	return memset(&cfg->disks[cfg->nr_disks], 0, sizeof(struct vmm_disk));
}

static int check_disk(const struct vmm_disk *d, const char *what, struct yun_err *err)
{
	if (!d->path || !*d->path)
		return yun_err_set(err, EINVAL, "disk %s: no path= given", what);
	if (d->id && strlen(d->id) > 20)
		return yun_err_set(err, EINVAL, "disk %s: id \"%s\" is longer than 20 bytes",
				   d->path, d->id);
	return 0;
}

static void drop_disk(struct vmm_disk *d)
{
	free(d->path);
	free(d->id);
	memset(d, 0, sizeof(*d));
}

/* "path=F,readonly=on,direct=on,id=NAME" (a bare first word is the path). */
static int parse_disk(struct vmm_config *cfg, const char *value, struct yun_err *err)
{
	struct vmm_disk *d = new_disk(cfg, value, err);
	char *copy, *save = NULL, *tok;
	int rc = 0;

	if (!d)
		return -EINVAL;
	copy = strdup(value);
	if (!copy)
		return yun_err_set(err, ENOMEM, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		const char *key = tok, *v = eq ? eq + 1 : NULL;

		if (eq)
			*eq = '\0';
		if (!v && tok == copy && !d->path) {
			rc = yun_str_set(&d->path, key, err);
		} else if (!v) {
			rc = yun_err_set(err, EINVAL, "disk %s: \"%s\" needs a value", value, key);
		} else if (!strcmp(key, "path")) {
			rc = yun_str_set(&d->path, v, err);
		} else if (!strcmp(key, "id")) {
			rc = yun_str_set(&d->id, v, err);
		} else if (!strcmp(key, "readonly") || !strcmp(key, "direct")) {
			if (parse_on_off(v, !strcmp(key, "readonly") ? &d->readonly : &d->direct))
				rc = yun_err_set(err, EINVAL, "disk %s: %s=%s: want on or off",
						 value, key, v);
		} else if (!strcmp(key, "bw") || !strcmp(key, "iops")) {
			rc = parse_rate("disk", value, key, v, !strcmp(key, "bw") ? &d->bw : &d->iops,
					err);
		} else {
			rc = yun_err_set(err, EINVAL, "disk %s: unknown option \"%s\" "
					 "(path, readonly, direct, id, bw, iops)", value, key);
		}
	}
	free(copy);
	if (!rc)
		rc = check_disk(d, value, err);
	if (rc)
		drop_disk(d);
	else
		cfg->nr_disks++;
	return rc;
}

/* "disks": [{"path": F, "readonly": bool, "direct": bool, "id": NAME}, ...] */
static int json_disks(struct vmm_config *cfg, json_t *list, const char *origin,
		      struct yun_err *err)
{
	size_t i;
	json_t *o;

	if (!json_is_array(list))
		return yun_err_set(err, EINVAL, "%s: \"disks\" must be a list", origin);
	json_array_foreach(list, i, o) {
		struct vmm_disk *d = new_disk(cfg, origin, err);
		const char *key;
		json_t *v;
		int rc = 0;
		char what[YUN_ERR_MSG_MAX / 2];

		if (!d)
			return -EINVAL;
		snprintf(what, sizeof(what), "%s disks[%zu]", origin, i);
		if (!json_is_object(o))
			return yun_err_set(err, EINVAL, "%s: must be an object", what);
		json_object_foreach(o, key, v) {
			if (!strcmp(key, "path"))
				rc = yun_json_get_string(v, key, &d->path, what, err);
			else if (!strcmp(key, "id"))
				rc = yun_json_get_string(v, key, &d->id, what, err);
			else if (!strcmp(key, "readonly"))
				rc = yun_json_get_bool(v, key, &d->readonly, what, err);
			else if (!strcmp(key, "direct"))
				rc = yun_json_get_bool(v, key, &d->direct, what, err);
			else if (!strcmp(key, "bw"))
				rc = yun_json_get_count(v, key, &d->bw, what, err);
			else if (!strcmp(key, "iops"))
				rc = yun_json_get_count(v, key, &d->iops, what, err);
			else
				rc = yun_err_set(err, EINVAL, "%s: unknown setting \"%s\"",
						 what, key);
			if (rc)
				break;
		}
		if (!rc)
			rc = check_disk(d, what, err);
		if (rc) {
			drop_disk(d);
			return rc;
		}
		cfg->nr_disks++;
	}
	return 0;
}

/* ---- balloon ---------------------------------------------------------------- */

static int balloon_number(const char *key, const char *v, uint64_t max, uint64_t *out,
			  struct yun_err *err)
{
	if (yun_parse_u64(v, out) < 0 || *out > max)
		return yun_err_set(err, EINVAL, "balloon %s=%s: want a number up to %llu", key, v,
				   (unsigned long long)max);
	return 0;
}

/* "target=MIB,deflate_after_ms=N" (either, both or none). */
static int parse_balloon(struct vmm_config *cfg, const char *value, struct yun_err *err)
{
	char *copy = strdup(value), *save = NULL, *tok;
	uint64_t n = 0;
	int rc = 0;

	if (!copy)
		return yun_err_set(err, ENOMEM, "out of memory");
	cfg->balloon = true;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq++ = '\0';
		if (eq && !strcmp(tok, "target")) {
			rc = balloon_number(tok, eq, GM_MAX_MIB, &n, err);
			cfg->balloon_target_mib = n;
		} else if (eq && !strcmp(tok, "deflate_after_ms")) {
			rc = balloon_number(tok, eq, UINT32_MAX, &n, err);
			cfg->balloon_deflate_after_ms = (uint32_t)n;
		} else {
			rc = yun_err_set(err, EINVAL,
					 "balloon %s: unknown option \"%s\" (target=MIB, "
					 "deflate_after_ms=N)", value, tok);
		}
	}
	free(copy);
	return rc;
}

/* "balloon": true | false | {"target": MIB, "deflate_after_ms": N} */
static int json_balloon(struct vmm_config *cfg, json_t *o, const char *origin,
			struct yun_err *err)
{
	const char *key;
	json_t *v;
	uint64_t n = 0;
	int rc = 0;

	if (json_is_boolean(o)) {
		cfg->balloon = json_is_true(o);
		return 0;
	}
	if (!json_is_object(o))
		return yun_err_set(err, EINVAL, "%s: \"balloon\" must be an object or true",
				   origin);
	cfg->balloon = true;
	json_object_foreach(o, key, v) {
		rc = yun_json_get_count(v, key, &n, origin, err);
		if (rc)
			return rc;
		if (!strcmp(key, "target") && n <= GM_MAX_MIB)
			cfg->balloon_target_mib = n;
		else if (!strcmp(key, "deflate_after_ms") && n <= UINT32_MAX)
			cfg->balloon_deflate_after_ms = (uint32_t)n;
		else
			return yun_err_set(err, EINVAL, "%s: balloon \"%s\": unknown or too big",
					   origin, key);
	}
	return 0;
}

/* ---- network cards ---------------------------------------------------------- */

static struct vmm_net *new_net(struct vmm_config *cfg, const char *what, struct yun_err *err)
{
	if (cfg->nr_nets == CONFIG_MAX_NETS) {
		yun_err_set(err, EINVAL, "net %s: more than %d network cards", what, CONFIG_MAX_NETS);
		return NULL;
	}
	return memset(&cfg->nets[cfg->nr_nets], 0, sizeof(struct vmm_net));
}

static int net_set_tap(struct vmm_net *n, const char *tap, const char *what, struct yun_err *err)
{
	if (!net_tap_name_ok(tap))
		return yun_err_set(err, EINVAL, "net %s: tap \"%s\" is not an interface name "
				   "(1 to %d characters, no '/', ':', '%%' or spaces)", what, tap,
				   IFNAMSIZ - 1);
	return yun_str_set(&n->tap, tap, err);
}

static int net_set_mac(struct vmm_net *n, const char *mac, const char *what, struct yun_err *err)
{
	if (net_parse_mac(mac, n->mac) < 0)
		return yun_err_set(err, EINVAL, "net %s: mac \"%s\" is not a unicast MAC address "
				   "like 52:54:00:12:34:56", what, mac);
	n->has_mac = true;
	return 0;
}

/* rx_bw, rx_pps, tx_bw, tx_pps, and bw / pps for both directions; -ENOENT: not a limit. */
static int net_set_limit(struct vmm_net *n, const char *key, uint64_t v)
{
	bool rx = !strncmp(key, "rx_", 3), tx = !strncmp(key, "tx_", 3);
	const char *k = rx || tx ? key + 3 : key;

	if (!rx && !tx)
		rx = tx = true;
	if (!strcmp(k, "bw")) {
		if (rx)
			n->rx_bw = v;
		if (tx)
			n->tx_bw = v;
	} else if (!strcmp(k, "pps")) {
		if (rx)
			n->rx_pps = v;
		if (tx)
			n->tx_pps = v;
	} else {
		return -ENOENT;
	}
	return 0;
}

static bool net_is_limit(const char *key)
{
	struct vmm_net scratch = { 0 };

	return net_set_limit(&scratch, key, 0) == 0;
}

/* Keep a parsed card (rc 0) or forget it. */
static int net_done(struct vmm_config *cfg, struct vmm_net *n, int rc, const char *what,
		    struct yun_err *err)
{
	if (!rc && !n->tap)
		rc = yun_err_set(err, EINVAL, "net %s: no tap=NAME given", what);
	if (rc) {
		free(n->tap);
		memset(n, 0, sizeof(*n));
		return rc;
	}
	cfg->nr_nets++;
	return 0;
}

/* "tap=NAME,mac=52:54:00:12:34:56" */
static int parse_net(struct vmm_config *cfg, const char *value, struct yun_err *err)
{
	struct vmm_net *n = new_net(cfg, value, err);
	char *copy, *save = NULL, *tok;
	int rc = 0;

	if (!n)
		return -EINVAL;
	copy = strdup(value);
	if (!copy)
		return yun_err_set(err, ENOMEM, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		uint64_t v = 0;

		if (eq)
			*eq++ = '\0';
		if (eq && !strcmp(tok, "tap")) {
			rc = net_set_tap(n, eq, value, err);
		} else if (eq && !strcmp(tok, "mac")) {
			rc = net_set_mac(n, eq, value, err);
		} else if (eq && net_is_limit(tok)) {
			rc = parse_rate("net", value, tok, eq, &v, err);
			if (!rc)
				net_set_limit(n, tok, v);
		} else {
			rc = yun_err_set(err, EINVAL, "net %s: unknown option \"%s\" (tap=NAME, "
					 "mac=MAC, rx_bw, rx_pps, tx_bw, tx_pps, bw, pps)", value, tok);
		}
	}
	free(copy);
	return net_done(cfg, n, rc, value, err);
}

/* "net": [{"tap": NAME, "mac": MAC}, ...] */
static int json_nets(struct vmm_config *cfg, json_t *list, const char *origin,
		     struct yun_err *err)
{
	size_t i;
	json_t *o;

	if (!json_is_array(list))
		return yun_err_set(err, EINVAL, "%s: \"net\" must be a list", origin);
	json_array_foreach(list, i, o) {
		struct vmm_net *n = new_net(cfg, origin, err);
		const char *key;
		json_t *v;
		int rc = 0;
		char what[YUN_ERR_MSG_MAX / 2];

		if (!n)
			return -EINVAL;
		snprintf(what, sizeof(what), "%s net[%zu]", origin, i);
		if (!json_is_object(o))
			return yun_err_set(err, EINVAL, "%s: must be an object", what);
		json_object_foreach(o, key, v) {
			uint64_t limit = 0;

			if (net_is_limit(key)) {
				rc = yun_json_get_count(v, key, &limit, what, err);
				if (!rc)
					net_set_limit(n, key, limit);
			} else if (!json_is_string(v))
				rc = yun_err_set(err, EINVAL, "%s: \"%s\" must be a string",
						 what, key);
			else if (!strcmp(key, "tap"))
				rc = net_set_tap(n, json_string_value(v), what, err);
			else if (!strcmp(key, "mac"))
				rc = net_set_mac(n, json_string_value(v), what, err);
			else
				rc = yun_err_set(err, EINVAL, "%s: unknown setting \"%s\"",
						 what, key);
			if (rc)
				break;
		}
		rc = net_done(cfg, n, rc, what, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- vsock ------------------------------------------------------------------- */

static int vsock_set_cid(struct vmm_config *cfg, uint64_t cid, const char *what,
			 struct yun_err *err)
{
	/* 0-2 are the hypervisor, local and host; 2^32 - 1 is VMADDR_CID_ANY. */
	if (cid < 3 || cid >= UINT32_MAX)
		return yun_err_set(err, EINVAL, "vsock %s: cid %llu: must be from 3 to %u", what,
				   (unsigned long long)cid, UINT32_MAX - 1);
	cfg->vsock_cid = cid;
	return 0;
}

static int vsock_set_socket(struct vmm_config *cfg, const char *path, const char *what,
			    struct yun_err *err)
{
	if (!*path || strlen(path) > VSOCK_PATH_MAX)
		return yun_err_set(err, EINVAL, "vsock %s: socket path empty or longer than %zu "
				   "bytes (PATH_<port> must fit a Unix socket address)", what,
				   VSOCK_PATH_MAX);
	return yun_str_set(&cfg->vsock_socket, path, err);
}

/* "cid=3,socket=/run/v.sock" */
static int parse_vsock(struct vmm_config *cfg, const char *value, struct yun_err *err)
{
	char *copy = strdup(value), *save = NULL, *tok;
	uint64_t n;
	int rc = 0;

	if (!copy)
		return yun_err_set(err, ENOMEM, "out of memory");
	cfg->vsock = true;
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq++ = '\0';
		if (eq && !strcmp(tok, "cid"))
			rc = yun_parse_u64(eq, &n) < 0
				     ? yun_err_set(err, EINVAL, "vsock %s: cid=%s: want a number",
						   value, eq)
				     : vsock_set_cid(cfg, n, value, err);
		else if (eq && !strcmp(tok, "socket"))
			rc = vsock_set_socket(cfg, eq, value, err);
		else
			rc = yun_err_set(err, EINVAL,
					 "vsock %s: unknown option \"%s\" (cid=N, socket=PATH)",
					 value, tok);
	}
	free(copy);
	return rc;
}

/* "vsock": {"cid": N, "socket": PATH} */
static int json_vsock(struct vmm_config *cfg, json_t *o, const char *origin, struct yun_err *err)
{
	const char *key;
	json_t *v;
	uint64_t n = 0;
	int rc = 0;

	if (!json_is_object(o))
		return yun_err_set(err, EINVAL, "%s: \"vsock\" must be an object", origin);
	cfg->vsock = true;
	json_object_foreach(o, key, v) {
		if (!strcmp(key, "cid")) {
			rc = yun_json_get_count(v, key, &n, origin, err);
			if (!rc)
				rc = vsock_set_cid(cfg, n, origin, err);
		} else if (!strcmp(key, "socket") && json_is_string(v)) {
			rc = vsock_set_socket(cfg, json_string_value(v), origin, err);
		} else {
			rc = yun_err_set(err, EINVAL, "%s: vsock \"%s\": unknown or not a "
					 "%s", origin, key, !strcmp(key, "socket") ? "string" : "setting");
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* Merge the settings of one parsed JSON object; origin prefixes messages. */
static int config_apply_json(struct vmm_config *cfg, json_t *root, const char *origin,
			     struct yun_err *err)
{
	json_t *v;
	const char *key;
	uint64_t n = 0;
	int rc = 0;

	json_object_foreach(root, key, v) {
		if (!strcmp(key, "kernel")) {
			rc = yun_json_get_string(v, key, &cfg->kernel, origin, err);
		} else if (!strcmp(key, "initrd")) {
			rc = yun_json_get_string(v, key, &cfg->initrd, origin, err);
		} else if (!strcmp(key, "cmdline")) {
			rc = yun_json_get_string(v, key, &cfg->cmdline, origin, err);
		} else if (!strcmp(key, "serial")) {
			rc = yun_json_get_string(v, key, &cfg->serial, origin, err);
		} else if (!strcmp(key, "serial_log")) {
			rc = yun_json_get_string(v, key, &cfg->serial_log, origin, err);
		} else if (!strcmp(key, "api_sock")) {
			rc = yun_json_get_string(v, key, &cfg->api_sock, origin, err);
		} else if (!strcmp(key, "kvm_device")) {
			rc = yun_json_get_string(v, key, &cfg->kvm_device, origin, err);
		} else if (!strcmp(key, "debug_exit")) {
			rc = yun_json_get_bool(v, key, &cfg->debug_exit, origin, err);
		} else if (!strcmp(key, "rng")) {
			rc = yun_json_get_bool(v, key, &cfg->rng, origin, err);
		} else if (!strcmp(key, "disks")) {
			rc = json_disks(cfg, v, origin, err);
		} else if (!strcmp(key, "balloon")) {
			rc = json_balloon(cfg, v, origin, err);
		} else if (!strcmp(key, "net")) {
			rc = json_nets(cfg, v, origin, err);
		} else if (!strcmp(key, "vsock")) {
			rc = json_vsock(cfg, v, origin, err);
		} else if (!strcmp(key, "reboot")) {
			rc = yun_json_get_bool(v, key, &cfg->reboot, origin, err);
		} else if (!strcmp(key, "cpus")) {
			rc = yun_json_get_count(v, key, &n, origin, err);
			if (!rc && n > UINT_MAX)
				rc = yun_err_set(err, EINVAL, "%s: \"cpus\" %llu is too many",
						 origin, (unsigned long long)n);
			if (!rc)
				cfg->cpus = (unsigned)n;
		} else if (!strcmp(key, "memory")) {
			if (json_is_string(v))
				rc = parse_memory(json_string_value(v), &cfg->memory_mib, err);
			else
				rc = yun_json_get_count(v, key, &cfg->memory_mib, origin, err);
		} else {
			rc = yun_err_set(err, EINVAL, "%s: unknown setting \"%s\"", origin,
					 key);
		}
		if (rc)
			break;
	}
	return rc;
}

int config_parse_json(struct vmm_config *cfg, const char *text, const char *origin,
		      struct yun_err *err)
{
	char where[YUN_ERR_MSG_MAX / 2];
	json_t *root;
	int rc;

	snprintf(where, sizeof(where), "config %s", origin);
	rc = yun_json_parse_object(text, strlen(text), where, &root, err);
	if (rc)
		return rc;
	rc = config_apply_json(cfg, root, where, err);
	json_decref(root);
	return rc;
}

static int config_load_file(struct vmm_config *cfg, const char *path, struct yun_err *err)
{
	char where[YUN_ERR_MSG_MAX / 2];
	json_t *root;
	int rc;

	rc = yun_json_load_object("config", path, CONFIG_FILE_MAX, &root, err);
	if (rc)
		return rc;
	snprintf(where, sizeof(where), "config %s", path);
	rc = config_apply_json(cfg, root, where, err);
	json_decref(root);
	return rc;
}

/* ---- snapshots: --restore and the tests' --snapshot-on-line ----------------- */

/* "keyI" with I < max -> I; -1 when key is not base followed by one digit. */
static int indexed_key(const char *key, const char *base, unsigned max)
{
	size_t n = strlen(base);

	if (strncmp(key, base, n) || key[n] < '0' || key[n] > '9' || key[n + 1] ||
	    (unsigned)(key[n] - '0') >= max)
		return -1;
	return key[n] - '0';
}

/*
 * --restore's options into r; with files false (--migrate-override) only
 * the identity overrides (no state, mem, resume, dirty).
 */
static int parse_restore_opts(struct vmm_restore *r, const char *opt, const char *value,
			      bool files, struct yun_err *err)
{
	char *copy = strdup(value), *save = NULL, *tok;
	int rc = 0, i;

	if (!copy)
		return yun_err_set(err, ENOMEM, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		uint64_t n;

		if (!eq) {
			rc = yun_err_set(err, EINVAL, "%s %s: \"%s\" needs a value", opt, value, tok);
			break;
		}
		*eq++ = '\0';
		if (!files && (!strcmp(tok, "state") || !strcmp(tok, "mem") ||
			       !strcmp(tok, "resume") || !strcmp(tok, "dirty"))) {
			rc = yun_err_set(err, EINVAL, "%s %s: \"%s\" is not an override (tapI, macI, "
					 "diskI, vsock_cid, vsock_socket)", opt, value, tok);
		} else if (!strcmp(tok, "state")) {
			rc = yun_str_set(&r->state, eq, err);
		} else if (!strcmp(tok, "mem")) {
			rc = yun_str_set(&r->mem, eq, err);
		} else if (!strcmp(tok, "resume") || !strcmp(tok, "dirty")) {
			if (parse_on_off(eq, !strcmp(tok, "resume") ? &r->resume : &r->dirty))
				rc = yun_err_set(err, EINVAL, "%s %s: %s=%s: want on or off",
						 opt, value, tok, eq);
		} else if (!strcmp(tok, "vsock_cid")) {
			if (yun_parse_u64(eq, &n) < 0 || n < 3 || n >= UINT32_MAX)
				rc = yun_err_set(err, EINVAL, "%s %s: vsock_cid=%s: must be "
						 "from 3 to %u", opt, value, eq, UINT32_MAX - 1);
			else
				r->vsock_cid = n;
		} else if (!strcmp(tok, "vsock_socket")) {
			if (!*eq || strlen(eq) > VSOCK_PATH_MAX)
				rc = yun_err_set(err, EINVAL, "%s %s: vsock_socket empty or "
						 "longer than %zu bytes", opt, value, VSOCK_PATH_MAX);
			else
				rc = yun_str_set(&r->vsock_socket, eq, err);
		} else if ((i = indexed_key(tok, "tap", CONFIG_MAX_NETS)) >= 0) {
			if (!net_tap_name_ok(eq))
				rc = yun_err_set(err, EINVAL, "%s %s: %s=%s is not an interface "
						 "name", opt, value, tok, eq);
			else
				rc = yun_str_set(&r->tap[i], eq, err);
		} else if ((i = indexed_key(tok, "mac", CONFIG_MAX_NETS)) >= 0) {
			uint8_t mac[6];

			if (strcmp(eq, "random") && net_parse_mac(eq, mac) < 0)
				rc = yun_err_set(err, EINVAL, "%s %s: %s=%s: want a unicast MAC "
						 "or random", opt, value, tok, eq);
			else
				rc = yun_str_set(&r->mac[i], eq, err);
		} else if ((i = indexed_key(tok, "disk", CONFIG_MAX_DISKS)) >= 0) {
			rc = yun_str_set(&r->disk[i], eq, err);
		} else {
			rc = yun_err_set(err, EINVAL, "%s %s: unknown option \"%s\" (state, "
					 "mem, resume, dirty, vsock_cid, vsock_socket, tapI, macI, "
					 "diskI)", opt, value, tok);
		}
	}
	free(copy);
	if (!rc && files && (!r->state || !r->mem))
		rc = yun_err_set(err, EINVAL, "%s %s: needs state=FILE and mem=FILE", opt, value);
	return rc;
}

static int parse_restore(struct vmm_config *cfg, const char *value, struct yun_err *err)
{
	return parse_restore_opts(&cfg->restore, "restore", value, true, err);
}

static int parse_trigger(struct vmm_config *cfg, const char *value, struct yun_err *err)
{
	struct vmm_snap_trigger *t;
	char *copy, *save = NULL, *tok;
	int rc = 0;

	if (cfg->nr_triggers == CONFIG_MAX_SNAP_TRIGGERS)
		return yun_err_set(err, EINVAL, "snapshot-on-line: at most %d",
				   CONFIG_MAX_SNAP_TRIGGERS);
	t = &cfg->triggers[cfg->nr_triggers++];
	copy = strdup(value);
	if (!copy)
		return yun_err_set(err, ENOMEM, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq++ = '\0';
		if (eq && !strcmp(tok, "match"))
			rc = yun_str_set(&t->match, eq, err);
		else if (eq && !strcmp(tok, "state"))
			rc = yun_str_set(&t->state, eq, err);
		else if (eq && !strcmp(tok, "mem"))
			rc = yun_str_set(&t->mem, eq, err);
		else if (eq && !strcmp(tok, "diff") && !parse_on_off(eq, &t->diff))
			rc = 0;
		else if (eq && !strcmp(tok, "then") && (!strcmp(eq, "exit") || !strcmp(eq, "resume")))
			t->resume = !strcmp(eq, "resume");
		else
			rc = yun_err_set(err, EINVAL, "snapshot-on-line %s: bad option \"%s\" "
					 "(match=TEXT, state=F, mem=M, diff=on, then=exit|resume)",
					 value, tok);
	}
	free(copy);
	if (!rc && (!t->match || !*t->match || !t->state || !t->mem))
		rc = yun_err_set(err, EINVAL, "snapshot-on-line %s: needs match=, state= and mem=",
				 value);
	return rc;
}

static json_t *disk_to_json(const struct vmm_disk *d)
{
	json_t *o = json_pack("{s:s, s:b, s:b, s:I, s:I}", "path", d->path, "readonly",
			      d->readonly, "direct", d->direct, "bw", (json_int_t)d->bw, "iops",
			      (json_int_t)d->iops);

	if (o && d->id && json_object_set_new(o, "id", json_string(d->id)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *net_to_json(const struct vmm_net *n)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I}", "tap", n->tap, "rx_bw",
			      (json_int_t)n->rx_bw, "rx_pps", (json_int_t)n->rx_pps, "tx_bw",
			      (json_int_t)n->tx_bw, "tx_pps", (json_int_t)n->tx_pps);
	char mac[18];

	if (o && n->has_mac) {
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
			 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
		if (json_object_set_new(o, "mac", json_string(mac)) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* Set key to v (a new reference, NULL meaning out of memory); false on failure. */
static bool put(json_t *o, const char *key, json_t *v)
{
	return v && json_object_set_new(o, key, v) == 0;
}

json_t *config_to_json(const struct vmm_config *cfg)
{
	json_t *o = json_object(), *disks = json_array(), *nets = json_array();
	bool ok = o && disks && nets;

	for (unsigned i = 0; ok && i < cfg->nr_disks; i++)
		ok = json_array_append_new(disks, disk_to_json(&cfg->disks[i])) == 0;
	for (unsigned i = 0; ok && i < cfg->nr_nets; i++)
		ok = json_array_append_new(nets, net_to_json(&cfg->nets[i])) == 0;
	ok = ok && (!cfg->kernel || put(o, "kernel", json_string(cfg->kernel)));
	ok = ok && (!cfg->initrd || put(o, "initrd", json_string(cfg->initrd)));
	ok = ok && (!cfg->cmdline || put(o, "cmdline", json_string(cfg->cmdline)));
	ok = ok && put(o, "cpus", json_integer(cfg->cpus));
	ok = ok && put(o, "memory", json_integer((json_int_t)cfg->memory_mib));
	ok = ok && put(o, "debug_exit", json_boolean(cfg->debug_exit));
	ok = ok && put(o, "reboot", json_boolean(cfg->reboot));
	ok = ok && put(o, "rng", json_boolean(cfg->rng));
	if (ok && cfg->balloon)
		ok = put(o, "balloon", json_pack("{s:I, s:I}", "target",
						 (json_int_t)cfg->balloon_target_mib,
						 "deflate_after_ms",
						 (json_int_t)cfg->balloon_deflate_after_ms));
	if (ok && cfg->vsock)
		ok = put(o, "vsock", json_pack("{s:I, s:s}", "cid", (json_int_t)cfg->vsock_cid,
					       "socket", cfg->vsock_socket ? cfg->vsock_socket : ""));
	ok = ok && json_object_set(o, "disks", disks) == 0 && json_object_set(o, "net", nets) == 0;
	json_decref(disks);
	json_decref(nets);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

enum {
	OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_SERIAL,
	OPT_DEBUG_EXIT, OPT_REBOOT, OPT_CONFIG, OPT_KVM_DEVICE, OPT_VERSION, OPT_RNG,
	OPT_SERIAL_LOG, OPT_RESTORE, OPT_SNAP_TRIGGER, OPT_SECCOMP, OPT_API_SOCK,
	OPT_MIGRATE_LISTEN, OPT_MIGRATE_TOKEN_FILE, OPT_MIGRATE_OVERRIDE,
	OPT_BALLOON = 768,
	OPT_DISK = 512,
	OPT_NET = 640,
	OPT_VSOCK = 896,
};

static const struct option options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "serial-log", required_argument, NULL, OPT_SERIAL_LOG },
	{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "balloon", optional_argument, NULL, OPT_BALLOON },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "vsock", required_argument, NULL, OPT_VSOCK },
	{ "reboot", no_argument, NULL, OPT_REBOOT },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "snapshot-on-line", required_argument, NULL, OPT_SNAP_TRIGGER },
	{ "migrate-listen", required_argument, NULL, OPT_MIGRATE_LISTEN },
	{ "migrate-token-file", required_argument, NULL, OPT_MIGRATE_TOKEN_FILE },
	{ "migrate-override", required_argument, NULL, OPT_MIGRATE_OVERRIDE },
	{ "kvm-device", required_argument, NULL, OPT_KVM_DEVICE },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
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
		case OPT_KERNEL: rc = yun_str_set(&cfg->kernel, optarg, err); break;
		case OPT_INITRD: rc = yun_str_set(&cfg->initrd, optarg, err); break;
		case OPT_CMDLINE: rc = yun_str_set(&cfg->cmdline, optarg, err); break;
		case OPT_SERIAL: rc = yun_str_set(&cfg->serial, optarg, err); break;
		case OPT_SERIAL_LOG: rc = yun_str_set(&cfg->serial_log, optarg, err); break;
		case OPT_KVM_DEVICE: rc = yun_str_set(&cfg->kvm_device, optarg, err); break;
		case OPT_API_SOCK: rc = yun_str_set(&cfg->api_sock, optarg, err); break;
		case OPT_CPUS: rc = parse_cpus(optarg, &cfg->cpus, err); break;
		case OPT_MEMORY: rc = parse_memory(optarg, &cfg->memory_mib, err); break;
		case OPT_DEBUG_EXIT: cfg->debug_exit = true; break;
		case OPT_RNG: cfg->rng = true; break;
		case OPT_BALLOON:
			/* The options are optional: take "--balloon target=64" as well as "=". */
			if (!optarg && optind < argc && argv[optind][0] != '-' &&
			    strchr(argv[optind], '='))
				optarg = argv[optind++];
			cfg->balloon = true;
			if (optarg)
				rc = parse_balloon(cfg, optarg, err);
			break;
		case OPT_DISK: rc = parse_disk(cfg, optarg, err); break;
		case OPT_NET: rc = parse_net(cfg, optarg, err); break;
		case OPT_VSOCK: rc = parse_vsock(cfg, optarg, err); break;
		case OPT_REBOOT: cfg->reboot = true; break;
		case OPT_SECCOMP:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				rc = yun_err_set(err, EINVAL, "--seccomp %s: must be on or off", optarg);
			cfg->seccomp = !strcmp(optarg, "on");
			break;
		case OPT_CONFIG: rc = config_load_file(cfg, optarg, err); break;
		case OPT_RESTORE: rc = parse_restore(cfg, optarg, err); break;
		case OPT_SNAP_TRIGGER: rc = parse_trigger(cfg, optarg, err); break;
		case OPT_MIGRATE_LISTEN: rc = yun_str_set(&cfg->migrate_listen, optarg, err); break;
		case OPT_MIGRATE_TOKEN_FILE:
			rc = yun_str_set(&cfg->migrate_token_file, optarg, err);
			break;
		case OPT_MIGRATE_OVERRIDE:
			rc = parse_restore_opts(&cfg->migrate_override, "migrate-override", optarg,
						false, err);
			break;
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
	if (cfg->restore.state && cfg->migrate_listen)
		return yun_err_set(err, EINVAL, "--restore and --migrate-listen: one or the other");
	if (cfg->restore.state && cfg->kernel)
		return yun_err_set(err, EINVAL, "--restore takes the VM's settings from the "
				   "snapshot: no --kernel with it");
	if (cfg->restore.state)
		return 0; /* the rest is checked once the state file is read */
	if (cfg->migrate_listen && (cfg->kernel || !cfg->migrate_token_file))
		return yun_err_set(err, EINVAL, "--migrate-listen: %s",
				   cfg->kernel ? "the VM's settings come from the source: no --kernel "
						 "with it"
					       : "needs --migrate-token-file FILE");
	if (cfg->migrate_token_file && !cfg->migrate_listen)
		return yun_err_set(err, EINVAL, "--migrate-token-file: only with --migrate-listen");
	if (cfg->migrate_listen)
		return 0; /* the rest is checked once the source's configuration arrives */
	if ((!cfg->kernel || !*cfg->kernel) && !cfg->api_sock)
		return yun_err_set(err, EINVAL, "no kernel given (--kernel PATH)");
	if (cfg->cpus == 0 || cfg->cpus > LAYOUT_MAX_VCPUS)
		return yun_err_set(err, EINVAL, "cpus %u: must be from 1 to %d", cfg->cpus,
				   LAYOUT_MAX_VCPUS);
	if (cfg->memory_mib < GM_MIN_MIB || cfg->memory_mib > GM_MAX_MIB)
		return yun_err_set(err, EINVAL, "memory %llu MiB: must be from %llu to %llu MiB",
				   (unsigned long long)cfg->memory_mib, GM_MIN_MIB, GM_MAX_MIB);
	if (cfg->balloon && cfg->balloon_target_mib > cfg->memory_mib)
		return yun_err_set(err, EINVAL, "balloon target %llu MiB: more than the %llu MiB of RAM",
				   (unsigned long long)cfg->balloon_target_mib,
				   (unsigned long long)cfg->memory_mib);
	if (cfg->nr_nets && cfg->rng + cfg->nr_disks + cfg->balloon + cfg->nr_nets > 8)
		return yun_err_set(err, EINVAL, "net: %u cards with the other devices make more "
				   "than 8 PCI devices", cfg->nr_nets);
	if (cfg->vsock && (!cfg->vsock_cid || !cfg->vsock_socket))
		return yun_err_set(err, EINVAL, "vsock: needs cid=N and socket=PATH");
	if (cfg->vsock && cfg->rng + cfg->nr_disks + cfg->balloon + cfg->nr_nets + 1 > 8)
		return yun_err_set(err, EINVAL, "vsock: with the other devices makes more than 8 "
				   "PCI devices");
	for (unsigned i = 0; i < cfg->nr_nets; i++)
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(cfg->nets[i].tap, cfg->nets[j].tap))
				return yun_err_set(err, EINVAL, "net tap=%s: given twice (one card per TAP)",
						   cfg->nets[i].tap);
	return 0;
}
