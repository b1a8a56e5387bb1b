/* test_inspect.c -- evstore-inspect against logs made by the real engine,
 * clean and then damaged on purpose. Every test runs the built binary
 * (INSPECT_BIN) and checks its exit code and that its output names the
 * damage; a run that ends by a signal fails the test (the tool must never
 * crash, whatever it reads).
 *
 * The damage is placed with the layout of log_int.h (batch headers are
 * found by hopping from offset 4096 with batch_stored_size()).
 *
 * With the services built, OMS_DECODER names the OMS's decoder plugin
 * (liboms-decoder.so): dump decodes OMS events with it, and only with it. */
#define _GNU_SOURCE
#include "log_int.h"
#include "pbjson.h"
#include "proc.h"
#include "protocol.h"
#ifdef OMS_DECODER
#include "oms_domain.h"
#endif

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef INSPECT_BIN
#error "INSPECT_BIN must name the evstore-inspect binary"
#endif

#define SEGMENT_BYTES (64u * 1024)
#define BATCHES 400u
#define STREAMS 5u
#define TIME_BASE_NS 1700000000000000000ll
#define TIME_STEP_NS 1000000ll /* per batch */
#define INSPECT_RUN_MS_MAX 120000 /* one run of the tool */

/* What was appended, to compare the tool's numbers with. */
typedef struct {
    uint64_t events, batches;
    uint64_t per_stream[STREAMS + 1]; /* acct-0..acct-4, then "solo" */
    uint64_t withdrawn;               /* events of type "Withdrawn" */
    uint64_t compressed_batches;
} model_t;

static char g_root[512];
static char g_dir[600];
static model_t g_model;
static char *g_out; /* output of the last run */

/* ---- files ---------------------------------------------------------- */

static void root_make(void)
{
    const char *base = getenv("EVSTORE_TEST_TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/inspect.XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(g_root));
    snprintf(g_dir, sizeof g_dir, "%s/log", g_root);
}

static void tree_remove(const char *path)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    (void)system(cmd);
}

static void path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", g_dir, name);
}

static uint8_t *file_read(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

static void file_write_at(const char *path, uint64_t offset, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(pwrite(fd, p, n, (off_t)offset), (ssize_t)n);
    close(fd);
}

static void bit_flip(const char *path, uint64_t offset)
{
    size_t len;
    uint8_t *buf = file_read(path, &len);
    ck_assert_uint_lt(offset, len);
    uint8_t b = buf[offset] ^ 0x10;
    file_write_at(path, offset, &b, 1);
    free(buf);
}

static void zero_range(const char *path, uint64_t from, uint64_t to)
{
    uint8_t *z = calloc(1, to - from);
    file_write_at(path, from, z, to - from);
    free(z);
}

/* The segment file names of g_dir, sorted; returns how many. */
static int segments_list(char names[][32], int cap)
{
    uint64_t *firsts;
    uint32_t n;
    ck_assert_int_eq(walk_list_segments(g_dir, &firsts, &n), 0);
    for (uint32_t i = 0; i < n && (int)i < cap; i++)
        snprintf(names[i], 32, "%020" PRIu64, firsts[i]);
    free(firsts);
    return (int)n;
}

/* Offsets of the batches of a segment file (by hopping headers). */
static int batches_list(const char *path, uint64_t *offsets, int cap)
{
    size_t len;
    uint8_t *buf = file_read(path, &len);
    int n = 0;
    uint64_t off = SEGMENT_HEADER_BYTES;
    while (off + sizeof(batch_header_t) <= len && n < cap) {
        batch_header_t h;
        memcpy(&h, buf + off, sizeof h);
        if (h.magic != BATCH_MAGIC)
            break;
        offsets[n++] = off;
        off += batch_stored_size(&h);
    }
    free(buf);
    return n;
}

static batch_header_t batch_at(const char *path, uint64_t off)
{
    size_t len;
    uint8_t *buf = file_read(path, &len);
    batch_header_t h;
    memcpy(&h, buf + off, sizeof h);
    free(buf);
    return h;
}

/* A checksum of every file of g_dir, to show that nothing changed. */
static uint64_t dir_fingerprint(void)
{
    DIR *d = opendir(g_dir);
    ck_assert_ptr_nonnull(d);
    uint64_t sum = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        path_of(path, sizeof path, de->d_name);
        size_t len;
        uint8_t *buf = file_read(path, &len);
        sum += checksum64(buf, len, 0) ^ checksum64(de->d_name, strlen(de->d_name), 1);
        free(buf);
    }
    closedir(d);
    return sum;
}

/* ---- the log -------------------------------------------------------- */

static void config(log_config_t *cfg)
{
    log_config_default(cfg);
    cfg->dir = g_dir;
    cfg->segment_bytes = SEGMENT_BYTES;
    cfg->durability = LOG_DURABILITY_NONE;
    cfg->prepare_segments = false;
    cfg->compress_threshold_bytes = 4096;
}

/* Payload of batch i: compressible text (LZ4) every 5th, binary every 7th,
 * small JSON otherwise. */
static size_t payload(uint32_t i, uint32_t k, char *buf, size_t cap)
{
    if (i % 5 == 0) {
        size_t n = 0;
        while (n + 40 < cap && n < 5000)
            n += (size_t)snprintf(buf + n, cap - n, "{\"line\":%u,\"text\":\"lorem ipsum\"}", k);
        return n;
    }
    if (i % 7 == 0) {
        for (size_t j = 0; j < 200; j++)
            buf[j] = (char)(j * 131 + i + 0x80);
        return 200;
    }
    return (size_t)snprintf(buf, cap, "{\"batch\":%u,\"event\":%u}", i, k);
}

