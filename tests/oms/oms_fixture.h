/* oms_fixture.h -- start and stop the OMS programs for tests.
 *
 * A test starts a real evstored with tests/client/server_fixture.h
 * (test_server_start) and then the services it needs with oms_proc_start():
 * the program runs with the given arguments plus
 * "--store 127.0.0.1:<store port>" and "--metrics 127.0.0.1:0" (oms-order:
 * "--http 127.0.0.1:0"), its stdout goes to a file, and the fixture waits
 * for its ready line ("oms-<name> ready metrics=HOST:PORT" or
 * "oms-order ready http=HOST:PORT") and parses the ports. Processes get
 * SIGKILL if the test process dies (PR_SET_PDEATHSIG). Not thread-safe.
 */
#ifndef OMS_FIXTURE_H
#define OMS_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define OMS_PROC_ARGS_MAX 32
#define OMS_PROC_READY_MS_MAX 30000 /* start-up bound */
#define OMS_PROC_STOP_MS_MAX 20000  /* SIGTERM, then SIGKILL after this */

typedef struct {
    pid_t pid;                 /* 0 when not running */
    char program[64];          /* "oms-payment" */
    uint16_t store_port;
    uint16_t port;             /* metrics port (oms-order: its HTTP port) */
    char out_path[PATH_MAX];   /* the program's stdout (stderr is inherited) */
    const char *args[OMS_PROC_ARGS_MAX]; /* extra arguments, NULL-terminated */
    bool keep_port;            /* restart on the same port */
} oms_proc_t;

/* Path of a built OMS program ("oms-payment") from OMS_BIN_DIR (CMake) or
 * the OMS_BIN_DIR environment variable. */
const char *oms_program_path(const char *program, char *buf, size_t cap);

/* Starts program against the store on store_port with extra args
 * (NULL-terminated, may be NULL; copied pointers, so they must outlive p).
 * out_dir holds the stdout file. Returns 0, or -1 with a reason on stderr. */
int oms_proc_start(oms_proc_t *p, const char *program, uint16_t store_port,
                   const char *out_dir, const char *const *args);

/* Starts it again with the same arguments (on the same port). */
int oms_proc_restart(oms_proc_t *p);

/* Points the next restart at another store port (after evstored moved). */
void oms_proc_set_store_port(oms_proc_t *p, uint16_t store_port);

/* SIGTERM and wait (SIGKILL after OMS_PROC_STOP_MS_MAX). Returns the exit
 * status as waitpid() gives it, or -1 when it was not running. */
int oms_proc_stop(oms_proc_t *p);

/* SIGKILL and wait: a crash. */
void oms_proc_kill(oms_proc_t *p);

/* Waits until cond(ctx) is true, polling every 20 ms, for at most
 * timeout_ms. Returns true when it became true. */
bool oms_wait_until(bool (*cond)(void *ctx), void *ctx, int timeout_ms);

#endif
