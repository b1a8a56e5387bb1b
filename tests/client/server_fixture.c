/* server_fixture.c -- start and stop a real evstored for integration tests. */
#define _GNU_SOURCE
#include "server_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (polling the stdout file) for the ready line, within the start-up
 * bound, while the server runs. */
static int ready_line_read(test_server_t *srv, char *line, size_t cap)
{
    int64_t deadline = test_now_ms() + TEST_SERVER_READY_MS_MAX;
    int fd = open(srv->stdout_path, O_RDONLY | O_CLOEXEC);
    int rc = -1;
    while (fd >= 0 && test_now_ms() < deadline) {
        ssize_t n = pread(fd, line, cap - 1, 0);
        char *nl = n > 0 ? memchr(line, '\n', (size_t)n) : NULL;
        if (nl) {
            *nl = '\0';
            rc = 0;
            break;
        }
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) {
            srv->pid = 0;
            fprintf(stderr, "fixture: evstored exited before its ready line\n");
            break;
        }
        usleep(2000);
    }
    if (fd >= 0)
        close(fd);
    if (rc && test_now_ms() >= deadline)
        fprintf(stderr, "fixture: no ready line from evstored within %d ms\n",
                TEST_SERVER_READY_MS_MAX);
    return rc;
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

/* Child side of the fork: stdout to the file, then exec. */
static void child_exec(const char *path, int out_fd, const test_server_t *srv)
{
    const char *argv[TEST_SERVER_ARGS_MAX + 10];
    int n = 0;
    argv[n++] = path;
    argv[n++] = "--data";
    argv[n++] = srv->data_dir;
    argv[n++] = "--listen";
    argv[n++] = srv->listen[0] ? srv->listen : "127.0.0.1:0";
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
    if (!path) {
        fprintf(stderr, "fixture: no evstored binary known (EVSTORED)\n");
        return -1;
    }
    snprintf(srv->stdout_path, sizeof srv->stdout_path, "%s.out", srv->data_dir);
    int out = open(srv->stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        child_exec(path, out, srv);
    close(out);
    if (pid < 0)
        return -1;
    srv->pid = pid;
    char line[512];
    if (ready_line_read(srv, line, sizeof line) || ready_line_parse(srv, line)) {
        test_server_kill(srv);
        return -1;
    }
    return 0;
}

int test_server_start(test_server_t *srv, const char *const *extra_args)
{
    memset(srv, 0, sizeof *srv);
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
    srv->listen[0] = '\0';
    return spawn(srv);
}

int test_server_restart_same_port(test_server_t *srv)
{
    if (srv->pid)
        test_server_stop(srv);
    snprintf(srv->listen, sizeof srv->listen, "127.0.0.1:%u", (unsigned)srv->port);
    /* After SIGKILL the kernel tears the dead server's io_uring down in the
     * background, and the listening socket lives until then: retry. */
    int64_t deadline = test_now_ms() + TEST_SERVER_REBIND_MS_MAX;
    int rc;
    while ((rc = spawn(srv)) != 0 && test_now_ms() < deadline)
        usleep(50000);
    return rc;
}

int test_process_end(pid_t *pid, int sig, int timeout_ms, const char *name)
{
    if (!*pid)
        return -1;
    kill(*pid, sig);
    int status = -1;
    int64_t deadline = test_now_ms() + timeout_ms;
    while (waitpid(*pid, &status, WNOHANG) == 0) {
        if (test_now_ms() > deadline) {
            fprintf(stderr, "fixture: %s did not exit after signal %d; SIGKILL\n", name, sig);
            kill(*pid, SIGKILL);
            waitpid(*pid, &status, 0);
            break;
        }
        usleep(5000);
    }
    *pid = 0;
    return status;
}

int test_server_stop(test_server_t *srv)
{
    return test_process_end(&srv->pid, SIGTERM, TEST_SERVER_STOP_MS_MAX, "evstored");
}

void test_server_kill(test_server_t *srv)
{
    test_process_end(&srv->pid, SIGKILL, TEST_SERVER_STOP_MS_MAX, "evstored");
}

void test_server_destroy(test_server_t *srv)
{
    if (srv->pid)
        test_server_stop(srv);
    test_tmpdir_remove(srv->data_dir);
    if (srv->stdout_path[0])
        unlink(srv->stdout_path);
    srv->data_dir[0] = '\0';
}
