/* records.c - the heap parts of store records (see store.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

void st_image_clear(struct st_image *img)
{
	free(img->command);
	img->command = NULL;
}

void st_instance_clear(struct st_instance *inst)
{
	free(inst->user_data);
	free(inst->command);
	free(inst->env);
	free(inst->ssh_keys);
	inst->user_data = inst->command = inst->env = inst->ssh_keys = NULL;
}

void st_images_free(struct st_image *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		st_image_clear(&v[i]);
	free(v);
}

void st_instances_free(struct st_instance *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		st_instance_clear(&v[i]);
	free(v);
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int st_instance_copy(struct st_instance *dst, const struct st_instance *src)
{
	*dst = *src;
	dst->user_data = dst->command = dst->env = dst->ssh_keys = NULL;
	if (dup_opt(&dst->user_data, src->user_data) || dup_opt(&dst->command, src->command) ||
	    dup_opt(&dst->env, src->env) || dup_opt(&dst->ssh_keys, src->ssh_keys)) {
		st_instance_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

void st_instance_observed(const struct st_instance *inst, struct st_observed *o)
{
	memset(o, 0, sizeof(*o));
	memcpy(o->state, inst->state, sizeof(o->state));
	o->pid = inst->pid;
	o->has_exit = inst->has_exit;
	o->exit_status = inst->exit_status;
	memcpy(o->failure, inst->failure, sizeof(o->failure));
	o->restart_count = inst->restart_count;
	o->reboot_done = inst->reboot_done;
	memcpy(o->ip, inst->ip, sizeof(o->ip));
	memcpy(o->mac, inst->mac, sizeof(o->mac));
}
