/*
 * cmdline.c - case "cmdline": print the command line exactly as received
 * (non-printables and '\' escaped as \xHH); the harness compares it with
 * what it passed to the VMM.
 */
#include "cases.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"

void case_cmdline(void)
{
	yt_printf("YT CMDLINE_LEN %u\n", boot.cmdline_len);
	if (boot.cmdline_truncated)
		yt_fail("command line longer than %u bytes", CMDLINE_MAX - 1);
	console_lock();
	console_puts("YT CMDLINE ");
	console_put_escaped(boot.cmdline, boot.cmdline_len);
	console_puts("\n");
	console_unlock();
	yt_pass();
}
