/* test_log_ioerr.c -- I/O errors on the append path. A forked child (so the
 * ignored SIGXFSZ and the lowered RLIMIT_FSIZE stay in it) opens a log,
 * appends, then lowers RLIMIT_FSIZE below the next write offset: the next
 * append fails with -EFBIG through its completion, the log stays readable
 * with every acknowledged event and nothing of the failed batch, and once
 * the limit is raised appends succeed again; after a reopen everything
 * acknowledged is there and nothing that failed.
 *
 * The child reports through its exit status: 0, or the number of the check
 * that failed (its message is on stderr).
 */
#define _GNU_SOURCE
#include "log.h"
#include "test_util.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEGMENT_BYTES (256u * 1024)
#define FSIZE_LIMIT (48u * 1024)
#define EVENT_BYTES 1000u
#define APPENDS_MAX 200u
#define ACKED_MAX 1024u

static char g_dir[512];

static void dir_setup(void) { ck_assert_int_eq(tu_dir_make(g_dir, sizeof g_dir), 0); }
static void dir_teardown(void) { (void)tu_dir_remove(g_dir); }

/* ---- the child's bookkeeping ------------------------------------------------ */

typedef struct {
    uint64_t tag;
    uint64_t first_position;
    uint32_t count;
} acked_t;

static acked_t g_acked[ACKED_MAX];
static uint32_t g_acked_n;
static uint64_t g_failed_tags[ACKED_MAX];
static uint32_t g_failed_n;
static int g_check; /* number of the current check, for the exit status */

__attribute__((format(printf, 1, 2), noreturn)) static void child_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ioerr child, check %d: ", g_check);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    _exit(g_check > 0 && g_check < 256 ? g_check : 255);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        g_check++;                                                                                 \
        if (!(cond)) child_fail(__VA_ARGS__);                                                      \
    } while (0)

/* A batch of `n` events of EVENT_BYTES to stream "io-<tag % 3>", ids (tag, i). */
typedef struct {
    tu_event_t ev[4];
    log_event_in_t in[4];
    char stream[16];
    log_stream_append_t sa;
    log_append_t req;
} iobatch_t;

static void iobatch_make(iobatch_t *b, uint64_t tag, uint32_t n, int64_t expected) {
    memset(b, 0, sizeof *b);
    for (uint32_t i = 0; i < n; i++) {
        if (tu_event_make(&b->ev[i], tag, i, "Io", 0, EVENT_BYTES, tag * 131 + i, false) != 0)
            child_fail("out of memory");
        b->in[i] = tu_event_in(&b->ev[i]);
    }
    snprintf(b->stream, sizeof b->stream, "io-%u", (unsigned)(tag % 3));
    b->sa = (log_stream_append_t){.stream = b->stream,
                                  .stream_len = strlen(b->stream),
                                  .expected_version = expected,
                                  .events = b->in,
                                  .event_count = n};
    b->req = (log_append_t){.streams = &b->sa, .stream_count = 1};
}

static void iobatch_free(iobatch_t *b) {
    for (uint32_t i = 0; i < 4; i++) tu_event_free(&b->ev[i]);
}

static log_t *child_open(void) {
    log_config_t cfg;
    tu_config(&cfg, g_dir, SEGMENT_BYTES, false);
    cfg.compress_threshold_bytes = 0;
    cfg.durability = LOG_DURABILITY_ALWAYS;
    log_t *log = NULL;
    log_recovery_t rec;
    int rc = log_open(&cfg, &log, &rec);
    CHECK(rc == 0, "log_open: %d %s (%s)", rc, log_strerror(rc), rec.problem);
    return log;
}

static void set_fsize(rlim_t cur) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_FSIZE, &rl) == 0, "getrlimit: %s", strerror(errno));
    rl.rlim_cur = cur;
    CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, "setrlimit: %s", strerror(errno));
}

static int64_t stream_version(log_t *log, uint64_t tag) {
    char stream[16];
    snprintf(stream, sizeof stream, "io-%u", (unsigned)(tag % 3));
    int64_t v = -99;
    if (log_stream_version(log, stream, strlen(stream), &v) != 0) return LOG_VERSION_NONE;
    return v;
}

/* Appends one batch synchronously; records it when acknowledged. */
static int append_one(log_t *log, uint64_t tag, uint32_t n, int64_t expected) {
    static iobatch_t b;
    iobatch_make(&b, tag, n, expected);
    log_append_result_t res;
    memset(&res, 0, sizeof res);
    int rc = log_append_wait(log, &b.req, &res);
    if (rc == 0) {
        CHECK(g_acked_n < ACKED_MAX, "too many appends");
        g_acked[g_acked_n++] =
            (acked_t){.tag = tag, .first_position = res.first_position, .count = n};
    } else {
        g_failed_tags[g_failed_n++] = tag;
    }
    iobatch_free(&b);
    return rc;
}

