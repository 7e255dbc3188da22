/*
 * vmmapi.h - yund's client of yun-vmm's control API (docs/api/vmm.yaml):
 * HTTP/1.1 + JSON on the VM's Unix socket, through libcurl and jansson.
 *
 * Every call is one short request with a deadline (connect and whole
 * transfer, VMMAPI_TIMEOUT_MS), made from the reconcile loop or a metrics
 * scrape; none waits for the guest. Errors name the instance (`name`) and
 * say what went wrong:
 *
 *   -ECONNREFUSED  nothing answers on the socket (not there, no listener,
 *                  a VM started without --api-sock): the caller may fall
 *                  back to signals
 *   -ETIMEDOUT     the VMM did not answer in time
 *   -EPROTO        the VMM answered with an error status; the message is
 *                  its fault_message ("instance web-1: VMM: PATCH /vm: ...")
 *   -EBADMSG       an answer that is not the JSON expected
 *
 * Thread-safe (one curl handle per call); call vmmapi_global_init() once
 * before threads start.
 */
#ifndef YUND_COMPUTE_VMMAPI_H
#define YUND_COMPUTE_VMMAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../../lib/err.h"

#define VMMAPI_TIMEOUT_MS 2000

int vmmapi_global_init(struct yun_err *err);

/*
 * One request: method and path (e.g. "PATCH", "/vm"), an optional JSON
 * body (not consumed). A 2xx answer's JSON body goes to *out when out is
 * not NULL (NULL for 204); the caller json_decref()s it.
 */
int vmmapi_call(const char *sock, const char *name, const char *method, const char *path,
		json_t *body, json_t **out, struct yun_err *err);

/*
 * PUT /actions {"action_type": "Shutdown", "timeout_ms": N}: Ctrl-Alt-Del
 * to the guest now, a hard stop by the VMM itself after timeout_ms (yun-vmm
 * then exits with status 4). Answers at once.
 */
int vmmapi_shutdown(const char *sock, const char *name, int64_t timeout_ms, struct yun_err *err);

/* PATCH /vm {"state": "Paused" | "Resumed"}; answers once the vCPUs are parked/going. */
int vmmapi_set_paused(const char *sock, const char *name, bool paused, struct yun_err *err);

/* GET /: the VM's state ("Running", "Paused", "Shutting down", ...) into buf. */
int vmmapi_state(const char *sock, const char *name, char *buf, size_t len, struct yun_err *err);

#endif
