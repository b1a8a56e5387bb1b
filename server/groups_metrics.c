/* groups_metrics.c -- the groups' lines of /metrics (Prometheus text): lag,
 * in flight, parked, consumers and the delivery counters, one series per
 * group labelled {group="<name>"}. Built by the loop thread (metrics.c copies
 * the text for the HTTP thread). */
#include "groups_int.h"

#include <stdio.h>

/* Escapes a group name for a Prometheus label value. */
static void label_escape(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; *src && n + 3 < cap; src++) {
        if (*src == '"' || *src == '\\')
            dst[n++] = '\\';
        dst[n++] = *src == '\n' ? ' ' : *src;
    }
    dst[n] = '\0';
}

size_t groups_metrics(server_t *srv, char *buf, size_t cap)
{
    static const char *const names[] = {"lag", "inflight", "parked", "consumers",
                                        "delivered_total", "acked_total", "redelivered_total"};
    size_t len = 0;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        int n = snprintf(buf + len, cap - len, "# TYPE evstore_group_%s %s\n", names[k],
                         k >= 4 ? "counter" : "gauge");
        len += n > 0 && (size_t)n < cap - len ? (size_t)n : 0;
        for (group_t *g = srv->groups; g; g = g->next_group) {
            if (g->deleted)
                continue;
            Evstore__V1__GroupInfo info;
            Evstore__V1__GroupSettings set;
            Evstore__V1__EventFilter f;
            group_info_of(srv, g, &info, &set, &f);
            uint64_t v[] = {info.lag, info.inflight, info.parked, info.consumers,
                            info.delivered, info.acked, info.redelivered};
            char label[2 * GROUP_NAME_BYTES_MAX + 4];
            label_escape(label, sizeof label, g->name);
            n = snprintf(buf + len, cap - len, "evstore_group_%s{group=\"%s\"} %llu\n", names[k],
                         label, (unsigned long long)v[k]);
            len += n > 0 && (size_t)n < cap - len ? (size_t)n : 0;
        }
    }
    return len;
}