/* $all holds exactly the acknowledged batches, in order, byte for byte. */
static void verify_log(log_t *log, const char *when) {
    tu_events_t evs = {0};
    int rc = tu_read_all(log, "$all", 0, false, 100, NULL, &evs, NULL);
    CHECK(rc == 0, "%s: read $all: %d %s", when, rc, log_strerror(rc));
    size_t k = 0;
    static uint8_t want[EVENT_BYTES];
    for (uint32_t b = 0; b < g_acked_n; b++) {
        for (uint32_t i = 0; i < g_acked[b].count; i++, k++) {
            CHECK(k < evs.n, "%s: $all ends at %zu events", when, evs.n);
            const tu_read_event_t *e = &evs.v[k];
            uint8_t id[16];
            tu_id(id, g_acked[b].tag, i);
            CHECK(e->position == g_acked[b].first_position + i,
                  "%s: position %" PRIu64 ", want %" PRIu64, when, e->position,
                  g_acked[b].first_position + i);
            CHECK(memcmp(e->id, id, 16) == 0, "%s: id at %" PRIu64 " is not batch %" PRIu64, when,
                  e->position, g_acked[b].tag);
            tu_fill(want, EVENT_BYTES, g_acked[b].tag * 131 + i, false);
            CHECK(e->data_len == EVENT_BYTES && memcmp(e->data, want, EVENT_BYTES) == 0,
                  "%s: data at %" PRIu64, when, e->position);
        }
    }
    CHECK(k == evs.n, "%s: $all has %zu events, %zu acknowledged", when, evs.n, k);
    for (size_t i = 0; i < evs.n; i++)
        for (uint32_t f = 0; f < g_failed_n; f++) {
            uint64_t tag = 0;
            for (int j = 7; j >= 0; j--) tag = (tag << 8) | evs.v[i].id[j];
            CHECK(tag != g_failed_tags[f], "%s: an event of failed batch %" PRIu64 " is visible",
                  when, tag);
        }
    tu_events_clear(&evs);
}

