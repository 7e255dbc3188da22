/*
 * acpi_iasl_test.c - yun-vmm's ACPI tables read by ACPICA, the reference
 * implementation: `iasl` from Debian's acpica-tools.
 *
 * The tables are built as the loader builds them for a VM with 2 vCPUs,
 * 6 GiB of RAM and 8 PCI devices, found the way a guest finds them (RSDP,
 * XSDT, FADT -> DSDT) and each but the RSDP written to <dir>/<sig>.dat:
 *   - `iasl -d` disassembles every table with exit status 0 and no error
 *     or warning in its output;
 *   - the DSDT's disassembly has the PNP0A08 host bridge and a _PRT of
 *     4 entries per device (0x20), each slot's four pins on its GSI;
 *   - `iasl` compiles that disassembly back to AML byte-identical to ours
 *     (after the header, whose compiler id and checksum differ): iasl
 *     encodes what it understood exactly as we did.
 *
 * Prints a SKIP line and exits 77 (meson: skipped) when iasl is missing.
 * `acpi_iasl_test DIR` leaves the tables, the .dsl files and iasl's logs
 * in DIR; without an argument they go to a temporary directory, removed
 * afterwards.
 */
#include "vmm/boot/acpi.h"
#include "vmm/boot/mptable.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define NR_DEVICES 8
#define MAX_TABLES 8

static char dir[256];

static uint32_t rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static bool iasl_installed(void)
{
	const char *path = getenv("PATH");
	char buf[4096], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char exe[4352];

		snprintf(exe, sizeof(exe), "%s/iasl", d);
		if (access(exe, X_OK) == 0)
			return true;
	}
	return false;
}

/* Run iasl with args in dir, its stdout and stderr to dir/log; its exit status or -1. */
static int run_iasl(const char *log, const char *a1, const char *a2, const char *a3)
{
	char log_path[512];
	int status;
	pid_t pid;

	snprintf(log_path, sizeof(log_path), "%s/%s", dir, log);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0 || chdir(dir) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execlp("iasl", "iasl", a1, a2, a3, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* The whole of dir/name, NUL-terminated (free it), or NULL. */
static char *slurp(const char *name, size_t *len_out)
{
	char path[512];
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1))) {
		while (len < (size_t)st.st_size) {
			ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

			if (n <= 0)
				break;
			len += (size_t)n;
		}
		buf[len] = 0;
	}
	close(fd);
	if (len_out)
		*len_out = len;
	return buf;
}

static bool spit(const char *name, const void *data, size_t len)
{
	char path[512];
	bool ok;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return false;
	ok = write(fd, data, len) == (ssize_t)len;
	return close(fd) == 0 && ok;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/*
 * Run iasl; its verdict: exit status 0, nothing it calls an error or a
 * warning. The compiler's summary line ("0 Errors, 1 Warnings, ...") is
 * checked by its counts; warning_ok names the one warning id accepted.
 */
static void iasl(const char *log, const char *a1, const char *a2, const char *a3,
		 const char *warning_ok)
{
	int rc = run_iasl(log, a1, a2, a3);
	char *text = slurp(log, NULL);
	unsigned errors = 0, warnings = 0, bad = 0;

	CHECK_EQ(rc, 0);
	CHECK(text != NULL);
	if (!text)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "Compilation successful. %u Errors, %u Warnings", &errors,
			   &warnings) == 2) {
			bad += errors + (warnings > (warning_ok ? 1u : 0u));
			continue;
		}
		if (warning_ok && !strncmp(line, "Warning  ", 9) && strstr(line, warning_ok))
			continue;
		if (strcasestr(line, "error") || strcasestr(line, "warning")) {
			fprintf(stderr, "%s/%s: %s\n", dir, log, line);
			bad++;
		}
	}
	CHECK_EQ(bad, 0);
	free(text);
}

struct table {
	char sig[5];
	uint64_t gpa;
	const uint8_t *p; /* the whole table, in guest RAM */
	uint32_t len;
};

static void add_table(const struct guest_mem *gm, struct table *t, const char *sig,
		      uint64_t gpa, uint32_t len)
{
	const uint8_t *h = gm_ptr(gm, gpa, 36);

	snprintf(t->sig, sizeof(t->sig), "%s", sig);
	t->gpa = gpa;
	t->len = len ? len : (h ? rd32(h + 4) : 0);
	t->p = h ? gm_ptr(gm, gpa, t->len) : NULL;
	CHECK(t->p != NULL);
}

/*
 * The tables a guest reaches from the RSDP (not the RSDP itself: iasl -d
 * takes only tables with the standard header; acpi_test checks it).
 */
static unsigned find_tables(const struct guest_mem *gm, uint64_t rsdp_gpa, struct table *t)
{
	const uint8_t *rsdp = gm_ptr(gm, rsdp_gpa, 36);
	unsigned n = 0;

	CHECK(rsdp != NULL);
	if (!rsdp)
		return 0;
	add_table(gm, &t[n++], "RSDT", rd32(rsdp + 16), 0);
	add_table(gm, &t[n++], "XSDT", rd64(rsdp + 24), 0);
	if (!t[1].p)
		return n;
	for (unsigned i = 0; 36 + 8 * i < t[1].len && n < MAX_TABLES - 1; i++) {
		uint64_t gpa = rd64(t[1].p + 36 + 8 * i);
		const uint8_t *h = gm_ptr(gm, gpa, 36);
		char sig[5] = { 0 };

		CHECK(h != NULL);
		if (!h)
			continue;
		memcpy(sig, h, 4);
		add_table(gm, &t[n++], sig, gpa, 0);
		if (!strcmp(sig, "FACP") && t[n - 1].p)
			add_table(gm, &t[n++], "DSDT", rd64(h + 140), 0);
	}
	return n;
}

