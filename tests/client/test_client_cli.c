/* test_client_cli.c -- the evstore program against a real evstored:
 * append from arguments, JSON lines and text lines; read as text and JSON
 * (streams, categories, $all, filters, paging); streams, stats, ping; tail
 * and the group commands; exit codes and the EVSTORE_HOST/EVSTORE_PORT
 * environment. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client_test.h"
#include "proc.h"

test_server_t g_server;

#define CLI_OUT_BYTES (256u * 1024)
#define CLI_ARGS_MAX 32
#define CLI_RUN_MS_MAX 60000 /* one run of the program */

typedef struct {
    int status;               /* exit code, or -1 */
    char out[CLI_OUT_BYTES];  /* stdout */
    char err[16384];          /* stderr */
} cli_run_t;

/* Reads all of fd into buf (NUL-terminated, truncated to cap). */
static void slurp(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, buf + len, cap - 1 - len)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            len += (size_t)n;
    buf[len] = '\0';
}

/* Runs the program with the streams given, against g_server (through the
 * environment); at most CLI_RUN_MS_MAX. Returns the exit code, or -1. */
static int cli_exec(int in, int out, int err, char **argv)
{
    char port[32];
    snprintf(port, sizeof port, "EVSTORE_PORT=%u", g_server.port);
    const char *env[] = {"EVSTORE_HOST=127.0.0.1", port, NULL};
    argv[0] = (char *)EVSTORE_CLI_PATH;
    proc_spec_t spec = {.argv = (const char *const *)argv,
                        .env = env,
                        .in = {PROC_IO_FD, .fd = in},
                        .out = {PROC_IO_FD, .fd = out},
                        .err = {PROC_IO_FD, .fd = err}};
    int status = proc_run(&spec, CLI_RUN_MS_MAX);
    ck_assert_msg(status >= 0, "evstore: %s", strerror(-status));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs evstore with the arguments (NULL-terminated) and stdin text. Stdout
 * and stderr go to files, so that nothing blocks on a full pipe. */
static void cli(cli_run_t *r, const char *input, ...)
{
    char *argv[CLI_ARGS_MAX] = { (char *)"evstore" };
    va_list ap;
    va_start(ap, input);
    for (int i = 1; i < CLI_ARGS_MAX - 1 && (argv[i] = va_arg(ap, char *)) != NULL; i++)
        ;
    va_end(ap);
    FILE *in = tmpfile(), *out = tmpfile(), *err = tmpfile();
    ck_assert(in && out && err);
    fputs(input ? input : "", in);
    fflush(in);
    rewind(in);
    r->status = cli_exec(fileno(in), fileno(out), fileno(err), argv);
    lseek(fileno(out), 0, SEEK_SET);
    lseek(fileno(err), 0, SEEK_SET);
    slurp(fileno(out), r->out, sizeof r->out);
    slurp(fileno(err), r->err, sizeof r->err);
    fclose(in), fclose(out), fclose(err);
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#define ck_cli_ok(r) ck_assert_msg((r)->status == 0, "exit %d: %s", (r)->status, (r)->err)

static cli_run_t R; /* large: not on the stack */

START_TEST(append_from_arguments_then_read_as_text)
{
    char s[64];
    uniq("cli-", s);
    cli(&R, NULL, "append", s, "--type", "Greeting", "hello", "world", NULL);
    ck_cli_ok(&R);
    ck_assert_ptr_nonnull(strstr(R.out, "versions 0..1"));
    cli(&R, NULL, "read", s, NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2);
    ck_assert_ptr_nonnull(strstr(R.out, "@0 Greeting hello\n"));
    ck_assert_ptr_nonnull(strstr(R.out, "@1 Greeting world\n"));
}
END_TEST

START_TEST(append_json_lines_from_stdin_then_read_json)
{
    char s[64];
    uniq("cli-", s);
    cli(&R,
        "{\"type\":\"Paid\",\"data\":{\"amount\":5},\"metadata\":\"m1\"}\n"
        "\n"
        "{\"type\":\"Shipped\",\"data\":\"box\",\"id\":\"00112233-4455-6677-8899-aabbccddeeff\"}\n",
        "append", s, "--expected-version", "no_stream", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "read", s, "--json", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2);
    ck_assert_ptr_nonnull(strstr(R.out, "\"type\":\"Paid\""));
    ck_assert_ptr_nonnull(strstr(R.out, "\"data\":{\"amount\":5}"));
    ck_assert_ptr_nonnull(strstr(R.out, "\"metadata\":\"m1\""));
    ck_assert_ptr_nonnull(strstr(R.out, "\"id\":\"00112233-4455-6677-8899-aabbccddeeff\""));
    ck_assert_ptr_nonnull(strstr(R.out, "\"version\":1"));
}
END_TEST

START_TEST(append_text_lines_with_a_type)
{
    char s[64];
    uniq("cli-", s);
    cli(&R, "first line\nsecond line\nthird\n", "append", s, "--type", "Note", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "read", s, "--backwards", "--count", "2", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2);
    ck_assert(strstr(R.out, "third") < strstr(R.out, "second line"));
}
END_TEST

START_TEST(retrying_the_same_id_is_reported_as_a_retry)
{
    char s[64];
    uniq("cli-", s);
    const char *line = "{\"type\":\"E\",\"id\":\"000102030405060708090a0b0c0d0e0f\"}\n";
    cli(&R, line, "append", s, NULL);
    ck_cli_ok(&R);
    cli(&R, line, "append", s, NULL);
    ck_cli_ok(&R);
    ck_assert_ptr_nonnull(strstr(R.out, "a retry"));
}
END_TEST

START_TEST(wrong_expected_version_exits_1)
{
    char s[64];
    uniq("cli-", s);
    cli(&R, NULL, "append", s, "--type", "E", "a", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "append", s, "--type", "E", "--expected-version", "5", "b", NULL);
    ck_assert_int_eq(R.status, 1);
    ck_assert_ptr_nonnull(strstr(R.err, "at version 0"));
    cli(&R, NULL, "append", s, "--type", "E", "--expected-version", "0", "b", NULL);
    ck_cli_ok(&R);
}
END_TEST

START_TEST(reading_a_missing_stream_exits_1)
{
    char s[64];
    cli(&R, NULL, "read", uniq("cli-missing-", s), NULL);
    ck_assert_int_eq(R.status, 1);
    ck_assert_ptr_nonnull(strstr(R.err, "not found"));
}
END_TEST

START_TEST(category_and_all_reads_with_type_filters)
{
    char cat[64], s1[96], s2[96], ce[96];
    uniq("clicat", cat);
    snprintf(s1, sizeof s1, "%s-1", cat);
    snprintf(s2, sizeof s2, "%s-2", cat);
    snprintf(ce, sizeof ce, "$ce-%s", cat);
    cli(&R, NULL, "append", s1, "--type", cat, "x1", "x2", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "append", s2, "--type", "Other", "y1", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "read", ce, "--json", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 3);
    cli(&R, NULL, "read", ce, "--type", "Other", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 1);
    cli(&R, NULL, "read", "$all", "--type", cat, NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2);
    cli(&R, NULL, "read", "$all", "--type-prefix", cat, "--backwards", "--count", "1", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 1);
    ck_assert_ptr_nonnull(strstr(R.out, "x2"));
}
END_TEST

START_TEST(read_pages_through_long_streams)
{
    char s[64], *input = malloc(3000 * 16), *p = input;
    uniq("clilong-", s);
    for (int i = 0; i < 2500; i++)
        p += sprintf(p, "event %d\n", i);
    cli(&R, input, "append", s, "--type", "Bulk", NULL);
    free(input);
    ck_cli_ok(&R);
    cli(&R, NULL, "read", s, NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2500);
    ck_assert_ptr_nonnull(strstr(R.out, "@2499 Bulk event 2499\n"));
    cli(&R, NULL, "read", s, "--from", "2490", NULL);
    ck_assert_uint_eq(lines(R.out), 10);
}
END_TEST

START_TEST(streams_stats_and_ping)
{
    char prefix[64], s[96];
    uniq("clilist", prefix);
    snprintf(s, sizeof s, "%s-a", prefix);
    cli(&R, NULL, "append", s, "--type", "E", "1", "2", "3", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "streams", "--prefix", prefix, NULL);
    ck_cli_ok(&R);
    char want[128];
    snprintf(want, sizeof want, "%s 2\n", s);
    ck_assert_str_eq(R.out, want);
    cli(&R, NULL, "stats", NULL);
    ck_cli_ok(&R);
    ck_assert_ptr_nonnull(strstr(R.out, "head_position: "));
    ck_assert_ptr_nonnull(strstr(R.out, "durability: "));
    cli(&R, NULL, "ping", NULL);
    ck_cli_ok(&R);
    ck_assert_ptr_nonnull(strstr(R.out, "pong from 127.0.0.1"));
}
END_TEST

START_TEST(usage_errors_exit_2_and_help_exits_0)
{
    cli(&R, NULL, NULL);
    ck_assert_int_eq(R.status, 2);
    cli(&R, NULL, "frobnicate", NULL);
    ck_assert_int_eq(R.status, 2);
    cli(&R, NULL, "append", NULL);
    ck_assert_int_eq(R.status, 2);
    cli(&R, NULL, "append", "s-1", "data-without-type", NULL);
    ck_assert_int_eq(R.status, 2);
    cli(&R, NULL, "append", "s-1", "--expected-version", "sometimes", NULL);
    ck_assert_int_eq(R.status, 2);
    cli(&R, "{not json\n", "append", "s-1", NULL);
    ck_assert_int_eq(R.status, 2);
    ck_assert_ptr_nonnull(strstr(R.err, "line 1"));
    cli(&R, NULL, "read", NULL);
    ck_assert_int_eq(R.status, 2);
    const char *cmds[] = { "append", "read", "streams", "stats", "ping" };
    for (size_t i = 0; i < 5; i++) {
        cli(&R, NULL, cmds[i], "--help", NULL);
        ck_cli_ok(&R);
        ck_assert_ptr_nonnull(strstr(R.out, "usage: evstore"));
    }
    cli(&R, NULL, "--help", NULL);
    ck_cli_ok(&R);
}
END_TEST

/* Every command the program runs is listed by 'evstore --help', and every
 * command listed there runs (its own --help exits 0). */
START_TEST(help_lists_every_command)
{
    const char *known[] = { "append", "read", "tail", "streams", "group", "stats", "ping" };
    cli(&R, NULL, "--help", NULL);
    ck_cli_ok(&R);
    char *listed = strdup(R.out);
    ck_assert_ptr_nonnull(listed);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n  %s ", known[i]);
        ck_assert_msg(strstr(listed, line), "'evstore --help' does not list %s:\n%s", known[i],
                      listed);
    }
    char *section = strstr(listed, "commands:\n");
    ck_assert_ptr_nonnull(section);
    int count = 0;
    for (char *p = strchr(section, '\n') + 1; strncmp(p, "  ", 2) == 0; count++) {
        char name[32];
        ck_assert_int_eq(sscanf(p, " %31s", name), 1);
        cli(&R, NULL, name, "--help", NULL);
        ck_assert_msg(R.status == 0, "listed command %s: --help exits %d", name, R.status);
        ck_assert_ptr_nonnull(strstr(R.out, "usage: evstore"));
        p = strchr(p, '\n') + 1;
    }
    ck_assert_int_eq(count, (int)(sizeof known / sizeof known[0]));
    free(listed);
}
END_TEST

START_TEST(no_server_exits_3)
{
    cli(&R, NULL, "--port", "1", "ping", NULL);
    ck_assert_int_eq(R.status, 3);
    ck_assert_ptr_nonnull(strstr(R.err, "127.0.0.1:1"));
}
END_TEST

START_TEST(tail_prints_stored_events_then_stops_on_count_or_silence)
{
    char cat[64], s[96], target[96];
    uniq("tailcat", cat);
    snprintf(s, sizeof s, "%s-1", cat);
    snprintf(target, sizeof target, "$ce-%s", cat);
    cli(&R, NULL, "append", s, "--type", "Greeting", "hello", "world", "again", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "tail", s, "--count", "2", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2);
    ck_assert_ptr_nonnull(strstr(R.out, "@0 Greeting hello\n"));
    ck_assert_ptr_nonnull(strstr(R.out, "@1 Greeting world\n"));
    cli(&R, NULL, "tail", target, "--from", "0", "--timeout-ms", "300", "--json", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 3);
    ck_assert_ptr_nonnull(strstr(R.out, "\"data\":\"again\""));
    ck_assert_ptr_nonnull(strstr(R.err, "caught up"));
    cli(&R, NULL, "tail", s, "--from-end", "--timeout-ms", "300", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 0);
    cli(&R, NULL, "tail", "$all", "--type", "Greeting", "--prefix", cat, "--timeout-ms", "300",
        NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 3);
    cli(&R, NULL, "tail", s, "--from", "1", "--from-end", NULL);
    ck_assert_int_eq(R.status, 2);
    cli(&R, NULL, "tail", NULL);
    ck_assert_int_eq(R.status, 2);
}
END_TEST

START_TEST(group_commands_create_list_info_update_consume_delete)
{
    char g[64], cat[64], s[96], target[96], parked[96];
    uniq("cligrp-", g);
    uniq("cgcat", cat);
    snprintf(s, sizeof s, "%s-1", cat);
    snprintf(target, sizeof target, "$ce-%s", cat);
    snprintf(parked, sizeof parked, "$parked-%s", g);
    cli(&R, NULL, "append", s, "--type", "Job", "a", "b", "c", "d", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "group", "create", g, "--stream", target, "--from", "0", "--max-retries", "4",
        "--ack-timeout-ms", "5000", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "group", "create", g, "--stream", target, NULL);
    ck_assert_int_eq(R.status, 1);
    cli(&R, NULL, "group", "list", NULL);
    ck_cli_ok(&R);
    ck_assert_ptr_nonnull(strstr(R.out, g));
    cli(&R, NULL, "group", "update", g, "--strategy", "pinned", "--max-retries", "6", NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "group", "info", g, NULL);
    ck_cli_ok(&R);
    ck_assert_ptr_nonnull(strstr(R.out, "strategy: pinned\n"));
    ck_assert_ptr_nonnull(strstr(R.out, "max_retries: 6\n"));
    ck_assert_ptr_nonnull(strstr(R.out, "ack_timeout_ms: 5000\n")); /* kept by update */
    cli(&R, NULL, "group", "consume", g, "--count", "2", "--json", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2);
    ck_assert_ptr_nonnull(strstr(R.out, "\"retry_count\":0"));
    cli(&R, NULL, "group", "consume", g, "--count", "2", "--nack-park", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2);
    cli(&R, NULL, "read", parked, NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2);
    cli(&R, NULL, "group", "info", g, "--json", NULL);
    ck_cli_ok(&R);
    ck_assert_ptr_nonnull(strstr(R.out, "\"parked\":2"));
    cli(&R, NULL, "group", "replay-parked", g, NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "group", "consume", g, "--count", "2", "--ack", "--timeout-ms", "5000", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 2);
    cli(&R, NULL, "group", "consume", g, "--timeout-ms", "300", NULL);
    ck_cli_ok(&R);
    ck_assert_uint_eq(lines(R.out), 0);
    cli(&R, NULL, "group", "delete", g, NULL);
    ck_cli_ok(&R);
    cli(&R, NULL, "group", "delete", g, NULL);
    ck_assert_int_eq(R.status, 1);
    cli(&R, NULL, "group", "info", g, NULL);
    ck_assert_int_eq(R.status, 1);
    ck_assert_ptr_nonnull(strstr(R.err, "not found"));
    cli(&R, NULL, "group", "consume", g, "--count", "1", NULL);
    ck_assert_int_eq(R.status, 1);
    cli(&R, NULL, "group", "create", g, NULL); /* no --stream */
    ck_assert_int_eq(R.status, 2);
    cli(&R, NULL, "group", "update", g, "--stream", "x", NULL);
    ck_assert_int_eq(R.status, 2);
    cli(&R, NULL, "group", "frobnicate", NULL);
    ck_assert_int_eq(R.status, 2);
    const char *helps[][2] = { { "tail", NULL },      { "group", NULL },
                               { "group", "create" }, { "group", "update" },
                               { "group", "info" },   { "group", "list" },
                               { "group", "consume" }, { "group", "delete" },
                               { "group", "replay-parked" } };
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        if (helps[i][1])
            cli(&R, NULL, helps[i][0], helps[i][1], "--help", NULL);
        else
            cli(&R, NULL, helps[i][0], "--help", NULL);
        ck_cli_ok(&R);
        ck_assert_ptr_nonnull(strstr(R.out, "usage: evstore"));
    }
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("client_cli");
    TCase *tc = tcase_create("cli");
    tcase_add_unchecked_fixture(tc, server_setup, server_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, append_from_arguments_then_read_as_text);
    tcase_add_test(tc, append_json_lines_from_stdin_then_read_json);
    tcase_add_test(tc, append_text_lines_with_a_type);
    tcase_add_test(tc, retrying_the_same_id_is_reported_as_a_retry);
    tcase_add_test(tc, wrong_expected_version_exits_1);
    tcase_add_test(tc, reading_a_missing_stream_exits_1);
    tcase_add_test(tc, category_and_all_reads_with_type_filters);
    tcase_add_test(tc, read_pages_through_long_streams);
    tcase_add_test(tc, streams_stats_and_ping);
    tcase_add_test(tc, usage_errors_exit_2_and_help_exits_0);
    tcase_add_test(tc, help_lists_every_command);
    tcase_add_test(tc, no_server_exits_3);
    tcase_add_test(tc, tail_prints_stored_events_then_stops_on_count_or_silence);
    tcase_add_test(tc, group_commands_create_list_info_update_consume_delete);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