/* Appends 2-event batches until one fails; returns its status. */
static int append_until_failure(log_t *log, uint64_t *tag) {
    for (uint32_t i = 0; i < APPENDS_MAX; i++) {
        int64_t expected = stream_version(log, *tag);
        int rc = append_one(log, (*tag)++, 2, expected);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ---- the scenarios, run in the child -------------------------------------------- */

static void scenario_fail_then_recover(bool close_right_after) {
    signal(SIGXFSZ, SIG_IGN);
    log_t *log = child_open();
    uint64_t tag = 1;
    for (int i = 0; i < 5; i++)
        CHECK(append_one(log, tag++, 3, LOG_EXPECT_ANY) == 0, "first appends");
    set_fsize(FSIZE_LIMIT);
    int rc = append_until_failure(log, &tag);
    CHECK(rc == -EFBIG, "append over RLIMIT_FSIZE: %d %s, want -EFBIG", rc, log_strerror(rc));
    uint64_t failed_tag = tag - 1;
    CHECK(g_acked_n > 5, "nothing was appended below the limit");
    fprintf(stderr, "ioerr child: batch %" PRIu64 " failed with %d (%s) after %u acknowledged\n",
            failed_tag, rc, log_strerror(rc), g_acked_n);

    /* still readable, with exactly the acknowledged events */
    verify_log(log, "after the failure");
    int64_t v = stream_version(log, failed_tag);
    int64_t acked_v = -1;
    for (uint32_t b = 0; b < g_acked_n; b++)
        if (g_acked[b].tag % 3 == failed_tag % 3) acked_v += g_acked[b].count;
    CHECK(v == acked_v, "the failed batch's stream is at version %" PRId64 ", want %" PRId64, v,
          acked_v);
    log_stats_t st;
    log_stats(log, &st);
    CHECK(st.append_errors >= 1, "stats.append_errors is %" PRIu64, st.append_errors);
    uint64_t acked_events = 0;
    for (uint32_t b = 0; b < g_acked_n; b++) acked_events += g_acked[b].count;
    CHECK(st.durable_position == acked_events, "durable_position %" PRIu64 ", want %" PRIu64,
          st.durable_position, acked_events);

    set_fsize(RLIM_INFINITY);
    if (!close_right_after) {
        /* the stream continues from its acknowledged version */
        rc = append_one(log, tag++, 2, acked_v);
        CHECK(rc == 0, "append at the acknowledged version after raising the limit: %d %s", rc,
              log_strerror(rc));
        for (int i = 0; i < 20; i++)
            CHECK(append_one(log, tag++, 1 + i % 3, LOG_EXPECT_ANY) == 0,
                  "appends after the raise");
        verify_log(log, "after the raise");
    }
    rc = log_close(log);
    CHECK(rc == 0, "log_close: %d %s", rc, log_strerror(rc));

    log = child_open();
    verify_log(log, "after reopening");
    CHECK(append_one(log, tag++, 2, LOG_EXPECT_ANY) == 0, "append after reopening");
    verify_log(log, "after reopening and appending");
    rc = log_close(log);
    CHECK(rc == 0, "log_close: %d %s", rc, log_strerror(rc));
}

typedef struct {
    int calls;
    int status;
    uint64_t tag;
    uint64_t first_position;
} slot_t;

static void slot_cb(void *ctx, const log_append_result_t *res) {
    slot_t *s = ctx;
    s->calls++;
    s->status = res->status;
    s->first_position = res->first_position;
}

/* Several appends in one group commit when the write fails: every one of
 * them reports the error, none is visible. */
static void scenario_group_fails_together(void) {
    signal(SIGXFSZ, SIG_IGN);
    log_t *log = child_open();
    uint64_t tag = 1;
    for (int i = 0; i < 5; i++)
        CHECK(append_one(log, tag++, 2, LOG_EXPECT_ANY) == 0, "first appends");
    set_fsize(FSIZE_LIMIT);
    bool failed = false;
    for (int round = 0; round < 60 && !failed; round++) {
        static iobatch_t b[4];
        slot_t slots[4];
        memset(slots, 0, sizeof slots);
        for (int i = 0; i < 4; i++) {
            slots[i].tag = tag++;
            iobatch_make(&b[i], slots[i].tag, 1 + (uint32_t)i % 2, LOG_EXPECT_ANY);
            log_append_result_t failure;
            int rc = log_append(log, &b[i].req, slot_cb, &slots[i], &failure);
            CHECK(rc == 0, "log_append: %d %s", rc, log_strerror(rc));
        }
        int rc = log_drain(log);
        (void)rc; /* the statuses are in the callbacks */
        int bad = 0;
        for (int i = 0; i < 4; i++) {
            CHECK(slots[i].calls == 1, "callback ran %d times", slots[i].calls);
            uint32_t n = 1 + (uint32_t)i % 2;
            if (slots[i].status == 0) {
                /* what succeeded precedes what failed, in submission order */
                CHECK(bad == 0, "append %d succeeded after an earlier one of its group failed", i);
                g_acked[g_acked_n++] = (acked_t){
                    .tag = slots[i].tag, .first_position = slots[i].first_position, .count = n};
            } else {
                CHECK(slots[i].status == -EFBIG, "status %d %s, want -EFBIG", slots[i].status,
                      log_strerror(slots[i].status));
                g_failed_tags[g_failed_n++] = slots[i].tag;
                bad++;
            }
            iobatch_free(&b[i]);
        }
        failed = bad > 0;
    }
    CHECK(failed, "no group commit failed under RLIMIT_FSIZE");
    fprintf(stderr, "ioerr child: a group commit failed with -EFBIG after %u acknowledged\n",
            g_acked_n);
    verify_log(log, "after the failed group");
    set_fsize(RLIM_INFINITY);
    CHECK(append_one(log, tag++, 2, LOG_EXPECT_ANY) == 0, "append after raising the limit");
    verify_log(log, "after the raise");
    int rc = log_close(log);
    CHECK(rc == 0, "log_close: %d %s", rc, log_strerror(rc));
    log = child_open();
    verify_log(log, "after reopening");
    rc = log_close(log);
    CHECK(rc == 0, "log_close: %d %s", rc, log_strerror(rc));
}

/* ---- the parent ---------------------------------------------------------------- */

static void run_in_child(void (*scenario)(void)) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        g_check = 0;
        scenario();
        exit(0); /* exit, not _exit: the sanitizer's leak check runs */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "the child died of signal %d",
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_msg(WEXITSTATUS(status) == 0, "the child failed check %d (see its stderr)",
                  WEXITSTATUS(status));
}

static void fail_then_append(void) { scenario_fail_then_recover(false); }
static void fail_then_close(void) { scenario_fail_then_recover(true); }

START_TEST(a_write_over_the_file_size_limit_fails_with_efbig_and_appends_resume_after) {
    run_in_child(fail_then_append);
}
END_TEST

START_TEST(a_failed_batch_left_at_the_tail_is_gone_after_reopening) {
    run_in_child(fail_then_close);
}
END_TEST

START_TEST(every_append_of_a_failed_group_commit_reports_the_error) {
    run_in_child(scenario_group_fails_together);
}
END_TEST

int main(void) {
    if (tu_root_make("ioerr") == NULL) {
        perror("tu_root_make");
        return 2;
    }
    Suite *s = suite_create("log_ioerr");
    TCase *tc = tcase_create("efbig");
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_write_over_the_file_size_limit_fails_with_efbig_and_appends_resume_after);
    tcase_add_test(tc, a_failed_batch_left_at_the_tail_is_gone_after_reopening);
    tcase_add_test(tc, every_append_of_a_failed_group_commit_reports_the_error);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_root_remove();
    return failed == 0 ? 0 : 1;
}
