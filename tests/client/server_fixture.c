/* server_fixture.c -- start and stop a real evstored for integration tests. */
#define _GNU_SOURCE
#include "server_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *test_server_path(void)
{
    const char *env = getenv("EVSTORED");
    if (env && env[0])
        return env;
#ifdef EVSTORED_PATH
    return EVSTORED_PATH;
#else
    return NULL;
#endif
}

int test_tmpdir_make(const char *tag, char *out)
{
    const char *base = getenv("EVSTORE_TEST_TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    snprintf(out, PATH_MAX, "%s/%s-XXXXXX", base, tag);
    if (!mkdtemp(out)) {
        fprintf(stderr, "fixture: mkdtemp %s: %s\n", out, strerror(errno));
        return -1;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void test_tmpdir_remove(const char *path)
{
    if (path && path[0])
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies the server's stdout to stderr until it closes. */
static void *drain_main(void *arg)
{
    test_server_t *srv = arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(srv->stdout_fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && write(2, buf, (size_t)n) < 0)
            break;
    return NULL;
}

/* Reads the ready line (up to '\n') within the start-up bound. */
static int ready_line_read(test_server_t *srv, char *line, size_t cap)
{
    size_t len = 0;
    int64_t deadline = now_ms() + TEST_SERVER_READY_MS_MAX;
    while (len + 1 < cap) {
        struct pollfd p = { .fd = srv->stdout_fd, .events = POLLIN };
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            fprintf(stderr, "fixture: no ready line from evstored within %d ms\n",
                    TEST_SERVER_READY_MS_MAX);
            return -1;
        }
        ssize_t n = read(srv->stdout_fd, line + len, 1);
        if (n <= 0) {
            fprintf(stderr, "fixture: evstored closed stdout before its ready line\n");
            return -1;
        }
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    return 0;
}

static int ready_line_parse(test_server_t *srv, const char *line)
{
    const char *l = strstr(line, "listen=");
    const char *m = strstr(line, "metrics=");
    const char *lc = l ? strchr(l, ' ') : NULL;
    unsigned port = 0, mport = 0;
    if (!l || strncmp(line, "evstored ready", 14) != 0) {
        fprintf(stderr, "fixture: unexpected first line from evstored: %s\n", line);
        return -1;
    }
    const char *colon = memrchr(l, ':', lc ? (size_t)(lc - l) : strlen(l));
    if (colon)
        port = (unsigned)strtoul(colon + 1, NULL, 10);
    if (m && strrchr(m, ':'))
        mport = (unsigned)strtoul(strrchr(m, ':') + 1, NULL, 10);
    if (port == 0 || port > 65535) {
        fprintf(stderr, "fixture: no port in ready line: %s\n", line);
        return -1;
    }
    srv->port = (uint16_t)port;
    srv->metrics_port = (uint16_t)mport;
    return 0;
}

/* Child side of the fork: stdout to the pipe, then exec. */
static void child_exec(const char *path, int out_fd, const test_server_t *srv)
{
    const char *argv[TEST_SERVER_ARGS_MAX + 10];
    int n = 0;
    argv[n++] = path;
    argv[n++] = "--data";
    argv[n++] = srv->data_dir;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--metrics";
    argv[n++] = "127.0.0.1:0";
    for (int i = 0; srv->extra[i] && i < TEST_SERVER_ARGS_MAX - 1; i++)
        argv[n++] = srv->extra[i];
    argv[n] = NULL;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out_fd, 1);
    execv(path, (char *const *)argv);
    fprintf(stderr, "fixture: exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

static int spawn(test_server_t *srv)
{
    const char *path = test_server_path();
    int fds[2];
    if (!path) {
        fprintf(stderr, "fixture: no evstored binary known (EVSTORED)\n");
        return -1;
    }
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        child_exec(path, fds[1], srv);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return -1;
    }
    srv->pid = pid;
    srv->stdout_fd = fds[0];
    char line[512];
    if (ready_line_read(srv, line, sizeof line) || ready_line_parse(srv, line)) {
        test_server_kill(srv);
        return -1;
    }
    srv->drain_started = pthread_create(&srv->drain, NULL, drain_main, srv) == 0;
    return 0;
}

int test_server_start(test_server_t *srv, const char *const *extra_args)
{
    memset(srv, 0, sizeof *srv);
    srv->stdout_fd = -1;
    for (int i = 0; extra_args && extra_args[i] && i < TEST_SERVER_ARGS_MAX - 1; i++)
        srv->extra[i] = extra_args[i];
    if (test_tmpdir_make("evstored", srv->data_dir))
        return -1;
    return spawn(srv);
}

int test_server_restart(test_server_t *srv)
{
    if (srv->pid)
        test_server_stop(srv);
    return spawn(srv);
}

/* Waits for the child and the drain thread. */
static int reap(test_server_t *srv, int timeout_ms)
{
    int status = -1;
    int64_t deadline = now_ms() + timeout_ms;
    while (waitpid(srv->pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            fprintf(stderr, "fixture: evstored did not exit after SIGTERM; SIGKILL\n");
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, &status, 0);
            break;
        }
        usleep(5000);
    }
    if (srv->drain_started)
        pthread_join(srv->drain, NULL);
    srv->drain_started = false;
    if (srv->stdout_fd >= 0)
        close(srv->stdout_fd);
    srv->stdout_fd = -1;
    srv->pid = 0;
    return status;
}

int test_server_stop(test_server_t *srv)
{
    if (!srv->pid)
        return -1;
    kill(srv->pid, SIGTERM);
    return reap(srv, TEST_SERVER_STOP_MS_MAX);
}

void test_server_kill(test_server_t *srv)
{
    if (!srv->pid)
        return;
    kill(srv->pid, SIGKILL);
    reap(srv, TEST_SERVER_STOP_MS_MAX);
}

void test_server_destroy(test_server_t *srv)
{
    if (srv->pid)
        test_server_stop(srv);
    test_tmpdir_remove(srv->data_dir);
    srv->data_dir[0] = '\0';
}
