/* server_fixture.h -- start and stop a real evstored for integration tests.
 *
 * test_server_start() runs the evstored binary (EVSTORED_PATH, from CMake,
 * or the EVSTORED environment variable) with a fresh data directory under
 * $EVSTORE_TEST_TMPDIR (or /tmp) and --listen/--metrics on 127.0.0.1:0,
 * waits for its "evstored ready listen=... metrics=..." line on stdout and
 * parses the ports. The server's stdout goes to the file "<data_dir>.out"
 * (read for the ready line; nothing can block on a full pipe, and no thread
 * is needed to drain one); its stderr is inherited. Processes are started
 * and ended with util's proc.h; if the test process dies the server gets
 * SIGKILL. Nothing here is thread-safe; use it from one thread.
 */
#ifndef EVSTORE_TEST_SERVER_FIXTURE_H
#define EVSTORE_TEST_SERVER_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TEST_SERVER_READY_MS_MAX 20000 /* start-up bound */
#define TEST_SERVER_STOP_MS_MAX 20000  /* SIGTERM, then SIGKILL after this */
#define TEST_SERVER_ARGS_MAX 32
#define TEST_SERVER_REBIND_MS_MAX 20000 /* same-port restart: retries while the port is busy */
#define TEST_SERVER_REBIND_POLL_MS 50    /* between those retries */
#define TEST_ADDR_BYTES_MAX 64           /* a HOST:PORT in a ready line */

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

/* Starts argv (argv[0] the program's path) with its stdout to the file
 * out_path (truncated) and its stderr inherited; it gets SIGKILL if the
 * test process dies. Sets *pid and returns 0, or returns -1 with the reason
 * on stderr. */
int test_program_start(pid_t *pid, const char *const *argv, const char *out_path);

/* Waits up to timeout_ms for the program *pid, whose stdout is the file
 * path, to write a whole line with needle in it (the first line when needle
 * is NULL) and copies it to line (cap bytes). Returns 0, or a negative
 * errno with the reason on stderr, naming the program name; when the
 * program exited first (-ECHILD) it is reaped and *pid set to 0. */
int test_ready_line(pid_t *pid, const char *name, const char *path, const char *needle,
                    char *line, size_t cap, int timeout_ms);

/* The port of the "<key>HOST:PORT" word of a ready line (key "listen="),
 * or 0 when the line has none ("metrics=off"). */
uint16_t test_line_port(const char *line, const char *key);

/* Stops the server if it runs and removes its data directory. */
void test_server_destroy(test_server_t *srv);

/* Makes a fresh directory under $EVSTORE_TEST_TMPDIR (or /tmp) into out
 * (PATH_MAX bytes). Returns 0 or -1. */
int test_tmpdir_make(const char *tag, char *out);

/* Removes a directory tree. */
void test_tmpdir_remove(const char *path);

#endif
