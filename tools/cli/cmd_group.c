/* cmd_group.c -- evstore group create|update|delete|list|info|replay-parked|
 * consume: persistent subscription groups. */
#include "cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GROUP_POLL_MS 200 /* how often a signal is noticed while consuming */

static const char group_help[] =
    "usage: evstore group COMMAND [ARGS]\n"
    "\n"
    "Persistent subscription groups: the server reads a stream, a category or\n"
    "$all and shares the events among the group's consumers.\n"
    "\n"
    "commands:\n"
    "  create NAME --stream S [settings]   create a group\n"
    "  update NAME [settings]              change a group's settings (the others stay)\n"
    "  delete NAME                         delete a group\n"
    "  list [--json]                       every group, one per line\n"
    "  info NAME [--json]                  a group's settings and counters\n"
    "  replay-parked NAME                  deliver the parked events again\n"
    "  consume NAME [options]              join the group and print its events\n"
    "\n"
    "'evstore group COMMAND --help' describes each.\n"
    "Exit status 1 when the group does not exist (or exists, for create).\n";

static const char settings_help[] =
    "usage: evstore group create NAME --stream S [options]\n"
    "       evstore group update NAME [options]\n"
    "\n"
    "options:\n"
    "  --stream S          a stream, $ce-CATEGORY or $all (create only)\n"
    "  --from N            first version (stream) or position (create only; default 0)\n"
    "  --from-end          start with the events written from now on (create only)\n"
    "  --strategy S        round-robin (default) or pinned (one stream, one consumer)\n"
    "  --ack-timeout-ms N  redeliver an event not acked within N ms\n"
    "  --max-retries N     park an event after N redeliveries\n"
    "  --max-inflight N    unacked events per consumer\n"
    "  --type T            only events of type T (repeatable)\n"
    "  --type-prefix P     only events whose type starts with P\n"
    "  --help              this text\n"
    "\n"
    "Numbers left out are the server's defaults on create, and unchanged on update.\n";

static const char name_help[] =
    "usage: evstore group delete|info|replay-parked NAME [--json]\n"
    "       evstore group list [--json]\n"
    "\n"
    "  delete NAME         delete the group (its consumers are dropped)\n"
    "  info NAME           settings, checkpoint, lag, consumers, in-flight,\n"
    "                      parked, delivered, acked and redelivered counts\n"
    "  list                one line (or JSON object) per group\n"
    "  replay-parked NAME  deliver the events parked in $parked-NAME again\n"
    "  --json              JSON output (info, list)\n";

static const char consume_help[] =
    "usage: evstore group consume NAME [options]\n"
    "\n"
    "Joins the group and prints each event delivered to it (as 'evstore read'\n"
    "prints them; JSON adds \"retry_count\"), then settles it.\n"
    "\n"
    "options:\n"
    "  --ack               ack each event (the default)\n"
    "  --nack-park         nack each event with 'park'\n"
    "  --nack-retry        nack each event with 'retry'\n"
    "  --nack-skip         nack each event with 'skip'\n"
    "  --no-ack            leave events unacked (they come back after the timeout)\n"
    "  --count N           stop after N events\n"
    "  --timeout-ms N      stop after N ms without an event\n"
    "  --max-inflight N    this consumer's limit of unacked events\n"
    "  --json              JSON lines\n"
    "  --help              this text\n"
    "\n"
    "Stops on Ctrl-C (exit 0). If the connection drops it rejoins the group;\n"
    "delivery is at least once.\n";

/* ---- settings: create and update ---- */

typedef struct {
    evs_group_settings_t s;
    const char *types[EVS_GROUP_TYPES_MAX];
    bool strategy_given, types_given, prefix_given;
    bool ack_timeout_given, retries_given, inflight_given;
} settings_args_t;

static int strategy_parse(const char *text, evs_group_strategy_t *out)
{
    if (strcmp(text, "round-robin") == 0)
        *out = EVS_GROUP_ROUND_ROBIN;
    else if (strcmp(text, "pinned") == 0)
        *out = EVS_GROUP_PINNED;
    else
        return -1;
    return 0;
}

