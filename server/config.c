/* config.c -- evstored's configuration: defaults, environment, flags. */
#include "server_int.h"

#include "protocol.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void server_config_default(server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    log_config_default(&cfg->log);
    cfg->log.dir = "data";
    snprintf(cfg->listen, sizeof cfg->listen, "%s", SERVER_LISTEN_DEFAULT);
    snprintf(cfg->metrics, sizeof cfg->metrics, "%s", SERVER_METRICS_DEFAULT);
    cfg->connections_max = SERVER_CONNECTIONS_MAX_DEFAULT;
    cfg->frame_bytes_max = FRAME_BYTES_MAX_DEFAULT;
    cfg->output_bytes_max = SERVER_OUTPUT_BYTES_MAX_DEFAULT;
    cfg->read_events_max = SERVER_READ_EVENTS_MAX_DEFAULT;
    cfg->subscriptions_max = SERVER_SUBSCRIPTIONS_MAX_DEFAULT;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evstored [options]\n"
            "\n"
            "The evstore event store server.\n"
            "\n"
            "  --data DIR               data directory (env EVSTORE_DATA; default ./data)\n"
            "  --listen HOST:PORT       client address (env EVSTORE_LISTEN; default %s;\n"
            "                           port 0 picks a free port)\n"
            "  --metrics HOST:PORT      /metrics and /health over HTTP (env EVSTORE_METRICS;\n"
            "                           default %s; 'off' for none)\n"
            "  --durability MODE        always | interval[:MS] | none (env EVSTORE_DURABILITY;\n"
            "                           default always: acknowledge after fdatasync)\n"
            "  --segment-bytes N        segment file size (default %u)\n"
            "  --max-connections N      open client connections (default %u)\n"
            "  --max-frame-bytes N      largest frame in or out (default %u)\n"
            "  --max-append-events N    events in one append (default %u)\n"
            "  --max-event-bytes N      metadata + data of one event (default %u)\n"
            "  --max-output-bytes N     answers queued for one slow client before it is\n"
            "                           disconnected (default %u)\n"
            "  --max-read-events N      events in one read answer (default %u)\n"
            "  --max-subscriptions N    subscriptions and group consumers in all (default %u)\n"
            "  --writes-inflight N      group-commit writes (each with its fdatasync) in flight\n"
            "                           at once, 1..%u (default %u): fewer makes each write\n"
            "                           carry more appends (less CPU), more syncs more in\n"
            "                           parallel\n"
            "  --no-prepare             do not write segments out ahead of need (saves the\n"
            "                           CPU and disk bandwidth of writing zeros; appends then\n"
            "                           extend files, whose fdatasync commits metadata)\n"
            "  --quiet                  no per-connection log lines\n"
            "  --help                   this text\n"
            "\n"
            "On start it prints 'evstored ready listen=ADDR metrics=ADDR' on stdout.\n"
            "SIGTERM or SIGINT: stop accepting, finish in-flight appends, sync, exit 0.\n",
            SERVER_LISTEN_DEFAULT, SERVER_METRICS_DEFAULT, LOG_SEGMENT_BYTES_DEFAULT,
            SERVER_CONNECTIONS_MAX_DEFAULT, FRAME_BYTES_MAX_DEFAULT,
            LOG_BATCH_EVENTS_MAX_DEFAULT, LOG_EVENT_BYTES_MAX_DEFAULT,
            SERVER_OUTPUT_BYTES_MAX_DEFAULT, SERVER_READ_EVENTS_MAX_DEFAULT,
            SERVER_SUBSCRIPTIONS_MAX_DEFAULT, LOG_WRITES_INFLIGHT_LIMIT,
            LOG_WRITES_INFLIGHT_MAX_DEFAULT);
}

