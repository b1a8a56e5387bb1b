/* cmd_append.c -- evstore append STREAM: events from the arguments, or from
 * stdin as JSON lines (or text lines with --type). Stdin input is sent in
 * appends as large as the server allows; each append is one batch. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char append_help[] =
    "usage: evstore append STREAM [options] [DATA...]\n"
    "\n"
    "Appends events to STREAM. Each DATA argument is one event's data (all in one\n"
    "append, which is all or nothing); --type is then required. Without DATA,\n"
    "events come from stdin, one per line: JSON objects\n"
    "  {\"type\": \"T\", \"data\": ..., \"metadata\": ..., \"id\": \"UUID\"}\n"
    "(data and metadata: a string is stored as is, any other JSON value as its\n"
    "compact text; id: 32 hex digits, dashes allowed, random when absent), or,\n"
    "with --type, plain text lines, each line the data of one event.\n"
    "\n"
    "options:\n"
    "  --expected-version V  any (default), no_stream, stream_exists, or a version\n"
    "                        N (the version of the stream's last event)\n"
    "  --type T              event type for DATA arguments and text lines (and the\n"
    "                        default for JSON lines without \"type\")\n"
    "  --metadata M          metadata for DATA arguments\n"
    "  --help                this text\n"
    "\n"
    "Prints the versions and positions written. Exit status 1 when the server\n"
    "refuses the append (e.g. wrong expected version), 2 for bad input.\n";

typedef struct {
    const char *stream;
    int64_t expected;
    const char *type;
    const char *metadata;
    int first_data; /* argv index of the first DATA, or argc */
} append_args_t;

/* Events collected for one append, with the buffers they own. */
typedef struct {
    evs_event_t *ev;
    char **owned; /* 3 per event: type, data, metadata (NULL when borrowed) */
    size_t count, cap, bytes;
} pending_t;

static int expected_parse(const char *text, int64_t *out)
{
    if (!strcmp(text, "any"))
        *out = EVS_EXPECT_ANY;
    else if (!strcmp(text, "no_stream"))
        *out = EVS_EXPECT_NO_STREAM;
    else if (!strcmp(text, "stream_exists"))
        *out = EVS_EXPECT_STREAM_EXISTS;
    else
        return cli_parse_i64(text, 0, INT64_MAX, out);
    return 0;
}

static int args_parse(int argc, char **argv, append_args_t *a)
{
    static const struct option opts[] = {
        { "expected-version", required_argument, NULL, 'e' },
        { "type", required_argument, NULL, 't' },
        { "metadata", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    *a = (append_args_t){ .expected = EVS_EXPECT_ANY };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'e' && expected_parse(optarg, &a->expected))
            return cli_usage_error("append", "bad --expected-version '%s'", optarg);
        if (c == 't')
            a->type = optarg;
        else if (c == 'm')
            a->metadata = optarg;
        else if (c == 'h')
            return fputs(append_help, stdout), -1;
        else if (c != 'e')
            return cli_usage_error("append", "bad option");
    }
    if (optind >= argc)
        return cli_usage_error("append", "no STREAM");
    a->stream = argv[optind];
    a->first_data = optind + 1;
    if (a->first_data < argc && (!a->type || !a->type[0]))
        return cli_usage_error("append", "DATA arguments need --type");
    return 0;
}

static void pending_clear(pending_t *p)
{
    for (size_t i = 0; i < p->count * 3; i++)
        free(p->owned[i]);
    p->count = 0;
    p->bytes = 0;
}

static void pending_free(pending_t *p)
{
    pending_clear(p);
    free(p->ev);
    free(p->owned);
}

/* Adds an event; the three buffers (each may be NULL) become owned. */
static int pending_add(pending_t *p, const evs_event_t *ev, char *type, char *data, char *meta)
{
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        evs_event_t *e = realloc(p->ev, cap * sizeof *e);
        char **o = e ? realloc(p->owned, cap * 3 * sizeof *o) : NULL;
        if (e)
            p->ev = e;
        if (!o)
            return -ENOMEM;
        p->owned = o;
        p->cap = cap;
    }
    p->ev[p->count] = *ev;
    p->owned[p->count * 3] = type;
    p->owned[p->count * 3 + 1] = data;
    p->owned[p->count * 3 + 2] = meta;
    p->count++;
    p->bytes += ev->data_len + ev->metadata_len + strlen(ev->type) + 64;
    return 0;
}

static void result_print(const char *stream, const evs_append_result_t *res)
{
    int64_t last = res->last_versions[0];
    printf("appended %u events to %s: versions %lld..%lld, positions %llu..%llu%s\n",
           res->event_count, stream, (long long)(last - res->event_count + 1), (long long)last,
           (unsigned long long)res->first_position,
           (unsigned long long)(res->first_position + res->event_count - 1),
           res->idempotent ? " (a retry: nothing new written)" : "");
}

/* Appends what is pending as one batch. Later batches expect the version
 * this one produced (unless the mode is "any"). */
static int pending_flush(evs_conn_t *conn, append_args_t *a, pending_t *p)
{
    if (p->count == 0)
        return CLI_OK;
    evs_stream_append_t sa = { .stream = a->stream, .expected_version = a->expected,
                               .events = p->ev, .event_count = p->count };
    evs_append_result_t res;
    int err = evs_append(conn, &sa, 1, &res);
    pending_clear(p);
    if (err == EVS_EWRONG_VERSION) {
        fprintf(stderr, "evstore append: wrong expected version: %s is at version %lld\n",
                a->stream, (long long)res.actual_version);
        return CLI_ESERVER;
    }
    if (err)
        return cli_fail("append", err);
    result_print(a->stream, &res);
    if (a->expected != EVS_EXPECT_ANY)
        a->expected = res.last_versions[0];
    return CLI_OK;
}

