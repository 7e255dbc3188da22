/* image_test.c - image directories: a good manifest, and each way one can be wrong. */
#include "ct/image.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char dir[64];

static void write_manifest(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static void test_good_manifest(void)
{
	struct yun_err err = { 0 };
	struct image img;
	char want[128];

	write_manifest("{\"name\": \"busybox\", \"os\": \"busybox\", \"version\": \"1.35.0\",\n"
		       " \"command\": [\"/sbin/init\", \"-v\"], \"size\": 2097152,\n"
		       " \"created\": \"2025-05-20T00:00:00Z\", \"future_field\": {\"x\": 1}}\n");
	CHECK_EQ(image_open(dir, &img, &err), 0);
	if (err.code) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	snprintf(want, sizeof(want), "%s/rootfs", dir);
	CHECK(!strcmp(img.rootfs, want));
	CHECK(!strcmp(img.dir, dir));
	CHECK(!strcmp(img.name, "busybox"));
	CHECK(!strcmp(img.os, "busybox"));
	CHECK(!strcmp(img.version, "1.35.0"));
	CHECK_EQ(img.command_len, 2);
	CHECK(!strcmp(img.command[0], "/sbin/init"));
	CHECK(!strcmp(img.command[1], "-v"));
	CHECK(img.command[2] == NULL);
	CHECK_EQ(img.size, 2097152);
	image_close(&img);
	CHECK(img.name == NULL);

	/* version and created are optional */
	write_manifest("{\"name\": \"d\", \"os\": \"debian\", \"command\": [\"/bin/bash\"], "
		       "\"size\": 0}");
	CHECK_EQ(image_open(dir, &img, &err), 0);
	if (img.version)
		CHECK(!strcmp(img.version, ""));
	image_close(&img);
}

static void expect_error(const char *manifest, const char *msg)
{
	struct yun_err err = { 0 };
	struct image img;

	if (manifest)
		write_manifest(manifest);
	CHECK(image_open(dir, &img, &err) < 0);
	CHECK_STR_CONTAINS(err.msg, msg);
	CHECK(img.name == NULL && img.command == NULL && img.rootfs == NULL);
}

static void test_bad_manifests(void)
{
	char want[160];

	snprintf(want, sizeof(want),
		 "image %s: manifest.json: \"command\" must be an array of strings", dir);
	expect_error(
	    "{\"name\": \"b\", \"os\": \"busybox\", \"command\": \"/sbin/init\", \"size\": 1}",
	    want);
	expect_error("{\"name\": \"b\", \"os\": \"busybox\", \"command\": [\"/sbin/init\", 3], "
		     "\"size\": 1}",
		     "\"command\" must be an array of strings");
	expect_error("{\"name\": \"b\", \"os\": \"busybox\", \"command\": [], \"size\": 1}",
		     "\"command\" must not be empty");
	expect_error("{\"name\": \"b\", \"os\": \"busybox\", \"command\": [\"\"], \"size\": 1}",
		     "\"command\" must start with a program");
	expect_error("{\"name\": \"b\", \"os\": \"busybox\", \"size\": 1}",
		     "\"command\" is missing");
	expect_error("{\"os\": \"busybox\", \"command\": [\"/sbin/init\"], \"size\": 1}",
		     "\"name\" is missing");
	expect_error(
	    "{\"name\": 7, \"os\": \"busybox\", \"command\": [\"/sbin/init\"], \"size\": 1}",
	    "\"name\" must be a non-empty string");
	expect_error("{\"name\": \"b\", \"command\": [\"/sbin/init\"], \"size\": 1}",
		     "\"os\" is missing");
	expect_error("{\"name\": \"b\", \"os\": \"busybox\", \"command\": [\"/sbin/init\"]}",
		     "\"size\" is missing");
	expect_error("{\"name\": \"b\", \"os\": \"busybox\", \"command\": [\"/sbin/init\"], "
		     "\"size\": -4}",
		     "\"size\" must be a whole number of bytes");
	expect_error("{\"name\": \"b\", \"os\": \"busybox\", \"command\": [\"/sbin/init\"], "
		     "\"size\": \"big\"}",
		     "\"size\" must be a whole number of bytes");
	expect_error("{\"name\": \"b\", \"os\": \"busybox\", \"command\": [\"/sbin/init\"], "
		     "\"size\": 1, \"created\": 5}",
		     "\"created\" must be a string");
	expect_error(
	    "{\"name\": \"b\", \"os\": \"busybox\", \"command\": [\"/sbin/init\\u0000x\"], "
	    "\"size\": 1}",
	    "is not allowed");
	expect_error("[1, 2]", "manifest.json: not a JSON object");
	expect_error("{\"name\": \"b\",", "manifest.json: line 1:");
	expect_error("{\"name\": \"a\", \"name\": \"b\"}", "duplicate");
}

static void test_bad_directories(void)
{
	struct yun_err err = { 0 };
	struct image img;
	char path[128];

	/* rootfs missing, then not a directory */
	write_manifest("{\"name\": \"b\", \"os\": \"busybox\", \"command\": [\"/sbin/init\"], "
		       "\"size\": 1}");
	snprintf(path, sizeof(path), "%s/rootfs", dir);
	CHECK_EQ(rmdir(path), 0);
	expect_error(NULL, "rootfs: No such file or directory");
	fclose(fopen(path, "w"));
	expect_error(NULL, "rootfs is not a directory");
	unlink(path);
	CHECK_EQ(mkdir(path, 0755), 0);
	CHECK_EQ(image_open(dir, &img, &err), 0);
	image_close(&img);

	/* no manifest; the image itself is a file or missing */
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	unlink(path);
	expect_error(NULL, "manifest.json: No such file or directory");
	CHECK(image_open("/nonexistent/yun-image", &img, &err) == -ENOENT);
	CHECK_STR_CONTAINS(err.msg, "image /nonexistent/yun-image: No such file or directory");
	CHECK(image_open("/etc/hostname", &img, &err) == -ENOTDIR);
	CHECK_STR_CONTAINS(err.msg, "not a directory");
}

int main(void)
{
	char path[128], cmd[128];
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/yun-image-test.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/rootfs", dir);
	mkdir(path, 0755);
	RUN(test_good_manifest);
	RUN(test_bad_manifests);
	RUN(test_bad_directories);
	rc = CHECK_DONE();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
