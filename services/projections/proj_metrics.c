/* proj_metrics.c -- the series oms-projections exports. */
#include <stdio.h>
#include <stdlib.h>

#include "proj.h"

struct oms_proj_metrics {
    oms_gauge_t *position;
    oms_counter_t *bad;
    oms_histogram_t *batch;
    size_t event_count;
    oms_counter_t *events[]; /* one per applied type, by index */
};

oms_proj_metrics_t *oms_proj_metrics_new(oms_metrics_t *m)
{
    size_t n = oms_proj_event_count();
    oms_proj_metrics_t *pm = calloc(1, sizeof *pm + n * sizeof pm->events[0]);
    if (!pm || !m)
        return pm; /* metrics off: every series NULL, every update a no-op */
    pm->event_count = n;
    pm->position = oms_metrics_gauge(m, "oms_projection_position",
                                     "Position in $all of the last event applied", NULL);
    pm->bad = oms_metrics_counter(m, "oms_projection_bad_events_total",
                                  "Events skipped because their payload did not decode", NULL);
    pm->batch = oms_metrics_histogram(m, "oms_projection_batch_seconds",
                                      "Time to apply and commit one transaction", NULL);
    for (size_t i = 0; i < n; i++) {
        char labels[96];
        snprintf(labels, sizeof labels, "type=\"%s\"", oms_proj_event_type(i));
        pm->events[i] = oms_metrics_counter(m, "oms_projection_events_total",
                                            "Events applied to the read model", labels);
    }
    return pm;
}

void oms_proj_metrics_free(oms_proj_metrics_t *pm)
{
    free(pm);
}

void oms_proj_metrics_event(oms_proj_metrics_t *pm, size_t index)
{
    if (index < pm->event_count)
        oms_counter_add(pm->events[index], 1);
}

void oms_proj_metrics_bad(oms_proj_metrics_t *pm)
{
    oms_counter_add(pm->bad, 1);
}

void oms_proj_metrics_position(oms_proj_metrics_t *pm, int64_t position)
{
    oms_gauge_set(pm->position, position);
}

void oms_proj_metrics_batch(oms_proj_metrics_t *pm, double seconds)
{
    oms_histogram_observe(pm->batch, seconds);
}
