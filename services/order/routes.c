/* routes.c -- the route table of oms-order: a path picks a route, the
 * method picks its handler; an unknown path is 404, a known path with
 * another method 405 with Allow, a body over the limit 413. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

static const char *const route_names[OMS_ORD_ROUTE_COUNT] = {
    [OMS_ORD_ROUTE_ORDERS] = "/orders",
    [OMS_ORD_ROUTE_ORDER] = "/orders/{id}",
    [OMS_ORD_ROUTE_EVENTS] = "/orders/{id}/events",
    [OMS_ORD_ROUTE_OPENAPI] = "/openapi.json",
    [OMS_ORD_ROUTE_HEALTH] = "/health",
    [OMS_ORD_ROUTE_METRICS] = "/metrics",
    [OMS_ORD_ROUTE_UNMATCHED] = "unmatched",
};

const char *oms_ord_route_name(oms_ord_route_t route)
{
    return route < OMS_ORD_ROUTE_COUNT ? route_names[route] : "unmatched";
}

/* Matches path; an order id found in it goes to id (cap bytes; cut). */
static oms_ord_route_t route_match(const char *path, char *id, size_t cap)
{
    static const char orders[] = "/orders";
    static const char events[] = "/events";
    if (strcmp(path, "/openapi.json") == 0)
        return OMS_ORD_ROUTE_OPENAPI;
    if (strcmp(path, "/health") == 0)
        return OMS_ORD_ROUTE_HEALTH;
    if (strcmp(path, "/metrics") == 0)
        return OMS_ORD_ROUTE_METRICS;
    if (strncmp(path, orders, sizeof orders - 1) != 0)
        return OMS_ORD_ROUTE_UNMATCHED;
    const char *rest = path + sizeof orders - 1;
    if (*rest == '\0')
        return OMS_ORD_ROUTE_ORDERS;
    if (*rest != '/' || rest[1] == '\0' || rest[1] == '/')
        return OMS_ORD_ROUTE_UNMATCHED;
    const char *start = rest + 1;
    const char *slash = strchr(start, '/');
    size_t len = slash ? (size_t)(slash - start) : strlen(start);
    snprintf(id, cap, "%.*s", (int)len, start);
    if (!slash)
        return OMS_ORD_ROUTE_ORDER;
    return strcmp(slash, events) == 0 ? OMS_ORD_ROUTE_EVENTS : OMS_ORD_ROUTE_UNMATCHED;
}

static void route_health(oms_ord_reply_t *out)
{
    oms_ord_reply_json(out, 200, json_pack("{s:s}", "status", "ok"));
}

static void route_metrics(oms_ord_t *svc, oms_ord_reply_t *out)
{
    char *text = oms_metrics_render(svc->metrics);
    if (!text) {
        oms_ord_reply_error(out, 500, "internal", NULL, "out of memory");
        return;
    }
    out->status = 200;
    out->body = text;
    out->content_type = "text/plain; version=0.0.4";
}

/* The methods a route answers, for 405's Allow. */
static const char *route_allow(oms_ord_route_t route)
{
    return route == OMS_ORD_ROUTE_ORDERS ? "GET, HEAD, POST" : "GET, HEAD";
}

static bool route_method_ok(oms_ord_route_t route, oms_ord_method_t m)
{
    if (m == OMS_ORD_GET || m == OMS_ORD_HEAD)
        return true;
    return route == OMS_ORD_ROUTE_ORDERS && m == OMS_ORD_POST;
}

/* Runs the handler of a matched route whose method is allowed. */
static void route_dispatch(oms_ord_t *svc, const oms_ord_req_t *req, oms_ord_route_t route,
                           const char *id, oms_ord_reply_t *out)
{
    switch (route) {
    case OMS_ORD_ROUTE_ORDERS:
        if (oms_ord_req_method(req) == OMS_ORD_POST)
            oms_ord_place(svc, req, out);
        else
            oms_ord_list(svc, req, out);
        return;
    case OMS_ORD_ROUTE_ORDER:
        oms_ord_get(svc, id, out);
        return;
    case OMS_ORD_ROUTE_EVENTS:
        oms_ord_events(svc, id, out);
        return;
    case OMS_ORD_ROUTE_OPENAPI:
        oms_ord_openapi(out);
        return;
    case OMS_ORD_ROUTE_HEALTH:
        route_health(out);
        return;
    case OMS_ORD_ROUTE_METRICS:
        route_metrics(svc, out);
        return;
    default:
        oms_ord_reply_error(out, 404, "not_found", NULL, "no such route");
        return;
    }
}

oms_ord_route_t oms_ord_route(oms_ord_t *svc, const oms_ord_req_t *req, oms_ord_reply_t *out)
{
    char id[OMS_ORD_ORDER_ID_BYTES_MAX + 2] = "";
    const char *path = oms_ord_req_path(req);
    oms_ord_route_t route = route_match(path, id, sizeof id);
    if (route == OMS_ORD_ROUTE_UNMATCHED) {
        oms_ord_reply_error(out, 404, "not_found", NULL,
                            "no such route: %.200s (see /openapi.json)", path);
        return route;
    }
    if (!route_method_ok(route, oms_ord_req_method(req))) {
        oms_ord_reply_error(out, 405, "method_not_allowed", NULL, "%s allows %s",
                            oms_ord_route_name(route), route_allow(route));
        oms_ord_reply_header(out, "Allow", route_allow(route));
        return route;
    }
    if (oms_ord_req_too_large(req)) {
        oms_ord_reply_error(out, 413, "payload_too_large", NULL,
                            "the body is over %u bytes", OMS_ORD_BODY_BYTES_MAX);
        return route;
    }
    if ((route == OMS_ORD_ROUTE_ORDER || route == OMS_ORD_ROUTE_EVENTS) &&
        !oms_ord_id_ok(id, OMS_ORD_ORDER_ID_BYTES_MAX)) {
        oms_ord_reply_error(out, 400, "invalid_order_id", "order_id",
                            "an order id is 1..%u characters of [A-Za-z0-9._-]",
                            OMS_ORD_ORDER_ID_BYTES_MAX);
        return route;
    }
    route_dispatch(svc, req, route, id, out);
    return route;
}
