/* cmd_read.c -- evstore read STREAM|$ce-CAT|$all: pages through the events
 * with the server's `next`, printing text or JSON lines. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_TYPES_MAX 64

static const char read_help[] =
    "usage: evstore read STREAM|$ce-CATEGORY|$all [options]\n"
    "\n"
    "Prints events, oldest first (or newest first with --backwards), one per line:\n"
    "  text:  POSITION STREAM@VERSION TYPE DATA\n"
    "  json:  {\"position\", \"stream\", \"version\", \"id\", \"type\", \"timestamp_ns\",\n"
    "          \"data\", \"metadata\"}  (data/metadata: the JSON value when the bytes\n"
    "          are JSON, else a string; \"data_hex\" when they are not UTF-8)\n"
    "\n"
    "options:\n"
    "  --from N          first version (stream) or position ($ce-, $all); inclusive\n"
    "  --backwards       newest first (from the end unless --from is given)\n"
    "  --count N         print at most N events (default: all)\n"
    "  --type T          only events of type T (repeatable)\n"
    "  --type-prefix P   only events whose type starts with P\n"
    "  --json            JSON lines\n"
    "  --help            this text\n"
    "\n"
    "Exit status 1 when the stream does not exist.\n";

typedef struct {
    const char *stream;
    evs_read_t req;
    const char *types[READ_TYPES_MAX];
    bool from_given;
    int64_t count; /* -1: all */
    bool json;
} read_args_t;

static int read_args_parse(int argc, char **argv, read_args_t *a)
{
    static const struct option opts[] = {
        { "from", required_argument, NULL, 'f' },   { "backwards", no_argument, NULL, 'b' },
        { "count", required_argument, NULL, 'c' },  { "type", required_argument, NULL, 't' },
        { "type-prefix", required_argument, NULL, 'P' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof *a);
    a->count = -1;
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'f' && !cli_parse_i64(optarg, 0, INT64_MAX, &v))
            a->req.from = (uint64_t)v, a->from_given = true;
        else if (c == 'c' && !cli_parse_i64(optarg, 0, INT64_MAX, &v))
            a->count = v;
        else if (c == 't' && a->req.type_count < READ_TYPES_MAX)
            a->types[a->req.type_count++] = optarg;
        else if (c == 'b')
            a->req.backwards = true;
        else if (c == 'P')
            a->req.type_prefix = optarg;
        else if (c == 'j')
            a->json = true;
        else if (c == 'h')
            return fputs(read_help, stdout), -1;
        else
            return cli_usage_error("read", "bad option or value");
    }
    if (optind != argc - 1)
        return cli_usage_error("read", "expected one STREAM");
    a->stream = argv[optind];
    a->req.stream = a->stream;
    a->req.types = a->types;
    a->req.from_end = a->req.backwards && !a->from_given;
    return 0;
}

/* Reads and prints pages until the end or the count. */
static int read_pages(evs_conn_t *conn, read_args_t *a)
{
    evs_server_info_t info;
    evs_server_info(conn, &info);
    int64_t left = a->count;
    while (left != 0) {
        a->req.max_count = left > 0 && left < (int64_t)info.read_events_max ? (uint32_t)left : 0;
        evs_read_result_t res;
        int err = evs_read(conn, &a->req, &res);
        if (err)
            return cli_fail("read", err);
        for (size_t i = 0; i < res.count && left != 0; i++, left -= left > 0) {
            cli_event_print(&res.events[i], a->json, -1);
        }
        bool end = res.end || (res.count == 0 && a->req.from == res.next && !a->req.from_end);
        a->req.from = res.next;
        a->req.from_end = false;
        evs_read_result_free(&res);
        if (end)
            break;
    }
    return fflush(stdout) == 0 ? CLI_OK : CLI_EUSAGE;
}

int cmd_read(const cli_global_t *g, int argc, char **argv)
{
    read_args_t a;
    int code = read_args_parse(argc, argv, &a);
    if (code)
        return code < 0 ? CLI_OK : code;
    evs_conn_t *conn = cli_connect(g, &code);
    if (!conn)
        return code;
    code = read_pages(conn, &a);
    evs_close(conn);
    return code;
}
