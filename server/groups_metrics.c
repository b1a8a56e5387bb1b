/* groups_metrics.c -- the groups' lines of /metrics (Prometheus text): lag,
 * in flight, parked, consumers and the delivery counters, one series per
 * group labelled {group="<name>"}. Built by the loop thread through
 * util/prom (which escapes the names and keeps them valid UTF-8); metrics.c
 * keeps the text for the HTTP thread. */
#include "groups_int.h"

#include <stdlib.h>

#include "prom.h"

enum { GROUP_FIGURES = 7 };

static const struct {
    const char *name;
    prom_type_t type;
    const char *help;
} figures[GROUP_FIGURES] = {
    {"evstore_group_lag", PROM_GAUGE, "Events of the group's source not yet delivered."},
    {"evstore_group_inflight", PROM_GAUGE, "Events delivered and not yet acked."},
    {"evstore_group_parked", PROM_GAUGE, "Events in the group's dead-letter stream."},
    {"evstore_group_consumers", PROM_GAUGE, "Consumers joined to the group."},
    {"evstore_group_delivered_total", PROM_COUNTER, "Deliveries, first ones and retries."},
    {"evstore_group_acked_total", PROM_COUNTER, "Events acked."},
    {"evstore_group_redelivered_total", PROM_COUNTER, "Deliveries that were retries."},
};

/* The figures of g, in the order of figures[]. */
static void group_figures(server_t *srv, group_t *g, uint64_t v[GROUP_FIGURES])
{
    Evstore__V1__GroupInfo info;
    Evstore__V1__GroupSettings set;
    Evstore__V1__EventFilter f;
    group_info_of(srv, g, &info, &set, &f);
    uint64_t all[GROUP_FIGURES] = {info.lag,       info.inflight, info.parked,
                                   info.consumers, info.delivered, info.acked,
                                   info.redelivered};
    for (int k = 0; k < GROUP_FIGURES; k++)
        v[k] = all[k];
}

char *groups_metrics(server_t *srv, size_t bytes_max, size_t *len)
{
    size_t n = 0;
    for (group_t *g = srv->groups; g; g = g->next_group)
        n += !g->deleted;
    /* Each group's figures once (group_info_of walks its ring), then one
     * family at a time, as the format wants. */
    uint64_t (*v)[GROUP_FIGURES] = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return NULL;
    size_t i = 0;
    for (group_t *g = srv->groups; g; g = g->next_group)
        if (!g->deleted)
            group_figures(srv, g, v[i++]);
    prom_page_t p;
    prom_page_init(&p, bytes_max);
    for (int k = 0; k < GROUP_FIGURES; k++) {
        prom_family(&p, figures[k].name, figures[k].type, figures[k].help);
        i = 0;
        for (group_t *g = srv->groups; g; g = g->next_group) {
            if (g->deleted)
                continue;
            prom_label_t label = {.name = "group", .value = g->name};
            prom_sample_u64(&p, figures[k].name, &label, 1, v[i++][k]);
        }
    }
    free(v);
    return prom_page_take(&p, len);
}