static const char *strategy_name(evs_group_strategy_t s)
{
    return s == EVS_GROUP_PINNED ? "pinned" : "round-robin";
}

/* Parses one settings option; returns 0, or -1 when it is not one. */
static int settings_option(settings_args_t *a, int c, bool *from_given)
{
    int64_t v;
    if (c == 's')
        a->s.stream = optarg;
    else if (c == 'f' && !cli_parse_i64(optarg, 0, INT64_MAX, &v))
        a->s.from = (uint64_t)v, *from_given = true;
    else if (c == 'e')
        a->s.from_end = true;
    else if (c == 'S' && !strategy_parse(optarg, &a->s.strategy))
        a->strategy_given = true;
    else if (c == 'a' && !cli_parse_i64(optarg, 1, UINT32_MAX, &v))
        a->s.ack_timeout_ms = (uint32_t)v, a->ack_timeout_given = true;
    else if (c == 'r' && !cli_parse_i64(optarg, 0, UINT32_MAX, &v))
        a->s.max_retries = (uint32_t)v, a->retries_given = true;
    else if (c == 'i' && !cli_parse_i64(optarg, 1, UINT32_MAX, &v))
        a->s.inflight_max_per_consumer = (uint32_t)v, a->inflight_given = true;
    else if (c == 't' && a->s.type_count < EVS_GROUP_TYPES_MAX)
        a->types[a->s.type_count++] = optarg, a->types_given = true;
    else if (c == 'P')
        a->s.type_prefix = optarg, a->prefix_given = true;
    else
        return -1;
    return 0;
}

