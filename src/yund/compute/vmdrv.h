/*
 * vmdrv.h - microVM instances on yun-vmm: the instance's files, its
 * process (observe), and the idempotent steps that change it (start,
 * stop, kill).
 *
 * One yun-vmm process per running instance, started as
 * `yun-vmm --config <dir>/vm.json` in a session of its own, so it
 * outlives yund. yun-vmm itself appends the serial output to
 * <dir>/console.log (`serial_log`), with or without a console client,
 * and serves the console on <dir>/console.sock (`serial: socket=`;
 * one client at a time, a new one replaces the old); its own messages
 * (stdout/stderr) are appended to the same log. Files in <dir> =
 * <root>/instances/<id>/:
 *
 *   disk.img     the instance's root disk: a copy of the image's
 *                rootfs.ext4 (reflink when the filesystem can, else
 *                sparse), grown to disk_gib; made once, kept across
 *                stop/start, removed with the instance
 *   seed.img     the cloud-init NoCloud seed: a vfat filesystem labelled
 *                CIDATA with meta-data (instance-id, local-hostname,
 *                public-keys: the instance's SSH keys as a YAML list) and
 *                user-data (the instance's, or a #cloud-config setting
 *                the hostname); remade at every start
 *   vm.json      the yun-vmm config (kernel, initrd, cmdline, cpus,
 *                memory, disks, net, serial socket=console.sock,
 *                serial_log console.log)
 *   vmm.pid      the running yun-vmm's pid; a pid counts only while
 *                /proc/PID/cmdline is exactly that yun-vmm command line,
 *                so a reused pid is never mistaken for the VM
 *   console.log  the serial console's output, and yun-vmm's messages
 *   console.sock the console (input and output) while the VM runs; not
 *                there when the path is too long for a Unix socket
 *
 * The control API (vmmapi.h) is served on the socket the spec names
 * (`api_sock` in vm.json, as `--api-sock`; yund puts it under its run dir,
 * `<run>/vm/<id>.sock`, which stays short enough for a Unix socket address
 * however long the root is). Stop is the API's Shutdown action
 * (Ctrl-Alt-Del, then a hard stop by yun-vmm at the deadline); the
 * signals below are the fallback for a VMM whose API does not answer.
 */
#ifndef YUND_COMPUTE_VMDRV_H
#define YUND_COMPUTE_VMDRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../lib/err.h"

/* The yun-vmm binary (what a live VM's /proc/PID/cmdline must start with). */
void vmdrv_set_binary(const char *yun_vmm);
const char *vmdrv_binary(void);

/* yun-vmm serves 4 disks: the root disk, the seed and two volumes. */
#define VMDRV_MAX_VOLUMES 2

struct vmdrv_disk {
	const char *path;
	bool readonly;
};

struct vmdrv_spec {
	const char *id;
	const char *hostname;
	const char *dir;       /* the instance directory */
	const char *image_dir; /* kernel, [initrd], rootfs.ext4, manifest.json */
	int64_t vcpus, memory_mib, disk_gib;
	const char *user_data; /* NULL: a default #cloud-config */
	const char *ssh_keys;  /* JSON array text of key lines (checked), or NULL */
	const char *tap;       /* NULL or "": no network card */
	const char *mac;
	const char *api_sock; /* the control API's socket, or NULL: none */
	/* Volumes: extra virtio-blk disks after the root disk and the seed. */
	const struct vmdrv_disk *volumes;
	size_t n_volumes; /* at most VMDRV_MAX_VOLUMES */
};

/*
 * Make what the VM needs (disk, seed, config) and start yun-vmm; *pid is
 * our child. A yun-vmm already running this instance's config (started
 * before a crash of yund) is adopted instead: *pid = 0, *adopted = true.
 */
int vmdrv_start(const struct vmdrv_spec *spec, pid_t *pid, bool *adopted, struct yun_err *err);

/*
 * The console socket of the instance in `dir` into buf; false when the
 * path does not fit a Unix socket address (the VM then has no console).
 */
bool vmdrv_console_socket(const char *dir, char *buf, size_t len);

/* The live yun-vmm of the instance in `dir`, or 0. */
pid_t vmdrv_pid(const char *dir);

/* Whether a pid file is there (a VM was started and not yet seen to end). */
bool vmdrv_recorded(const char *dir);

/* Forget the pid file (the VM is known to be gone). */
void vmdrv_clear(const char *dir);

/* SIGTERM (kill = false) or SIGKILL to the instance's yun-vmm; 0 when none runs. */
int vmdrv_signal(const char *dir, bool kill_it, struct yun_err *err);

/*
 * The kernel command line an image's manifest asks for (default
 * "console=ttyS0 root=/dev/vda rw") into buf.
 */
void vmdrv_image_cmdline(const char *image_dir, char *buf, size_t len);

#endif
