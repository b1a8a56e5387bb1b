/* test_server_startup.c -- evstored refuses to start, with a message that
 * says why, when its port is taken, its data directory is locked by
 * another evstored or cannot be a directory, or its flags are wrong (exit
 * 2); --help prints the usage and exits 0. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "srv_util.h"
#include "wire.h"

#define RUN_MS_MAX 15000
#define RUN_OUTPUT_MAX 16384
#define RUN_ARGS_MAX 16

/* What one run of evstored did. */
typedef struct {
    int status;      /* as waitpid() gives it */
    bool started;    /* it printed its ready line (and was then stopped) */
    char output[RUN_OUTPUT_MAX]; /* stdout and stderr together */
} run_t;

/* Whether text has a line starting with the ready line's words (--help
 * quotes them mid-line). */
static bool ready_line_in(const char *text)
{
    static const char ready[] = "evstored ready listen=";
    if (strncmp(text, ready, sizeof ready - 1) == 0)
        return true;
    return strstr(text, "\nevstored ready listen=") != NULL;
}

/* Runs evstored with args (NULL-terminated) to its exit, collecting its
 * output; a server that starts after all is stopped with SIGTERM. */
static void run_evstored(const char *const *args, run_t *r)
{
    memset(r, 0, sizeof *r);
    const char *argv[RUN_ARGS_MAX + 2];
    int n = 0;
    argv[n++] = test_server_path();
    for (int i = 0; args[i] && n < RUN_ARGS_MAX; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int out = -1;
    proc_spec_t spec = {.argv = argv, .out = {PROC_IO_PIPE}, .err = {PROC_IO_STDOUT}};
    pid_t pid = proc_start(&spec, &out);
    ck_assert_msg(pid > 0, "start %s: %s", argv[0], strerror((int)-pid));
    size_t len = 0;
    bool eof = false;
    int64_t deadline = (int64_t)util_mono_ms() + RUN_MS_MAX;
    while (!eof && len < sizeof r->output - 1) {
        struct pollfd p = {.fd = out, .events = POLLIN};
        int64_t left = deadline - (int64_t)util_mono_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t k = read(out, r->output + len, sizeof r->output - 1 - len);
        eof = k <= 0;
        if (k > 0)
            len += (size_t)k;
        r->output[len] = '\0';
        if (!r->started && ready_line_in(r->output)) {
            r->started = true;
            kill(pid, SIGTERM);
        }
    }
    close(out);
    /* at the end of its output it is exiting; otherwise it hung or talked
     * too much, which no test expects: killed */
    r->status = proc_end(pid, eof ? 0 : SIGKILL, RUN_MS_MAX, "evstored");
    ck_assert_msg(r->status >= 0, "evstored did not end: %s", strerror(-r->status));
}

static int exit_code(const run_t *r)
{
    return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
}

static void assert_refused(const run_t *r, const char *needle)
{
    ck_assert_msg(!r->started, "evstored started although it should not: %s", r->output);
    ck_assert_msg(exit_code(r) > 0, "exit status 0x%x, expected a non-zero exit; output: %s",
                  r->status, r->output);
    ck_assert_msg(strcasestr(r->output, needle) != NULL, "no '%s' in evstored's output: %s",
                  needle, r->output);
}

static test_server_t first;
static char tmp[PATH_MAX], file[PATH_MAX];

static void setup(void)
{
    ck_assert_int_eq(srv_start(&first, (const char *[]){"--quiet", NULL}, NULL), 0);
    ck_assert_int_eq(srv_tmpfile("startup", tmp, file), 0);
}

static void teardown(void)
{
    test_server_destroy(&first);
    test_tmpdir_remove(tmp);
}

START_TEST(a_listen_port_in_use_is_refused_with_address_in_use)
{
    char listen[64], data[PATH_MAX + 16];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)first.port);
    snprintf(data, sizeof data, "%s/data", tmp);
    run_t r;
    run_evstored((const char *[]){"--data", data, "--listen", listen, "--metrics",
                                  "127.0.0.1:0", NULL},
                 &r);
    assert_refused(&r, "in use");
    ck_assert_msg(strstr(r.output, listen) != NULL, "the message does not name %s: %s", listen,
                  r.output);
}
END_TEST

START_TEST(a_metrics_port_in_use_is_refused)
{
    char metrics[64], data[PATH_MAX + 16];
    snprintf(metrics, sizeof metrics, "127.0.0.1:%u", (unsigned)first.metrics_port);
    snprintf(data, sizeof data, "%s/data", tmp);
    run_t r;
    run_evstored((const char *[]){"--data", data, "--listen", "127.0.0.1:0", "--metrics",
                                  metrics, NULL},
                 &r);
    assert_refused(&r, "in use");
}
END_TEST

