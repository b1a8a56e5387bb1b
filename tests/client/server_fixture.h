/* server_fixture.h -- start and stop a real evstored for integration tests.
 *
 * test_server_start() runs the evstored binary (EVSTORED_PATH, from CMake,
 * or the EVSTORED environment variable) with a fresh data directory under
 * $EVSTORE_TEST_TMPDIR (or /tmp) and --listen/--metrics on 127.0.0.1:0,
 * waits for its "evstored ready listen=... metrics=..." line on stdout and
 * parses the ports. The server's stdout goes to the file "<data_dir>.out"
 * (read for the ready line; nothing can block on a full pipe, and no thread
 * is needed: test programs fork, and a fork while another thread holds a
 * lock, e.g. ASan's allocator lock, deadlocks the child); its stderr is
 * inherited. If the test process dies the server gets SIGKILL
 * (PR_SET_PDEATHSIG). Nothing here is thread-safe; use it from one thread.
 */
#ifndef EVSTORE_TEST_SERVER_FIXTURE_H
#define EVSTORE_TEST_SERVER_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define TEST_SERVER_READY_MS_MAX 20000 /* start-up bound */
#define TEST_SERVER_STOP_MS_MAX 20000  /* SIGTERM, then SIGKILL after this */
#define TEST_SERVER_ARGS_MAX 32
#define TEST_SERVER_REBIND_MS_MAX 20000 /* same-port restart: retries while the port is busy */

typedef struct {
    pid_t pid;                 /* 0 when not running */
    uint16_t port;             /* the client port */
    uint16_t metrics_port;
    char data_dir[PATH_MAX];   /* kept across stop/start, removed by destroy */
    char stdout_path[PATH_MAX + 8]; /* the server's stdout */
    const char *extra[TEST_SERVER_ARGS_MAX]; /* extra flags, NULL-terminated */
    char listen[32];           /* --listen of the next start ("127.0.0.1:0": any port) */
} test_server_t;

/* Returns the path of the evstored binary, or NULL when none is known. */
const char *test_server_path(void);

/* Creates a fresh data directory and starts evstored on it with extra_args
 * (NULL-terminated, may be NULL; e.g. "--durability", "none"). Returns 0,
 * or -1 with a reason printed to stderr. */
int test_server_start(test_server_t *srv, const char *const *extra_args);

/* Starts evstored again on the same data directory and flags (after
 * test_server_stop() or test_server_kill()); the port changes. */
int test_server_restart(test_server_t *srv);

/* As test_server_restart(), but on the port it had: clients that reconnect
 * to host:port (subscriptions, group consumers) find it again. evstored
 * sets SO_REUSEADDR, so connections in TIME_WAIT do not block the bind;
 * after a kill the port may stay busy a moment (io_uring teardown), so the
 * start is retried for up to TEST_SERVER_REBIND_MS_MAX. */
int test_server_restart_same_port(test_server_t *srv);

/* SIGTERM, waits for exit (SIGKILL after TEST_SERVER_STOP_MS_MAX). Returns
 * the exit status as waitpid() gives it, or -1. */
int test_server_stop(test_server_t *srv);

/* SIGKILL and wait: a crash. */
void test_server_kill(test_server_t *srv);

/* Sends sig to the process *pid and waits for it to exit, with SIGKILL
 * (said on stderr, naming it name) if it has not after timeout_ms. Sets
 * *pid to 0. Returns the exit status as waitpid() gives it, or -1 when
 * *pid was 0 (nothing running). */
int test_process_end(pid_t *pid, int sig, int timeout_ms, const char *name);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t test_now_ms(void);

/* Stops the server if it runs and removes its data directory. */
void test_server_destroy(test_server_t *srv);

/* Makes a fresh directory under $EVSTORE_TEST_TMPDIR (or /tmp) into out
 * (PATH_MAX bytes). Returns 0 or -1. */
int test_tmpdir_make(const char *tag, char *out);

/* Removes a directory tree. */
void test_tmpdir_remove(const char *path);

#endif
