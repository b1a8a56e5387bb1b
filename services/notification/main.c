/* main.c -- oms-notification: flags, the outbox, then the group-driven
 * service. */
#include "notification.h"
#include "oms.pb-c.h"

int main(int argc, char **argv)
{
    const char *outbox = OMS_OUTBOX_PATH_DEFAULT;
    const oms_opt_t opts[] = {
        {"outbox", "OMS_OUTBOX",
         "the JSON-lines file notifications are appended to (its folders are made)",
         &outbox, false},
    };
    oms_config_t cfg;
    if (oms_config_parse(&cfg, "notification", OMS_METRICS_PORT_NOTIFICATION, argc, argv, opts,
                         sizeof opts / sizeof opts[0]) != 0)
        return 2;
    static oms_note_t note;
    if (oms_outbox_open(&note.outbox, outbox) != 0)
        return 1;
    static const oms_ans_route_t routes[] = {
        {&oms__v1__order_completed__descriptor, oms_note_completed},
        {&oms__v1__order_failed__descriptor, oms_note_failed},
    };
    const oms_ans_service_t svc = {
        .group = "oms-notification",
        .source = "$ce-order",
        .routes = routes,
        .route_count = sizeof routes / sizeof routes[0],
        .start = oms_note_start,
        .ctx = &note,
    };
    int rc = oms_ans_run(&cfg, &svc);
    oms_outbox_close(&note.outbox);
    return rc == 0 ? 0 : 1;
}
