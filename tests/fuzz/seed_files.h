/*
 * seed_files.h - for fuzz targets' seed writers (built with
 * -DFUZZ_WRITE_SEEDS) whose seeds are byte strings: write each to its own
 * file in the corpus directory. Errors are printed; the writer exits 1.
 */
#ifndef YUN_FUZZ_SEED_FILES_H
#define YUN_FUZZ_SEED_FILES_H

#include <stdio.h>
#include <string.h>

/* DIR/NAME gets len bytes of data; 0, or -1 after perror. */
static int seed_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}

/* The n strings of seeds[] as DIR/seed-NN<suffix>; main's usual body for argv. */
static int seed_strings(int argc, char **argv, const char *const *seeds, size_t n,
			const char *suffix)
{
	char name[64];

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "seed-%02zu%s", i, suffix);
		if (seed_file(argv[1], name, seeds[i], strlen(seeds[i])) < 0)
			return 1;
	}
	return 0;
}

#endif
