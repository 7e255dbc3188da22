/*
 * snapshot_fuzz.c - libFuzzer target for what a snapshot's state file
 * controls before any KVM state is touched: the container (magic, version,
 * length, CRC-32; snap_file_read), the section stream, and the CONF
 * section parsed back into a configuration with a clone's identity applied
 * (snap_conf_load). A state file is untrusted input: nothing may crash or
 * trip a sanitizer, and a configuration that loads must be one yun-vmm
 * accepts (it passed config_validate) and can save again.
 *
 * Input: one flags byte, then the file. Flag bit 0 wraps the rest in a
 * valid container (right CRC) so the fuzzer reaches the sections; bits 1-3
 * choose identity overrides (new vsock CID, TAP and MAC of card 0, disk 0).
 *
 * FUZZ_SOURCES: src/vmm/snapshot/stream.c src/vmm/snapshot/conf.c src/vmm/config.c
 * FUZZ_SOURCES: src/vmm/memory.c src/vmm/virtio/queue.c src/vmm/virtio/net.c
 * FUZZ_SOURCES: src/vmm/virtio/iothread.c src/vmm/virtio/throttle.c src/vmm/ratelimit.c
 * FUZZ_SOURCES: src/lib/err.c src/lib/log.c src/lib/str.c src/lib/json.c src/lib/file.c
 * FUZZ_SOURCES: src/vmm/sandbox/seccomp.c
 * FUZZ_LIBS: -ljansson -lz -lseccomp
 *
 * Built with -DFUZZ_WRITE_SEEDS this file is instead a program writing a
 * seed corpus (state files with a CONF section) into the directory it is given.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/snapshot/conf.h"
#include "vmm/snapshot/stream.h"

/* The file the fuzzer made, as snap_file_read sees it: a memfd. */
static int file_read(const uint8_t *data, size_t size, bool wrap, uint8_t **payload, size_t *len,
		     struct yun_err *err)
{
	char path[64];
	int fd = memfd_create("state", MFD_CLOEXEC), rc;

	if (fd < 0)
		abort();
	if (wrap) {
		uint8_t hdr[24];
		uint32_t crc = snap_crc32(data, size);

		memcpy(hdr, SNAP_FILE_MAGIC, 8);
		for (int i = 0; i < 4; i++) {
			hdr[8 + i] = (uint8_t)(SNAP_FILE_VERSION >> (8 * i));
			hdr[12 + i] = (uint8_t)(crc >> (8 * i));
		}
		for (int i = 0; i < 8; i++)
			hdr[16 + i] = (uint8_t)((uint64_t)size >> (8 * i));
		if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr))
			abort();
	}
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rc = snap_file_read(path, payload, len, err);
	close(fd);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_restore_opts opts = { 0 };
	struct vmm_config cfg;
	struct yun_err err = { 0 };
	struct snap_reader r, s;
	uint8_t *payload = NULL, flags;
	size_t len = 0;

	if (size < 1)
		return 0;
	flags = data[0];
	if (file_read(data + 1, size - 1, flags & 1, &payload, &len, &err) < 0)
		return 0;
	if (flags & 2) {
		opts.vsock_cid = 77;
		opts.vsock_socket = "/tmp/fuzz.sock";
	}
	if (flags & 4) {
		opts.tap[0] = "fuzz0";
		opts.mac[0] = (flags & 16) ? "random" : "52:54:00:00:00:99";
	}
	if (flags & 8)
		opts.disk[0] = "/tmp/fuzz.img";
	snap_reader_init(&r, payload, len, "sections");
	config_init(&cfg);
	if (snap_conf_load(&r, &cfg, &opts, &err) == 0) {
		json_t *o = config_to_json(&cfg);

		if (!o || config_validate(&cfg, &err) != 0)
			abort(); /* loaded, so it must save and validate again */
		json_decref(o);
		/* The rest of the stream: every section header must be walked safely. */
		for (char tag[5]; snap_peek_tag(&r, tag), tag[0];)
			if (snap_section(&r, tag, UINT32_MAX, NULL, &s) < 0)
				break;
	}
	config_free(&cfg);
	free(payload);
	return 0;
}

#ifdef FUZZ_WRITE_SEEDS
static void seed(const char *dir, const char *name, uint8_t flags, const char *json)
{
	struct snap_writer w;
	char path[4096];
	FILE *f;

	snap_writer_init(&w);
	snap_begin(&w, "CONF", SNAP_CONF_VERSION);
	snap_put_str(&w, json);
	snap_end(&w);
	snap_begin(&w, "VCPU", 1);
	snap_put_u32(&w, 0);
	snap_end(&w);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(&flags, 1, 1, f) != 1 || fwrite(w.buf, 1, w.len, f) != w.len)
		abort();
	fclose(f);
	snap_writer_free(&w);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	seed(argv[1], "plain", 1, "{\"kernel\":\"/k\",\"cpus\":1,\"memory\":256}");
	seed(argv[1], "devices", 1 | 2 | 4 | 8,
	     "{\"kernel\":\"/k\",\"cpus\":2,\"memory\":512,\"rng\":true,"
	     "\"disks\":[{\"path\":\"/d\",\"readonly\":true,\"id\":\"x\"}],"
	     "\"net\":[{\"tap\":\"t0\",\"mac\":\"52:54:00:12:34:56\",\"rx_bw\":5}],"
	     "\"balloon\":{\"target\":64,\"deflate_after_ms\":1},"
	     "\"vsock\":{\"cid\":3,\"socket\":\"/v\"}}");
	return 0;
}
#endif