/* Appends batches [from, to) of the model log to an open log. */
static void log_fill(log_t *log, uint32_t from, uint32_t to)
{
    static char data[4][6000];
    for (uint32_t i = from; i < to; i++) {
        uint32_t s = i % (STREAMS + 1);
        char stream[16];
        snprintf(stream, sizeof stream, s < STREAMS ? "acct-%u" : "solo", s);
        log_event_in_t ev[4];
        uint32_t count = 1 + i % 4;
        memset(ev, 0, sizeof ev);
        for (uint32_t k = 0; k < count; k++) {
            ev[k].id[0] = (uint8_t)k;
            memcpy(ev[k].id + 4, &i, 4);
            ev[k].type = (i + k) % 3 == 0 ? "Withdrawn" : "Deposited";
            ev[k].type_len = strlen(ev[k].type);
            ev[k].data = data[k];
            ev[k].data_len = payload(i, k, data[k], sizeof data[k]);
            ev[k].metadata = "{\"m\":1}";
            ev[k].metadata_len = k == 0 ? 7 : 0;
            ev[k].timestamp_ns = TIME_BASE_NS + (int64_t)i * TIME_STEP_NS;
            g_model.withdrawn += (i + k) % 3 == 0;
        }
        log_stream_append_t sa = {.stream = stream, .stream_len = strlen(stream),
                                  .expected_version = LOG_EXPECT_ANY, .events = ev,
                                  .event_count = count};
        log_append_t req = {.streams = &sa, .stream_count = 1};
        log_append_result_t res;
        ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
        g_model.events += count;
        g_model.batches++;
        g_model.per_stream[s] += count;
    }
}

/* Makes the model log in g_dir, closed cleanly (every .idx written). */
static void log_make(uint32_t batches)
{
    memset(&g_model, 0, sizeof g_model);
    log_config_t cfg;
    config(&cfg);
    log_t *log;
    ck_assert_int_eq(log_open(&cfg, &log, NULL), 0);
    log_fill(log, 0, batches);
    log_stats_t st;
    log_stats(log, &st);
    g_model.compressed_batches = st.compressed_batches;
    ck_assert_int_eq(log_close(log), 0);
}

static int visit_count(void *ctx, const log_event_t *ev)
{
    uint64_t *n = ctx;
    ck_assert_uint_eq(ev->position, *n);
    (*n)++;
    return 0;
}

/* Opens the log with the engine (writable) and reads $all: returns how
 * many events read back, in order from 0. */
static uint64_t log_reopen_count(log_recovery_t *rec)
{
    log_config_t cfg;
    config(&cfg);
    log_t *log;
    int rc = log_open(&cfg, &log, rec);
    ck_assert_msg(rc == 0, "log_open: %s (%s)", log_strerror(rc), rec->problem);
    uint64_t n = 0;
    for (;;) {
        log_read_t req = {.stream = "$all", .stream_len = 4, .from = n, .max_count = 100000};
        log_read_result_t res;
        ck_assert_int_eq(log_read(log, &req, visit_count, &n, &res), 0);
        if (res.count == 0 || res.end)
            break;
    }
    ck_assert_int_eq(log_close(log), 0);
    return n;
}

/* ---- running the tool ----------------------------------------------- */

/* Runs evstore-inspect with the arguments (NULL-terminated) and returns its
 * exit code; g_out holds stdout and stderr. A signal fails the test. */
static int run(const char *arg, ...)
{
    const char *argv[16] = {INSPECT_BIN};
    int argc = 1;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 15; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char out[700];
    snprintf(out, sizeof out, "%s/out.txt", g_root);
    /* a sanitizer report must not pass for exit code 1 ("damaged") */
    const char *env[] = {"ASAN_OPTIONS=exitcode=99:detect_leaks=1",
                         "UBSAN_OPTIONS=exitcode=98:print_stacktrace=1", NULL};
    proc_spec_t spec = {.argv = argv,
                        .env = env,
                        .out = {PROC_IO_FILE, .path = out},
                        .err = {PROC_IO_STDOUT}};
    int status = proc_run(&spec, INSPECT_RUN_MS_MAX);
    ck_assert_msg(status >= 0, "%s %s: %s", argv[1], argc > 2 ? argv[2] : "", strerror(-status));
    free(g_out);
    size_t len;
    g_out = (char *)file_read(out, &len);
    g_out[len] = '\0';
    ck_assert_msg(WIFEXITED(status), "%s %s ended by signal %d; output:\n%s", argv[1],
                  argc > 2 ? argv[2] : "", WIFSIGNALED(status) ? WTERMSIG(status) : 0, g_out);
    ck_assert_msg(WEXITSTATUS(status) <= 2, "%s %s exited %d (not an exit code of the tool):\n%s",
                  argv[1], argc > 2 ? argv[2] : "", WEXITSTATUS(status), g_out);
    return WEXITSTATUS(status);
}

#define expect_out(text)                                                                           \
    ck_assert_msg(strstr(g_out, (text)) != NULL, "output lacks \"%s\":\n%s", (text), g_out)

static int count_lines(const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = g_out; p && *p;) {
        if (strncmp(p, prefix, len) == 0)
            n++;
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return n;
}

static void setup(void)
{
    root_make();
    log_make(BATCHES);
}

static void teardown(void)
{
    tree_remove(g_root);
    free(g_out);
    g_out = NULL;
}

/* ---- clean logs ------------------------------------------------------ */

