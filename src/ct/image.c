/* image.c - see image.h. */
#include "image.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/file.h"

#define MANIFEST_MAX (1 << 20)

void image_close(struct image *img)
{
	if (img->command)
		for (size_t i = 0; i < img->command_len; i++)
			free(img->command[i]);
	free(img->command);
	free(img->dir);
	free(img->rootfs);
	free(img->name);
	free(img->os);
	free(img->version);
	memset(img, 0, sizeof(*img));
}

static int bad_field(const char *dir, struct yun_err *err, const char *fmt, const char *field)
{
	char what[128];

	snprintf(what, sizeof(what), fmt, field);
	return yun_err_set(err, EINVAL, "image %s: manifest.json: %s", dir, what);
}

/* A required, non-empty string field. */
static int get_string(json_t *root, const char *dir, const char *field, bool required,
		      char **out, struct yun_err *err)
{
	json_t *v = json_object_get(root, field);

	if (!v) {
		if (required)
			return bad_field(dir, err, "\"%s\" is missing", field);
		*out = strdup("");
	} else if (!json_is_string(v) || (required && !json_string_length(v))) {
		return bad_field(dir, err, "\"%s\" must be a non-empty string", field);
	} else {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return bad_field(dir, err, "\"%s\" must not contain NUL characters",
					 field);
		*out = strdup(json_string_value(v));
	}
	if (!*out)
		return yun_err_set(err, ENOMEM, "out of memory");
	return 0;
}

static int get_command(json_t *root, const char *dir, struct image *img, struct yun_err *err)
{
	json_t *cmd = json_object_get(root, "command"), *v;
	size_t i, n;

	if (!cmd)
		return bad_field(dir, err, "\"%s\" is missing", "command");
	if (!json_is_array(cmd))
		return bad_field(dir, err, "\"%s\" must be an array of strings", "command");
	n = json_array_size(cmd);
	if (n == 0)
		return bad_field(dir, err, "\"%s\" must not be empty", "command");
	json_array_foreach(cmd, i, v) {
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
			return bad_field(dir, err, "\"%s\" must be an array of strings",
					 "command");
	}
	if (!json_string_length(json_array_get(cmd, 0)))
		return bad_field(dir, err, "\"%s\" must start with a program, not \"\"",
				 "command");
	img->command = calloc(n + 1, sizeof(char *));
	if (!img->command)
		return yun_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(cmd, i, v) {
		img->command[i] = strdup(json_string_value(v));
		if (!img->command[i])
			return yun_err_set(err, ENOMEM, "out of memory");
		img->command_len = i + 1;
	}
	return 0;
}

int image_open(const char *dir, struct image *img, struct yun_err *err)
{
	json_error_t jerr;
	json_t *root = NULL, *size;
	uint8_t *text = NULL;
	char path[4096];
	struct stat st;
	size_t len;
	int rc;

	memset(img, 0, sizeof(*img));
	if (stat(dir, &st) < 0)
		return yun_err_errno(err, errno, "image %s", dir);
	if (!S_ISDIR(st.st_mode))
		return yun_err_set(err, ENOTDIR, "image %s: not a directory", dir);

	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	rc = yun_file_read_all("image manifest", path, MANIFEST_MAX, &text, &len, err);
	if (rc < 0)
		return rc;
	root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!root)
		return yun_err_set(err, EINVAL, "image %s: manifest.json: line %d: %s", dir,
				   jerr.line, jerr.text);
	if (!json_is_object(root)) {
		rc = yun_err_set(err, EINVAL, "image %s: manifest.json: not a JSON object", dir);
		goto out;
	}

	img->dir = strdup(dir);
	if (!img->dir) {
		rc = yun_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	rc = get_string(root, dir, "name", true, &img->name, err);
	if (rc == 0)
		rc = get_string(root, dir, "os", true, &img->os, err);
	if (rc == 0)
		rc = get_string(root, dir, "version", false, &img->version, err);
	if (rc == 0)
		rc = get_command(root, dir, img, err);
	if (rc < 0)
		goto out;
	size = json_object_get(root, "size");
	if (!size || !json_is_integer(size) || json_integer_value(size) < 0) {
		rc = bad_field(dir, err, size ? "\"%s\" must be a whole number of bytes >= 0"
					      : "\"%s\" is missing",
			       "size");
		goto out;
	}
	img->size = (uint64_t)json_integer_value(size);
	if (json_object_get(root, "created") && !json_is_string(json_object_get(root, "created"))) {
		rc = bad_field(dir, err, "\"%s\" must be a string", "created");
		goto out;
	}

	snprintf(path, sizeof(path), "%s/rootfs", dir);
	if (stat(path, &st) < 0) {
		rc = yun_err_errno(err, errno, "image %s: rootfs", dir);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = yun_err_set(err, ENOTDIR, "image %s: rootfs is not a directory", dir);
		goto out;
	}
	img->rootfs = strdup(path);
	if (!img->rootfs)
		rc = yun_err_set(err, ENOMEM, "out of memory");
out:
	json_decref(root);
	if (rc < 0)
		image_close(img);
	return rc;
}