/* A JSON value as event bytes: a string as is, null as nothing, anything
 * else as its compact JSON text. Returns a malloc'd buffer (or NULL). */
static char *json_bytes(json_t *v, size_t *len)
{
    *len = 0;
    if (!v || json_is_null(v))
        return NULL;
    char *out;
    if (json_is_string(v)) {
        *len = json_string_length(v);
        out = malloc(*len + 1);
        if (out)
            memcpy(out, json_string_value(v), *len + 1);
        return out;
    }
    out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    *len = out ? strlen(out) : 0;
    return out;
}

/* Builds one event from a JSON object line. */
static int event_from_json(const char *line, size_t lineno, const char *default_type,
                           pending_t *p)
{
    json_error_t jerr;
    json_t *root = json_loads(line, 0, &jerr);
    int code = CLI_EUSAGE;
    evs_event_t ev = { 0 };
    if (!root || !json_is_object(root)) {
        fprintf(stderr, "evstore append: line %zu: not a JSON object%s%s\n", lineno,
                root ? "" : ": ", root ? "" : jerr.text);
        goto out_free_root;
    }
    json_t *type = json_object_get(root, "type"), *id = json_object_get(root, "id");
    const char *t = json_is_string(type) ? json_string_value(type) : default_type;
    if (!t || !t[0] || (type && !json_is_string(type))) {
        fprintf(stderr, "evstore append: line %zu: no \"type\" (or use --type)\n", lineno);
        goto out_free_root;
    }
    if (id && (!json_is_string(id) || evs_id_parse(json_string_value(id), ev.id))) {
        fprintf(stderr, "evstore append: line %zu: \"id\" is not 32 hex digits\n", lineno);
        goto out_free_root;
    }
    if (!id)
        evs_id_random(ev.id);
    char *type_copy = strdup(t);
    char *data = json_bytes(json_object_get(root, "data"), &ev.data_len);
    char *meta = json_bytes(json_object_get(root, "metadata"), &ev.metadata_len);
    ev.type = type_copy;
    ev.data = data;
    ev.metadata = meta;
    code = type_copy && pending_add(p, &ev, type_copy, data, meta) == 0 ? CLI_OK : CLI_EUSAGE;
    if (code) {
        free(type_copy), free(data), free(meta);
        fprintf(stderr, "evstore append: out of memory\n");
    }
out_free_root:
    json_decref(root);
    return code;
}

/* Builds one event from a text line (data = the line). */
static int event_from_text(const char *line, size_t len, const char *type, pending_t *p)
{
    evs_event_t ev = { .type = type };
    char *data = malloc(len + 1);
    if (!data)
        return CLI_EUSAGE;
    memcpy(data, line, len + 1);
    evs_id_random(ev.id);
    ev.data = data;
    ev.data_len = len;
    if (pending_add(p, &ev, NULL, data, NULL)) {
        free(data);
        return CLI_EUSAGE;
    }
    return CLI_OK;
}

/* Limits of one append: the server's event limit and half its frame. */
static void batch_limits(evs_conn_t *conn, size_t *events_max, size_t *bytes_max)
{
    evs_server_info_t info;
    evs_server_info(conn, &info);
    *events_max = info.append_events_max ? info.append_events_max : 1000;
    *bytes_max = info.frame_bytes_max / 2;
}

static int append_from_stdin(evs_conn_t *conn, append_args_t *a)
{
    pending_t p = { 0 };
    size_t events_max, bytes_max, lineno = 0, total = 0;
    batch_limits(conn, &events_max, &bytes_max);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int code = CLI_OK;
    while (code == CLI_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 && !a->type)
            continue; /* blank lines between JSON objects */
        code = a->type ? event_from_text(line, (size_t)len, a->type, &p)
                       : event_from_json(line, lineno, NULL, &p);
        total++;
        if (code == CLI_OK && (p.count >= events_max || p.bytes >= bytes_max))
            code = pending_flush(conn, a, &p);
    }
    if (code == CLI_OK && total == 0)
        code = cli_usage_error("append", "no events on stdin");
    if (code == CLI_OK)
        code = pending_flush(conn, a, &p);
    free(line);
    pending_free(&p);
    return code;
}

static int append_from_args(evs_conn_t *conn, append_args_t *a, int argc, char **argv)
{
    pending_t p = { 0 };
    int code = CLI_OK;
    for (int i = a->first_data; code == CLI_OK && i < argc; i++) {
        evs_event_t ev = { .type = a->type, .data = argv[i], .data_len = strlen(argv[i]) };
        if (a->metadata) {
            ev.metadata = a->metadata;
            ev.metadata_len = strlen(a->metadata);
        }
        evs_id_random(ev.id);
        if (pending_add(&p, &ev, NULL, NULL, NULL))
            code = CLI_EUSAGE;
    }
    if (code == CLI_OK)
        code = pending_flush(conn, a, &p);
    pending_free(&p);
    return code;
}

int cmd_append(const cli_global_t *g, int argc, char **argv)
{
    append_args_t a;
    int code = args_parse(argc, argv, &a);
    if (code)
        return code < 0 ? CLI_OK : code;
    evs_conn_t *conn = cli_connect(g, &code);
    if (!conn)
        return code;
    if (a.first_data < argc)
        code = append_from_args(conn, &a, argc, argv);
    else
        code = append_from_stdin(conn, &a);
    evs_close(conn);
    return code;
}