static int settings_parse(int argc, char **argv, bool create, settings_args_t *a)
{
    static const struct option opts[] = {
        { "stream", required_argument, NULL, 's' },     { "from", required_argument, NULL, 'f' },
        { "from-end", no_argument, NULL, 'e' },         { "strategy", required_argument, NULL, 'S' },
        { "ack-timeout-ms", required_argument, NULL, 'a' },
        { "max-retries", required_argument, NULL, 'r' },
        { "max-inflight", required_argument, NULL, 'i' }, { "type", required_argument, NULL, 't' },
        { "type-prefix", required_argument, NULL, 'P' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = create ? "group create" : "group update";
    memset(a, 0, sizeof *a);
    bool from_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h')
            return fputs(settings_help, stdout), -1;
        if (settings_option(a, c, &from_given))
            return cli_usage_error(cmd, "bad option or value");
    }
    if (optind != argc - 1)
        return cli_usage_error(cmd, "expected one NAME");
    a->s.name = argv[optind];
    a->s.types = a->types;
    if (create && !a->s.stream)
        return cli_usage_error(cmd, "--stream is required");
    if (!create && (a->s.stream || from_given || a->s.from_end))
        return cli_usage_error(cmd, "--stream, --from and --from-end are for create only");
    if (from_given && a->s.from_end)
        return cli_usage_error(cmd, "--from and --from-end exclude each other");
    return 0;
}

/* Update: the group's current settings, with the options given on top. */
static void settings_overlay(settings_args_t *a, const evs_group_settings_t *cur)
{
    if (!a->strategy_given)
        a->s.strategy = cur->strategy;
    if (!a->ack_timeout_given)
        a->s.ack_timeout_ms = cur->ack_timeout_ms;
    if (!a->retries_given)
        a->s.max_retries = cur->max_retries;
    if (!a->inflight_given)
        a->s.inflight_max_per_consumer = cur->inflight_max_per_consumer;
    if (!a->types_given) {
        a->s.types = cur->types;
        a->s.type_count = cur->type_count;
    }
    if (!a->prefix_given)
        a->s.type_prefix = cur->type_prefix;
}

static int group_settings(const cli_global_t *g, int argc, char **argv, bool create)
{
    settings_args_t a;
    int code = settings_parse(argc, argv, create, &a);
    if (code)
        return code < 0 ? CLI_OK : code;
    evs_conn_t *conn = cli_connect(g, &code);
    if (!conn)
        return code;
    evs_group_info_t cur = { 0 };
    int err = create ? 0 : evs_group_info(conn, a.s.name, &cur);
    if (!err && !create)
        settings_overlay(&a, &cur.settings);
    if (!err)
        err = create ? evs_group_create(conn, &a.s) : evs_group_update(conn, &a.s);
    code = err ? cli_fail(create ? "group create" : "group update", err) : CLI_OK;
    evs_group_info_free(&cur);
    evs_close(conn);
    return code;
}

/* ---- list, info ---- */

static json_t *info_json(const evs_group_info_t *gi)
{
    const evs_group_settings_t *s = &gi->settings;
    json_t *o = json_object(), *types = json_array();
    for (size_t i = 0; i < s->type_count; i++)
        json_array_append_new(types, json_string(s->types[i]));
    json_object_set_new(o, "name", json_string(s->name ? s->name : ""));
    json_object_set_new(o, "stream", json_string(s->stream ? s->stream : ""));
    json_object_set_new(o, "from", json_integer((json_int_t)s->from));
    json_object_set_new(o, "from_end", json_boolean(s->from_end));
    json_object_set_new(o, "strategy", json_string(strategy_name(s->strategy)));
    json_object_set_new(o, "ack_timeout_ms", json_integer(s->ack_timeout_ms));
    json_object_set_new(o, "max_retries", json_integer(s->max_retries));
    json_object_set_new(o, "max_inflight_per_consumer",
                        json_integer(s->inflight_max_per_consumer));
    json_object_set_new(o, "types", types);
    json_object_set_new(o, "type_prefix", json_string(s->type_prefix ? s->type_prefix : ""));
    json_object_set_new(o, "checkpoint", json_integer((json_int_t)gi->checkpoint));
    json_object_set_new(o, "next", json_integer((json_int_t)gi->next));
    json_object_set_new(o, "lag", json_integer((json_int_t)gi->lag));
    json_object_set_new(o, "consumers", json_integer(gi->consumers));
    json_object_set_new(o, "inflight", json_integer(gi->inflight));
    json_object_set_new(o, "parked", json_integer((json_int_t)gi->parked));
    json_object_set_new(o, "delivered", json_integer((json_int_t)gi->delivered));
    json_object_set_new(o, "acked", json_integer((json_int_t)gi->acked));
    json_object_set_new(o, "redelivered", json_integer((json_int_t)gi->redelivered));
    return o;
}

static void json_print(json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    json_decref(o);
}

static void info_print_text(const evs_group_info_t *gi)
{
    const evs_group_settings_t *s = &gi->settings;
    printf("name: %s\nstream: %s\nstrategy: %s\n", s->name, s->stream,
           strategy_name(s->strategy));
    if (s->from_end)
        printf("from: end\n");
    else
        printf("from: %llu\n", (unsigned long long)s->from);
    printf("ack_timeout_ms: %u\nmax_retries: %u\nmax_inflight_per_consumer: %u\n",
           s->ack_timeout_ms, s->max_retries, s->inflight_max_per_consumer);
    printf("types:");
    for (size_t i = 0; i < s->type_count; i++)
        printf(" %s", s->types[i]);
    printf("\ntype_prefix: %s\n", s->type_prefix ? s->type_prefix : "");
    printf("checkpoint: %llu\nnext: %llu\nlag: %llu\nconsumers: %u\ninflight: %u\n"
           "parked: %llu\ndelivered: %llu\nacked: %llu\nredelivered: %llu\n",
           (unsigned long long)gi->checkpoint, (unsigned long long)gi->next,
           (unsigned long long)gi->lag, gi->consumers, gi->inflight,
           (unsigned long long)gi->parked, (unsigned long long)gi->delivered,
           (unsigned long long)gi->acked, (unsigned long long)gi->redelivered);
}

static void list_print_text(const evs_group_info_t *gi)
{
    printf("%s %s strategy=%s consumers=%u inflight=%u lag=%llu parked=%llu\n",
           gi->settings.name, gi->settings.stream, strategy_name(gi->settings.strategy),
           gi->consumers, gi->inflight, (unsigned long long)gi->lag,
           (unsigned long long)gi->parked);
}

/* Parses [NAME] [--json] for delete, list, info, replay-parked. */
static int name_args_parse(int argc, char **argv, const char *cmd, bool want_name,
                           const char **name, bool *json)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    *json = false;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'j')
            *json = true;
        else if (c == 'h')
            return fputs(name_help, stdout), -1;
        else
            return cli_usage_error(cmd, "bad option");
    }
    if (optind != argc - (want_name ? 1 : 0))
        return cli_usage_error(cmd, want_name ? "expected one NAME" : "no arguments expected");
    *name = want_name ? argv[optind] : NULL;
    return 0;
}

