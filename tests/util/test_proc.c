/* test_proc.c -- util's proc.h against /bin/sh: streams where the spec puts
 * them, the environment set over the caller's, exec failures reported by
 * proc_start, ready lines from a pipe and from a file, bounded waits that
 * kill what overstays, and exit codes. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

#define SH "/bin/sh"
#define WAIT_MS 10000 /* anything that should end does so well within this */

static char dir[PATH_MAX], file[PATH_MAX + 16];

static void setup(void)
{
    const char *base = getenv("EVSTORE_TEST_TMPDIR");
    snprintf(dir, sizeof dir, "%s/proc-XXXXXX", base && base[0] ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/out", dir);
}

static void teardown(void)
{
    unlink(file);
    rmdir(dir);
}

/* The first size-1 bytes of the file. */
static const char *file_text(char *buf, size_t size)
{
    int fd = open(file, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : 0;
    buf[n > 0 ? n : 0] = '\0';
    if (fd >= 0)
        close(fd);
    return buf;
}

START_TEST(stdout_and_stderr_go_to_one_file_with_2_to_1)
{
    const char *argv[] = {SH, "-c", "echo out; echo err >&2", NULL};
    proc_spec_t spec = {.argv = argv, .out = {PROC_IO_FILE, .path = file},
                        .err = {PROC_IO_STDOUT}};
    int status = proc_run(&spec, WAIT_MS);
    ck_assert_int_eq(proc_exit_code(status), 0);
    char buf[64];
    ck_assert_str_eq(file_text(buf, sizeof buf), "out\nerr\n");
}
END_TEST

START_TEST(append_keeps_what_the_file_held)
{
    const char *argv[] = {SH, "-c", "echo two", NULL};
    proc_spec_t spec = {.argv = argv, .out = {PROC_IO_FILE, .path = file}};
    ck_assert_int_eq(proc_run(&spec, WAIT_MS), 0);
    spec.out.kind = PROC_IO_APPEND;
    ck_assert_int_eq(proc_run(&spec, WAIT_MS), 0);
    char buf[64];
    ck_assert_str_eq(file_text(buf, sizeof buf), "two\ntwo\n");
}
END_TEST

START_TEST(env_entries_are_set_over_the_callers_environment)
{
    setenv("PROC_TEST_A", "caller", 1);
    setenv("PROC_TEST_B", "kept", 1);
    const char *argv[] = {SH, "-c", "echo $PROC_TEST_A $PROC_TEST_B $PROC_TEST_C", NULL};
    const char *env[] = {"PROC_TEST_A=child", "PROC_TEST_C=new", NULL};
    int out = -1;
    proc_spec_t spec = {.argv = argv, .env = env, .out = {PROC_IO_PIPE}};
    pid_t pid = proc_start(&spec, &out);
    ck_assert_int_gt(pid, 0);
    char line[64];
    ck_assert_int_eq(proc_read_line(out, line, sizeof line, WAIT_MS), 0);
    ck_assert_str_eq(line, "child kept new");
    ck_assert_int_eq(proc_read_line(out, line, sizeof line, WAIT_MS), -EIO); /* its end */
    close(out);
    ck_assert_int_eq(proc_end(pid, 0, WAIT_MS, "sh"), 0);
}
END_TEST

START_TEST(a_program_that_cannot_be_run_is_an_error_of_proc_start)
{
    const char *argv[] = {"/nonexistent/program", NULL};
    proc_spec_t spec = {.argv = argv};
    ck_assert_int_eq(proc_start(&spec, NULL), -ENOENT);
    spec.path_search = true;
    argv[0] = "no-such-program-in-path";
    ck_assert_int_eq(proc_start(&spec, NULL), -ENOENT);
    ck_assert_int_eq(proc_wait(-1, 0, NULL), -ECHILD); /* and nothing is left to reap */
}
END_TEST

START_TEST(stdin_comes_from_a_file)
{
    FILE *f = fopen(file, "w");
    fputs("from the file\n", f);
    fclose(f);
    const char *argv[] = {SH, "-c", "read l; echo \"got $l\"", NULL};
    int out = -1;
    proc_spec_t spec = {.argv = argv, .in = {PROC_IO_FILE, .path = file}, .out = {PROC_IO_PIPE}};
    pid_t pid = proc_start(&spec, &out);
    ck_assert_int_gt(pid, 0);
    char line[64];
    ck_assert_int_eq(proc_read_line(out, line, sizeof line, WAIT_MS), 0);
    ck_assert_str_eq(line, "got from the file");
    close(out);
    ck_assert_int_eq(proc_end(pid, 0, WAIT_MS, "sh"), 0);
}
END_TEST

START_TEST(a_ready_line_is_found_in_a_file_while_the_program_runs)
{
    const char *argv[] = {SH, "-c", "echo starting; sleep 0.2; echo 'x ready port=1'; exec sleep 60",
                          NULL};
    proc_spec_t spec = {.argv = argv, .out = {PROC_IO_FILE, .path = file}};
    pid_t pid = proc_start(&spec, NULL);
    ck_assert_int_gt(pid, 0);
    char line[128];
    ck_assert_int_eq(proc_file_line(pid, file, " ready ", line, sizeof line, WAIT_MS, NULL), 0);
    ck_assert_str_eq(line, "x ready port=1");
    int status = proc_end(pid, SIGTERM, WAIT_MS, "sh");
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}
END_TEST

START_TEST(a_program_that_exits_before_its_ready_line_is_reaped)
{
    const char *argv[] = {SH, "-c", "echo no; exit 3", NULL};
    proc_spec_t spec = {.argv = argv, .out = {PROC_IO_FILE, .path = file}};
    pid_t pid = proc_start(&spec, NULL);
    ck_assert_int_gt(pid, 0);
    char line[64];
    int status = 0;
    ck_assert_int_eq(proc_file_line(pid, file, " ready ", line, sizeof line, WAIT_MS, &status),
                     -ECHILD);
    ck_assert_int_eq(proc_exit_code(status), 3);
    ck_assert_int_eq(proc_wait(pid, 0, NULL), -ECHILD);
}
END_TEST

START_TEST(waits_end_at_their_deadline)
{
    const char *argv[] = {SH, "-c", "exec sleep 60", NULL};
    int out = -1;
    proc_spec_t spec = {.argv = argv, .out = {PROC_IO_PIPE}};
    pid_t pid = proc_start(&spec, &out);
    ck_assert_int_gt(pid, 0);
    uint64_t start_ms = util_mono_ms();
    char line[16];
    ck_assert_int_eq(proc_read_line(out, line, sizeof line, 100), -ETIMEDOUT);
    ck_assert_int_eq(proc_file_line(pid, file, NULL, line, sizeof line, 100, NULL), -ENOENT);
    ck_assert_int_eq(proc_wait(pid, 100, NULL), -ETIMEDOUT);
    ck_assert_uint_lt(util_mono_ms() - start_ms, WAIT_MS);
    close(out);
    int status = proc_end(pid, SIGKILL, WAIT_MS, "sh");
    ck_assert_int_eq(proc_exit_code(status), 128 + SIGKILL);
}
END_TEST

START_TEST(a_program_that_ignores_sigterm_is_killed_after_the_timeout)
{
    const char *argv[] = {SH, "-c", "trap '' TERM; echo up; while :; do sleep 1; done", NULL};
    int out = -1;
    proc_spec_t spec = {.argv = argv, .out = {PROC_IO_PIPE}};
    pid_t pid = proc_start(&spec, &out);
    ck_assert_int_gt(pid, 0);
    char line[16];
    ck_assert_int_eq(proc_read_line(out, line, sizeof line, WAIT_MS), 0); /* the trap is set */
    int status = proc_end(pid, SIGTERM, 200, "sh ignoring SIGTERM");
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(out);
}
END_TEST

START_TEST(run_kills_a_program_that_overstays)
{
    const char *argv[] = {SH, "-c", "exec sleep 60", NULL};
    proc_spec_t spec = {.argv = argv};
    uint64_t start_ms = util_mono_ms();
    ck_assert_int_eq(proc_run(&spec, 100), -ETIMEDOUT);
    ck_assert_uint_lt(util_mono_ms() - start_ms, WAIT_MS);
    spec.out.kind = PROC_IO_PIPE;
    ck_assert_int_eq(proc_run(&spec, 100), -EINVAL); /* nobody would read the pipe */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proc");
    TCase *tc = tcase_create("proc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, stdout_and_stderr_go_to_one_file_with_2_to_1);
    tcase_add_test(tc, append_keeps_what_the_file_held);
    tcase_add_test(tc, env_entries_are_set_over_the_callers_environment);
    tcase_add_test(tc, a_program_that_cannot_be_run_is_an_error_of_proc_start);
    tcase_add_test(tc, stdin_comes_from_a_file);
    tcase_add_test(tc, a_ready_line_is_found_in_a_file_while_the_program_runs);
    tcase_add_test(tc, a_program_that_exits_before_its_ready_line_is_reaped);
    tcase_add_test(tc, waits_end_at_their_deadline);
    tcase_add_test(tc, a_program_that_ignores_sigterm_is_killed_after_the_timeout);
    tcase_add_test(tc, run_kills_a_program_that_overstays);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
