/*
 * metrics.c - see metrics.h. Everything is read at scrape time: the store
 * for the objects, the cgroups, /proc and netlink for the usage, a
 * microVM's own GET /metrics (compute/vmmapi.h) for its vCPUs. Nothing
 * here changes the host.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../ct/cgroup.h"
#include "../../lib/log.h"
#include "../api/v1.h"
#include "../compute/instance.h"
#include "../compute/vmmapi.h"
#include "../net/port.h"
#include "../store/store.h"
#include "../yund.h"
#include "apistats.h"
#include "prom.h"

/* The host's cgroup layout, as yun-ct sees it from yund's own cgroup (its clients are ours). */
static pthread_mutex_t cg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cgroup_host *cg_host;
static bool cg_probed;

static struct cgroup_host *host_cgroups(void)
{
	pthread_mutex_lock(&cg_lock);
	if (!cg_probed) {
		cg_probed = true;
		if (cgroup_probe("/sys/fs/cgroup", &cg_host, NULL) < 0)
			cg_host = NULL;
	}
	pthread_mutex_unlock(&cg_lock);
	return cg_host;
}

void metrics_free(void)
{
	pthread_mutex_lock(&cg_lock);
	cgroup_host_free(cg_host);
	cg_host = NULL;
	cg_probed = false;
	pthread_mutex_unlock(&cg_lock);
}

static int read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 0;
}

/* ---- what an instance uses ---- */

struct usage {
	bool has_cpu, has_mem, has_net, has_disk;
	double cpu_s;
	uint64_t mem;
	struct yn_link_stats net; /* host side */
	uint64_t rd, wr;
	json_t *vmm; /* a microVM's GET /metrics, or NULL */
};

/* io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device. */
static bool read_io_stat(const char *dir, uint64_t *rd, uint64_t *wr)
{
	char path[4200], buf[16384];

	snprintf(path, sizeof(path), "%s/io.stat", dir);
	if (read_text(path, buf, sizeof(buf)) < 0)
		return false;
	*rd = *wr = 0;
	for (char *p = buf; (p = strstr(p, "bytes=")); p += 6) {
		if (p > buf + 1 && p[-1] == 'r')
			*rd += strtoull(p + 6, NULL, 10);
		else if (p > buf + 1 && p[-1] == 'w')
			*wr += strtoull(p + 6, NULL, 10);
	}
	return true;
}

/* blkio.throttle.io_service_bytes[_recursive]: "MAJ:MIN Read N" lines, "Total N". */
static bool read_blkio(const char *dir, uint64_t *rd, uint64_t *wr)
{
	static const char *const files[] = {"blkio.throttle.io_service_bytes_recursive",
					    "blkio.throttle.io_service_bytes"};
	char path[4200], buf[16384];

	for (size_t i = 0; i < 2; i++) {
		char *save = NULL;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (read_text(path, buf, sizeof(buf)) < 0)
			continue;
		*rd = *wr = 0;
		for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char dev[32], op[16];
			unsigned long long v;

			if (sscanf(l, "%31s %15s %llu", dev, op, &v) != 3)
				continue;
			if (!strcmp(op, "Read"))
				*rd += v;
			else if (!strcmp(op, "Write"))
				*wr += v;
		}
		return true;
	}
	return false;
}

/*
 * v1's blkio.throttle counters count only where the kernel runs the
 * throttling code for the device (recent kernels: only with a limit set
 * on it). When nothing at all was counted below yund's own blkio cgroup,
 * whose children the containers are, the host does not account and the
 * disk samples are left out rather than shown as a flat 0.
 */
static bool blkio_accounts(const struct cgroup_host *h)
{
	const char *base = cgroup_host_path(h, "blkio");
	uint64_t rd = 0, wr = 0;

	return base && read_blkio(base, &rd, &wr) && (rd || wr);
}

static void container_usage(const char *id, struct usage *u)
{
	struct cgroup_host *h = host_cgroups();
	struct cgroup *cg;
	struct cgroup_stats st;
	const char *dir;

	if (!h || cgroup_open(h, id, &cg, NULL) < 0)
		return;
	if (cgroup_stats(cg, &st, NULL) == 0) {
		u->has_cpu = true;
		u->cpu_s = (double)st.cpu_usage_ns / 1e9;
		u->has_mem = cgroup_path(cg, "memory") != NULL;
		u->mem = st.memory_bytes;
	}
	dir = cgroup_path(cg, "blkio");
	if (dir && read_io_stat(dir, &u->rd, &u->wr))
		u->has_disk = true;
	else if (dir && blkio_accounts(h) && read_blkio(dir, &u->rd, &u->wr))
		u->has_disk = true;
	else if ((dir = cgroup_path(cg, "unified")) && read_io_stat(dir, &u->rd, &u->wr))
		u->has_disk = true;
	cgroup_close(cg);
}

