/* v1.c - the route table (see v1.h) and the health check. */
#include "v1.h"

#include "../yund.h"

const struct route v1_routes[] = {
    {"GET", "/v1/health", v1_health},
    {"GET", "/v1/hosts", v1_hosts_list},
    {"GET", "/v1/hosts/{ref}", v1_host_get},
    {"GET", "/v1/flavors", v1_flavors_list},
    {"POST", "/v1/flavors", v1_flavor_create},
    {"GET", "/v1/flavors/{ref}", v1_flavor_get},
    {"DELETE", "/v1/flavors/{ref}", v1_flavor_delete},
    {"GET", "/v1/images", v1_images_list},
    {"POST", "/v1/images", v1_image_create},
    {"GET", "/v1/images/{ref}", v1_image_get},
    {"DELETE", "/v1/images/{ref}", v1_image_delete},
    {"GET", "/v1/networks", v1_networks_list},
    {"POST", "/v1/networks", v1_network_create},
    {"GET", "/v1/networks/{ref}", v1_network_get},
    {"DELETE", "/v1/networks/{ref}", v1_network_delete},
    {"GET", "/v1/instances", v1_instances_list},
    {"POST", "/v1/instances", v1_instance_create},
    {"GET", "/v1/instances/{ref}", v1_instance_get},
    {"DELETE", "/v1/instances/{ref}", v1_instance_delete},
    {"POST", "/v1/instances/{ref}/start", v1_instance_start},
    {"POST", "/v1/instances/{ref}/stop", v1_instance_stop},
    {"POST", "/v1/instances/{ref}/reboot", v1_instance_reboot},
    {"POST", "/v1/instances/{ref}/pause", v1_instance_pause},
    {"POST", "/v1/instances/{ref}/resume", v1_instance_resume},
    {"GET", "/v1/instances/{ref}/logs", v1_instance_logs},
    {"POST", "/v1/instances/{ref}/exec", v1_instance_exec},
    {"GET", "/v1/instances/{ref}/console", v1_instance_console},
    {"GET", "/v1/volumes", v1_volumes_list},
    {"POST", "/v1/volumes", v1_volume_create},
    {"GET", "/v1/volumes/{ref}", v1_volume_get},
    {"DELETE", "/v1/volumes/{ref}", v1_volume_delete},
    {"POST", "/v1/volumes/{ref}/attach", v1_volume_attach},
    {"POST", "/v1/volumes/{ref}/detach", v1_volume_detach},
    {"POST", "/v1/volumes/{ref}/snapshot", v1_volume_snapshot},
    {"GET", "/v1/snapshots", v1_snapshots_list},
    {"GET", "/v1/snapshots/{ref}", v1_snapshot_get},
    {"DELETE", "/v1/snapshots/{ref}", v1_snapshot_delete},
    {"POST", "/v1/snapshots/{ref}/clone", v1_snapshot_clone},
    {"GET", "/v1/events", v1_events},
    {"GET", "/metrics", v1_metrics},
};

const size_t v1_n_routes = sizeof(v1_routes) / sizeof(v1_routes[0]);

void v1_health(struct api_req *req, struct api_reply *rep)
{
	(void)req;
	api_reply_json(rep, 200, json_pack("{s:s, s:s}", "status", "ok", "version", YUND_VERSION));
}
