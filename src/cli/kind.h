/*
 * kind.h - the kinds of object yun manages (instances, images, networks,
 * volumes, flavors, hosts) described as data, and the one `ls`, `show`,
 * `rm` and create-then-wait that they all share.
 *
 * A kind names its API collection, its usage texts and its table columns.
 * A column is {header, JSON field, formatter, right-aligned, max width};
 * the formatters cover what the tables show (strings, states, counts,
 * sizes in bytes/MiB/GiB, ages, ids shown as the names of the objects they
 * refer to). What is really one kind's own (a cell made of several fields,
 * the check before deleting a running instance) is a hook in its
 * descriptor; options, calls, messages, exit statuses, --json and -q are
 * done once, here.
 */
#ifndef YUN_CLI_KIND_H
#define YUN_CLI_KIND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cli.h"

enum kind_fmt {
	KF_STRING, /* the field as it is */
	KF_STATE,  /* a lifecycle state: shown whole, never cut */
	KF_INT,	   /* a count */
	KF_BYTES,  /* bytes as a person reads them: 1.5G */
	KF_MIB,	   /* MiB (memory_mib): 512M, 1G */
	KF_GIB,	   /* GiB (disk_gib, size_gib): 20G; 0 shows as "-" */
	KF_AGE,	   /* an RFC 3339 time shown as an age: 5m */
	KF_REF,	   /* an id shown as the name of the object in collection `ref` */
	KF_CUSTOM, /* made by `cell` */
};

/* What a cell is made from: the object, and the lists its columns refer to. */
struct kind_row {
	json_t *obj;
	json_t *refs; /* {collection: items}; a list that could not be had is absent */
	time_t now;
};

/* A custom cell into buf (size n); returns the text (buf or a string of
 * the object), NULL for "-". */
typedef const char *(*kind_cell_fn)(const struct kind_row *row, char *buf, size_t n);

struct kind_col {
	const char *header;
	const char *field; /* "created_at"; a nested one as "allocated.vcpus" */
	enum kind_fmt fmt;
	bool right;	    /* right-aligned (numbers) */
	unsigned max_width; /* 0: unlimited; longer cells end in "..." */
	const char *ref;    /* KF_REF, and KF_CUSTOM cells that need a list: "images" */
	kind_cell_fn cell;  /* KF_CUSTOM */
};

struct kind {
	const char *what;	/* "image", for messages */
	const char *collection; /* "images": /v1/images */
	const char *ls_usage;
	const char *show_usage;
	const char *rm_usage;
	const struct kind_col *cols; /* ends with {NULL} */
	/* create: the states that end the wait (NULL: creation is immediate). */
	const char *const *ready;
	const char *const *failed;
	/* rm: a deletion is followed (202) until the object is gone unless -d. */
	bool rm_waits;
	/*
	 * rm: checked before each DELETE unless -f/--force (which this hook
	 * enables): 0 to go on, else an exit status with the reason printed.
	 */
	int (*rm_check)(struct cli *cli, const char *ref, const char *path);
};

/* The kinds (each defined beside its own commands). */
extern const struct kind kind_instance; /* cmd_instance.c */
extern const struct kind kind_image;	/* cmd_image.c */
extern const struct kind kind_network;	/* cmd_net.c */
extern const struct kind kind_volume;	/* cmd_vol.c */
extern const struct kind kind_flavor;	/* cmd_misc.c */
extern const struct kind kind_host;	/* cmd_misc.c */

/* `ls [-q] [--json]`: a table of every object, names only, or yund's JSON. */
int kind_ls(struct cli *cli, const struct kind *k, int argc, char **argv);
/* `show REF`: every field (cli_show_object), or the JSON. */
int kind_show(struct cli *cli, const struct kind *k, int argc, char **argv);
/* `rm [-d] [--timeout S] [-f] REF...`: prints each deleted REF (or the JSON answer). */
int kind_rm(struct cli *cli, const struct kind *k, int argc, char **argv);

/*
 * POST body to the kind's collection and, unless detach or the kind has no
 * ready states, wait up to timeout_s for one of them. *obj gets the last
 * object seen (a new reference) when the result is 0. Returns an exit
 * status, the error printed.
 */
int kind_create(struct cli *cli, const struct kind *k, json_t *body, bool detach,
		unsigned timeout_s, json_t **obj);

/* One cell of a row as the column formats it (NULL: "-"). */
const char *kind_cell(const struct kind_col *c, const struct kind_row *row, char *buf, size_t n);

/* A field by a dotted path ("allocated.vcpus"); NULL when absent. */
json_t *kind_field(json_t *obj, const char *path);

#endif