static int group_list(evs_conn_t *conn, bool json)
{
    evs_group_list_t list;
    int err = evs_group_list(conn, &list);
    if (err)
        return cli_fail("group list", err);
    for (size_t i = 0; i < list.count; i++) {
        if (json)
            json_print(info_json(&list.groups[i]));
        else
            list_print_text(&list.groups[i]);
    }
    evs_group_list_free(&list);
    return CLI_OK;
}

static int group_info(evs_conn_t *conn, const char *name, bool json)
{
    evs_group_info_t gi;
    int err = evs_group_info(conn, name, &gi);
    if (err)
        return cli_fail("group info", err);
    if (json)
        json_print(info_json(&gi));
    else
        info_print_text(&gi);
    evs_group_info_free(&gi);
    return CLI_OK;
}

/* delete, list, info, replay-parked: one request each. */
static int group_simple(const cli_global_t *g, int argc, char **argv, const char *sub)
{
    char cmd[48];
    snprintf(cmd, sizeof cmd, "group %s", sub);
    bool is_list = strcmp(sub, "list") == 0, json = false;
    const char *name = NULL;
    int code = name_args_parse(argc, argv, cmd, !is_list, &name, &json);
    if (code)
        return code < 0 ? CLI_OK : code;
    evs_conn_t *conn = cli_connect(g, &code);
    if (!conn)
        return code;
    if (is_list)
        code = group_list(conn, json);
    else if (strcmp(sub, "info") == 0)
        code = group_info(conn, name, json);
    else {
        int err = strcmp(sub, "delete") == 0 ? evs_group_delete(conn, name)
                                             : evs_group_replay_parked(conn, name);
        code = err ? cli_fail(cmd, err) : CLI_OK;
    }
    fflush(stdout);
    evs_close(conn);
    return code;
}

/* ---- consume ---- */

typedef enum { SETTLE_ACK, SETTLE_NACK, SETTLE_NONE } settle_t;

typedef struct {
    const char *name;
    settle_t settle;
    evs_nack_action_t nack;
    int64_t count, silence_ms;
    uint32_t inflight_max;
    bool json;
} consume_args_t;

static int consume_parse(int argc, char **argv, consume_args_t *a)
{
    static const struct option opts[] = {
        { "ack", no_argument, NULL, 'A' },        { "nack-park", no_argument, NULL, 'p' },
        { "nack-retry", no_argument, NULL, 'r' }, { "nack-skip", no_argument, NULL, 's' },
        { "no-ack", no_argument, NULL, 'n' },     { "count", required_argument, NULL, 'c' },
        { "timeout-ms", required_argument, NULL, 'T' },
        { "max-inflight", required_argument, NULL, 'i' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof *a);
    a->count = a->silence_ms = -1;
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'A')
            a->settle = SETTLE_ACK;
        else if (c == 'p' || c == 'r' || c == 's')
            a->settle = SETTLE_NACK,
            a->nack = c == 'p' ? EVS_NACK_PARK : c == 'r' ? EVS_NACK_RETRY : EVS_NACK_SKIP;
        else if (c == 'n')
            a->settle = SETTLE_NONE;
        else if (c == 'c' && !cli_parse_i64(optarg, 0, INT64_MAX, &v))
            a->count = v;
        else if (c == 'T' && !cli_parse_i64(optarg, 1, INT32_MAX, &v))
            a->silence_ms = v;
        else if (c == 'i' && !cli_parse_i64(optarg, 1, UINT32_MAX, &v))
            a->inflight_max = (uint32_t)v;
        else if (c == 'j')
            a->json = true;
        else if (c == 'h')
            return fputs(consume_help, stdout), -1;
        else
            return cli_usage_error("group consume", "bad option or value");
    }
    if (optind != argc - 1)
        return cli_usage_error("group consume", "expected one NAME");
    a->name = argv[optind];
    return 0;
}


