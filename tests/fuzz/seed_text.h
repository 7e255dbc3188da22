/*
 * seed_text.h - for fuzz targets whose inputs are text (JSON bodies): the
 * seed writer's main (built with -DFUZZ_WRITE_SEEDS) writes each string of
 * `seeds` to CORPUS_DIR/seed-NN.json.
 */
#ifndef YUN_FUZZ_SEED_TEXT_H
#define YUN_FUZZ_SEED_TEXT_H

#include <stdio.h>

static int seed_text_main(int argc, char **argv, const char *const *seeds, size_t n)
{
	char path[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/seed-%02zu.json", argv[1], i);
		f = fopen(path, "w");
		if (!f || fputs(seeds[i], f) < 0 || fclose(f) != 0) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

#endif