START_TEST(verify_clean_log_exits_0)
{
    char segs[64][32];
    ck_assert_int_ge(segments_list(segs, 64), 4);
    ck_assert_uint_gt(g_model.compressed_batches, 0);
    ck_assert_int_eq(run("verify", g_dir, NULL), 0);
    expect_out(": OK");
    ck_assert_int_eq(run("index", "--check", g_dir, NULL), 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.seg", g_dir, segs[1]);
    ck_assert_int_eq(run("verify", path, NULL), 0);
}
END_TEST

START_TEST(stats_match_what_was_appended)
{
    ck_assert_int_eq(run("stats", g_dir, NULL), 0);
    char line[200];
    snprintf(line, sizeof line, " %9" PRIu64 " %10" PRIu64 " %8u ", g_model.batches,
             g_model.events, STREAMS + 1);
    char *total = strstr(g_out, "\ntotal");
    ck_assert_ptr_nonnull(total);
    ck_assert_msg(strstr(total, line) != NULL, "total line lacks \"%s\":\n%s", line, g_out);
    snprintf(line, sizeof line, "(of %u; 1 categories)", STREAMS + 1);
    expect_out(line);
    snprintf(line, sizeof line, " %10" PRIu64 " ", g_model.per_stream[0]);
    expect_out(line);
    snprintf(line, sizeof line, "%10" PRIu64 " ", g_model.withdrawn);
    char *types = strstr(g_out, "event types (2)");
    ck_assert_ptr_nonnull(types);
    ck_assert_msg(strstr(types, line) != NULL, "types lack \"%s\":\n%s", line, types);
}
END_TEST

START_TEST(dump_json_lines_and_filters)
{
    ck_assert_int_eq(run("dump", "--json", "--limit", "0", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("{\"kind\":\"event\""), (int)g_model.events);
    ck_assert_int_eq(count_lines("{\"kind\":\"batch\""), (int)g_model.batches);
    ck_assert_int_eq(count_lines("{"), (int)(g_model.events + g_model.batches));
    expect_out("\"compression\":\"lz4\"");
    expect_out("\"data_hex\":\"");
    expect_out("\"data\":\"{\\\"batch\\\":1,\\\"event\\\":0}\"");
    expect_out("\"metadata\":\"{\\\"m\\\":1}\"");

    ck_assert_int_eq(run("dump", "--json", "--limit", "0", "--stream", "acct-1", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("{\"kind\":\"event\",\"position\":"), (int)g_model.per_stream[1]);
    ck_assert_int_eq(run("dump", "--json", "--limit", "0", "--category", "acct", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("{\"kind\":\"event\""),
                     (int)(g_model.events - g_model.per_stream[STREAMS]));
    ck_assert_int_eq(run("dump", "--json", "--limit", "0", "--type", "Withdrawn", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("{\"kind\":\"event\""), (int)g_model.withdrawn);
    ck_assert_int_eq(run("dump", "--json", "--from", "100", "--to", "149", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("{\"kind\":\"event\""), 50);
    expect_out("\"position\":100,");
    expect_out("\"position\":149,");
    ck_assert_int_eq(run("dump", "--limit", "5", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("  event "), 5);
    /* batches 10..19: 3+4+1+2+3+4+1+2+3+4 events */
    char since[32], until[32];
    snprintf(since, sizeof since, "%lld", TIME_BASE_NS + 10 * TIME_STEP_NS);
    snprintf(until, sizeof until, "%lld", TIME_BASE_NS + 20 * TIME_STEP_NS);
    ck_assert_int_eq(run("dump", "--json", "--since", since, "--until", until, g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("{\"kind\":\"event\""), 27);
    ck_assert_int_eq(run("dump", "--since", "2023-11-14T22:13:20Z", "--until",
                         "2023-11-14T22:13:20.003Z", "--json", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("{\"kind\":\"event\""), 1 + 2 + 3);
}
END_TEST

/* Appends one event of type with the packed payload buf to stream. */
static void append_payload(const char *stream, const char *type, const uint8_t *buf, size_t n,
                           bool system)
{
    log_event_in_t ev = {.type = type, .type_len = strlen(type), .data = buf, .data_len = n};
    ev.id[0] = 0xee;
    ev.id[1] = (uint8_t)strlen(stream);
    log_stream_append_t sa = {.stream = stream, .stream_len = strlen(stream),
                              .expected_version = LOG_EXPECT_ANY, .events = &ev,
                              .event_count = 1};
    log_append_t req = {.streams = &sa, .stream_count = 1, .system = system};
    log_config_t cfg;
    config(&cfg);
    log_t *log;
    ck_assert_int_eq(log_open(&cfg, &log, NULL), 0);
    log_append_result_t res;
    ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
    ck_assert_int_eq(log_close(log), 0);
}

/* A GroupSettings event in a "$group-" stream, as evstored writes it. */
static void append_group_settings(const char *name)
{
    Evstore__V1__GroupSettings m = EVSTORE__V1__GROUP_SETTINGS__INIT;
    m.name = (char *)name;
    m.stream = "$ce-acct";
    m.max_retries = 7;
    m.strategy = EVSTORE__V1__GROUP_STRATEGY__PINNED;
    uint8_t buf[256];
    size_t n = evstore__v1__group_settings__pack(&m, buf);
    char stream[64];
    snprintf(stream, sizeof stream, "$group-%s", name);
    append_payload(stream, "GroupSettings", buf, n, true);
}

START_TEST(dump_decodes_known_protobuf_payloads)
{
    append_group_settings("payments");
    ck_assert_int_eq(run("dump", "--json", "--stream", "$group-payments", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("{\"kind\":\"event\""), 1);
    expect_out("\"data_decoded\":{\"name\":\"payments\",\"stream\":\"$ce-acct\"");
    expect_out("\"strategy\":\"PINNED\"");
    expect_out("\"max_retries\":7");
    /* Events of unknown types are not decoded. */
    ck_assert_int_eq(run("dump", "--json", "--stream", "acct-1", g_dir, NULL), 0);
    ck_assert_ptr_null(strstr(g_out, "data_decoded"));
}
END_TEST

/* A GroupCheckpoint event in a "$group-" stream, as evstored writes it. */
static void append_group_checkpoint(const char *name)
{
    Evstore__V1__GroupCheckpoint m = EVSTORE__V1__GROUP_CHECKPOINT__INIT;
    m.key = 41;
    m.replay_from = 3;
    m.replay_restart = 2;
    uint8_t buf[64];
    size_t n = evstore__v1__group_checkpoint__pack(&m, buf);
    char stream[64];
    snprintf(stream, sizeof stream, "$group-%s", name);
    append_payload(stream, "GroupCheckpoint", buf, n, true);
}

START_TEST(dump_decodes_the_servers_own_records_built_in)
{
    append_group_checkpoint("payments");
    ck_assert_int_eq(run("dump", "--json", "--type", "GroupCheckpoint", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("{\"kind\":\"event\""), 1);
    expect_out("\"data_decoded\":{\"key\":41,\"replay_from\":3,\"replay_restart\":2}");
}
END_TEST

/* The JSON object of the first event line of g_out (a new reference). */
static json_t *first_event_json(void)
{
    const char *line = strstr(g_out, "{\"kind\":\"event\"");
    ck_assert_msg(line != NULL, "no event line in:\n%s", g_out);
    json_error_t err;
    json_t *o = json_loadb(line, strcspn(line, "\n"), JSON_ALLOW_NUL, &err);
    ck_assert_msg(o != NULL, "event line is not JSON (%s): %s", err.text, line);
    return o;
}

/* Every line of g_out parses as one JSON object; returns how many. */
static int json_lines_parse(void)
{
    int n = 0;
    for (const char *p = g_out; *p;) {
        size_t len = strcspn(p, "\n");
        json_error_t err;
        json_t *o = json_loadb(p, len, JSON_ALLOW_NUL, &err); /* \u0000 is JSON */
        ck_assert_msg(json_is_object(o), "not a JSON object (%s): %.*s", err.text, (int)len, p);
        json_decref(o);
        n++;
        p += len + (p[len] == '\n');
    }
    return n;
}

/* Appends one event with these names and payloads to the log. */
static void append_raw(const char *stream, const char *type, const void *data, size_t data_len,
                       const char *meta)
{
    log_event_in_t ev = {.type = type, .type_len = strlen(type), .data = data,
                         .data_len = data_len, .metadata = meta, .metadata_len = strlen(meta)};
    ev.id[0] = 0xcc;
    log_stream_append_t sa = {.stream = stream, .stream_len = strlen(stream),
                              .expected_version = LOG_EXPECT_ANY, .events = &ev,
                              .event_count = 1};
    log_append_t req = {.streams = &sa, .stream_count = 1};
    log_config_t cfg;
    config(&cfg);
    log_t *log;
    ck_assert_int_eq(log_open(&cfg, &log, NULL), 0);
    log_append_result_t res;
    ck_assert_int_eq(log_append_wait(log, &req, &res), 0);
    ck_assert_int_eq(log_close(log), 0);
}

START_TEST(dump_json_stays_json_whatever_the_names_hold)
{
    /* control characters, quotes, backslashes, DEL, a byte that is not UTF-8 */
    const char stream[] = "ctl-\x01\t\"q\"\\\x1f\x7f\xff";
    const char type[] = "T\n\x02\x1b[0m";
    const uint8_t data[] = {'a', 0, 3, '"'};
    append_raw(stream, type, data, sizeof data, "m\x04");

    ck_assert_int_eq(run("dump", "--json", "--category", "ctl", g_dir, NULL), 0);
    ck_assert_int_eq(json_lines_parse(), 2); /* the batch, the event */
    json_t *o = first_event_json();
    /* the text survives; the byte 0xff stands for U+00FF */
    ck_assert_str_eq(json_string_value(json_object_get(o, "stream")),
                     "ctl-\x01\t\"q\"\\\x1f\x7f\xc3\xbf");
    ck_assert_str_eq(json_string_value(json_object_get(o, "type")), type);
    json_t *d = json_object_get(o, "data");
    ck_assert_uint_eq(json_string_length(d), sizeof data);
    ck_assert_mem_eq(json_string_value(d), data, sizeof data);
    ck_assert_str_eq(json_string_value(json_object_get(o, "metadata")), "m\x04");
    json_decref(o);
    /* the whole log parses too, and the text form quotes the names */
    ck_assert_int_eq(run("dump", "--json", "--limit", "0", g_dir, NULL), 0);
    ck_assert_int_eq(json_lines_parse(), (int)(g_model.events + g_model.batches) + 2);
    ck_assert_int_eq(run("dump", "--category", "ctl", g_dir, NULL), 0);
    expect_out("stream \"ctl-\\u0001\\t\\\"q\\\"\\\\\\u001F");
}
END_TEST

#ifdef OMS_DECODER
/* An OrderPlaced event of order-o1, as oms-order writes it; *packed gets
 * its bytes (free them). Returns their length. */
static size_t append_order_placed(uint8_t **packed)
{
    Oms__V1__OrderItem item = OMS__V1__ORDER_ITEM__INIT;
    item.sku = "sku-0001";
    item.quantity = 3;
    item.unit_price_cents = 1250;
    Oms__V1__OrderItem *items[] = {&item};
    Oms__V1__OrderPlaced m = OMS__V1__ORDER_PLACED__INIT;
    m.order_id = "o1";
    m.customer_id = "cust-7";
    m.n_items = 1;
    m.items = items;
    m.total_cents = 5000000000LL; /* over 32 bits */
    size_t n = oms__v1__order_placed__get_packed_size(&m);
    *packed = malloc(n);
    ck_assert_ptr_nonnull(*packed);
    oms__v1__order_placed__pack(&m, *packed);
    append_payload("order-o1", "OrderPlaced", *packed, n, false);
    return n;
}

START_TEST(dump_decodes_oms_events_with_the_oms_plugin)
{
    uint8_t *packed;
    size_t n = append_order_placed(&packed);
    ck_assert_int_eq(run("dump", "--json", "--decoder", OMS_DECODER, "--stream", "order-o1",
                         g_dir, NULL), 0);
    expect_out("\"data_decoded\":{\"order_id\":\"o1\",\"customer_id\":\"cust-7\"");
    expect_out("\"sku\":\"sku-0001\"");
    expect_out("\"total_cents\":5000000000");
    /* The rendering of oms-order's audit trail: util's pbjson on the
     * descriptor oms-order uses (tests/oms checks the HTTP side). */
    json_t *o = first_event_json();
    json_t *want = pbjson_decode(oms_domain_descriptor("OrderPlaced"), packed, n);
    ck_assert_ptr_nonnull(want);
    json_t *got = json_object_get(o, "data_decoded");
    char *got_text = json_dumps(got, JSON_COMPACT), *want_text = json_dumps(want, JSON_COMPACT);
    ck_assert_msg(json_equal(got, want), "dump: %s\npbjson: %s", got_text, want_text);
    ck_assert_str_eq(got_text, want_text); /* the same keys in the same order, too */
    free(got_text);
    free(want_text);
    json_decref(want);
    json_decref(o);
    /* The plugin named by the environment (empty entries skipped), in text. */
    setenv("EVSTORE_INSPECT_DECODERS", "::" OMS_DECODER, 1);
    int rc = run("dump", "--stream", "order-o1", g_dir, NULL);
    unsetenv("EVSTORE_INSPECT_DECODERS");
    ck_assert_int_eq(rc, 0);
    expect_out("data decoded: {\"order_id\":\"o1\"");
    free(packed);
}
END_TEST

START_TEST(dump_without_a_plugin_shows_oms_events_undecoded)
{
    uint8_t *packed;
    size_t n = append_order_placed(&packed);
    ck_assert_int_eq(run("dump", "--json", "--stream", "order-o1", g_dir, NULL), 0);
    ck_assert_ptr_null(strstr(g_out, "data_decoded"));
    json_t *o = first_event_json();
    ck_assert_int_eq(json_integer_value(json_object_get(o, "data_bytes")), (json_int_t)n);
    ck_assert(json_object_get(o, "data_hex") || json_object_get(o, "data"));
    json_decref(o);
    free(packed);
}
END_TEST
#endif

START_TEST(a_missing_or_bad_plugin_is_a_clear_error)
{
    ck_assert_int_eq(run("dump", "--decoder", "/nonexistent/libnope.so", g_dir, NULL), 2);
    expect_out("decoder /nonexistent/libnope.so: cannot load it");
    char path[700];
    snprintf(path, sizeof path, "%s/not-a-plugin.so", g_root);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("this is not a shared object\n", f);
    fclose(f);
    ck_assert_int_eq(run("dump", "--decoder", path, g_dir, NULL), 2);
    expect_out("cannot load it");
    /* a shared object without the entry point */
    ck_assert_int_eq(run("dump", "--decoder", "libm.so.6", g_dir, NULL), 2);
    expect_out("exports no evstore_payload_descriptor()");
    setenv("EVSTORE_INSPECT_DECODERS", "/nonexistent/libenv.so", 1);
    int rc = run("dump", g_dir, NULL);
    unsetenv("EVSTORE_INSPECT_DECODERS");
    ck_assert_int_eq(rc, 2);
    expect_out("decoder /nonexistent/libenv.so: cannot load it");
    /* only dump decodes */
    ck_assert_int_eq(run("verify", "--decoder", path, g_dir, NULL), 2);
    expect_out("option not taken by this command: decoder");
}
END_TEST

START_TEST(usage_and_help)
{
    ck_assert_int_eq(run(NULL), 2);
    ck_assert_int_eq(run("frobnicate", g_dir, NULL), 2);
    ck_assert_int_eq(run("--help", NULL), 0);
    const char *cmds[] = {"verify", "dump", "stats", "index", "repair"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(run(cmds[i], "--help", NULL), 0);
        expect_out("usage: evstore-inspect");
    }
    ck_assert_int_eq(run("verify", NULL), 2);
    ck_assert_int_eq(run("verify", "--apply", g_dir, NULL), 2);
    ck_assert_int_eq(run("dump", "--limit", "x", g_dir, NULL), 2);
    ck_assert_int_eq(run("index", g_dir, NULL), 2);
    ck_assert_int_eq(run("verify", "/nonexistent/evstore", NULL), 2);
}
END_TEST

/* ---- damaged segments ------------------------------------------------ */

START_TEST(header_bit_flip_is_named)
{
    char segs[64][32], path[4096], want[4096];
    segments_list(segs, 64);
    snprintf(path, sizeof path, "%s/%s.seg", g_dir, segs[1]);
    uint64_t off[512];
    ck_assert_int_ge(batches_list(path, off, 512), 3);
    bit_flip(path, off[2] + 30); /* inside first_position */
    ck_assert_int_eq(run("verify", g_dir, NULL), 1);
    snprintf(want, sizeof want, "damage: %s.seg offset %" PRIu64 ": batch header checksum mismatch",
             segs[1], off[2]);
    expect_out(want);
    expect_out("DAMAGED");
    ck_assert_int_eq(run("dump", g_dir, "--limit", "0", NULL), 1);
    ck_assert_int_eq(run("stats", g_dir, NULL), 1);
    ck_assert_int_eq(run("repair", g_dir, NULL), 1);
    expect_out("refusing");
}
END_TEST

START_TEST(body_bit_flip_is_named)
{
    char segs[64][32], path[4096], want[4096];
    segments_list(segs, 64);
    snprintf(path, sizeof path, "%s/%s.seg", g_dir, segs[2]);
    uint64_t off[512];
    int n = batches_list(path, off, 512);
    ck_assert_int_ge(n, 4);
    bit_flip(path, off[3] + sizeof(batch_header_t) + 5);
    ck_assert_int_eq(run("verify", g_dir, NULL), 1);
    snprintf(want, sizeof want, "damage: %s.seg offset %" PRIu64 ": batch body checksum mismatch",
             segs[2], off[3]);
    expect_out(want);
    ck_assert_int_eq(run("dump", "--json", "--limit", "0", g_dir, NULL), 1);
    expect_out("\"checksum\":\"batch body checksum mismatch\"");
}
END_TEST

START_TEST(compressed_body_bit_flip_is_named)
{
    char segs[64][32], path[4096], want[4096];
    int segn = segments_list(segs, 64);
    for (int s = 0; s + 1 < segn; s++) {
        snprintf(path, sizeof path, "%s/%s.seg", g_dir, segs[s]);
        uint64_t off[512];
        int n = batches_list(path, off, 512);
        for (int i = 0; i < n; i++) {
            batch_header_t h = batch_at(path, off[i]);
            if (!(h.flags & BATCH_FLAG_LZ4))
                continue;
            bit_flip(path, off[i] + sizeof h + h.stored_bytes / 2);
            ck_assert_int_eq(run("verify", g_dir, NULL), 1);
            snprintf(want, sizeof want,
                     "damage: %s.seg offset %" PRIu64 ": batch body checksum mismatch", segs[s],
                     off[i]);
            expect_out(want);
            return;
        }
    }
    ck_abort_msg("no compressed batch in a sealed segment");
}
END_TEST

START_TEST(segment_removed_from_the_middle_is_named)
{
    char segs[64][32], path[4096], want[4096];
    segments_list(segs, 64);
    snprintf(path, sizeof path, "%s/%s.seg", g_dir, segs[2]);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(run("verify", g_dir, NULL), 1);
    snprintf(want, sizeof want, "damage: %s.seg offset 0: segment does not continue the log: "
             "expected position %s", segs[3], segs[2]);
    /* the expected position is the removed segment's first, without zero padding */
    snprintf(want, sizeof want, "damage: %s.seg offset 0: segment does not continue the log: "
             "expected position %" PRIu64, segs[3], (uint64_t)strtoull(segs[2], NULL, 10));
    expect_out(want);
}
END_TEST

/* Zeroes the second half of the last batch of the last segment (and removes
 * its index): what a torn final write leaves. Returns the batch's offset
 * and its first position. */
static uint64_t tear_last_batch(char *seg_path, size_t cap, uint64_t *first_position)
{
    char segs[64][32], idx[4096];
    int n = segments_list(segs, 64);
    snprintf(seg_path, cap, "%s/%s.seg", g_dir, segs[n - 1]);
    snprintf(idx, sizeof idx, "%s/%s.idx", g_dir, segs[n - 1]);
    ck_assert_int_eq(unlink(idx), 0);
    uint64_t off[512];
    int b = batches_list(seg_path, off, 512);
    ck_assert_int_ge(b, 2);
    batch_header_t h = batch_at(seg_path, off[b - 1]);
    uint64_t end = off[b - 1] + batch_stored_size(&h);
    zero_range(seg_path, off[b - 1] + sizeof h + h.stored_bytes / 2, end - 4);
    *first_position = h.first_position;
    return off[b - 1];
}

START_TEST(torn_tail_is_named_and_repaired)
{
    char seg[4096], want[4096];
    uint64_t first;
    uint64_t off = tear_last_batch(seg, sizeof seg, &first);
    ck_assert_int_eq(run("verify", g_dir, NULL), 1);
    snprintf(want, sizeof want, "torn tail: %s offset %" PRIu64 ": incomplete last batch",
             strrchr(seg, '/') + 1, off);
    expect_out(want);

    uint64_t before = dir_fingerprint();
    ck_assert_int_eq(run("repair", g_dir, NULL), 1);
    expect_out("would repair (dry run");
    ck_assert_uint_eq(dir_fingerprint(), before);

    ck_assert_int_eq(run("repair", "--apply", g_dir, NULL), 0);
    expect_out("done:");
    ck_assert_int_eq(run("verify", g_dir, NULL), 0);
    log_recovery_t rec;
    ck_assert_uint_eq(log_reopen_count(&rec), first);
    ck_assert_uint_eq(rec.torn_bytes_cut, 0);
    ck_assert_int_eq(run("repair", g_dir, NULL), 0);
    expect_out("nothing to repair");
}
END_TEST

START_TEST(cut_tail_is_named_and_repaired)
{
    char segs[64][32], seg[4096], idx[4096];
    int n = segments_list(segs, 64);
    snprintf(seg, sizeof seg, "%s/%s.seg", g_dir, segs[n - 1]);
    snprintf(idx, sizeof idx, "%s/%s.idx", g_dir, segs[n - 1]);
    ck_assert_int_eq(unlink(idx), 0);
    uint64_t off[512];
    int b = batches_list(seg, off, 512);
    ck_assert_int_ge(b, 2);
    batch_header_t h = batch_at(seg, off[b - 1]);
    ck_assert_int_eq(truncate(seg, (off_t)(off[b - 1] + 100)), 0);
    ck_assert_int_eq(run("verify", g_dir, NULL), 1);
    expect_out("cut short");
    expect_out("torn tail:");
    ck_assert_int_eq(run("repair", "--apply", g_dir, NULL), 0);
    struct stat st;
    ck_assert_int_eq(stat(seg, &st), 0);
    ck_assert_int_eq(st.st_size, SEGMENT_BYTES);
    ck_assert_int_eq(run("verify", g_dir, NULL), 0);
    log_recovery_t rec;
    ck_assert_uint_eq(log_reopen_count(&rec), h.first_position);
}
END_TEST

START_TEST(damage_inside_the_indexed_tail_is_not_repaired)
{
    char segs[64][32], seg[4096];
    int n = segments_list(segs, 64);
    snprintf(seg, sizeof seg, "%s/%s.seg", g_dir, segs[n - 1]);
    uint64_t off[512];
    int b = batches_list(seg, off, 512);
    batch_header_t h = batch_at(seg, off[b - 1]);
    zero_range(seg, off[b - 1] + sizeof h, off[b - 1] + batch_stored_size(&h));
    uint64_t before = dir_fingerprint();
    ck_assert_int_eq(run("repair", "--apply", g_dir, NULL), 1);
    expect_out("refusing: the index file");
    ck_assert_uint_eq(dir_fingerprint(), before);
}
END_TEST

START_TEST(repair_refuses_a_locked_directory)
{
    char seg[4096];
    uint64_t first;
    tear_last_batch(seg, sizeof seg, &first);
    char lock[4096];
    path_of(lock, sizeof lock, "LOCK");
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    uint64_t before = dir_fingerprint();
    ck_assert_int_eq(run("repair", "--apply", g_dir, NULL), 2);
    expect_out("locked by another process");
    ck_assert_int_eq(run("index", "--rebuild", g_dir, NULL), 2);
    ck_assert_uint_eq(dir_fingerprint(), before);
    close(fd);
}
END_TEST

/* ---- index files ------------------------------------------------------ */

START_TEST(missing_index_is_named)
{
    char segs[64][32], idx[4096], want[4096];
    segments_list(segs, 64);
    snprintf(idx, sizeof idx, "%s/%s.idx", g_dir, segs[1]);
    ck_assert_int_eq(unlink(idx), 0);
    ck_assert_int_eq(run("verify", g_dir, NULL), 1);
    snprintf(want, sizeof want, "index: %s.idx: missing", segs[1]);
    expect_out(want);
    ck_assert_int_eq(run("index", "--check", g_dir, NULL), 1);
    expect_out(want);
    ck_assert_int_eq(run("verify", "--no-index", g_dir, NULL), 0);
}
END_TEST

START_TEST(damaged_index_is_named)
{
    char segs[64][32], idx[4096], want[4096];
    segments_list(segs, 64);
    snprintf(idx, sizeof idx, "%s/%s.idx", g_dir, segs[0]);
    bit_flip(idx, 300);
    ck_assert_int_eq(run("index", "--check", g_dir, NULL), 1);
    snprintf(want, sizeof want, "index: %s.idx offset 72: body checksum mismatch", segs[0]);
    expect_out(want);
    bit_flip(idx, 20);
    ck_assert_int_eq(run("index", "--check", g_dir, NULL), 1);
    snprintf(want, sizeof want, "index: %s.idx offset 88: header checksum mismatch", segs[0]);
    expect_out(want);
}
END_TEST

/* Rewrites an index entry's record offset and re-seals the file: a whole
 * index that points at the wrong place. */
START_TEST(misdirected_index_entry_is_named)
{
    char segs[64][32], idx[4096], want[4096];
    segments_list(segs, 64);
    snprintf(idx, sizeof idx, "%s/%s.idx", g_dir, segs[1]);
    size_t len;
    uint8_t *f = file_read(idx, &len);
    index_header_t h;
    memcpy(&h, f, sizeof h);
    uint64_t entry = sizeof h + h.sparse_count * sizeof(sparse_entry_t) +
                     h.run_count * sizeof(index_run_t) + 3 * sizeof(index_entry_t);
    index_entry_t e;
    memcpy(&e, f + entry, sizeof e);
    e.body_offset += 8;
    memcpy(f + entry, &e, sizeof e);
    h.body_checksum = checksum64(f + sizeof h, len - sizeof h, 0);
    h.header_checksum = checksum64(&h, offsetof(index_header_t, header_checksum), 0);
    memcpy(f, &h, sizeof h);
    file_write_at(idx, 0, f, len);
    free(f);
    ck_assert_int_eq(run("index", "--check", g_dir, NULL), 1);
    snprintf(want, sizeof want, "index: %s.idx offset %" PRIu64 ": entry 3 claims position", segs[1],
             entry);
    expect_out(want);
    expect_out("the event there is at batch offset");
}
END_TEST

START_TEST(stale_index_is_named)
{
    /* A fresh log of a few batches, closed: its only segment gets an index
     * covering them. Keep that index, fill the segment until it is sealed,
     * and put the old index back. */
    tree_remove(g_dir);
    memset(&g_model, 0, sizeof g_model);
    log_config_t cfg;
    config(&cfg);
    log_t *log;
    ck_assert_int_eq(log_open(&cfg, &log, NULL), 0);
    log_fill(log, 1, 4);
    ck_assert_int_eq(log_close(log), 0);
    char idx[4096], want[4096];
    path_of(idx, sizeof idx, "00000000000000000000.idx");
    size_t len;
    uint8_t *old = file_read(idx, &len);
    ck_assert_int_eq(log_open(&cfg, &log, NULL), 0);
    log_fill(log, 4, 200);
    ck_assert_int_eq(log_close(log), 0);
    file_write_at(idx, 0, old, len);
    ck_assert_int_eq(truncate(idx, (off_t)len), 0);
    free(old);
    ck_assert_int_eq(run("index", "--check", g_dir, NULL), 1);
    snprintf(want, sizeof want, "index: 00000000000000000000.idx offset 24: stale: covers "
             "positions up to %u", 2 + 3 + 4);
    expect_out(want);
}
END_TEST

START_TEST(rebuilt_indexes_pass_check_and_load)
{
    char segs[64][32], idx[4096];
    int n = segments_list(segs, 64);
    for (int i = 0; i < n; i++) {
        snprintf(idx, sizeof idx, "%s/%s.idx", g_dir, segs[i]);
        ck_assert_int_eq(unlink(idx), 0);
    }
    ck_assert_int_eq(run("index", "--rebuild", "--dry-run", g_dir, NULL), 0);
    expect_out("would write");
    ck_assert_int_eq(access(idx, F_OK), -1);
    ck_assert_int_eq(run("index", "--rebuild", g_dir, NULL), 0);
    ck_assert_int_eq(count_lines("wrote "), n);
    ck_assert_int_eq(run("index", "--check", g_dir, NULL), 0);
    log_recovery_t rec;
    ck_assert_uint_eq(log_reopen_count(&rec), g_model.events);
    ck_assert_uint_eq(rec.index_files_loaded, (uint32_t)n);
    ck_assert_uint_eq(rec.bytes_scanned, 0);
}
END_TEST

START_TEST(rebuild_stops_at_damage)
{
    char segs[64][32], path[4096];
    segments_list(segs, 64);
    snprintf(path, sizeof path, "%s/%s.seg", g_dir, segs[1]);
    bit_flip(path, SEGMENT_HEADER_BYTES + sizeof(batch_header_t) + 3);
    ck_assert_int_eq(run("index", "--rebuild", g_dir, NULL), 1);
    expect_out("stopped: no index written for");
}
END_TEST

/* ---- garbage ---------------------------------------------------------- */

/* Writes a file of n bytes: random, or a valid segment header then random. */
static void garbage_file(const char *name, size_t n, bool header, uint64_t seed)
{
    char path[4096];
    path_of(path, sizeof path, name);
    uint8_t *buf = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(seed >> 56);
    }
    if (header && n >= sizeof(segment_header_t)) {
        segment_header_t h = {.format_version = FORMAT_VERSION,
                              .header_bytes = SEGMENT_HEADER_BYTES, .segment_bytes = n};
        memcpy(h.magic, SEGMENT_MAGIC, 8);
        segment_header_seal(&h);
        memcpy(buf, &h, sizeof h);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
    close(fd);
    free(buf);
}

static void run_every_command(void)
{
    int rc = run("verify", g_dir, NULL);
    ck_assert_msg(rc == 1 || rc == 2, "verify exit %d:\n%s", rc, g_out);
    rc = run("dump", "--json", "--limit", "0", g_dir, NULL);
    ck_assert_msg(rc == 1 || rc == 2, "dump exit %d", rc);
    rc = run("stats", g_dir, NULL);
    ck_assert_msg(rc == 1 || rc == 2, "stats exit %d", rc);
    rc = run("repair", g_dir, NULL);
    ck_assert_msg(rc == 1 || rc == 2, "repair exit %d", rc);
    rc = run("index", "--check", g_dir, NULL);
    ck_assert_msg(rc == 1 || rc == 2, "index exit %d", rc);
}

START_TEST(garbage_never_crashes)
{
    tree_remove(g_dir);
    ck_assert_int_eq(mkdir(g_dir, 0755), 0);
    garbage_file("00000000000000000000.seg", 10, false, 1);
    run_every_command();
    garbage_file("00000000000000000000.seg", 70000, false, 2);
    run_every_command();
    garbage_file("00000000000000000000.seg", 65536, true, 3);
    garbage_file("00000000000000000000.idx", 5000, false, 4);
    run_every_command();
    /* a batch header with a huge size and count, correctly sealed */
    char path[4096];
    path_of(path, sizeof path, "00000000000000000000.seg");
    batch_header_t h = {.magic = BATCH_MAGIC, .flags = BATCH_FLAG_LZ4, .event_count = UINT32_MAX,
                        .stored_bytes = 60000, .raw_bytes = UINT32_MAX};
    batch_header_seal(&h);
    file_write_at(path, SEGMENT_HEADER_BYTES, &h, sizeof h);
    run_every_command();
    h.stored_bytes = UINT32_MAX;
    batch_header_seal(&h);
    file_write_at(path, SEGMENT_HEADER_BYTES, &h, sizeof h);
    run_every_command();
    garbage_file("00000000000000000000.seg", 0, false, 5);
    run_every_command();
}
END_TEST

#define FLIPS_PER_SEGMENT 40u

/* The end of the written bytes of a segment file (past its last batch). */
static uint64_t segment_data_end(const char *path)
{
    uint64_t off[512];
    int n = batches_list(path, off, 512);
    ck_assert_msg(n > 0 && n < 512, "%s: %d batches", path, n);
    batch_header_t last = batch_at(path, off[n - 1]);
    return off[n - 1] + batch_stored_size(&last);
}

/* Bit flips spread over the written bytes of every sealed segment (one in
 * each of FLIPS_PER_SEGMENT equal slices, so no two cancel out) and one in
 * each of their index files. Checksums cover every one of those bytes, so no
 * command may call the log clean or fail to read it: each exits 1, verify
 * names every damaged segment and index --check every damaged index. */
START_TEST(damaged_real_log_never_crashes)
{
    char segs[64][32], path[4096], want[4096];
    int n = segments_list(segs, 64);
    ck_assert_int_ge(n, 3);
    uint64_t seed = 42;
    for (int i = 0; i + 1 < n; i++) {
        snprintf(path, sizeof path, "%s/%s.seg", g_dir, segs[i]);
        uint64_t end = segment_data_end(path);
        uint64_t slice = (end - SEGMENT_HEADER_BYTES) / FLIPS_PER_SEGMENT;
        ck_assert_uint_gt(slice, 0);
        for (uint32_t k = 0; k < FLIPS_PER_SEGMENT; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            bit_flip(path, SEGMENT_HEADER_BYTES + k * slice + (seed >> 33) % slice);
        }
        snprintf(path, sizeof path, "%s/%s.idx", g_dir, segs[i]);
        bit_flip(path, 100 + (seed >> 40) % 200);
    }
    ck_assert_int_eq(run("verify", "--no-index", g_dir, NULL), 1);
    for (int i = 0; i + 1 < n; i++) {
        snprintf(want, sizeof want, "damage: %s.seg offset ", segs[i]);
        expect_out(want);
    }
    ck_assert_int_eq(run("index", "--check", g_dir, NULL), 1);
    for (int i = 0; i + 1 < n; i++) {
        snprintf(want, sizeof want, "index: %s.idx", segs[i]);
        expect_out(want);
    }
    ck_assert_int_eq(run("verify", g_dir, NULL), 1);
    ck_assert_int_eq(run("dump", "--json", "--limit", "0", g_dir, NULL), 1);
    ck_assert_int_eq(run("stats", g_dir, NULL), 1);
    ck_assert_int_eq(run("repair", g_dir, NULL), 1);
}
END_TEST

static Suite *inspect_suite(void)
{
    Suite *s = suite_create("inspect");
    TCase *clean = tcase_create("clean");
    tcase_add_checked_fixture(clean, setup, teardown);
    tcase_set_timeout(clean, 120);
    tcase_add_test(clean, verify_clean_log_exits_0);
    tcase_add_test(clean, stats_match_what_was_appended);
    tcase_add_test(clean, dump_json_lines_and_filters);
    tcase_add_test(clean, dump_decodes_known_protobuf_payloads);
    tcase_add_test(clean, dump_decodes_the_servers_own_records_built_in);
    tcase_add_test(clean, dump_json_stays_json_whatever_the_names_hold);
#ifdef OMS_DECODER
    tcase_add_test(clean, dump_decodes_oms_events_with_the_oms_plugin);
    tcase_add_test(clean, dump_without_a_plugin_shows_oms_events_undecoded);
#endif
    tcase_add_test(clean, a_missing_or_bad_plugin_is_a_clear_error);
    tcase_add_test(clean, usage_and_help);
    suite_add_tcase(s, clean);
    TCase *damage = tcase_create("damage");
    tcase_add_checked_fixture(damage, setup, teardown);
    tcase_set_timeout(damage, 120);
    tcase_add_test(damage, header_bit_flip_is_named);
    tcase_add_test(damage, body_bit_flip_is_named);
    tcase_add_test(damage, compressed_body_bit_flip_is_named);
    tcase_add_test(damage, segment_removed_from_the_middle_is_named);
    tcase_add_test(damage, torn_tail_is_named_and_repaired);
    tcase_add_test(damage, cut_tail_is_named_and_repaired);
    tcase_add_test(damage, damage_inside_the_indexed_tail_is_not_repaired);
    tcase_add_test(damage, repair_refuses_a_locked_directory);
    tcase_add_test(damage, garbage_never_crashes);
    tcase_add_test(damage, damaged_real_log_never_crashes);
    suite_add_tcase(s, damage);
    TCase *index = tcase_create("index");
    tcase_add_checked_fixture(index, setup, teardown);
    tcase_set_timeout(index, 120);
    tcase_add_test(index, missing_index_is_named);
    tcase_add_test(index, damaged_index_is_named);
    tcase_add_test(index, misdirected_index_entry_is_named);
    tcase_add_test(index, stale_index_is_named);
    tcase_add_test(index, rebuilt_indexes_pass_check_and_load);
    tcase_add_test(index, rebuild_stops_at_damage);
    suite_add_tcase(s, index);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(inspect_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
