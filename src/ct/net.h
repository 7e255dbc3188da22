/*
 * net.h - the container's network devices, over rtnetlink (libmnl).
 *
 * --net veth=HOSTIF: the supervisor creates a veth pair whose host end is
 * HOSTIF and whose peer is created directly inside the container's network
 * namespace as eth0; the container's first process brings lo and eth0 up
 * in its namespace. The pair disappears with the namespace; the supervisor
 * deletes HOSTIF anyway when the container ends, in case something kept
 * the namespace alive.
 */
#ifndef YUN_CT_NET_H
#define YUN_CT_NET_H

#include <stdbool.h>
#include <sys/types.h>

#include "../lib/err.h"

/* Create HOSTIF <-> peer, the peer inside the network namespace of `pid`. */
int ct_net_veth_create(const char *host_if, const char *peer_if, pid_t peer_ns_pid,
		       struct yun_err *err);

/* Set link `name` up in the caller's network namespace. */
int ct_net_link_up(const char *name, struct yun_err *err);

/* Delete link `name` in the caller's namespace; a missing link is not an error. */
int ct_net_link_delete(const char *name, struct yun_err *err);

/* True when the caller's namespace has a link called `name`. */
bool ct_net_link_exists(const char *name);

#endif
