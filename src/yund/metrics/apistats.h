/*
 * apistats.h - the API's request counters and latency histograms.
 *
 * server.c calls apistats_observe once per answered request with the
 * route's pattern ("/v1/instances/{ref}", or "unmatched" for paths no
 * route takes), the method, the HTTP status and the seconds from the
 * request's first byte to its answer being queued (for streams and
 * upgrades: to the headers). Series are kept per (route, method, status):
 * the histogram is exposed per status class (2xx, 4xx, ...), the counter
 * per status. Fixed buckets; a mutex; at most APISTATS_MAX series (later
 * ones count under route "other").
 */
#ifndef YUND_METRICS_APISTATS_H
#define YUND_METRICS_APISTATS_H

#include <stdio.h>

#define APISTATS_MAX 512

/* route: a string that lives as long as the process (the route table's). */
void apistats_observe(const char *route, const char *method, unsigned status, double seconds);

/* yun_api_requests_total and yun_api_request_duration_seconds. */
void apistats_write(FILE *f);

/* Forget everything (tests). */
void apistats_reset(void);

#endif
