/* oms_fixture.c -- start and stop the OMS programs for tests. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oms_fixture.h"
#include "server_fixture.h"
#include "util.h"

#define OMS_PROC_REBIND_MS_MAX 5000 /* a restart on the same port retries while it is busy */
#define OMS_PROC_REBIND_POLL_MS 50  /* between those retries */
#define OMS_WAIT_POLL_MS 20         /* oms_wait_until looks this often */


const char *oms_program_path(const char *program, char *buf, size_t cap)
{
    const char *dir = getenv("OMS_BIN_DIR");
#ifdef OMS_BIN_DIR
    if (!dir)
        dir = OMS_BIN_DIR;
#endif
    if (!dir)
        return NULL;
    snprintf(buf, cap, "%s/%s", dir, program);
    return buf;
}

static bool is_order(const oms_proc_t *p)
{
    return strcmp(p->program, "oms-order") == 0;
}

/* Starts the program with its stdout to p->out_path. */
static int program_exec(oms_proc_t *p, const char *path)
{
    const char *argv[OMS_PROC_ARGS_MAX + 8];
    char store[32], listen[32];
    int n = 0;
    snprintf(store, sizeof store, "127.0.0.1:%u", (unsigned)p->store_port);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", p->keep_port ? (unsigned)p->port : 0u);
    argv[n++] = path;
    argv[n++] = "--store";
    argv[n++] = store;
    argv[n++] = is_order(p) ? "--http" : "--metrics";
    argv[n++] = listen;
    for (int i = 0; p->args[i] && i < OMS_PROC_ARGS_MAX - 1; i++)
        argv[n++] = p->args[i];
    argv[n] = NULL;
    return test_program_start(&p->pid, argv, p->out_path);
}

/* Waits for the ready line and takes the port from "metrics=" or "http=". */
static int ready_wait(oms_proc_t *p)
{
    char line[512];
    if (test_ready_line(&p->pid, p->program, p->out_path, " ready ", line, sizeof line,
                        OMS_PROC_READY_MS_MAX))
        return -1;
    p->port = test_line_port(line, is_order(p) ? "http=" : "metrics=");
    if (!p->port && !strstr(line, "metrics=off")) {
        fprintf(stderr, "fixture: %s: no port in \"%s\"\n", p->program, line);
        return -1;
    }
    return 0;
}

static int spawn(oms_proc_t *p)
{
    char path_buf[PATH_MAX];
    const char *path = oms_program_path(p->program, path_buf, sizeof path_buf);
    if (!path || access(path, X_OK) != 0) {
        fprintf(stderr, "fixture: %s is not built (%s)\n", p->program, path ? path : "?");
        return -1;
    }
    if (program_exec(p, path))
        return -1;
    if (ready_wait(p) != 0) {
        oms_proc_kill(p);
        return -1;
    }
    return 0;
}

int oms_proc_start(oms_proc_t *p, const char *program, uint16_t store_port,
                   const char *out_dir, const char *const *args)
{
    memset(p, 0, sizeof *p);
    snprintf(p->program, sizeof p->program, "%s", program);
    p->store_port = store_port;
    for (int i = 0; args && args[i] && i < OMS_PROC_ARGS_MAX - 1; i++)
        p->args[i] = args[i];
    static unsigned seq;
    snprintf(p->out_path, sizeof p->out_path, "%s/%s.%u.out", out_dir, program, seq++);
    return spawn(p);
}

int oms_proc_restart(oms_proc_t *p)
{
    if (p->pid)
        oms_proc_stop(p);
    p->keep_port = p->port != 0;
    uint64_t deadline = util_mono_ms() + OMS_PROC_REBIND_MS_MAX;
    int rc;
    while ((rc = spawn(p)) != 0 && util_mono_ms() < deadline)
        util_sleep_ms(OMS_PROC_REBIND_POLL_MS);
    return rc;
}

void oms_proc_set_store_port(oms_proc_t *p, uint16_t store_port)
{
    p->store_port = store_port;
}

int oms_proc_stop(oms_proc_t *p)
{
    return test_process_end(&p->pid, SIGTERM, OMS_PROC_STOP_MS_MAX, p->program);
}

void oms_proc_kill(oms_proc_t *p)
{
    test_process_end(&p->pid, SIGKILL, OMS_PROC_STOP_MS_MAX, p->program);
}

bool oms_wait_until(bool (*cond)(void *ctx), void *ctx, int timeout_ms)
{
    uint64_t deadline = util_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (cond(ctx))
            return true;
        if (util_mono_ms() >= deadline)
            return false;
        util_sleep_ms(OMS_WAIT_POLL_MS);
    }
}
