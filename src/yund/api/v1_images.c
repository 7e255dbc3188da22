/* v1_images.c - /v1/images: build or import container and microVM images. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../compute/reconcile.h"
#include "../core/notify.h"
#include "../core/render.h"
#include "../image/image.h"
#include "../store/store.h"
#include "../yund.h"
#include "body.h"
#include "v1.h"

void v1_images_list(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_image *v;
	size_t n;
	json_t *items;

	if (s->ops->image_list(s, &v, &n, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	items = json_array();
	for (size_t i = 0; i < n && items; i++)
		json_array_append_new(items, render_image(&v[i]));
	st_images_free(v, n);
	api_reply_json(rep, 200, render_list(items));
}

void v1_image_get(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_image img;

	if (s->ops->image_get(s, req->params[0], &img, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	api_reply_json(rep, 200, render_image(&img));
	st_image_clear(&img);
}

void v1_image_create(struct api_req *req, struct api_reply *rep)
{
	static const struct body_field fields[] = {
	    {"name", BODY_STRING, true, 0, 0, 0},
	    {"type", BODY_STRING, false, 0, 16, 0},
	    {"build", BODY_STRING, false, 0, 64, 0},
	    {"import", BODY_STRING, false, 1, PATH_MAX - 1, 0},
	    {"kernel", BODY_STRING, false, 1, PATH_MAX - 64, 0},
	};
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_image img = {0};
	const char *type, *build, *import, *kernel;
	json_t *b = NULL;

	if (body_parse(req->body, req->body_len, false, &b, &err) < 0 ||
	    body_check(b, fields, sizeof(fields) / sizeof(fields[0]), &err) < 0 ||
	    obj_check_name("image", yun_json_str_or(b, "name", ""), &err) < 0)
		goto fail;
	type = yun_json_str_or(b, "type", "container");
	build = yun_json_str_or(b, "build", NULL);
	import = yun_json_str_or(b, "import", NULL);
	kernel = yun_json_str_or(b, "kernel", NULL);
	if (strcmp(type, "container") && strcmp(type, "microvm")) {
		yun_err_set(&err, ERANGE, "field type: \"%s\": must be container or microvm", type);
		goto fail;
	}
	if (!build == !import) {
		yun_err_set(&err, EINVAL, "fields build and import: give exactly one");
		goto fail;
	}
	if (build && img_check_build_kind(build, &err) < 0)
		goto fail;
	if (kernel && (strcmp(type, "microvm") || !build)) {
		yun_err_set(&err, EINVAL,
			    "field kernel: only for a microvm build (an import has its kernel)");
		goto fail;
	}
	if (!strcmp(type, "microvm") && build && !kernel) {
		yun_err_set(&err, EINVAL, "field kernel: required to build a microvm image");
		goto fail;
	}
	if (kernel && img_check_kernel("kernel", kernel, &err) < 0)
		goto fail;
	if (import && !strcmp(type, "microvm") && img_check_microvm_import(import, &err) < 0)
		goto fail;
	if (import && !strcmp(type, "container") && img_check_import_dir(import, &err) < 0)
		goto fail;

	obj_new_id("img", img.m.id);
	snprintf(img.m.name, sizeof(img.m.name), "%s", yun_json_str_or(b, "name", ""));
	snprintf(img.m.project, sizeof(img.m.project), OBJ_PROJECT_DEFAULT);
	obj_now(img.m.created_at);
	memcpy(img.m.updated_at, img.m.created_at, sizeof(img.m.updated_at));
	snprintf(img.type, sizeof(img.type), "%s", type);
	snprintf(img.state, sizeof(img.state), "building");
	snprintf(img.source, sizeof(img.source), "%s:%s%s%s", build ? "build" : "import",
		 build ? build : import, kernel ? ";kernel=" : "", kernel ? kernel : "");
	json_decref(b);
	b = NULL;
	if (s->ops->image_create(s, &img, &err) < 0)
		goto fail;
	notify_image(req->y, "created", &img);
	rec_kick(req->y->rec);
	api_reply_json(rep, 202, render_image(&img));
	return;
fail:
	json_decref(b);
	api_reply_err(rep, &err);
}

void v1_image_delete(struct api_req *req, struct api_reply *rep)
{
	struct store *s = req->y->store;
	struct yun_err err = {0};
	struct st_image img;

	if (s->ops->image_delete(s, req->params[0], &img, &err) < 0) {
		api_reply_err(rep, &err);
		return;
	}
	notify_image(req->y, "deleted", &img);
	st_image_clear(&img);
	/* The files go with the loop's next sweep (nothing refers to them now). */
	rec_kick(req->y->rec);
	rep->status = 204;
}
