/* cmd_info.c -- evstore streams, stats and ping. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char streams_help[] =
    "usage: evstore streams [--prefix P]\n"
    "\n"
    "Lists streams (sorted by name) with the version of their last event, one\n"
    "per line: NAME VERSION.\n"
    "\n"
    "options:\n"
    "  --prefix P   only streams whose name starts with P\n"
    "  --help       this text\n";

static const char stats_help[] =
    "usage: evstore stats\n\nPrints the server's counters, one 'name: value' per line.\n";

static const char ping_help[] =
    "usage: evstore ping\n\nSends a ping and prints the round trip time.\n";

/* Parses a command that takes only --help (and, for streams, --prefix). */
static int simple_args(const char *cmd, const char *help, int argc, char **argv,
                       const char **prefix)
{
    static const struct option opts[] = {
        { "prefix", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return fputs(help, stdout), -1;
        if (c != 'p' || !prefix)
            return cli_usage_error(cmd, "bad option");
        *prefix = optarg;
    }
    if (optind != argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static int streams_print(evs_conn_t *conn, const char *prefix)
{
    char after[1100] = "";
    for (;;) {
        evs_stream_list_t list;
        int err = evs_list_streams(conn, prefix, after, 0, &list);
        if (err)
            return cli_fail("streams", err);
        for (size_t i = 0; i < list.count; i++)
            printf("%s %lld\n", list.streams[i].name, (long long)list.streams[i].version);
        bool end = list.end || list.count == 0;
        if (!end)
            snprintf(after, sizeof after, "%s", list.streams[list.count - 1].name);
        evs_stream_list_free(&list);
        if (end)
            return CLI_OK;
    }
}

int cmd_streams(const cli_global_t *g, int argc, char **argv)
{
    const char *prefix = NULL;
    int code = simple_args("streams", streams_help, argc, argv, &prefix);
    if (code)
        return code < 0 ? CLI_OK : code;
    evs_conn_t *conn = cli_connect(g, &code);
    if (!conn)
        return code;
    code = streams_print(conn, prefix);
    evs_close(conn);
    return code;
}

static void stats_print(const evs_conn_t *conn, const evs_server_stats_t *s)
{
    evs_server_info_t info;
    evs_server_info(conn, &info);
    printf("server_version: %s\n", info.server_version);
    printf("durability: %s\n", s->durability);
    printf("uptime_ms: %llu\n", (unsigned long long)s->uptime_ms);
    printf("head_position: %llu\n", (unsigned long long)s->head_position);
    printf("durable_position: %llu\n", (unsigned long long)s->durable_position);
    printf("streams: %llu\n", (unsigned long long)s->streams);
    printf("appends: %llu\n", (unsigned long long)s->appends);
    printf("events_appended: %llu\n", (unsigned long long)s->events_appended);
    printf("bytes_written: %llu\n", (unsigned long long)s->bytes_written);
    printf("fdatasyncs: %llu\n", (unsigned long long)s->fdatasyncs);
    printf("connections: %llu\n", (unsigned long long)s->connections);
    printf("segments: %llu\n", (unsigned long long)s->segments);
    printf("frame_bytes_max: %u\n", info.frame_bytes_max);
    printf("append_events_max: %u\n", info.append_events_max);
    printf("read_events_max: %u\n", info.read_events_max);
}

int cmd_stats(const cli_global_t *g, int argc, char **argv)
{
    int code = simple_args("stats", stats_help, argc, argv, NULL);
    if (code)
        return code < 0 ? CLI_OK : code;
    evs_conn_t *conn = cli_connect(g, &code);
    if (!conn)
        return code;
    evs_server_stats_t s;
    int err = evs_server_stats(conn, &s);
    if (err)
        code = cli_fail("stats", err);
    else
        stats_print(conn, &s);
    evs_close(conn);
    return code;
}

int cmd_ping(const cli_global_t *g, int argc, char **argv)
{
    int code = simple_args("ping", ping_help, argc, argv, NULL);
    if (code)
        return code < 0 ? CLI_OK : code;
    evs_conn_t *conn = cli_connect(g, &code);
    if (!conn)
        return code;
    uint64_t rtt_us = 0;
    int err = evs_ping(conn, &rtt_us);
    if (err)
        code = cli_fail("ping", err);
    else
        printf("pong from %s:%u in %llu us\n", g->host, (unsigned)g->port,
               (unsigned long long)rtt_us);
    evs_close(conn);
    return code;
}
