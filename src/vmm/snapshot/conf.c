/* conf.c - see conf.h. */
#include "conf.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/str.h"
#include "../virtio/net.h"

#define SNAP_CONF_MAX (1u << 20)

int snap_conf_save(struct snap_writer *w, const struct vmm_config *cfg, struct yun_err *err)
{
	json_t *o = config_to_json(cfg);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(o);
	if (!text)
		return yun_err_set(err, ENOMEM, "saving the configuration: out of memory");
	snap_begin(w, "CONF", SNAP_CONF_VERSION);
	snap_put_str(w, text);
	snap_end(w);
	free(text);
	return snap_writer_error(w, err);
}

/* Give the restored configuration the identity the clone asked for. */
static int apply_opts(struct vmm_config *cfg, const struct vm_restore_opts *o,
		      struct yun_err *err)
{
	if ((o->vsock_cid || o->vsock_socket) && !cfg->vsock)
		return yun_err_set(err, EINVAL, "the snapshot has no vsock device to give a new "
				   "CID or socket");
	if (o->vsock_cid)
		cfg->vsock_cid = o->vsock_cid;
	if (o->vsock_socket && yun_str_set(&cfg->vsock_socket, o->vsock_socket, err))
		return -ENOMEM;
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		struct vmm_net *n = &cfg->nets[i];

		uint8_t mac[6];

		if ((o->tap[i] || o->mac[i]) && i >= cfg->nr_nets)
			return yun_err_set(err, EINVAL, "the snapshot has no network card %u", i);
		if (o->tap[i] && yun_str_set(&n->tap, o->tap[i], err))
			return -ENOMEM;
		/* A new MAC is checked here but given once the card's state is in (vm_restore). */
		if (o->mac[i] && strcmp(o->mac[i], "random") && net_parse_mac(o->mac[i], mac) < 0)
			return yun_err_set(err, EINVAL, "mac%u=%s: not a unicast MAC", i, o->mac[i]);
	}
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++) {
		if (o->disk[i] && i >= cfg->nr_disks)
			return yun_err_set(err, EINVAL, "the snapshot has no disk %u", i);
		if (o->disk[i] && yun_str_set(&cfg->disks[i].path, o->disk[i], err))
			return -ENOMEM;
	}
	return 0;
}

int snap_conf_load(struct snap_reader *r, struct vmm_config *cfg,
		   const struct vm_restore_opts *opts, struct yun_err *err)
{
	struct snap_reader s;
	char *text = NULL;
	int rc;

	if (snap_section(r, "CONF", SNAP_CONF_VERSION, NULL, &s))
		return snap_reader_done(&s, err);
	snap_get_str(&s, &text, SNAP_CONF_MAX);
	if (!s.failed && !text)
		snap_reader_fail(&s, "no configuration");
	rc = snap_reader_done(&s, err);
	if (!rc)
		rc = config_parse_json(cfg, text, "saved", err);
	free(text);
	if (!rc)
		rc = apply_opts(cfg, opts, err);
	if (!rc)
		rc = config_validate(cfg, err);
	return rc;
}
