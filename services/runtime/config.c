/* config.c -- the common flags of every OMS program, plus its own. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oms.h"
#include "util.h"

typedef enum { COMMON_STORE, COMMON_METRICS, COMMON_WORKERS, COMMON_INFLIGHT, COMMON_ACK,
               COMMON_RETRIES, COMMON_TICK, COMMON_COUNT } common_t;

typedef struct {
    const char *name;
    const char *env;   /* NULL: built from the service name (metrics) */
    const char *help;
} common_opt_t;

static const common_opt_t common_opts[COMMON_COUNT] = {
    [COMMON_STORE] = {"store", "OMS_STORE", "HOST:PORT of evstored (127.0.0.1:7411)"},
    [COMMON_METRICS] = {"metrics", NULL,
                        "HOST:PORT for /metrics and /health, port 0 = any, or \"off\" "
                        "(env OMS_METRICS_<SERVICE>)"},
    [COMMON_WORKERS] = {"workers", "OMS_WORKERS", "handler threads (32)"},
    [COMMON_INFLIGHT] = {"max-inflight", "OMS_MAX_INFLIGHT", "unacked events held (512)"},
    [COMMON_ACK] = {"ack-timeout-ms", "OMS_ACK_TIMEOUT_MS",
                    "redelivery timeout of the service's group (10000)"},
    [COMMON_RETRIES] = {"max-retries", "OMS_MAX_RETRIES",
                        "deliveries after the first before an event is parked (5)"},
    [COMMON_TICK] = {"tick-ms", "OMS_TICK_MS", "period of the workers' timers (100)"},
};

int oms_parse_u32(const char *name, const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end || errno || text[0] == '-' || v < min || v > max) {
        fprintf(stderr, "--%s: \"%s\" is not a number in [%u, %u]\n", name, text, min, max);
        return -EINVAL;
    }
    *out = (uint32_t)v;
    return 0;
}

int oms_parse_hostport(const char *name, const char *text, char *host, size_t host_cap,
                       uint16_t *port, bool allow_zero)
{
    if (util_hostport(text, host, host_cap, port, allow_zero) != 0) {
        fprintf(stderr, "--%s: expected HOST:PORT, got \"%s\"\n", name, text);
        return -EINVAL;
    }
    return 0;
}

static int apply_common(oms_config_t *cfg, common_t which, const char *value)
{
    const char *name = common_opts[which].name;
    switch (which) {
    case COMMON_STORE:
        return oms_parse_hostport(name, value, cfg->store_host, sizeof cfg->store_host,
                              &cfg->store_port, false);
    case COMMON_METRICS:
        if (strcmp(value, "off") == 0) {
            cfg->metrics_off = true;
            return 0;
        }
        cfg->metrics_off = false;
        return oms_parse_hostport(name, value, cfg->metrics_host, sizeof cfg->metrics_host,
                              &cfg->metrics_port, true);
    case COMMON_WORKERS:
        return oms_parse_u32(name, value, 1, OMS_WORKERS_MAX, &cfg->workers);
    case COMMON_INFLIGHT:
        return oms_parse_u32(name, value, 1, EVS_INFLIGHT_MAX_LIMIT, &cfg->inflight_max);
    case COMMON_ACK:
        return oms_parse_u32(name, value, 10, 3600000, &cfg->ack_timeout_ms);
    case COMMON_RETRIES:
        return oms_parse_u32(name, value, 0, 1000, &cfg->max_retries);
    case COMMON_TICK:
        return oms_parse_u32(name, value, 1, 60000, &cfg->tick_ms);
    default:
        return -EINVAL;
    }
}

static void metrics_env_name(const char *service, char *out, size_t cap)
{
    int n = snprintf(out, cap, "OMS_METRICS_%s", service);
    for (int i = 0; i < n && (size_t)i < cap; i++)
        out[i] = out[i] == '-' ? '_' : (char)toupper((unsigned char)out[i]);
}

static void usage(const char *service, const oms_opt_t *opts, size_t opt_count)
{
    printf("usage: oms-%s [options]\n\ncommon options (each also from its environment "
           "variable):\n", service);
    for (int i = 0; i < COMMON_COUNT; i++)
        printf("  --%-18s %s%s%s\n", common_opts[i].name, common_opts[i].help,
               common_opts[i].env ? "; env " : "", common_opts[i].env ? common_opts[i].env : "");
    if (opt_count)
        printf("\noptions of oms-%s:\n", service);
    for (size_t i = 0; i < opt_count; i++)
        printf("  --%-18s %s%s%s%s%s\n", opts[i].name, opts[i].help,
               opts[i].env ? "; env " : "", opts[i].env ? opts[i].env : "",
               *opts[i].value ? "; default " : "", *opts[i].value ? *opts[i].value : "");
}

