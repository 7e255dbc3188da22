/* caps.c - see caps.h. Uses libcap for the sets, prctl for bounding and ambient. */
#include "caps.h"

#include <errno.h>
#include <sys/capability.h>
#include <sys/prctl.h>

static const cap_value_t default_caps[] = {
    CAP_CHOWN,	 CAP_DAC_OVERRIDE, CAP_FSETID,		 CAP_FOWNER,
    CAP_MKNOD,	 CAP_NET_RAW,	   CAP_SETGID,		 CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP,	   CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_KILL,	 CAP_AUDIT_WRITE,
};

#define N_DEFAULT_CAPS ((int)(sizeof(default_caps) / sizeof(default_caps[0])))

bool ct_caps_in_default(int cap)
{
	for (int i = 0; i < N_DEFAULT_CAPS; i++)
		if (default_caps[i] == cap)
			return true;
	return false;
}

int ct_caps_drop_to_default(struct yun_err *err)
{
	/* The running kernel may know more capabilities than these headers. */
	int last = (int)cap_max_bits() - 1;
	cap_t caps;
	int rc = 0;

	for (int c = 0; c <= last; c++) {
		if (ct_caps_in_default(c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return yun_err_errno(err, errno,
					     "capabilities: drop %d from the bounding set", c);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return yun_err_errno(err, errno, "capabilities: clear the ambient set");
	caps = cap_init(); /* all sets empty */
	if (!caps)
		return yun_err_errno(err, errno, "capabilities: cap_init");
	if (cap_set_flag(caps, CAP_EFFECTIVE, N_DEFAULT_CAPS, default_caps, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_PERMITTED, N_DEFAULT_CAPS, default_caps, CAP_SET) < 0)
		rc = yun_err_errno(err, errno, "capabilities: build the set");
	else if (cap_set_proc(caps) < 0)
		rc = yun_err_errno(err, errno, "capabilities: set");
	cap_free(caps);
	return rc;
}
