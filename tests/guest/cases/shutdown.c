/*
 * shutdown.c - case "shutdown": the host's graceful shutdown, Ctrl+Alt+Del
 * typed on the PS/2 keyboard (QEMU: QMP send-key; yun-vmm: the control
 * API's PUT /actions {"action_type": "SendCtrlAltDel"}).
 *
 * The guest enables the i8042 keyboard and its interrupt (ISA IRQ1 through
 * the IOAPIC, as the serial case routes IRQ4), prints "YT READY" and halts
 * until keyboard bytes arrive. It decodes make and break codes of scancode
 * set 1 (what the controller hands over with translation on) and set 2
 * (translation off): once Ctrl and Alt are down and Del goes down it prints
 * "YT CAD set=<1|2> bytes=<what came>" and resets the machine as Linux does
 * on ctrl_alt_del (machine_reset: i8042 0xFE, then the FADT reset
 * register), so the VMM exits 0. "yt.kbd=xlate" turns translation on
 * first (QEMU's controller starts without it, yun-vmm's with it).
 */
#include "cases.h"
#include "../kernel/apic.h"
#include "../kernel/boot.h"
#include "../kernel/console.h"
#include "../kernel/trap.h"

#define KBD_DATA   0x60
#define KBD_STATUS 0x64 /* read: status; write: controller command */
#define STS_OBF	   0x01
#define STS_IBF	   0x02
#define STS_AUX	   0x20
#define CTR_KBDINT 0x01
#define CTR_KBDDIS 0x10
#define CTR_XLATE  0x40
#define KBD_IRQ	   1
#define VEC_KBD	   0x35
#define MAX_BYTES  32

/* Make codes: set 1, set 2. Del is an extended (0xE0) key in both. */
#define S1_CTRL 0x1d
#define S1_ALT	0x38
#define S1_DEL	0x53
#define S2_CTRL 0x14
#define S2_ALT	0x11
#define S2_DEL	0x71

static volatile u8 bytes[MAX_BYTES];
static volatile u32 nr_bytes, kbd_irqs;
static volatile bool ctrl, alt, cad;
static volatile int cad_set;
static bool ext, brk; /* 0xE0 / set 2's 0xF0 seen: the next byte is extended / a break */

static void decode(u8 b)
{
	bool up;
	u8 code;

	if (nr_bytes < MAX_BYTES)
		bytes[nr_bytes] = b;
	nr_bytes++;
	if (b == 0xe0) {
		ext = true;
		return;
	}
	if (b == 0xf0) {
		brk = true;
		return;
	}
	/* Set 1 breaks are the make code | 0x80; set 2's keys here are all below 0x80. */
	up = brk || (b & 0x80);
	code = b & 0x7f;
	if (code == S1_CTRL || code == S2_CTRL)
		ctrl = !up;
	else if (code == S1_ALT || code == S2_ALT)
		alt = !up;
	else if (ext && !up && (code == S1_DEL || code == S2_DEL) && ctrl && alt && !cad) {
		cad = true;
		cad_set = code == S1_DEL ? 1 : 2;
	}
	ext = brk = false;
}

static void kbd_irq(struct trap_frame *f)
{
	(void)f;
	kbd_irqs++;
	for (unsigned guard = 0; guard < 64; guard++) {
		u8 st = inb(KBD_STATUS);

		if (!(st & STS_OBF))
			break;
		u8 b = inb(KBD_DATA);
		if (!(st & STS_AUX))
			decode(b);
	}
	lapic_eoi();
}

static bool cad_seen(void *arg)
{
	(void)arg;
	return cad;
}

static void wait_ibf_clear(void)
{
	for (unsigned i = 0; i < 10000 && (inb(KBD_STATUS) & STS_IBF); i++)
		;
}

static u8 ctrl_read(u8 cmd)
{
	wait_ibf_clear();
	outb(KBD_STATUS, cmd);
	for (unsigned i = 0; i < 10000; i++)
		if (inb(KBD_STATUS) & STS_OBF)
			return inb(KBD_DATA);
	yt_fail("i8042: no answer to command 0x%x", cmd);
}

void case_shutdown(void)
{
	const char *how;
	char list[MAX_BYTES * 3 + 1];
	u8 ctr;
	int gsi;

	interrupts_init();
	if (inb(KBD_STATUS) == 0xff)
		yt_fail("no i8042 at port 0x64 (status reads 0xff)");
	for (unsigned i = 0; i < 32 && (inb(KBD_STATUS) & STS_OBF); i++)
		inb(KBD_DATA); /* stale bytes */
	/* Keyboard interface and its interrupt on; translation as the controller has it. */
	ctr = ctrl_read(0x20);
	ctr = (u8)((ctr | CTR_KBDINT) & ~CTR_KBDDIS);
	if (cmdline_is("yt.kbd", "xlate"))
		ctr |= CTR_XLATE; /* set 1 from the controller whatever the firmware left */
	wait_ibf_clear();
	outb(KBD_STATUS, 0x60);
	wait_ibf_clear();
	outb(KBD_DATA, ctr);
	wait_ibf_clear();
	outb(KBD_STATUS, 0xae);

	trap_set_handler(VEC_KBD, kbd_irq);
	gsi = ioapic_route_isa_irq(KBD_IRQ, VEC_KBD, &how);
	yt_printf("YT KBD_GSI %d %s ctr=0x%x xlate=%d\n", gsi, how, ctr, !!(ctr & CTR_XLATE));
	clock_start();
	yt_printf("YT READY\n");

	if (!wait_until(cad_seen, NULL, 30000))
		yt_fail("no Ctrl+Alt+Del within 30 s (%u bytes, %u IRQ1 interrupts)", nr_bytes,
			kbd_irqs);
	u32 n = nr_bytes < MAX_BYTES ? nr_bytes : MAX_BYTES;
	u32 at = 0;
	for (u32 i = 0; i < n; i++)
		at += (u32)yt_snprintf(list + at, sizeof(list) - at, "%s%02x", i ? "," : "",
				       bytes[i]);
	list[at] = 0;
	yt_printf("YT CAD set=%d irqs=%u bytes=%s\n", cad_set, kbd_irqs, list);
	machine_reset();
}
