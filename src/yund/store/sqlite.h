/*
 * sqlite.h - the embedded store: one SQLite database file (store.h).
 *
 * WAL journal, foreign keys on, synchronous=FULL: a commit is on disk
 * (WAL fsync'ed) before the operation returns, so an acknowledged change
 * survives kill -9 and power loss alike (NORMAL would survive kill -9 but
 * could lose the last commits on power loss, and yund acknowledges to
 * users). One connection, serialized by a mutex; the schema is versioned
 * (table schema_version) and migrated forward on open.
 */
#ifndef YUND_STORE_SQLITE_H
#define YUND_STORE_SQLITE_H

#include "store.h"

int store_sqlite_open(const char *path, struct store **out, struct yun_err *err);

#endif
