/* metrics.c -- counters, gauges and histograms in the Prometheus text format.
 *
 * Series are created under a lock (at start-up, or lazily on a rare path)
 * and updated with relaxed atomics from any thread. A histogram keeps a
 * count per bucket (non-cumulative; summed when rendered), the count and
 * the sum in nanoseconds. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oms.h"

#define OMS_HIST_BUCKETS 16u

static const double hist_bounds[OMS_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                                     5,      10,    30,     60};

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

typedef struct series {
    kind_t kind;
    char *name;
    char *help;
    char *labels;                 /* "" or `a="b",c="d"` */
    _Atomic uint64_t value;       /* counter; gauge (as int64) */
    _Atomic uint64_t buckets[OMS_HIST_BUCKETS + 1]; /* histogram; last is +Inf */
    _Atomic uint64_t sum_ns;
} series_t;

struct oms_metrics {
    pthread_mutex_t lock;
    char *service;
    size_t count;
    series_t *series[OMS_METRICS_SERIES_MAX];
};

oms_metrics_t *oms_metrics_new(const char *service)
{
    oms_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->service = strdup(service ? service : "");
    if (!m->service) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void oms_metrics_free(oms_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++) {
        free(m->series[i]->name);
        free(m->series[i]->help);
        free(m->series[i]->labels);
        free(m->series[i]);
    }
    pthread_mutex_destroy(&m->lock);
    free(m->service);
    free(m);
}

static series_t *series_get(oms_metrics_t *m, kind_t kind, const char *name, const char *help,
                            const char *labels)
{
    if (!m || !name)
        return NULL;
    if (!labels)
        labels = "";
    series_t *found = NULL;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->count && !found; i++) {
        series_t *s = m->series[i];
        if (s->kind == kind && strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            found = s;
    }
    if (!found && m->count < OMS_METRICS_SERIES_MAX) {
        series_t *s = calloc(1, sizeof *s);
        if (s) {
            s->kind = kind;
            s->name = strdup(name);
            s->help = strdup(help ? help : "");
            s->labels = strdup(labels);
            if (s->name && s->help && s->labels) {
                m->series[m->count++] = s;
                found = s;
            } else {
                free(s->name);
                free(s->help);
                free(s->labels);
                free(s);
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    return found;
}

oms_counter_t *oms_metrics_counter(oms_metrics_t *m, const char *name, const char *help,
                                   const char *labels)
{
    return (oms_counter_t *)series_get(m, KIND_COUNTER, name, help, labels);
}

oms_gauge_t *oms_metrics_gauge(oms_metrics_t *m, const char *name, const char *help,
                               const char *labels)
{
    return (oms_gauge_t *)series_get(m, KIND_GAUGE, name, help, labels);
}

oms_histogram_t *oms_metrics_histogram(oms_metrics_t *m, const char *name, const char *help,
                                       const char *labels)
{
    return (oms_histogram_t *)series_get(m, KIND_HISTOGRAM, name, help, labels);
}

void oms_counter_add(oms_counter_t *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&((series_t *)c)->value, n, memory_order_relaxed);
}

void oms_gauge_set(oms_gauge_t *g, int64_t v)
{
    if (g)
        atomic_store_explicit(&((series_t *)g)->value, (uint64_t)v, memory_order_relaxed);
}

void oms_gauge_add(oms_gauge_t *g, int64_t delta)
{
    if (g)
        atomic_fetch_add_explicit(&((series_t *)g)->value, (uint64_t)delta, memory_order_relaxed);
}

void oms_histogram_observe(oms_histogram_t *h, double seconds)
{
    if (!h)
        return;
    series_t *s = (series_t *)h;
    if (!(seconds >= 0)) /* also NaN */
        seconds = 0;
    unsigned b = 0;
    while (b < OMS_HIST_BUCKETS && seconds > hist_bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    double ns = seconds * 1e9;
    atomic_fetch_add_explicit(&s->sum_ns, ns > 1.8e19 ? UINT64_MAX / 2 : (uint64_t)ns,
                              memory_order_relaxed);
}

/* ---- rendering ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} text_t;

static void text_add(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(text_t *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *buf = realloc(t->buf, cap);
        if (!buf) {
            t->failed = true;
            return;
        }
        t->buf = buf;
        t->cap = cap;
    }
}

/* Writes `{service="x",<labels>,<extra>}`. */
static void labels_add(text_t *t, const oms_metrics_t *m, const series_t *s, const char *extra)
{
    text_add(t, "{service=\"%s\"%s%s%s%s}", m->service, *s->labels ? "," : "", s->labels,
             extra ? "," : "", extra ? extra : "");
}

static void series_render(text_t *t, const oms_metrics_t *m, const series_t *s)
{
    if (s->kind != KIND_HISTOGRAM) {
        uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
        text_add(t, "%s", s->name);
        labels_add(t, m, s, NULL);
        if (s->kind == KIND_GAUGE)
            text_add(t, " %lld\n", (long long)(int64_t)v);
        else
            text_add(t, " %llu\n", (unsigned long long)v);
        return;
    }
    uint64_t cum = 0;
    for (unsigned b = 0; b <= OMS_HIST_BUCKETS; b++) {
        cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
        char le[32];
        if (b < OMS_HIST_BUCKETS)
            snprintf(le, sizeof le, "le=\"%g\"", hist_bounds[b]);
        else
            snprintf(le, sizeof le, "le=\"+Inf\"");
        text_add(t, "%s_bucket", s->name);
        labels_add(t, m, s, le);
        text_add(t, " %llu\n", (unsigned long long)cum);
    }
    text_add(t, "%s_sum", s->name);
    labels_add(t, m, s, NULL);
    text_add(t, " %.9f\n", (double)atomic_load_explicit(&s->sum_ns, memory_order_relaxed) / 1e9);
    text_add(t, "%s_count", s->name);
    labels_add(t, m, s, NULL);
    text_add(t, " %llu\n", (unsigned long long)cum);
}

char *oms_metrics_render(oms_metrics_t *m)
{
    static const char *const kind_names[] = {"counter", "gauge", "histogram"};
    text_t t = {.buf = malloc(4096), .cap = 4096};
    if (!t.buf)
        return NULL;
    t.buf[0] = '\0';
    pthread_mutex_lock(&m->lock);
    bool done[OMS_METRICS_SERIES_MAX] = {false};
    for (size_t i = 0; i < m->count; i++) {
        if (done[i])
            continue;
        const series_t *first = m->series[i];
        text_add(&t, "# HELP %s %s\n# TYPE %s %s\n", first->name, first->help, first->name,
                 kind_names[first->kind]);
        for (size_t j = i; j < m->count; j++) {
            if (!done[j] && strcmp(m->series[j]->name, first->name) == 0) {
                done[j] = true;
                series_render(&t, m, m->series[j]);
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}
