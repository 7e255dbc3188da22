/*
 * main.c - the guest's C entry: normalise the boot information, install
 * the IDT, and run the case named by "yuntest=<case>" on the command line.
 * Every case ends the VM itself (debug-exit, power-off, reset, ...).
 */
#include "boot.h"
#include "console.h"
#include "lib.h"
#include "serial.h"
#include "trap.h"
#include "../cases/cases.h"

struct test_case {
	const char *name;
	void (*run)(void);
};

static const struct test_case cases[] = {
    {.name = "hello", .run = case_hello},
    {.name = "cmdline", .run = case_cmdline},
    {.name = "e820", .run = case_e820},
    {.name = "initrd", .run = case_initrd},
    {.name = "serial", .run = case_serial},
    {.name = "timer", .run = case_timer},
    {.name = "smp", .run = case_smp},
    {.name = "highmem", .run = case_highmem},
    {.name = "exceptions", .run = case_exceptions},
    {.name = "poweroff", .run = case_poweroff},
    {.name = "reset", .run = case_reset},
    {.name = "triplefault", .run = case_triplefault},
    {.name = "rtc", .run = case_rtc},
    {.name = "virtio-rng", .run = case_virtio_rng},
    {.name = "virtio-blk", .run = case_virtio_blk},
    {.name = "virtio-net", .run = case_virtio_net},
    {.name = "virtio-balloon", .run = case_virtio_balloon},
    {.name = "virtio-vsock", .run = case_virtio_vsock},
    {.name = "probe", .run = case_probe},
    {.name = "counter", .run = case_counter},
    {.name = "shutdown", .run = case_shutdown},
};

void kmain(u32 kind, u64 info);
void kmain(u32 kind, u64 info)
{
	static char name[32];
	size_t len;

	serial_init();
	trap_init();
	boot_info_init(kind, info);

	const char *v = cmdline_get("yuntest", &len);
	if (v && len < sizeof(name)) {
		memcpy(name, v, len);
		name[len] = '\0';
		yt_case = name;
	}
	yt_printf("YT BOOT entry=%s info=0x%lx loader=0x%x\n", boot.entry,
		  (unsigned long)boot.info_addr, boot.loader_type);
	if (!v)
		yt_fail("no yuntest=<case> on the command line");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (!strcmp(cases[i].name, name)) {
			cases[i].run();
			yt_fail("case returned without a verdict");
		}
	}
	yt_fail("unknown case");
}
