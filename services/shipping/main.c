/* main.c -- oms-shipping: flags, then the group-driven service. */
#include <stdint.h>

#include "oms.pb-c.h"
#include "shipping.h"

int main(int argc, char **argv)
{
    static oms_ship_t ship = {
        .fail_countries = OMS_SHIP_FAIL_COUNTRIES_DEFAULT,
        .hang_countries = OMS_SHIP_HANG_COUNTRIES_DEFAULT,
    };
    const char *every_text = NULL;
    const oms_opt_t opts[] = {
        {"fail-countries", "OMS_SHIP_FAIL_COUNTRIES",
         "comma list of countries the carrier rejects (\"\": none)",
         &ship.fail_countries, false},
        {"hang-countries", "OMS_SHIP_HANG_COUNTRIES",
         "comma list of countries the carrier never answers for (\"\": none)",
         &ship.hang_countries, false},
        {"fail-every", "OMS_SHIP_FAIL_EVERY",
         "every Nth shipment request is rejected (default 0: never)", &every_text, false},
    };
    oms_config_t cfg;
    if (oms_config_parse(&cfg, "shipping", OMS_METRICS_PORT_SHIPPING, argc, argv, opts,
                         sizeof opts / sizeof opts[0]) != 0)
        return 2;
    if (every_text && oms_parse_u32("fail-every", every_text, 0, UINT32_MAX, &ship.fail_every))
        return 2;
    static const oms_ans_route_t routes[] = {
        {&oms__v1__shipment_requested__descriptor, oms_ship_request},
        {&oms__v1__shipment_cancel_requested__descriptor, oms_ship_cancel},
    };
    const oms_ans_service_t svc = {
        .group = "oms-shipping",
        .source = "$ce-saga",
        .routes = routes,
        .route_count = sizeof routes / sizeof routes[0],
        .start = oms_ship_start,
        .ctx = &ship,
    };
    return oms_ans_run(&cfg, &svc) == 0 ? 0 : 1;
}
