/*
 * cases.h - the test cases, one file each. A case prints its "YT" data
 * lines and ends the VM; see tests/guest/README.md for what each proves.
 */
#ifndef YT_CASES_H
#define YT_CASES_H

void case_hello(void);
void case_cmdline(void);
void case_e820(void);
void case_initrd(void);
void case_serial(void);
void case_timer(void);
void case_smp(void);
void case_highmem(void);
void case_poweroff(void);
void case_reset(void);
void case_triplefault(void);
void case_exceptions(void);
void case_rtc(void);
void case_virtio_rng(void);
void case_virtio_blk(void);
void case_virtio_net(void);
void case_virtio_balloon(void);
void case_virtio_vsock(void);
void case_probe(void);
void case_counter(void);
void case_shutdown(void);

/* Reset the machine as case "reset" does (power.c); interrupts_init() ran. */
_Noreturn void machine_reset(void);

/* Where an AP's C code starts (head.S calls it on its own stack). */
void ap_main(void);

#endif