static int settle(evs_consumer_t *c, const consume_args_t *a, uint64_t position)
{
    if (a->settle == SETTLE_ACK)
        return evs_consumer_ack(c, position);
    if (a->settle == SETTLE_NACK)
        return evs_consumer_nack(c, position, a->nack, "evstore group consume");
    return 0;
}

static int consume_loop(evs_consumer_t *c, const consume_args_t *a)
{
    int64_t left = a->count, last_ms = (int64_t)util_mono_ms();
    while (left != 0 && !cli_stop) {
        int wait_ms;
        if (!cli_wait_ms(a->silence_ms, last_ms, GROUP_POLL_MS, &wait_ms))
            break;
        evs_group_event_t ev;
        int err = evs_consumer_next(c, wait_ms, &ev);
        if (err == EVS_ETIMEDOUT)
            continue;
        if (err)
            return cli_fail("group consume", err);
        last_ms = (int64_t)util_mono_ms();
        cli_event_print(&ev.event, a->json, ev.retry_count);
        fflush(stdout);
        err = settle(c, a, ev.event.position);
        if (err && err != EVS_ECLOSED) /* closed: it comes back after the rejoin */
            return cli_fail("group consume", err);
        left -= left > 0;
    }
    return CLI_OK;
}

#define CONSUME_DRAIN_MS 200 /* after the last ack: read the server's answers */

static int group_consume(const cli_global_t *g, int argc, char **argv)
{
    consume_args_t a;
    int code = consume_parse(argc, argv, &a);
    if (code)
        return code < 0 ? CLI_OK : code;
    if (a.count == 0)
        return CLI_OK;
    evs_options_t o;
    cli_options(g, &o);
    evs_consumer_t *c = NULL;
    int err = evs_group_join(&o, a.name, a.inflight_max, &c);
    if (err)
        return cli_fail("group consume", err);
    cli_signals_catch();
    code = consume_loop(c, &a);
    evs_consumer_stats_t st;
    evs_consumer_stats(c, &st);
    for (int64_t end = (int64_t)util_mono_ms() + CONSUME_DRAIN_MS;
         st.acks_done + st.ack_errors < st.acks_sent && (int64_t)util_mono_ms() < end;) {
        evs_group_event_t ev; /* events now are not printed: they go back on close */
        (void)evs_consumer_next(c, 20, &ev);
        evs_consumer_stats(c, &st);
    }
    if (st.ack_errors)
        fprintf(stderr, "evstore group consume: %llu acks/nacks refused (last: %s)\n",
                (unsigned long long)st.ack_errors, evs_strerror(st.last_ack_error));
    evs_consumer_close(c);
    return code;
}

int cmd_group(const cli_global_t *g, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc < 2)
            return cli_usage_error("group", "no group command");
        return fputs(group_help, stdout), CLI_OK;
    }
    const char *sub = argv[1];
    argc--, argv++;
    if (strcmp(sub, "create") == 0 || strcmp(sub, "update") == 0)
        return group_settings(g, argc, argv, sub[0] == 'c');
    if (strcmp(sub, "delete") == 0 || strcmp(sub, "list") == 0 || strcmp(sub, "info") == 0 ||
        strcmp(sub, "replay-parked") == 0)
        return group_simple(g, argc, argv, sub);
    if (strcmp(sub, "consume") == 0)
        return group_consume(g, argc, argv);
    return cli_usage_error("group", "unknown group command '%s'", sub);
}