/* A microVM is one process: its CPU time and resident memory. */
static void process_usage(pid_t pid, struct usage *u)
{
	char path[64], buf[4096], *p;
	unsigned long long ut, stime, rss;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_text(path, buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
		return;
	/* After "(comm)": state, then fields 4.. ; utime and stime are 14 and 15. */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stime) ==
		2 &&
	    tck > 0) {
		u->has_cpu = true;
		u->cpu_s = (double)(ut + stime) / (double)tck;
	}
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	if (read_text(path, buf, sizeof(buf)) == 0 && sscanf(buf, "%*u %llu", &rss) == 1 &&
	    page > 0) {
		u->has_mem = true;
		u->mem = (uint64_t)rss * (uint64_t)page;
	}
}

static bool has_process(const struct st_instance *in)
{
	return !strcmp(in->state, "running") || !strcmp(in->state, "stopping") ||
	       !strcmp(in->state, "starting") || !strcmp(in->state, "paused");
}

/* A running microVM's metrics from its VMM (exits, vCPU time); none when it does not answer. */
static void vmm_usage(const struct yund *y, const struct st_instance *in, struct usage *u)
{
	struct yun_err err = {0};
	char sock[PATH_MAX];

	if ((strcmp(in->state, "running") && strcmp(in->state, "paused")) ||
	    !instance_api_sock(y, in->m.id, sock, sizeof(sock)))
		return;
	if (vmmapi_call(sock, in->m.name, "GET", "/metrics", NULL, &u->vmm, &err) < 0)
		yun_debug("metrics: %s", err.msg);
}

static void instance_usage(const struct yund *y, const struct st_instance *in, struct usage *u)
{
	char link[YN_IFNAME_MAX];

	memset(u, 0, sizeof(*u));
	if (!has_process(in))
		return;
	if (!strcmp(in->type, "container")) {
		container_usage(in->m.id, u);
	} else if (in->pid > 0) {
		process_usage((pid_t)in->pid, u);
		vmm_usage(y, in, u);
	}
	if (in->network_id[0] && yn_port_counters(in->m.id, &u->net, link, NULL) == 0)
		u->has_net = true;
}

/* ---- families ---- */

static const char *const states[] = {"creating", "starting", "running",	 "paused",
				     "stopping", "stopped",  "deleting", "failed"};

enum fam {
	F_STATE,
	F_VCPUS,
	F_MEMLIMIT,
	F_CPU,
	F_MEM,
	F_RXB,
	F_TXB,
	F_RXP,
	F_TXP,
	F_RD,
	F_WR,
	F_EXITS,
	F_VCPU_S,
	F_N
};

static const struct {
	const char *name, *type, *help;
} fams[F_N] = {
    [F_STATE] = {"yun_instance_state", "gauge",
		 "1 for the instance's current state, 0 for the others."},
    [F_VCPUS] = {"yun_instance_vcpus", "gauge", "vCPUs the instance was given."},
    [F_MEMLIMIT] = {"yun_instance_memory_limit_bytes", "gauge", "Memory the instance was given."},
    [F_CPU] = {"yun_instance_cpu_seconds_total", "counter",
	       "CPU time used by the instance (container: its cgroup; microVM: its process)."},
    [F_MEM] = {"yun_instance_memory_bytes", "gauge",
	       "Memory the instance uses now (container: its cgroup's usage; microVM: RSS)."},
    [F_RXB] = {"yun_instance_network_receive_bytes_total", "counter",
	       "Bytes the instance received on its network port."},
    [F_TXB] = {"yun_instance_network_transmit_bytes_total", "counter",
	       "Bytes the instance sent on its network port."},
    [F_RXP] = {"yun_instance_network_receive_packets_total", "counter",
	       "Packets the instance received on its network port."},
    [F_TXP] = {"yun_instance_network_transmit_packets_total", "counter",
	       "Packets the instance sent on its network port."},
    [F_RD] = {"yun_instance_disk_read_bytes_total", "counter",
	      "Bytes the instance read from block devices (its cgroup's io accounting)."},
    [F_WR] = {"yun_instance_disk_write_bytes_total", "counter",
	      "Bytes the instance wrote to block devices (its cgroup's io accounting)."},
    [F_EXITS] = {"yun_instance_vm_exits_total", "counter",
		 "microVM: KVM exits of all its vCPUs by reason (yun-vmm's GET /metrics)."},
    [F_VCPU_S] = {"yun_instance_vcpu_seconds_total", "counter",
		  "microVM: CPU time of its vCPU threads, all added (yun-vmm's GET /metrics)."},
};

