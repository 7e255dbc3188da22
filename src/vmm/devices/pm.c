/* pm.c - see pm.h. */
#include "pm.h"

#include <errno.h>
#include <string.h>

#include "../layout.h"

_Static_assert(PORT_PM_SLEEP_STS == PORT_PM_SLEEP_CTL + 1 &&
		       PORT_PM_RESET == PORT_PM_SLEEP_CTL + 2,
	       "pm_io expects the three PM registers on consecutive ports");

#define PM_REG_SLEEP_CTL (PORT_PM_SLEEP_CTL - PORT_PM_SLEEP_CTL)
#define PM_REG_SLEEP_STS (PORT_PM_SLEEP_STS - PORT_PM_SLEEP_CTL)
#define PM_REG_RESET     (PORT_PM_RESET - PORT_PM_SLEEP_CTL)

#define SLP_TYP(v) (((v) >> 2) & 7)

void pm_init(struct pm *pm, const struct vm_stopper *stop)
{
	memset(pm, 0, sizeof(*pm));
	if (stop)
		pm->stop = *stop;
}

static void reg_write(struct pm *pm, uint64_t reg, uint8_t val)
{
	switch (reg) {
	case PM_REG_SLEEP_CTL:
		if ((val & PM_SLP_EN) && SLP_TYP(val) == PM_SLP_TYP_S5)
			vm_stop_request(&pm->stop, VM_STOP_POWEROFF, 0);
		break;
	case PM_REG_SLEEP_STS:
		break; /* write-1-to-clear: nothing is ever set */
	case PM_REG_RESET:
		if (val == PM_RESET_VALUE)
			vm_stop_request(&pm->stop, VM_STOP_RESET, 0);
		break;
	}
}

void pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pm *pm = opaque;
	uint32_t i;

	/* 8-bit registers: a wider access touches consecutive ones. */
	for (i = 0; i < len; i++) {
		uint64_t reg = offset + i;

		if (!is_write)
			data[i] = reg < PM_NR_PORTS ? 0 : 0xff;
		else if (reg < PM_NR_PORTS)
			reg_write(pm, reg, data[i]);
	}
}

/* ---- snapshot ------------------------------------------------------------- */

void pm_save(const struct pm *pm, struct snap_writer *w)
{
	(void)pm;
	(void)w;
}

int pm_load(struct pm *pm, struct snap_reader *r)
{
	(void)pm;
	return r->failed ? -EINVAL : 0;
}