static void check_dsdt_dsl(void)
{
	char *dsl = slurp("dsdt.dsl", NULL);
	char want[64];

	CHECK(dsl != NULL);
	if (!dsl)
		return;
	CHECK(strstr(dsl, "Device (PCI0)") != NULL);
	CHECK(strstr(dsl, "Name (_HID, EisaId (\"PNP0A08\")") != NULL);
	CHECK(strstr(dsl, "Name (_CID, EisaId (\"PNP0A03\")") != NULL);
	snprintf(want, sizeof(want), "Name (_PRT, Package (0x%02X)", 4 * NR_DEVICES);
	CHECK(strstr(dsl, want) != NULL);
	/* Every Package (0x04) in the DSDT is a _PRT entry; the _S5_ package has 2. */
	CHECK_EQ(count(dsl, "Package (0x04)"), 4 * NR_DEVICES);
	for (unsigned slot = 1; slot <= NR_DEVICES; slot++) {
		snprintf(want, sizeof(want), "0x%04XFFFF", slot);
		CHECK_EQ(count(dsl, want), 4);
	}
	CHECK(strstr(dsl, "WordBusNumber") != NULL);
	CHECK(strstr(dsl, "0x0CF8,             // Range Minimum") != NULL);
	CHECK(strstr(dsl, "0xC0000000,         // Range Minimum") != NULL);
	CHECK(strstr(dsl, "0x00000001C0000000, // Range Minimum") != NULL); /* 7 GiB: 6 GiB RAM */
	CHECK(strstr(dsl, "Name (_S5, Package (0x02)") != NULL);
	free(dsl);
}

/* Compile the disassembly back; the AML after the 36-byte header must be ours. */
static void check_round_trip(const struct table *dsdt)
{
	uint8_t *aml;
	size_t len = 0;

	iasl("dsdt-compile.log", "-p", "dsdt-rt", "dsdt.dsl", NULL);
	aml = (uint8_t *)slurp("dsdt-rt.aml", &len);
	CHECK(aml != NULL);
	if (!aml)
		return;
	CHECK_EQ(len, dsdt->len);
	CHECK(len == dsdt->len && !memcmp(aml + 36, dsdt->p + 36, len - 36));
	free(aml);
}

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	struct mptable_pci_irq irqs[NR_DEVICES];
	struct table t[MAX_TABLES];
	struct guest_mem gm;
	struct yun_err err;
	uint64_t rsdp = 0;
	unsigned n;

	if (!iasl_installed()) {
		printf("SKIP: iasl not found in PATH (Debian acpica-tools, see scripts/setup)\n");
		return 77;
	}
	if (argc > 1) {
		snprintf(dir, sizeof(dir), "%s", argv[1]);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			perror(dir);
			return 1;
		}
	} else {
		snprintf(dir, sizeof(dir), "%s/yun-acpi-XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(dir)) {
			perror(dir);
			return 1;
		}
	}

	for (unsigned i = 0; i < NR_DEVICES; i++)
		irqs[i] = (struct mptable_pci_irq){ (uint8_t)(i + 1), (uint8_t)(16 + i) };
	CHECK_EQ(gm_init(&gm, 6ULL << 30, &err), 0);
	CHECK_EQ(mptable_build_pci(&gm, 2, irqs, NR_DEVICES, &err), 0);
	CHECK_EQ(acpi_build_pci(&gm, 2, true, irqs, NR_DEVICES, &rsdp, &err), 0);

	n = find_tables(&gm, rsdp, t);
	CHECK_EQ(n, 6); /* RSDT, XSDT, FACP, DSDT, APIC, MCFG */
	for (unsigned i = 0; i < n; i++) {
		char name[16], log[32], dsl[16];
		char *text;

		if (!t[i].p)
			continue;
		for (int c = 0; c < 4; c++)
			t[i].sig[c] = (char)(t[i].sig[c] | 0x20); /* lower case */
		snprintf(name, sizeof(name), "%.4s.dat", t[i].sig);
		snprintf(log, sizeof(log), "%.4s.log", t[i].sig);
		snprintf(dsl, sizeof(dsl), "%.4s.dsl", t[i].sig);
		CHECK(spit(name, t[i].p, t[i].len));
		iasl(log, "-d", name, NULL, NULL);
		text = slurp(dsl, NULL);
		CHECK(text != NULL);
		fprintf(stderr, "iasl -d %s: %u bytes -> %s, %zu bytes\n", name, t[i].len, dsl,
			text ? strlen(text) : 0);
		free(text);
		if (!strcmp(t[i].sig, "dsdt")) {
			check_dsdt_dsl();
			check_round_trip(&t[i]);
		}
	}
	gm_free(&gm);
	if (argc > 1)
		fprintf(stderr, "tables, disassembly and iasl logs in %s\n", dir);
	else
		remove_dir();
	fprintf(stderr, "%s acpi_iasl\n", check_failures ? "FAIL" : "ok  ");
	return CHECK_DONE();
}