START_TEST(a_data_dir_locked_by_another_evstored_is_refused)
{
    run_t r;
    run_evstored((const char *[]){"--data", first.data_dir, "--listen", "127.0.0.1:0",
                                  "--metrics", "127.0.0.1:0", NULL},
                 &r);
    assert_refused(&r, "locked");
    /* The first server is unharmed. */
    wire_t w;
    ck_assert_int_eq(wire_open(&w, first.port), 0);
    wire_close(&w);
}
END_TEST

START_TEST(a_data_dir_that_cannot_be_a_directory_is_refused)
{
    /* Tests run as root, which chmod does not stop: use a regular file
     * where the directory (or one of its parents) should be. */
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a directory\n", f);
    fclose(f);
    char under[PATH_MAX + 16];
    snprintf(under, sizeof under, "%s/data", file);
    const char *dirs[] = {file, under};
    for (size_t i = 0; i < 2; i++) {
        run_t r;
        run_evstored((const char *[]){"--data", dirs[i], "--listen", "127.0.0.1:0",
                                      "--metrics", "127.0.0.1:0", NULL},
                     &r);
        assert_refused(&r, dirs[i]);
        ck_assert_msg(strcasestr(r.output, "director") != NULL,
                      "the message does not speak of the directory: %s", r.output);
    }
}
END_TEST

START_TEST(bad_flags_exit_2_with_a_message)
{
    char data[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data", tmp);
    static const char *const cases[][4] = {
        {"--no-such-flag", NULL},
        {"--max-connections", "0", NULL},
        {"--max-connections", "lots", NULL},
        {"--max-frame-bytes", "1", NULL},
        {"--durability", "sometimes", NULL},
        {"--segment-bytes", "100000", NULL},
        {"--max-output-bytes", "-5", NULL},
        {"--writes-inflight", "0", NULL},
        {"--writes-inflight", "17", NULL},
        {"stray-argument", NULL},
        {"--listen", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[12] = {"--data", data, "--listen", "127.0.0.1:0", "--metrics", "off"};
        int n = 6;
        for (int k = 0; cases[i][k]; k++)
            args[n++] = cases[i][k];
        args[n] = NULL;
        run_t r;
        run_evstored(args, &r);
        ck_assert_msg(!r.started, "case %zu (%s): evstored started", i, cases[i][0]);
        ck_assert_msg(exit_code(&r) == 2, "case %zu (%s): exit status 0x%x, expected exit 2",
                      i, cases[i][0], r.status);
        ck_assert_msg(strstr(r.output, "evstored: ") != NULL && strlen(r.output) > 12,
                      "case %zu (%s): no message: '%s'", i, cases[i][0], r.output);
    }
}
END_TEST

START_TEST(an_unparsable_listen_address_is_refused)
{
    char data[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data", tmp);
    run_t r;
    run_evstored((const char *[]){"--data", data, "--listen", "nowhere", "--metrics", "off",
                                  NULL},
                 &r);
    assert_refused(&r, "HOST:PORT");
}
END_TEST

START_TEST(help_prints_the_usage_and_exits_0)
{
    run_t r;
    run_evstored((const char *[]){"--help", NULL}, &r);
    ck_assert_msg(exit_code(&r) == 0, "exit status 0x%x", r.status);
    ck_assert(!r.started);
    static const char *const words[] = {"usage: evstored", "--data", "--listen", "--metrics",
                                        "--durability", "--max-connections",
                                        "--max-frame-bytes", "--max-output-bytes"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        ck_assert_msg(strstr(r.output, words[i]) != NULL, "no '%s' in --help", words[i]);
}
END_TEST

static Suite *startup_suite(void)
{
    Suite *s = suite_create("server.startup");
    TCase *tc = tcase_create("startup");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_listen_port_in_use_is_refused_with_address_in_use);
    tcase_add_test(tc, a_metrics_port_in_use_is_refused);
    tcase_add_test(tc, a_data_dir_locked_by_another_evstored_is_refused);
    tcase_add_test(tc, a_data_dir_that_cannot_be_a_directory_is_refused);
    tcase_add_test(tc, bad_flags_exit_2_with_a_message);
    tcase_add_test(tc, an_unparsable_listen_address_is_refused);
    tcase_add_test(tc, help_prints_the_usage_and_exits_0);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(startup_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
