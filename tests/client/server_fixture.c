/* server_fixture.c -- start and stop a real evstored for integration tests. */
#define _GNU_SOURCE
#include "server_fixture.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

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

int test_program_start(pid_t *pid, const char *const *argv, const char *out_path)
{
    proc_spec_t spec = {.argv = argv, .out = {PROC_IO_FILE, .path = out_path}};
    pid_t started = proc_start(&spec, NULL);
    if (started < 0) {
        fprintf(stderr, "fixture: start %s: %s\n", argv[0], strerror((int)-started));
        return -1;
    }
    *pid = started;
    return 0;
}

uint16_t test_line_port(const char *line, const char *key)
{
    const char *at = strstr(line, key);
    char addr[TEST_ADDR_BYTES_MAX], host[TEST_ADDR_BYTES_MAX];
    uint16_t port = 0;
    if (!at)
        return 0;
    at += strlen(key);
    size_t n = strcspn(at, " \t\n");
    if (n >= sizeof addr)
        return 0;
    memcpy(addr, at, n);
    addr[n] = '\0';
    return util_hostport(addr, host, sizeof host, &port, false) == 0 ? port : 0;
}

int test_ready_line(pid_t *pid, const char *name, const char *path, const char *needle,
                    char *line, size_t cap, int timeout_ms)
{
    int rc = proc_file_line(*pid, path, needle, line, cap, timeout_ms, NULL);
    if (rc == -ECHILD) {
        *pid = 0;
        fprintf(stderr, "fixture: %s exited before its ready line\n", name);
    } else if (rc == -ETIMEDOUT) {
        fprintf(stderr, "fixture: no ready line from %s within %d ms\n", name, timeout_ms);
    } else if (rc) {
        fprintf(stderr, "fixture: %s: %s\n", path, strerror(-rc));
    }
    return rc;
}

static int ready_line_parse(test_server_t *srv, const char *line)
{
    if (strncmp(line, "evstored ready", 14) != 0) {
        fprintf(stderr, "fixture: unexpected first line from evstored: %s\n", line);
        return -1;
    }
    srv->port = test_line_port(line, "listen=");
    srv->metrics_port = test_line_port(line, "metrics=");
    if (srv->port == 0) {
        fprintf(stderr, "fixture: no port in ready line: %s\n", line);
        return -1;
    }
    return 0;
}

/* Starts evstored with its stdout to srv->stdout_path. */
static int server_exec(const char *path, test_server_t *srv)
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
    return test_program_start(&srv->pid, argv, srv->stdout_path);
}

static int spawn(test_server_t *srv)
{
    const char *path = test_server_path();
    if (!path) {
        fprintf(stderr, "fixture: no evstored binary known (EVSTORED)\n");
        return -1;
    }
    snprintf(srv->stdout_path, sizeof srv->stdout_path, "%s.out", srv->data_dir);
    if (server_exec(path, srv))
        return -1;
    char line[512];
    if (test_ready_line(&srv->pid, "evstored", srv->stdout_path, NULL, line, sizeof line,
                        TEST_SERVER_READY_MS_MAX) ||
        ready_line_parse(srv, line)) {
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
    uint64_t deadline = util_mono_ms() + TEST_SERVER_REBIND_MS_MAX;
    int rc;
    while ((rc = spawn(srv)) != 0 && util_mono_ms() < deadline)
        util_sleep_ms(TEST_SERVER_REBIND_POLL_MS);
    return rc;
}

int test_process_end(pid_t *pid, int sig, int timeout_ms, const char *name)
{
    if (!*pid)
        return -1;
    int status = proc_end(*pid, sig, timeout_ms, name);
    *pid = 0;
    return status >= 0 ? status : -1;
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