/* yun_instance_vm_exits_total{reason} from the VMM's "exits" object. */
static void write_exits(FILE *f, const char *name, struct prom_label *l, json_t *vmm)
{
	json_t *exits = json_object_get(vmm, "exits"), *v;
	const char *reason;

	json_object_foreach(exits, reason, v)
	{
		if (!json_is_integer(v))
			continue;
		l[3] = (struct prom_label){"reason", reason};
		prom_sample(f, name, l, 4, (double)json_integer_value(v));
	}
}

static void write_vcpu_seconds(FILE *f, const char *name, struct prom_label *l, json_t *vmm)
{
	json_t *vcpus = json_object_get(vmm, "vcpus"), *c;
	double ns = 0;
	size_t k;

	if (!json_is_array(vcpus))
		return;
	json_array_foreach(vcpus, k, c)
	{
		ns += (double)json_integer_value(json_object_get(c, "cpu_time_ns"));
	}
	prom_sample(f, name, l, 3, ns / 1e9);
}

static void write_instances(FILE *f, const struct yund *y, const struct st_instance *v, size_t n)
{
	struct usage *u = calloc(n ? n : 1, sizeof(*u));

	if (!u)
		return;
	for (size_t i = 0; i < n; i++)
		instance_usage(y, &v[i], &u[i]);
	/* The text format wants each family's samples together: one pass per family. */
	for (int fam = 0; fam < F_N; fam++) {
		prom_family(f, fams[fam].name, fams[fam].type, fams[fam].help);
		for (size_t i = 0; i < n; i++) {
			const struct st_instance *in = &v[i];
			struct prom_label l[4] = {{"id", in->m.id},
						  {"name", in->m.name},
						  {"type", in->type},
						  {NULL, NULL}};
			const struct usage *x = &u[i];
			const char *name = fams[fam].name;

			switch (fam) {
			case F_STATE:
				for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
					l[3] = (struct prom_label){"state", states[s]};
					prom_sample(f, name, l, 4, !strcmp(in->state, states[s]));
				}
				break;
			case F_VCPUS:
				prom_sample(f, name, l, 3, (double)in->vcpus);
				break;
			case F_MEMLIMIT:
				prom_sample(f, name, l, 3, (double)in->memory_mib * 1048576.0);
				break;
			case F_CPU:
				if (x->has_cpu)
					prom_sample(f, name, l, 3, x->cpu_s);
				break;
			case F_MEM:
				if (x->has_mem)
					prom_sample(f, name, l, 3, (double)x->mem);
				break;
			/* The host side's tx is what the instance received. */
			case F_RXB:
				if (x->has_net)
					prom_sample(f, name, l, 3, (double)x->net.tx_bytes);
				break;
			case F_TXB:
				if (x->has_net)
					prom_sample(f, name, l, 3, (double)x->net.rx_bytes);
				break;
			case F_RXP:
				if (x->has_net)
					prom_sample(f, name, l, 3, (double)x->net.tx_packets);
				break;
			case F_TXP:
				if (x->has_net)
					prom_sample(f, name, l, 3, (double)x->net.rx_packets);
				break;
			case F_RD:
				if (x->has_disk)
					prom_sample(f, name, l, 3, (double)x->rd);
				break;
			case F_WR:
				if (x->has_disk)
					prom_sample(f, name, l, 3, (double)x->wr);
				break;
			case F_EXITS:
				write_exits(f, name, l, x->vmm);
				break;
			case F_VCPU_S:
				write_vcpu_seconds(f, name, l, x->vmm);
				break;
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		json_decref(u[i].vmm);
	free(u);
}

/* ---- the host ---- */

static void write_host_usage(FILE *f, const char *host_id)
{
	static const char *const modes[] = {"user",   "nice", "system",	 "idle",
					    "iowait", "irq",  "softirq", "steal"};
	char buf[8192];
	unsigned long long t[8] = {0};
	long tck = sysconf(_SC_CLK_TCK);
	struct prom_label l[2] = {{"host", host_id}, {"mode", NULL}};

	prom_family(f, "yun_host_cpu_seconds_total", "counter",
		    "CPU time of the whole host by mode, all CPUs added (/proc/stat).");
	if (read_text("/proc/stat", buf, sizeof(buf)) == 0 && tck > 0 &&
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &t[0], &t[1], &t[2], &t[3],
		   &t[4], &t[5], &t[6], &t[7]) == 8) {
		for (int i = 0; i < 8; i++) {
			l[1].value = modes[i];
			prom_sample(f, "yun_host_cpu_seconds_total", l, 2,
				    (double)t[i] / (double)tck);
		}
	}
	if (read_text("/proc/meminfo", buf, sizeof(buf)) == 0) {
		const char *p = strstr(buf, "MemTotal:"), *q = strstr(buf, "MemAvailable:");
		unsigned long long total, avail;

		if (p && q && sscanf(p, "MemTotal: %llu", &total) == 1 &&
		    sscanf(q, "MemAvailable: %llu", &avail) == 1) {
			prom_family(f, "yun_host_memory_total_bytes", "gauge",
				    "The host's RAM (/proc/meminfo MemTotal).");
			prom_sample(f, "yun_host_memory_total_bytes", l, 1, (double)total * 1024);
			prom_family(f, "yun_host_memory_available_bytes", "gauge",
				    "RAM available for new work (/proc/meminfo MemAvailable).");
			prom_sample(f, "yun_host_memory_available_bytes", l, 1,
				    (double)avail * 1024);
			prom_family(f, "yun_host_memory_used_bytes", "gauge",
				    "RAM in use: MemTotal - MemAvailable.");
			prom_sample(f, "yun_host_memory_used_bytes", l, 1,
				    (double)(total > avail ? total - avail : 0) * 1024);
		}
	}
}

static void write_hosts(FILE *f, struct store *s, const struct st_host *h, size_t n,
			const char *self)
{
	static const struct {
		const char *name, *type, *help;
	} hf[] = {
	    {"yun_host_vcpus", "gauge", "The host's CPUs (capacity before over-commit)."},
	    {"yun_host_memory_bytes", "gauge", "The host's memory (capacity before over-commit)."},
	    {"yun_host_cpu_overcommit_ratio", "gauge", "vCPUs admitted per host CPU."},
	    {"yun_host_memory_overcommit_ratio", "gauge", "Memory admitted per byte of RAM."},
	    {"yun_host_allocated_vcpus", "gauge", "vCPUs of the instances on the host."},
	    {"yun_host_allocated_memory_bytes", "gauge", "Memory of the instances on the host."},
	    {"yun_host_instances", "gauge", "Instances on the host (any state)."},
	};
	struct st_alloc *a = calloc(n ? n : 1, sizeof(*a));

	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		s->ops->host_allocated(s, h[i].m.id, &a[i], NULL);
	for (size_t k = 0; k < sizeof(hf) / sizeof(hf[0]); k++) {
		prom_family(f, hf[k].name, hf[k].type, hf[k].help);
		for (size_t i = 0; i < n; i++) {
			struct prom_label l[] = {{"host", h[i].m.id}, {"hostname", h[i].hostname}};
			double v[] = {(double)h[i].vcpus,    (double)h[i].memory_mib * 1048576.0,
				      h[i].cpu_overcommit,   h[i].memory_overcommit,
				      (double)a[i].vcpus,    (double)a[i].memory_mib * 1048576.0,
				      (double)a[i].instances};

			prom_sample(f, hf[k].name, l, 2, v[k]);
		}
	}
	free(a);
	write_host_usage(f, self);
}

void v1_metrics(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_instance *inst = NULL;
	struct st_host *hosts = NULL;
	size_t ni = 0, nh = 0, len = 0;
	char *text = NULL;
	FILE *f;

	if (s->ops->instance_list(s, &inst, &ni, &err) < 0 ||
	    s->ops->host_list(s, &hosts, &nh, &err) < 0) {
		st_instances_free(inst, ni);
		api_reply_err(rep, &err);
		return;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		st_instances_free(inst, ni);
		free(hosts);
		api_reply_error(rep, 500, "out of memory");
		return;
	}
	write_instances(f, req->y, inst, ni);
	write_hosts(f, s, hosts, nh, req->y->host_id);
	apistats_write(f);
	if (fclose(f) != 0 || !text) {
		free(text);
		api_reply_error(rep, 500, "out of memory");
	} else {
		rep->status = 200;
		rep->text = text;
		rep->text_len = len;
		rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
	}
	st_instances_free(inst, ni);
	free(hosts);
}
