/*
 * v1.h - the /v1 API: the route table and its handlers, one file per kind
 * (v1_hosts.c, v1_flavors.c, v1_images.c, v1_networks.c, v1_instances.c,
 * v1_events.c). Every route is documented in docs/api/yund.yaml.
 *
 * Handlers check the body and the references, then make exactly one
 * store operation (one transaction) and publish the change; the host is
 * changed later by the reconcile loop, never here.
 */
#ifndef YUND_API_V1_H
#define YUND_API_V1_H

#include <stddef.h>

#include "router.h"

extern const struct route v1_routes[];
extern const size_t v1_n_routes;

void v1_health(struct api_req *req, struct api_reply *rep);

void v1_hosts_list(struct api_req *req, struct api_reply *rep);
void v1_host_get(struct api_req *req, struct api_reply *rep);

void v1_flavors_list(struct api_req *req, struct api_reply *rep);
void v1_flavor_create(struct api_req *req, struct api_reply *rep);
void v1_flavor_get(struct api_req *req, struct api_reply *rep);
void v1_flavor_delete(struct api_req *req, struct api_reply *rep);

void v1_images_list(struct api_req *req, struct api_reply *rep);
void v1_image_create(struct api_req *req, struct api_reply *rep);
void v1_image_get(struct api_req *req, struct api_reply *rep);
void v1_image_delete(struct api_req *req, struct api_reply *rep);

void v1_networks_list(struct api_req *req, struct api_reply *rep);
void v1_network_create(struct api_req *req, struct api_reply *rep);
void v1_network_get(struct api_req *req, struct api_reply *rep);
void v1_network_delete(struct api_req *req, struct api_reply *rep);

void v1_instances_list(struct api_req *req, struct api_reply *rep);
void v1_instance_create(struct api_req *req, struct api_reply *rep);
void v1_instance_get(struct api_req *req, struct api_reply *rep);
void v1_instance_delete(struct api_req *req, struct api_reply *rep);
void v1_instance_start(struct api_req *req, struct api_reply *rep);
void v1_instance_stop(struct api_req *req, struct api_reply *rep);
void v1_instance_reboot(struct api_req *req, struct api_reply *rep);
void v1_instance_pause(struct api_req *req, struct api_reply *rep);
void v1_instance_resume(struct api_req *req, struct api_reply *rep);
void v1_instance_logs(struct api_req *req, struct api_reply *rep);
/* v1_stream.c: upgraded connections to a container (see there for the framing). */
void v1_instance_exec(struct api_req *req, struct api_reply *rep);
void v1_instance_console(struct api_req *req, struct api_reply *rep);
/* End every exec and console session (yund stops); returns once they ended. */
void v1_streams_shutdown(void);

/* v1_volumes.c */
void v1_volumes_list(struct api_req *req, struct api_reply *rep);
void v1_volume_create(struct api_req *req, struct api_reply *rep);
void v1_volume_get(struct api_req *req, struct api_reply *rep);
void v1_volume_delete(struct api_req *req, struct api_reply *rep);
void v1_volume_attach(struct api_req *req, struct api_reply *rep);
void v1_volume_detach(struct api_req *req, struct api_reply *rep);
void v1_volume_snapshot(struct api_req *req, struct api_reply *rep);
void v1_snapshots_list(struct api_req *req, struct api_reply *rep);
void v1_snapshot_get(struct api_req *req, struct api_reply *rep);
void v1_snapshot_delete(struct api_req *req, struct api_reply *rep);
void v1_snapshot_clone(struct api_req *req, struct api_reply *rep);

void v1_events(struct api_req *req, struct api_reply *rep);

/* GET /metrics (not under /v1): metrics/metrics.c. */
void v1_metrics(struct api_req *req, struct api_reply *rep);

#endif
