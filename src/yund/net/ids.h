/*
 * ids.h - object ids and the host names derived from them (docs/yund.md).
 *
 * A network id is "net-" + 12 lower-case hex digits, an instance id "i-" +
 * 12 hex digits. Every host resource the network module makes is named
 * after its owner's id, so the daemon can find it again after a crash:
 *
 *   network net-0123456789ab  ->  bridge yb-0123456789ab
 *   instance i-0123456789ab   ->  veth yv-0123456789ab, TAP yt-0123456789ab,
 *                                 netns <run>/netns/i-0123456789ab
 *
 * MAC addresses are derived from ids too (locally administered unicast):
 * an instance gets 02:<last 10 hex digits of its id>, a bridge
 * 06:<last 10 hex digits of its network id>, so the two never collide.
 * Pure logic.
 */
#ifndef YUN_YUND_NET_IDS_H
#define YUN_YUND_NET_IDS_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

#define YN_ID_HEX     12
#define YN_ID_MAX     24 /* "net-" + 12 hex + NUL, with room */
#define YN_IFNAME_MAX 16 /* IFNAMSIZ */
#define YN_MAC_STRLEN 18

enum yn_id_kind { YN_ID_NETWORK, YN_ID_INSTANCE };

/* Which host resource an interface name stands for. */
enum yn_link_role { YN_LINK_OTHER, YN_LINK_BRIDGE, YN_LINK_VETH, YN_LINK_TAP };

/* 0 when `id` is a well-formed id of that kind; else -EINVAL naming it. */
int yn_id_check(enum yn_id_kind kind, const char *id, struct yun_err *err);

/* "yb-"/"yv-"/"yt-" + the id's hex digits; the id must be valid (-EINVAL). */
int yn_bridge_name(const char *net_id, char name[YN_IFNAME_MAX], struct yun_err *err);
int yn_veth_name(const char *instance_id, char name[YN_IFNAME_MAX], struct yun_err *err);
int yn_tap_name(const char *instance_id, char name[YN_IFNAME_MAX], struct yun_err *err);

/*
 * The reverse: what `ifname` is and whose it is. Returns YN_LINK_OTHER for
 * names that are not exactly yb-/yv-/yt- + 12 lower-case hex digits;
 * otherwise fills `owner_id` ("net-..." for bridges, "i-..." for the rest).
 */
enum yn_link_role yn_link_role_of(const char *ifname, char owner_id[YN_ID_MAX]);

/* MAC addresses derived from ids (see above); the id must be valid. */
int yn_mac_for_instance(const char *instance_id, uint8_t mac[6], struct yun_err *err);
int yn_mac_for_bridge(const char *net_id, uint8_t mac[6], struct yun_err *err);

/* "02:23:45:67:89:ab" (lower case). */
char *yn_mac_format(const uint8_t mac[6], char buf[YN_MAC_STRLEN]);

/*
 * Parse "aa:bb:cc:dd:ee:ff" (either case). Refuses multicast addresses and
 * all-zero, which no instance may have.
 */
int yn_mac_parse(const char *s, uint8_t mac[6], struct yun_err *err);

#endif