/* Parses a positive integer with an optional K/M/G (binary) suffix. */
static int parse_size(const char *flag, const char *text, uint64_t min, uint64_t max,
                      uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    uint64_t mult = 1;
    if (*end == 'K' || *end == 'k')
        mult = 1024, end++;
    else if (*end == 'M' || *end == 'm')
        mult = 1024 * 1024, end++;
    else if (*end == 'G' || *end == 'g')
        mult = 1024 * 1024 * 1024, end++;
    if (errno || end == text || *end != '\0' || text[0] == '-' || v > max / mult ||
        v * mult < min || v * mult > max) {
        fprintf(stderr, "evstored: %s: '%s' is not a number in [%llu, %llu]\n", flag, text,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v * mult;
    return 0;
}

static int set_text(char *dst, size_t cap, const char *flag, const char *text)
{
    if (strlen(text) >= cap) {
        fprintf(stderr, "evstored: %s: too long\n", flag);
        return -1;
    }
    snprintf(dst, cap, "%s", text);
    return 0;
}

static int set_durability(server_config_t *cfg, const char *text)
{
    if (log_durability_parse(text, &cfg->log.durability, &cfg->log.interval_ms) != 0) {
        fprintf(stderr, "evstored: durability '%s': expected always, interval[:MS] or none\n",
                text);
        return -1;
    }
    return 0;
}

static int apply_env(server_config_t *cfg)
{
    const char *v;
    if ((v = getenv("EVSTORE_DATA")) && *v)
        cfg->log.dir = v;
    if ((v = getenv("EVSTORE_LISTEN")) && *v && set_text(cfg->listen, sizeof cfg->listen, "EVSTORE_LISTEN", v))
        return -1;
    if ((v = getenv("EVSTORE_METRICS")) && *v &&
        set_text(cfg->metrics, sizeof cfg->metrics, "EVSTORE_METRICS", v))
        return -1;
    if ((v = getenv("EVSTORE_DURABILITY")) && *v && set_durability(cfg, v))
        return -1;
    return 0;
}

enum { OPT_DATA = 256, OPT_LISTEN, OPT_METRICS, OPT_DURABILITY, OPT_SEGMENT, OPT_CONNS,
       OPT_FRAME, OPT_APPEND_EVENTS, OPT_EVENT_BYTES, OPT_OUTPUT, OPT_READ_EVENTS, OPT_QUIET,
       OPT_NO_PREPARE, OPT_SUBS, OPT_WRITES_INFLIGHT, OPT_HELP };

static int apply_flag(server_config_t *cfg, int opt, const char *arg)
{
    uint64_t v;
    switch (opt) {
    case OPT_DATA: cfg->log.dir = arg; return 0;
    case OPT_LISTEN: return set_text(cfg->listen, sizeof cfg->listen, "--listen", arg);
    case OPT_METRICS: return set_text(cfg->metrics, sizeof cfg->metrics, "--metrics", arg);
    case OPT_DURABILITY: return set_durability(cfg, arg);
    case OPT_SEGMENT:
        if (parse_size("--segment-bytes", arg, LOG_SEGMENT_BYTES_MIN, LOG_SEGMENT_BYTES_MAX, &v))
            return -1;
        if (v % 4096) {
            fprintf(stderr, "evstored: --segment-bytes must be a multiple of 4096\n");
            return -1;
        }
        cfg->log.segment_bytes = v;
        return 0;
    case OPT_CONNS:
        if (parse_size("--max-connections", arg, 1, 1000000, &v))
            return -1;
        cfg->connections_max = (uint32_t)v;
        return 0;
    case OPT_FRAME:
        if (parse_size("--max-frame-bytes", arg, 64 * 1024, FRAME_BYTES_MAX_LIMIT, &v))
            return -1;
        cfg->frame_bytes_max = (uint32_t)v;
        return 0;
    case OPT_APPEND_EVENTS:
        if (parse_size("--max-append-events", arg, 1, 1000000, &v))
            return -1;
        cfg->log.batch_events_max = (uint32_t)v;
        return 0;
    case OPT_EVENT_BYTES:
        if (parse_size("--max-event-bytes", arg, 1, 64 * 1024 * 1024, &v))
            return -1;
        cfg->log.event_bytes_max = (uint32_t)v;
        return 0;
    case OPT_OUTPUT:
        if (parse_size("--max-output-bytes", arg, 64 * 1024, 1024u * 1024 * 1024, &v))
            return -1;
        cfg->output_bytes_max = (uint32_t)v;
        return 0;
    case OPT_READ_EVENTS:
        if (parse_size("--max-read-events", arg, 1, 1000000, &v))
            return -1;
        cfg->read_events_max = (uint32_t)v;
        return 0;
    case OPT_SUBS:
        if (parse_size("--max-subscriptions", arg, 1, 1000000, &v))
            return -1;
        cfg->subscriptions_max = (uint32_t)v;
        return 0;
    case OPT_QUIET: cfg->quiet = true; return 0;
    case OPT_NO_PREPARE: cfg->log.prepare_segments = false; return 0;
    case OPT_WRITES_INFLIGHT:
        if (parse_size("--writes-inflight", arg, 1, LOG_WRITES_INFLIGHT_LIMIT, &v))
            return -1;
        cfg->log.writes_inflight_max = (uint32_t)v;
        return 0;
    }
    return -1;
}

/* The limits must fit together: an event and its frame, an answer and the
 * output buffer. */
static int check_consistency(const server_config_t *cfg)
{
    uint64_t event = (uint64_t)cfg->log.event_bytes_max + LOG_STREAM_NAME_BYTES_MAX + 512;
    if (event * 4 > cfg->frame_bytes_max) {
        fprintf(stderr, "evstored: --max-frame-bytes (%u) must be at least 4x --max-event-bytes "
                        "plus headers (%llu)\n", cfg->frame_bytes_max,
                (unsigned long long)(event * 4));
        return -1;
    }
    if (cfg->output_bytes_max < 2ull * cfg->frame_bytes_max) {
        fprintf(stderr, "evstored: --max-output-bytes (%u) must be at least twice "
                        "--max-frame-bytes (%u)\n", cfg->output_bytes_max, cfg->frame_bytes_max);
        return -1;
    }
    return 0;
}

int server_config_parse(server_config_t *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, OPT_DATA},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"durability", required_argument, NULL, OPT_DURABILITY},
        {"segment-bytes", required_argument, NULL, OPT_SEGMENT},
        {"max-connections", required_argument, NULL, OPT_CONNS},
        {"max-frame-bytes", required_argument, NULL, OPT_FRAME},
        {"max-append-events", required_argument, NULL, OPT_APPEND_EVENTS},
        {"max-event-bytes", required_argument, NULL, OPT_EVENT_BYTES},
        {"max-output-bytes", required_argument, NULL, OPT_OUTPUT},
        {"max-read-events", required_argument, NULL, OPT_READ_EVENTS},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"max-subscriptions", required_argument, NULL, OPT_SUBS},
        {"no-prepare", no_argument, NULL, OPT_NO_PREPARE},
        {"writes-inflight", required_argument, NULL, OPT_WRITES_INFLIGHT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    if (apply_env(cfg))
        return -1;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            usage(stdout);
            return 1;
        }
        if (opt == '?') {
            fprintf(stderr, "evstored: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return -1;
        }
        if (apply_flag(cfg, opt, optarg))
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "evstored: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (strcmp(cfg->metrics, "off") == 0)
        cfg->metrics[0] = '\0';
    struct sockaddr_storage ss;
    socklen_t len;
    if (net_parse_addr(cfg->listen, &ss, &len) != 0 ||
        (cfg->metrics[0] && net_parse_addr(cfg->metrics, &ss, &len) != 0)) {
        fprintf(stderr, "evstored: --listen/--metrics: expected HOST:PORT with a numeric IPv4, "
                        "[IPv6] or localhost host\n");
        return -1;
    }
    return check_consistency(cfg);
}
