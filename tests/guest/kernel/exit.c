/* exit.c - the end of every case. */
#include "exit.h"
#include "acpi.h"
#include "console.h"

_Noreturn void debug_exit(u8 value)
{
	static bool exiting;
	struct acpi_s5 m;
	const char *why;

	outb(DEBUG_EXIT_PORT, value);
	/* Still here: no debug-exit device. Once only (a fault may bring us back). */
	if (!exiting) {
		exiting = true;
		if (acpi_s5_method(&m, &why)) {
			yt_printf("YT NOTE no debug-exit device: powering off\n");
			acpi_s5_enter(&m);
		}
	}
	for (;;)
		__asm__ volatile("cli; hlt");
}
