/* storage_demo.c -- evstore-storage-demo: a short tour of the storage engine
 * until the server exists. Appends a few orders to a log directory, reads a
 * stream, a category and $all back, and prints what recovery and the writer
 * did. Run it twice: the second run reopens the log and continues. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_ORDERS 5u

static int print_event(void *ctx, const log_event_t *ev)
{
    (void)ctx;
    printf("  #%-6llu %.*s v%lld %.*s %.*s\n", (unsigned long long)ev->position,
           (int)ev->stream_len, ev->stream, (long long)ev->version, (int)ev->type_len, ev->type,
           (int)ev->data_len, (const char *)ev->data);
    return 0;
}

static void make_id(uint8_t id[16], uint64_t a, uint64_t b)
{
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
}

static int place_order(log_t *log, uint64_t n)
{
    char stream[64], data[128];
    int slen = snprintf(stream, sizeof stream, "order-%llu", (unsigned long long)n);
    int dlen = snprintf(data, sizeof data, "{\"order\":%llu,\"total\":%llu}",
                        (unsigned long long)n, (unsigned long long)(n * 7 % 100 + 10));
    log_event_in_t ev[2] = {
        {.type = "OrderPlaced", .type_len = 11, .data = data, .data_len = (size_t)dlen},
        {.type = "OrderConfirmed", .type_len = 14, .data = data, .data_len = (size_t)dlen},
    };
    make_id(ev[0].id, n, 1);
    make_id(ev[1].id, n, 2);
    log_stream_append_t sa = {.stream = stream, .stream_len = (size_t)slen,
                              .expected_version = LOG_EXPECT_NO_STREAM, .events = ev,
                              .event_count = 2};
    log_append_t req = {.streams = &sa, .stream_count = 1};
    log_append_result_t res;
    int rc = log_append_wait(log, &req, &res);
    if (rc == 0)
        printf("appended %s at position %llu%s\n", stream, (unsigned long long)res.first_position,
               res.idempotent ? " (retry: nothing written)" : "");
    else
        printf("append to %s failed: %s\n", stream, log_strerror(rc));
    return rc;
}

static int read_and_print(log_t *log, const char *name, uint32_t max)
{
    log_read_t req = {.stream = name, .stream_len = strlen(name), .max_count = max};
    log_read_result_t res;
    printf("read %s:\n", name);
    int rc = log_read(log, &req, print_event, NULL, &res);
    if (rc)
        printf("  %s\n", log_strerror(rc));
    return rc;
}

int main(int argc, char **argv)
{
    log_config_t cfg;
    log_config_default(&cfg);
    cfg.dir = argc > 1 ? argv[1] : "data";
    if (argc > 2 || (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))) {
        fprintf(stderr, "usage: evstore-storage-demo [DATA_DIR]   (default: ./data)\n");
        return 2;
    }
    log_t *log;
    log_recovery_t rec;
    int rc = log_open(&cfg, &log, &rec);
    if (rc) {
        fprintf(stderr, "cannot open log in %s: %s%s%s\n", cfg.dir, log_strerror(rc),
                rec.problem[0] ? ": " : "", rec.problem);
        return 1;
    }
    printf("opened %s: %u segments, %llu events, %llu streams, %u index files loaded, %llu bytes "
           "scanned\n", cfg.dir, rec.segments, (unsigned long long)rec.events,
           (unsigned long long)rec.streams, rec.index_files_loaded,
           (unsigned long long)rec.bytes_scanned);
    uint64_t first = rec.streams;
    for (uint64_t n = first; n < first + DEMO_ORDERS && rc == 0; n++)
        rc = place_order(log, n);
    if (rc == 0)
        rc = place_order(log, first); /* the same events again: an idempotent retry */
    read_and_print(log, "order-0", 10);
    read_and_print(log, "$ce-order", 6);
    read_and_print(log, "$all", 4);
    log_stats_t st;
    log_stats(log, &st);
    printf("stats: head %llu, appends %llu, events %llu, writes %llu, fdatasyncs %llu\n",
           (unsigned long long)st.head_position, (unsigned long long)st.appends,
           (unsigned long long)st.events_appended, (unsigned long long)st.writes,
           (unsigned long long)st.fdatasyncs);
    int crc = log_close(log);
    if (crc)
        fprintf(stderr, "close: %s\n", log_strerror(crc));
    return rc || crc ? 1 : 0;
}
