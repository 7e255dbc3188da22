/*
 * routes.h - the control API's resources: Firecracker's paths and field
 * names (docs/api/vmm.yaml), each turned into one controller operation
 * (control.h). No HTTP here: the server (server.h) hands over the method,
 * the path and the body, and sends back what api_handle() answers, so a
 * test or a fuzz target can drive the routes without a socket.
 *
 * Answers: 204 without a body on success, 200 with a JSON body for reads;
 * 400 {"fault_message": "<METHOD> <path>: <field and reason>"} for a bad
 * request or the wrong state (nothing changed); 404 for an unknown path;
 * 405 for a method the path does not take (allow[] lists those it does);
 * 501 for an operation this build does not have yet; 500 for a live
 * migration whose outcome is unknown (the VM stays paused, see control.h).
 */
#ifndef YUN_VMM_API_ROUTES_H
#define YUN_VMM_API_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct ctl;

struct api_reply {
	unsigned status;
	json_t *body;       /* NULL: no body (204); owned by the reply */
	char allow[64];     /* for 405: "GET, PUT" */
	bool stop_after;    /* a completed migration: once this answer is out, call
			     * ctl_migrated_reply_sent() (the VM stops, yun-vmm exits 0) */
};

void api_handle(struct ctl *ctl, const char *method, const char *path, const char *body,
		size_t body_len, struct api_reply *r);

#endif
