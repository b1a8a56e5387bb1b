/* demo_main.c -- oms-demo: places orders of a known mix through the HTTP
 * API and checks that each reaches the verdict its kind calls for.
 *
 *   oms-demo --http HOST:PORT --store HOST:PORT --orders N --concurrency C
 *            [--rate R] [--mix success=70,declined=10,oos=10,shipfail=10]
 *            [--timeout-s S] [--json FILE] [--seed S]
 *
 * Exit status: 0 when every order reached its expected verdict within
 * --timeout-s of its POST, 1 when not, 2 for bad flags or when the store
 * cannot be subscribed to. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"
#include "oms.h"

typedef struct {
    const char *http, *orders, *concurrency, *rate, *mix, *timeout_s, *json, *seed;
} demo_flags_t;

static int config_from_flags(const oms_config_t *oc, const demo_flags_t *fl, demo_config_t *c)
{
    uint32_t seed = 0;
    memset(c, 0, sizeof *c);
    snprintf(c->store_host, sizeof c->store_host, "%s", oc->store_host);
    c->store_port = oc->store_port;
    c->json_path = fl->json;
    if (oms_parse_hostport("http", fl->http, c->http_host, sizeof c->http_host,
                           &c->http_port, false) != 0 ||
        oms_parse_u32("orders", fl->orders, 1, DEMO_ORDERS_MAX, &c->orders) != 0 ||
        oms_parse_u32("concurrency", fl->concurrency, 1, DEMO_CONCURRENCY_MAX,
                      &c->concurrency) != 0 ||
        oms_parse_u32("rate", fl->rate, 0, DEMO_RATE_MAX, &c->rate) != 0 ||
        oms_parse_u32("timeout-s", fl->timeout_s, 1, DEMO_TIMEOUT_S_MAX, &c->timeout_s) != 0 ||
        oms_parse_u32("seed", fl->seed, 0, UINT32_MAX, &seed) != 0 ||
        demo_mix_parse(fl->mix, c->mix) != 0)
        return -EINVAL;
    c->seed = seed;
    return 0;
}

static int parse_args(int argc, char **argv, demo_config_t *c)
{
    demo_flags_t fl = {.http = DEMO_HTTP_DEFAULT, .orders = DEMO_ORDERS_DEFAULT,
                       .concurrency = DEMO_CONCURRENCY_DEFAULT, .rate = "0",
                       .mix = DEMO_MIX_DEFAULT, .timeout_s = DEMO_TIMEOUT_S_DEFAULT,
                       .seed = "1"};
    const oms_opt_t opts[] = {
        {"http", "OMS_DEMO_HTTP", "HOST:PORT of oms-order's API",
         &fl.http, false},
        {"orders", NULL, "orders to place", &fl.orders, false},
        {"concurrency", NULL, "connections placing orders, one thread each", &fl.concurrency, false},
        {"rate", NULL, "orders/s over all connections, 0: as fast as answered", &fl.rate,
         false},
        {"mix", NULL, "kinds of order (success, declined, oos, shipfail) and their weights", &fl.mix, false},
        {"timeout-s", NULL, "each order's verdict must come within this many seconds of its POST", &fl.timeout_s, false},
        {"json", NULL, "also write the figures to this file", &fl.json, false},
        {"seed", NULL, "decides which order is which kind, and their items", &fl.seed, false},
    };
    oms_config_t oc;
    if (oms_config_parse(&oc, "demo", 0, argc, argv, opts, sizeof opts / sizeof opts[0]) != 0)
        return -EINVAL;
    return config_from_flags(&oc, &fl, c);
}

/* A number that tells this run's Idempotency-Keys from every other run's. */
static uint64_t run_nonce(void)
{
    uint64_t run = 0;
    if (getrandom(&run, sizeof run, 0) != (ssize_t)sizeof run)
        run = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    return run;
}

static void print_start(const demo_config_t *c)
{
    printf("oms-demo: %u orders (", c->orders);
    for (int k = 0, first = 1; k < DEMO_KINDS; k++) {
        if (c->mix[k] > 0) {
            printf("%s%s=%u", first ? "" : ",", demo_kind_name((demo_kind_t)k), c->mix[k]);
            first = 0;
        }
    }
    printf(") over %u connections to http://%s:%u", c->concurrency, c->http_host, c->http_port);
    if (c->rate > 0)
        printf(" at %u orders/s", c->rate);
    printf("; verdicts from $ce-order on %s:%u\n", c->store_host, c->store_port);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    demo_config_t cfg;
    if (parse_args(argc, argv, &cfg) != 0)
        return 2;
    demo_order_t *orders = calloc(cfg.orders, sizeof *orders);
    if (orders == NULL) {
        fprintf(stderr, "oms-demo: out of memory for %u orders\n", cfg.orders);
        return 2;
    }
    demo_plan_kinds(orders, cfg.orders, cfg.mix, cfg.seed);
    volatile int *stop = oms_stop_flag_install();
    demo_watch_t *watch = NULL;
    if (demo_watch_start(&cfg, orders, cfg.orders, &watch) != 0) {
        free(orders);
        return 2;
    }
    print_start(&cfg);
    demo_load_result_t load;
    demo_load_run(&cfg, orders, cfg.orders, run_nonce(), watch, stop, &load);
    demo_watch_all_placed(watch, load.placed);
    int64_t from = load.last_posted_ns ? load.last_posted_ns : (int64_t)util_mono_ns();
    demo_watch_wait(watch, from + (int64_t)cfg.timeout_s * 1000000000, stop);
    demo_report_in_t rep = {.cfg = &cfg, .orders = orders, .n = cfg.orders, .load = &load};
    demo_watch_stop(watch, &rep.watch);
    bool ok = demo_report(&rep);
    free(orders);
    return ok ? 0 : 1;
}
