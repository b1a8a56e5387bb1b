/* cmd_tail.c -- evstore tail STREAM|$ce-CAT|$all: a catch-up subscription
 * printed as it comes, until --count events, --timeout-ms of silence, or
 * Ctrl-C. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TAIL_TYPES_MAX EVS_SUB_TYPES_MAX
#define TAIL_POLL_MS 200 /* how often a signal is noticed while waiting */

static const char tail_help[] =
    "usage: evstore tail STREAM|$ce-CATEGORY|$all [options]\n"
    "\n"
    "Prints the stored events from the start point, then every new event as it\n"
    "is written, in log order, one per line (as 'evstore read' prints them). On\n"
    "reaching the head it says so on stderr ('caught up'). If the connection\n"
    "drops it reconnects and resumes after the last event printed.\n"
    "\n"
    "options:\n"
    "  --from N          first version (stream) or position ($ce-, $all); default 0\n"
    "  --from-end        only events written from now on\n"
    "  --type T          only events of type T (repeatable)\n"
    "  --type-prefix P   only events whose type starts with P\n"
    "  --prefix P        only events of streams whose name starts with P\n"
    "  --count N         stop after N events\n"
    "  --timeout-ms N    stop after N ms without an event\n"
    "  --json            JSON lines\n"
    "  --help            this text\n"
    "\n"
    "Stops on Ctrl-C (exit 0). Exit status 1 when the server refuses the\n"
    "subscription, 3 when it cannot be reached at the start.\n";

typedef struct {
    evs_subscribe_t req;
    const char *types[TAIL_TYPES_MAX];
    int64_t count;      /* -1: no limit */
    int64_t silence_ms; /* -1: no limit */
    bool json;
} tail_args_t;

static int tail_args_parse(int argc, char **argv, tail_args_t *a)
{
    static const struct option opts[] = {
        { "from", required_argument, NULL, 'f' },   { "from-end", no_argument, NULL, 'e' },
        { "type", required_argument, NULL, 't' },   { "type-prefix", required_argument, NULL, 'P' },
        { "prefix", required_argument, NULL, 'p' }, { "count", required_argument, NULL, 'c' },
        { "timeout-ms", required_argument, NULL, 'T' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof *a);
    a->count = a->silence_ms = -1;
    int c;
    int64_t v;
    bool from_given = false;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'f' && !cli_parse_i64(optarg, 0, INT64_MAX, &v))
            a->req.from = (uint64_t)v, from_given = true;
        else if (c == 'e')
            a->req.from_end = true;
        else if (c == 't' && a->req.type_count < TAIL_TYPES_MAX)
            a->types[a->req.type_count++] = optarg;
        else if (c == 'P')
            a->req.type_prefix = optarg;
        else if (c == 'p')
            a->req.stream_prefix = optarg;
        else if (c == 'c' && !cli_parse_i64(optarg, 0, INT64_MAX, &v))
            a->count = v;
        else if (c == 'T' && !cli_parse_i64(optarg, 1, INT32_MAX, &v))
            a->silence_ms = v;
        else if (c == 'j')
            a->json = true;
        else if (c == 'h')
            return fputs(tail_help, stdout), -1;
        else
            return cli_usage_error("tail", "bad option or value");
    }
    if (optind != argc - 1)
        return cli_usage_error("tail", "expected one STREAM");
    if (from_given && a->req.from_end)
        return cli_usage_error("tail", "--from and --from-end exclude each other");
    a->req.stream = argv[optind];
    a->req.types = a->types;
    return 0;
}


/* Prints items until the count, the silence limit, a signal or an error. */
static int tail_loop(evs_sub_t *sub, const tail_args_t *a)
{
    int64_t left = a->count, last_ms = (int64_t)util_mono_ms();
    while (left != 0 && !cli_stop) {
        int wait_ms;
        if (!cli_wait_ms(a->silence_ms, last_ms, TAIL_POLL_MS, &wait_ms))
            break;
        evs_sub_item_t item;
        int err = evs_sub_next(sub, wait_ms, &item);
        if (err == EVS_ETIMEDOUT)
            continue;
        if (err)
            return cli_fail("tail", err);
        last_ms = (int64_t)util_mono_ms();
        if (item.kind == EVS_SUB_CAUGHT_UP) {
            fprintf(stderr, "evstore tail: caught up (next %llu)\n",
                    (unsigned long long)item.next);
            continue;
        }
        cli_event_print(&item.event, a->json, -1);
        fflush(stdout);
        left -= left > 0;
    }
    return CLI_OK;
}

int cmd_tail(const cli_global_t *g, int argc, char **argv)
{
    tail_args_t a;
    int code = tail_args_parse(argc, argv, &a);
    if (code)
        return code < 0 ? CLI_OK : code;
    if (a.count == 0)
        return CLI_OK;
    evs_options_t o;
    cli_options(g, &o);
    evs_sub_t *sub = NULL;
    int err = evs_subscribe(&o, &a.req, &sub);
    if (err)
        return cli_fail("tail", err);
    cli_signals_catch();
    code = tail_loop(sub, &a);
    evs_sub_close(sub);
    return code;
}
