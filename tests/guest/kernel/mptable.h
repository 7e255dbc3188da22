/* mptable.h - the Intel MultiProcessor Specification 1.4 table. */
#ifndef YT_MPTABLE_H
#define YT_MPTABLE_H

#include "io.h"

/* Fill `platform` from the MP table. False if there is none. */
bool mptable_parse(void);

#endif
