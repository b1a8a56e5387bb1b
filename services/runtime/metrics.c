/* metrics.c -- counters, gauges and histograms, rendered by util/prom in the
 * Prometheus text format.
 *
 * Series are created under a lock (at start-up, or lazily on a rare path)
 * and updated with relaxed atomics from any thread. A histogram keeps a
 * count per bucket (non-cumulative; summed when rendered), the count and
 * the sum in nanoseconds. A series' label text is parsed when the series is
 * created, so what cannot be rendered as a valid page is refused then. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oms.h"
#include "prom.h"

#define OMS_HIST_BUCKETS 16u
#define OMS_METRICS_PAGE_BYTES_MAX (16u * 1024 * 1024)

static const double hist_bounds[OMS_HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                                     5,      10,    30,     60};

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

typedef struct series {
    kind_t kind;
    char *name;
    char *help;
    char *labels;                 /* "" or `a="b",c="d"`, as given */
    char *label_text;             /* the names and values of label[1..] point here */
    prom_label_t label[1 + OMS_METRICS_LABELS_MAX]; /* service="..." first */
    size_t label_count;
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

static void series_free(series_t *s)
{
    free(s->name);
    free(s->help);
    free(s->labels);
    free(s->label_text);
    free(s);
}

void oms_metrics_free(oms_metrics_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        series_free(m->series[i]);
    pthread_mutex_destroy(&m->lock);
    free(m->service);
    free(m);
}

/* Whether the parsed labels of s can stand next to service (and le). */
static bool labels_allowed(const series_t *s)
{
    for (size_t i = 1; i < s->label_count; i++)
        if (strcmp(s->label[i].name, "service") == 0 ||
            (s->kind == KIND_HISTOGRAM && strcmp(s->label[i].name, "le") == 0))
            return false;
    return true;
}

/* A new series, or NULL (ENOMEM, or labels that are not a label set). */
static series_t *series_new(const oms_metrics_t *m, kind_t kind, const char *name,
                            const char *help, const char *labels)
{
    series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->kind = kind;
    s->name = strdup(name);
    s->help = strdup(help ? help : "");
    s->labels = strdup(labels);
    size_t text_bytes = strlen(labels) + 1;
    s->label_text = malloc(text_bytes);
    if (!s->name || !s->help || !s->labels || !s->label_text)
        goto err_free_series;
    s->label[0] = (prom_label_t){.name = "service", .value = m->service};
    int n = prom_labels_parse(labels, s->label_text, text_bytes, &s->label[1],
                              OMS_METRICS_LABELS_MAX);
    if (n < 0)
        goto err_free_series;
    s->label_count = 1 + (size_t)n;
    if (!labels_allowed(s))
        goto err_free_series;
    return s;
err_free_series:
    series_free(s);
    return NULL;
}

static series_t *series_get(oms_metrics_t *m, kind_t kind, const char *name, const char *help,
                            const char *labels)
{
    if (!m || !prom_metric_name_valid(name))
        return NULL;
    if (!labels)
        labels = "";
    series_t *found = NULL;
    bool clash = false; /* the name is taken by another kind */
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->count && !found && !clash; i++) {
        series_t *s = m->series[i];
        bool same_name = strcmp(s->name, name) == 0;
        clash = same_name && s->kind != kind;
        if (same_name && !clash && strcmp(s->labels, labels) == 0)
            found = s;
    }
    if (!found && !clash && m->count < OMS_METRICS_SERIES_MAX) {
        found = series_new(m, kind, name, help, labels);
        if (found)
            m->series[m->count++] = found;
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

static void series_render(prom_page_t *p, const series_t *s)
{
    uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    if (s->kind == KIND_COUNTER) {
        prom_sample_u64(p, s->name, s->label, s->label_count, v);
        return;
    }
    if (s->kind == KIND_GAUGE) {
        prom_sample_i64(p, s->name, s->label, s->label_count, (int64_t)v);
        return;
    }
    uint64_t counts[OMS_HIST_BUCKETS + 1];
    for (unsigned b = 0; b <= OMS_HIST_BUCKETS; b++)
        counts[b] = atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
    double sum = (double)atomic_load_explicit(&s->sum_ns, memory_order_relaxed) / 1e9;
    prom_histogram(p, s->name, s->label, s->label_count, hist_bounds, counts, OMS_HIST_BUCKETS,
                   sum);
}

char *oms_metrics_render(oms_metrics_t *m)
{
    static const prom_type_t types[] = {
        [KIND_COUNTER] = PROM_COUNTER, [KIND_GAUGE] = PROM_GAUGE,
        [KIND_HISTOGRAM] = PROM_HISTOGRAM};
    prom_page_t page;
    prom_page_init(&page, OMS_METRICS_PAGE_BYTES_MAX);
    pthread_mutex_lock(&m->lock);
    bool done[OMS_METRICS_SERIES_MAX] = {false};
    for (size_t i = 0; i < m->count; i++) {
        if (done[i])
            continue;
        const series_t *first = m->series[i];
        prom_family(&page, first->name, types[first->kind], first->help);
        for (size_t j = i; j < m->count; j++) {
            if (!done[j] && strcmp(m->series[j]->name, first->name) == 0) {
                done[j] = true;
                series_render(&page, m->series[j]);
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    size_t len;
    return prom_page_take(&page, &len);
}
