/*
 * paging.h - the boot page tables (head.S) identity-map 0..4 GiB; this
 * extends the identity map with 2 MiB pages for RAM above 4 GiB.
 */
#ifndef YT_PAGING_H
#define YT_PAGING_H

#include "io.h"

/* Identity-map [base, base + len). False if out of page-table pages. */
bool paging_map_identity(u64 base, u64 len);

#endif
