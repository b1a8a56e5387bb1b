/* srv_util.h -- what the server's integration tests share besides the wire
 * client: starting evstored with the tests' usual flags (through the client
 * tests' fixture), capturing its stderr, and looking at the process. */
#ifndef EVSTORE_TESTS_SRV_UTIL_H
#define EVSTORE_TESTS_SRV_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <check.h>

#include "server_fixture.h"
#include "wire.h"

/* Asserts that env is an answer of the given body case, naming what came
 * instead (an Error's code and message) when it is not. */
#define ck_assert_answer(env, kind)                                                       \
    do {                                                                                  \
        const envelope_t *env_ = (env);                                                   \
        ck_assert_msg(env_ != NULL, "no answer (timeout, close or foreign id)");          \
        ck_assert_msg((int)env_->body_case == (int)(kind), "answer has body %d, expected %d%s%s", \
                      (int)env_->body_case, (int)(kind),                                  \
                      env_->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR ? ": error: " : "", \
                      env_->body_case == EVSTORE__V1__ENVELOPE__BODY_ERROR                \
                          ? env_->error->message : "");                                   \
    } while (0)

/* Asserts that env is an Error with the given code. */
#define ck_assert_error(env, code_)                                                       \
    do {                                                                                  \
        ck_assert_answer((env), EVSTORE__V1__ENVELOPE__BODY_ERROR);                       \
        ck_assert_msg((int)(env)->error->code == (int)(code_),                            \
                      "error code %d (%s), expected %d", (int)(env)->error->code,         \
                      (env)->error->message, (int)(code_));                               \
    } while (0)

#define SRV_EXTRA_MAX 24 /* extra flags a test may add */

/* Starts evstored on a fresh data directory with small segments (so that
 * preparing one costs little) plus extra (NULL-terminated, may be NULL).
 * When log_path is not NULL the server's stderr goes to that file (created
 * or truncated), so a test can check what it said. Returns 0 or -1. */
int srv_start(test_server_t *srv, const char *const *extra, const char *log_path);

/* Restarts a stopped or killed server on its data directory, with its
 * stderr appended to log_path when not NULL. */
int srv_restart(test_server_t *srv, const char *log_path);

/* Resident set size of a process in KiB (VmRSS), or -1. */
long srv_rss_kb(pid_t pid);

/* Whether the file at path contains needle (in its first MiB). */
bool srv_file_contains(const char *path, const char *needle);

/* How many times needle occurs in the file at path (in its first MiB);
 * 0 when the file cannot be read or needle is empty. For a log kept across
 * restarts. */
unsigned srv_file_count(const char *path, const char *needle);

/* Fills path (PATH_MAX) with a file name in a fresh temporary directory
 * (*dir gets the directory, to remove with test_tmpdir_remove()). */
int srv_tmpfile(const char *tag, char *dir, char *path);

#endif
