/*
 * config.h - yun-vmm's settings as plain data, validated once at the edge.
 *
 * Command-line flags and the JSON file given with --config become the same
 * struct vmm_config; flags given after --config override the file.
 */
#ifndef YUN_VMM_CONFIG_H
#define YUN_VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "../lib/err.h"

#define CONFIG_DEFAULT_MEMORY_MIB 256
#define CONFIG_DEFAULT_CPUS       1
#define CONFIG_DEFAULT_SERIAL     "stdio"
#define CONFIG_DEFAULT_KVM_DEVICE "/dev/kvm"

#define CONFIG_MAX_DISKS 4  /* with rng, net, balloon, vsock: the 8 PCI slots with INTx */

/* One virtio-blk disk: --disk path=F[,readonly=on][,direct=on][,id=NAME][,bw=N][,iops=N]. */
struct vmm_disk {
	char *path;        /* raw image file or block device */
	char *id;          /* GET_ID answer (<= 20 bytes); NULL: the file's name */
	bool readonly;
	bool direct;       /* O_DIRECT */
	uint64_t bw;       /* rate limit, bytes/s; 0: unlimited */
	uint64_t iops;     /* rate limit, requests/s; 0: unlimited */
};

#define CONFIG_MAX_NETS 4

/*
 * One virtio-net card: --net tap=NAME[,mac=52:54:00:12:34:56] and rate
 * limits [,rx_bw=N][,rx_pps=N][,tx_bw=N][,tx_pps=N] (bw=N and pps=N: both
 * directions).
 */
struct vmm_net {
	char *tap;         /* TAP device; created (and removed at exit) if it does not exist */
	uint8_t mac[6];
	bool has_mac;      /* else a random locally administered MAC */
	uint64_t rx_bw, rx_pps; /* TAP -> guest: bytes/s, frames/s; 0: unlimited */
	uint64_t tx_bw, tx_pps; /* guest -> TAP */
};

/*
 * --restore state=F,mem=M[,resume=on][,dirty=on][,vsock_cid=N][,vsock_socket=P]
 * [,tapI=NAME][,macI=MAC|random][,diskI=PATH]: start from a snapshot instead
 * of a kernel (snapshot/snapshot.h); the VM's settings come from the state
 * file, these replace its identity where a clone needs its own.
 */
struct vmm_restore {
	char *state, *mem;
	bool resume;          /* run at once (else vCPUs stay parked until resumed) */
	bool dirty;           /* log dirty pages from the start, for a later diff snapshot */
	uint64_t vsock_cid;   /* 0: keep */
	char *vsock_socket;
	char *tap[CONFIG_MAX_NETS];
	char *mac[CONFIG_MAX_NETS];   /* "52:54:..." or "random" */
	char *disk[CONFIG_MAX_DISKS];
};

/*
 * Tests only, until the control API drives snapshots:
 * --snapshot-on-line match=TEXT,state=F,mem=M[,diff=on][,then=exit|resume]
 * pauses the VM when the guest prints a line starting with TEXT, writes a
 * snapshot and exits (status 0) or resumes.
 */
#define CONFIG_MAX_SNAP_TRIGGERS 4
struct vmm_snap_trigger {
	char *match, *state, *mem;
	bool diff;
	bool resume;
};

struct vmm_config {
	char *kernel;      /* required */
	char *initrd;      /* optional */
	char *cmdline;     /* optional; "" when absent */
	unsigned cpus;
	uint64_t memory_mib;
	char *serial;      /* stdio | pty | file=PATH | socket=PATH | off */
	char *serial_log;  /* NULL, or a file that gets all serial output appended */
	bool debug_exit;   /* QEMU-compatible exit port at 0x501 */
	bool reboot;       /* on guest reset: restart instead of exiting */
	bool rng;          /* a virtio-rng PCI device (entropy from the host's getrandom) */
	struct vmm_disk disks[CONFIG_MAX_DISKS]; /* virtio-blk devices, in PCI slot order */
	unsigned nr_disks;
	bool balloon;      /* a virtio-balloon PCI device */
	uint64_t balloon_target_mib;       /* its initial target: memory the host wants back */
	uint32_t balloon_deflate_after_ms; /* stop-gap: target 0 this long after reaching it */
	struct vmm_net nets[CONFIG_MAX_NETS]; /* virtio-net devices, in PCI slot order */
	unsigned nr_nets;
	bool vsock;        /* a virtio-vsock device: --vsock cid=N,socket=PATH */
	uint64_t vsock_cid;   /* the guest's CID, 3 .. 2^32 - 2 */
	char *vsock_socket;   /* host side: Unix socket PATH (and PATH_<port> for guest connects) */
	char *kvm_device;  /* /dev/kvm unless told otherwise (tests) */
	char *api_sock;    /* the control API's Unix socket (control.h), NULL: none */
	struct vmm_restore restore; /* restore.state != NULL: --restore */
	/*
	 * --migrate-listen HOST:PORT --migrate-token-file FILE
	 * [--migrate-override tapI=NAME,macI=MAC,diskI=PATH,vsock_cid=N,vsock_socket=P]:
	 * no kernel; the VM arrives by live migration (migrate/vm_ops.h), with
	 * the source's settings except what the overrides replace.
	 */
	char *migrate_listen;
	char *migrate_token_file;
	struct vmm_restore migrate_override;
	struct vmm_snap_trigger triggers[CONFIG_MAX_SNAP_TRIGGERS];
	unsigned nr_triggers;
	bool seccomp;      /* --seccomp on|off: per-thread syscall filters, default on */
	bool verbose;
	bool help;
	bool version;
};

void config_init(struct vmm_config *cfg);
void config_free(struct vmm_config *cfg);

/* Parse argv (including --config FILE); then call config_validate. */
int config_parse_args(struct vmm_config *cfg, int argc, char **argv, struct yun_err *err);

/* Merge settings from a JSON document (the --config file's content). */
int config_parse_json(struct vmm_config *cfg, const char *text, const char *origin,
		      struct yun_err *err);

/*
 * The VM's settings as a JSON object config_parse_json reads back (what a
 * snapshot keeps): kernel, initrd, cmdline, cpus, memory, debug_exit,
 * reboot, rng, disks, balloon, net, vsock. Host-side settings (serial,
 * serial_log, kvm_device, verbose, restore, triggers) are left out. NULL
 * when out of memory.
 */
struct json_t;
struct json_t *config_to_json(const struct vmm_config *cfg);

/*
 * Check values that do not need the kernel file: cpus, memory, kernel given
 * (a kernel may be absent with api_sock: the API gives it before the start).
 */
int config_validate(const struct vmm_config *cfg, struct yun_err *err);

/* The --help text. */
extern const char config_usage[];

#endif
