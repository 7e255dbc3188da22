/*
 * nft.h - NAT and isolation of Yun networks in the nftables table
 * `inet yun`, through libnftables (the library behind the nft command).
 *
 * One table, two base chains, rules tagged with a comment = network id:
 *
 *   table inet yun {
 *     chain postrouting {           # type nat hook postrouting priority srcnat
 *       ip saddr CIDR oifname != "yb-*" masquerade   comment "NET"
 *     }
 *     chain forward {               # type filter hook forward priority filter
 *       ct state established,related accept        comment "yun"
 *       iifname BR oifname "yb-*" oifname != BR drop  comment "NET"
 *       oifname BR iifname != BR drop                 comment "NET"
 *       iifname BR accept                             comment "NET"
 *     }
 *   }
 *
 * So: instances reach any non-Yun interface (the uplink) masqueraded as
 * the host; two Yun bridges never forward to each other (each network's
 * own drop covers one direction, the other network's the other); nothing
 * outside opens connections into a network (replies pass by conntrack);
 * the host itself still reaches its instances (that is output, not
 * forward). Both chains have policy accept: the table only ever decides
 * about Yun's own traffic, never the host's.
 */
#ifndef YUN_YUND_NET_NFT_H
#define YUN_YUND_NET_NFT_H

#include <stddef.h>

#include "cidr.h"
#include "ids.h"
#include "lib/err.h"

#define YN_NFT_TABLE	    "yun"
#define YN_NFT_BASE_COMMENT "yun"

/*
 * The nft commands adding one network's rules (pure; see the comment
 * above). Returns the length written, or -ENOSPC.
 */
int yn_nft_rules(const char *net_id, const char *bridge, const struct yn_cidr *cidr, char *buf,
		 size_t len);

/*
 * Install the network's rules (creating the table and chains as needed)
 * in one atomic transaction that first drops any stale rules of the same
 * network; a network whose rules are all there is left untouched.
 */
int yn_nft_network_ensure(const char *net_id, const struct yn_cidr *cidr, struct yun_err *err);

/* Delete the network's rules; the table goes with the last network. */
int yn_nft_network_remove(const char *net_id, struct yun_err *err);

/* The network ids that have rules in the table (malloc'd array). */
int yn_nft_networks(char (**ids)[YN_ID_MAX], size_t *n, struct yun_err *err);

/* The table as `nft list table inet yun` prints it ("" when absent); malloc'd. */
int yn_nft_dump(char **text, struct yun_err *err);

#endif