/* Applies the environment: common variables first, then the service's. */
static int apply_env(oms_config_t *cfg, const oms_opt_t *opts, size_t opt_count)
{
    char metrics_env[OMS_NAME_BYTES_MAX + 16];
    metrics_env_name(cfg->service, metrics_env, sizeof metrics_env);
    for (int i = 0; i < COMMON_COUNT; i++) {
        const char *env = common_opts[i].env ? common_opts[i].env : metrics_env;
        const char *v = getenv(env);
        if (v && *v && apply_common(cfg, (common_t)i, v) != 0) {
            fprintf(stderr, "(from the environment variable %s)\n", env);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < opt_count; i++) {
        const char *v = opts[i].env ? getenv(opts[i].env) : NULL;
        if (v && *v)
            *opts[i].value = v;
    }
    return 0;
}

/* Handles argv[*i] (and its value); advances *i past what it used. */
static int apply_arg(oms_config_t *cfg, int argc, char **argv, int *i, const oms_opt_t *opts,
                     size_t opt_count)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) {
        fprintf(stderr, "oms-%s: unexpected argument \"%s\" (see --help)\n", cfg->service, arg);
        return -EINVAL;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    for (size_t k = 0; k < opt_count + COMMON_COUNT; k++) {
        bool common = k < COMMON_COUNT;
        const char *opt_name = common ? common_opts[k].name : opts[k - COMMON_COUNT].name;
        if (strlen(opt_name) != name_len || strncmp(opt_name, name, name_len) != 0)
            continue;
        if (!common && opts[k - COMMON_COUNT].flag) {
            if (eq) {
                fprintf(stderr, "--%s takes no value\n", opt_name);
                return -EINVAL;
            }
            *opts[k - COMMON_COUNT].value = "1";
            return 0;
        }
        const char *value = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
        if (!value) {
            fprintf(stderr, "--%s needs a value\n", opt_name);
            return -EINVAL;
        }
        if (common)
            return apply_common(cfg, (common_t)k, value);
        *opts[k - COMMON_COUNT].value = value;
        return 0;
    }
    fprintf(stderr, "oms-%s: unknown option \"%s\" (see --help)\n", cfg->service, arg);
    return -EINVAL;
}

int oms_config_parse(oms_config_t *cfg, const char *service, uint16_t default_metrics_port,
                     int argc, char **argv, const oms_opt_t *opts, size_t opt_count)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->service, sizeof cfg->service, "%s", service);
    snprintf(cfg->store_host, sizeof cfg->store_host, "127.0.0.1");
    cfg->store_port = EVS_PORT_DEFAULT;
    snprintf(cfg->metrics_host, sizeof cfg->metrics_host, "127.0.0.1");
    cfg->metrics_port = default_metrics_port;
    cfg->workers = OMS_WORKERS_DEFAULT;
    cfg->store_retry_ms = OMS_STORE_RETRY_MS_MAX;
    cfg->inflight_max = OMS_INFLIGHT_MAX_DEFAULT;
    cfg->ack_timeout_ms = OMS_ACK_TIMEOUT_MS_DEFAULT;
    cfg->max_retries = OMS_MAX_RETRIES_DEFAULT;
    cfg->tick_ms = OMS_TICK_MS_DEFAULT;
    if (opt_count > OMS_OPTS_MAX)
        return -EINVAL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(service, opts, opt_count);
            exit(0);
        }
    }
    int rc = apply_env(cfg, opts, opt_count);
    for (int i = 1; rc == 0 && i < argc; i++)
        rc = apply_arg(cfg, argc, argv, &i, opts, opt_count);
    return rc;
}

bool oms_config_given(int argc, char **argv, const char *name, const char *env)
{
    const char *v = env ? getenv(env) : NULL;
    if (v && *v)
        return true;
    size_t len = strlen(name);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, name, len) == 0 &&
            (a[2 + len] == '\0' || a[2 + len] == '='))
            return true;
    }
    return false;
}

void oms_store_options(const oms_config_t *cfg, const char *client_name, evs_options_t *opts)
{
    evs_options_default(opts);
    opts->host = cfg->store_host;
    opts->port = cfg->store_port;
    opts->client_name = client_name;
    opts->connect_timeout_ms = 2000;
    opts->io_timeout_ms = 10000;
    opts->reconnect_backoff_ms_initial = 50;
    opts->reconnect_backoff_ms_max = 1000;
    opts->retry_ms_max = (int)cfg->store_retry_ms;
}
