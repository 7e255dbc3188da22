/* apistats.c - see apistats.h. */
#include "apistats.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "prom.h"

/* Seconds; the last, +Inf, is implied. From 0.5 ms (a cached GET) to 10 s. */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				0.1,	0.25,  0.5,    1,     2.5,  5,	   10};
#define NB (sizeof(bounds) / sizeof(bounds[0]))

struct series {
	const char *route;
	char method[8];
	unsigned status;
	uint64_t count;
	double sum;
	uint64_t bucket[NB]; /* per bucket, not cumulative */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series table[APISTATS_MAX];
static size_t n_series;

static struct series *find(const char *route, const char *method, unsigned status)
{
	for (size_t i = 0; i < n_series; i++)
		if (table[i].status == status && !strcmp(table[i].route, route) &&
		    !strcmp(table[i].method, method))
			return &table[i];
	if (n_series == APISTATS_MAX)
		return NULL;
	table[n_series].route = route;
	snprintf(table[n_series].method, sizeof(table[0].method), "%s", method);
	table[n_series].status = status;
	return &table[n_series++];
}

void apistats_observe(const char *route, const char *method, unsigned status, double seconds)
{
	struct series *s;

	/* Methods outside the table (any token a client sends) share one series. */
	if (strcmp(method, "GET") && strcmp(method, "POST") && strcmp(method, "DELETE") &&
	    strcmp(method, "PUT") && strcmp(method, "PATCH") && strcmp(method, "HEAD"))
		method = "other";
	if (seconds < 0)
		seconds = 0;
	pthread_mutex_lock(&lock);
	s = find(route, method, status);
	if (!s)
		s = find("other", method, status);
	if (!s)
		s = &table[APISTATS_MAX - 1];
	s->count++;
	s->sum += seconds;
	for (size_t b = 0; b < NB; b++) {
		if (seconds <= bounds[b]) {
			s->bucket[b]++;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

/* One histogram per (route, method, status class): the series summed. */
struct agg {
	const char *route;
	const char *method;
	unsigned cls;
	uint64_t count;
	double sum;
	uint64_t bucket[NB];
};

void apistats_write(FILE *f)
{
	static struct agg agg[APISTATS_MAX];
	size_t na = 0;
	char status[8], cls[8], le[32];

	pthread_mutex_lock(&lock);
	prom_family(f, "yun_api_requests_total", "counter",
		    "API requests answered, by route pattern, method and HTTP status.");
	for (size_t i = 0; i < n_series; i++) {
		struct series *s = &table[i];
		struct prom_label l[] = {
		    {"route", s->route}, {"method", s->method}, {"status", status}};

		snprintf(status, sizeof(status), "%u", s->status);
		prom_sample(f, "yun_api_requests_total", l, 3, (double)s->count);
	}
	for (size_t i = 0; i < n_series; i++) {
		struct series *s = &table[i];
		struct agg *a = NULL;

		for (size_t j = 0; j < na && !a; j++)
			if (agg[j].cls == s->status / 100 && !strcmp(agg[j].route, s->route) &&
			    !strcmp(agg[j].method, s->method))
				a = &agg[j];
		if (!a) {
			a = &agg[na++];
			memset(a, 0, sizeof(*a));
			a->route = s->route;
			a->method = s->method;
			a->cls = s->status / 100;
		}
		a->count += s->count;
		a->sum += s->sum;
		for (size_t b = 0; b < NB; b++)
			a->bucket[b] += s->bucket[b];
	}
	prom_family(f, "yun_api_request_duration_seconds", "histogram",
		    "Time from a request's arrival to its answer being queued (for streams: "
		    "to the headers), by route pattern, method and status class.");
	for (size_t j = 0; j < na; j++) {
		struct agg *a = &agg[j];
		struct prom_label l[] = {
		    {"route", a->route}, {"method", a->method}, {"code", cls}, {"le", le}};
		uint64_t cum = 0;

		snprintf(cls, sizeof(cls), "%uxx", a->cls);
		for (size_t b = 0; b < NB; b++) {
			cum += a->bucket[b];
			snprintf(le, sizeof(le), "%g", bounds[b]);
			prom_sample(f, "yun_api_request_duration_seconds_bucket", l, 4,
				    (double)cum);
		}
		snprintf(le, sizeof(le), "+Inf");
		prom_sample(f, "yun_api_request_duration_seconds_bucket", l, 4, (double)a->count);
		prom_sample(f, "yun_api_request_duration_seconds_sum", l, 3, a->sum);
		prom_sample(f, "yun_api_request_duration_seconds_count", l, 3, (double)a->count);
	}
	pthread_mutex_unlock(&lock);
}

void apistats_reset(void)
{
	pthread_mutex_lock(&lock);
	memset(table, 0, sizeof(table));
	n_series = 0;
	pthread_mutex_unlock(&lock);
}
