/*
 * ct_config_fuzz.c - libFuzzer target for yun-ct's container settings in
 * JSON, what `yun-ct run --config FILE` reads (ct_config_parse_json), then
 * the range checks every container goes through (ct_config_validate). A
 * configuration that passes both is written out as state.json would hold it
 * (ct_config_to_json) and read back: it must parse and validate again and
 * come out the same. A crash, a sanitizer report or a broken round trip is
 * a bug. Nothing here touches the host (no ct_config_check_host).
 *
 * FUZZ_SOURCES: src/ct/config.c src/ct/mounts.c src/ct/image.c src/ct/state.c
 * FUZZ_SOURCES: src/lib/err.c src/lib/file.c src/lib/json.c src/lib/str.c
 * FUZZ_LIBS: -ljansson
 *
 * Built with -DFUZZ_WRITE_SEEDS (and without -fsanitize=fuzzer) this file is
 * instead a program that writes a seed corpus of valid and nearly valid
 * configurations into the directory given as its argument.
 */
#include "ct/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* abort() is what libFuzzer reports as a crash. */
#define INVARIANT(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "ct_config_fuzz: invariant broken: %s\n", #cond);          \
			fprintf(stderr, "  " __VA_ARGS__);                                         \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#ifndef FUZZ_WRITE_SEEDS

/* Parse, validate; on success the JSON the settings turn into (caller frees). */
static json_t *parse_valid(const char *text, struct ct_config *cfg, struct yun_err *err)
{
	ct_config_init(cfg);
	if (ct_config_parse_json(cfg, text, "fuzz", err) < 0) {
		INVARIANT(err->code > 0 && err->msg[0], "parse failed without a reason");
		return NULL;
	}
	if (ct_config_validate(cfg, err) < 0) {
		INVARIANT(err->code > 0 && err->msg[0], "validate failed without a reason");
		return NULL;
	}
	return ct_config_to_json(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ct_config a, b;
	struct yun_err err = {0};
	char *text = malloc(size + 1), *again;
	json_t *ja, *jb;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	ja = parse_valid(text, &a, &err);
	if (ja) {
		again = json_dumps(ja, JSON_SORT_KEYS);
		INVARIANT(again, "ct_config_to_json gave something json_dumps cannot write");
		jb = parse_valid(again, &b, &err);
		INVARIANT(jb, "a valid configuration does not read back: %s\n  %s", err.msg, again);
		INVARIANT(json_equal(ja, jb), "the round trip changed it:\n  %s", again);
		json_decref(jb);
		ct_config_free(&b);
		free(again);
	}
	json_decref(ja);
	ct_config_free(&a);
	free(text);
	return 0;
}

#else /* FUZZ_WRITE_SEEDS */

#include "seed_text.h"

static const char *const seeds[] = {
    "{}",
    "{\"rootfs\": \"/srv/rootfs\", \"command\": [\"/bin/true\"]}",
    "{\"image\": \"/var/lib/yun/images/busybox\", \"overlay\": true, \"name\": \"web-1\","
    " \"hostname\": \"web\", \"cpus\": 0.5, \"cpu_shares\": 512, \"cpuset\": \"0-1,3\","
    " \"memory\": \"512M\", \"memory_swap\": 0, \"pids\": 100, \"blkio_weight\": 500,"
    " \"net\": \"veth=ybr0\", \"console\": \"stdio\", \"env\": [\"A=1\", \"B=two\"],"
    " \"cwd\": \"/tmp\", \"keep\": false, \"detach\": true, \"stop_signal\": \"RTMIN+3\","
    " \"command\": [\"/sbin/init\"]}",
    "{\"rootfs\": \"/srv/r\", \"userns\": \"auto\", \"memory\": 64, \"pids\": 50}",
    "{\"rootfs\": \"/srv/r\", \"uid_map\": [\"0:100000:65536\"],"
    " \"gid_map\": [\"0:100000:65536\"]}",
    "{\"rootfs\": \"/srv/r\", \"mounts\": [\"/srv/data:/data:ro\","
    " {\"source\": \"/srv/x\", \"destination\": \"/x\", \"readonly\": false}]}",
    "{\"rootfs\": \"/srv/r\", \"net\": \"netns=/run/netns/blue\","
    " \"console\": \"socket=/run/c.sock\"}",
    "{\"rootfs\": \"/srv/r\", \"cpus\": \"1.25\", \"memory\": \"2G\","
    " \"memory_swap\": -1, \"stop_signal\": 15}",
    "{\"rootfs\": \"/srv/r\", \"memory\": \"-5\"}",
    "{\"rootfs\": \"/srv/r\", \"uid_map\": [\"0:1:2\", \"1:2:3\"]}",
    "[1, 2]",
    /* Crashed this target once: RTMIN+N overflow (UBSan); maps kept under "userns": "off". */
    "{\"rootfs\": \"/srv/r\", \"stop_signal\": \"RTMIN+9223372036854775807\"}",
    "{\"rootfs\": \"/srv/r\", \"uid_map\": [\"1:1:1\"], \"userns\": \"off\"}",
};

int main(int argc, char **argv)
{
	return seed_text_main(argc, argv, seeds, sizeof(seeds) / sizeof(seeds[0]));
}

#endif /* FUZZ_WRITE_SEEDS */
