/* host.c - see host.h. */
#include "host.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

static char probed_root[PATH_MAX] = "/";

int host_probe(const char *root, struct st_host *h, struct yun_err *err)
{
	struct statvfs vfs;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	snprintf(probed_root, sizeof(probed_root), "%s", root);
	if (gethostname(h->hostname, sizeof(h->hostname)) < 0)
		return yun_err_errno(err, errno, "hostname");
	h->hostname[sizeof(h->hostname) - 1] = '\0';
	if (cpus <= 0 || pages <= 0 || psize <= 0)
		return yun_err_set(err, EIO,
				   "host: cannot read the number of CPUs or the memory size");
	if (statvfs(root, &vfs) < 0)
		return yun_err_errno(err, errno, "root %s", root);
	h->vcpus = cpus;
	h->memory_mib = (int64_t)pages * psize / (1024 * 1024);
	h->disk_gib = (int64_t)((unsigned long long)vfs.f_blocks * vfs.f_frsize >> 30);
	snprintf(h->state, sizeof(h->state), "up");
	return 0;
}

void host_capacity(const struct st_host *h, struct st_capacity *cap)
{
	cap->vcpus = (int64_t)((double)h->vcpus * h->cpu_overcommit);
	cap->memory_mib = (int64_t)((double)h->memory_mib * h->memory_overcommit);
	cap->cpu_overcommit = h->cpu_overcommit;
	cap->memory_overcommit = h->memory_overcommit;
}

void host_usage(struct host_usage *u)
{
	struct sysinfo si;
	struct statvfs vfs;

	memset(u, 0, sizeof(*u));
	if (sysinfo(&si) == 0) {
		u->load1 = (double)si.loads[0] / (double)(1 << SI_LOAD_SHIFT);
		u->memory_used_mib = (int64_t)((si.totalram - si.freeram - si.bufferram) *
						   (unsigned long long)si.mem_unit >>
					       20);
	}
	if (statvfs(probed_root, &vfs) == 0)
		u->disk_used_gib =
		    (int64_t)((unsigned long long)(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize >>
			      30);
}
