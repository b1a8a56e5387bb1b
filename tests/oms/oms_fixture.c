/* oms_fixture.c -- start and stop the OMS programs for tests. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oms_fixture.h"
#include "server_fixture.h"

#define PROC_REBIND_MS_MAX 5000 /* a restart on the same port retries while it is busy */


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

static void child_exec(const oms_proc_t *p, const char *path, int out_fd)
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
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out_fd, 1);
    execv(path, (char *const *)argv);
    fprintf(stderr, "fixture: exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

/* Waits for the ready line and takes the port from "metrics=" or "http=". */
static int ready_wait(oms_proc_t *p)
{
    int64_t deadline = test_now_ms() + OMS_PROC_READY_MS_MAX;
    char line[512];
    int fd = open(p->out_path, O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && test_now_ms() < deadline) {
        ssize_t n = pread(fd, line, sizeof line - 1, 0);
        line[n > 0 ? n : 0] = '\0';
        char *ready = strstr(line, " ready ");
        char *nl = ready ? strchr(ready, '\n') : NULL;
        if (nl) {
            close(fd);
            *nl = '\0';
            const char *key = strstr(ready, is_order(p) ? "http=" : "metrics=");
            const char *colon = key ? strrchr(key, ':') : NULL;
            p->port = colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
            if (!colon && !strstr(ready, "metrics=off")) {
                fprintf(stderr, "fixture: %s: no port in \"%s\"\n", p->program, ready);
                return -1;
            }
            return 0;
        }
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            p->pid = 0;
            fprintf(stderr, "fixture: %s exited before its ready line\n", p->program);
            close(fd);
            return -1;
        }
        usleep(5000);
    }
    if (fd >= 0)
        close(fd);
    fprintf(stderr, "fixture: no ready line from %s within %d ms\n", p->program,
            OMS_PROC_READY_MS_MAX);
    return -1;
}

static int spawn(oms_proc_t *p)
{
    char path_buf[PATH_MAX];
    const char *path = oms_program_path(p->program, path_buf, sizeof path_buf);
    if (!path || access(path, X_OK) != 0) {
        fprintf(stderr, "fixture: %s is not built (%s)\n", p->program, path ? path : "?");
        return -1;
    }
    int out = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        child_exec(p, path, out);
    close(out);
    if (pid < 0)
        return -1;
    p->pid = pid;
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
    int64_t deadline = test_now_ms() + PROC_REBIND_MS_MAX;
    int rc;
    while ((rc = spawn(p)) != 0 && test_now_ms() < deadline)
        usleep(50000);
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
    int64_t deadline = test_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ctx))
            return true;
        if (test_now_ms() >= deadline)
            return false;
        usleep(20000);
    }
}
