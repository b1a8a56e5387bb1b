/* proc.c -- start, wait for, signal and reap other programs (see proc.h). */
#define _GNU_SOURCE
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PROC_USER_BYTES_MAX 4096 /* getpwnam_r's buffer */

/* What the child needs, all prepared before fork. */
typedef struct {
    int fd[3];          /* what becomes stdin, stdout, stderr; -1: inherited */
    bool own[3];        /* fd[i] was opened here and is closed after fork */
    bool err_to_out;    /* 2>&1 */
    int pipe_r;         /* the parent's end of a stdout pipe, or -1 */
    int report_w;       /* the child writes exec's errno here */
    char **envp;        /* NULL: environ */
    bool switch_user;
    uid_t uid;
    gid_t gid;
    pid_t parent;
} child_t;

bool proc_user_ids(const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd pw, *res = NULL;
    char buf[PROC_USER_BYTES_MAX];
    if (getpwnam_r(user, &pw, buf, sizeof buf, &res) != 0 || !res)
        return false;
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    return true;
}

/* Whether environment entry e sets the same name as "NAME=value" over. */
static bool env_same_name(const char *e, const char *over)
{
    size_t n = strcspn(over, "=");
    return strncmp(e, over, n) == 0 && e[n] == '=';
}

/* environ with the entries of over set over it, in one allocation of
 * pointers (the strings are not copied). NULL with errno on failure. */
static char **env_make(const char *const *over)
{
    size_t n = 0, k = 0;
    while (environ[n] && n < PROC_ENV_MAX)
        n++;
    while (over[k] && k < PROC_ENV_MAX)
        k++;
    if (environ[n] || over[k]) {
        errno = E2BIG;
        return NULL;
    }
    char **envp = calloc(n + k + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < k && !replaced; j++)
            replaced = env_same_name(environ[i], over[j]);
        if (!replaced)
            envp[used++] = environ[i];
    }
    for (size_t j = 0; j < k; j++)
        envp[used++] = (char *)over[j];
    return envp;
}

/* Opens what stream `which` (0, 1, 2) of the child becomes, into c.
 * Returns 0 or -errno. */
static int stream_open(const proc_io_t *io, int which, child_t *c)
{
    int wr = which == 0 ? O_RDONLY : O_WRONLY;
    int fd = -1;
    switch (io->kind) {
    case PROC_IO_INHERIT:
        return 0;
    case PROC_IO_NULL:
        fd = open("/dev/null", wr | O_CLOEXEC);
        break;
    case PROC_IO_FILE:
        fd = open(io->path, which == 0 ? O_RDONLY | O_CLOEXEC
                                       : O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        break;
    case PROC_IO_APPEND:
        if (which == 0)
            return -EINVAL;
        fd = open(io->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        break;
    case PROC_IO_FD:
        c->fd[which] = io->fd;
        return io->fd >= 0 ? 0 : -EBADF;
    case PROC_IO_PIPE: {
        int p[2];
        if (which != 1)
            return -EINVAL;
        if (pipe2(p, O_CLOEXEC) != 0)
            return -errno;
        c->pipe_r = p[0];
        fd = p[1];
        break;
    }
    case PROC_IO_STDOUT:
        if (which != 2)
            return -EINVAL;
        c->err_to_out = true;
        return 0;
    }
    if (fd < 0)
        return -errno;
    c->fd[which] = fd;
    c->own[which] = true;
    return 0;
}

/* Closes the parent's copies of the child's streams (and, when the start
 * failed, the parent's end of the pipe). */
static void child_close(child_t *c, bool failed)
{
    for (int i = 0; i < 3; i++)
        if (c->own[i])
            close(c->fd[i]);
    if (failed && c->pipe_r >= 0)
        close(c->pipe_r);
    free(c->envp);
}

/* Everything proc_start prepares before fork. Returns 0 or -errno (and
 * then c holds nothing open). */
static int child_prepare(const proc_spec_t *spec, child_t *c)
{
    *c = (child_t){.fd = {-1, -1, -1}, .pipe_r = -1, .report_w = -1, .parent = getpid()};
    if (spec->run_as && geteuid() == 0) {
        if (!proc_user_ids(spec->run_as, &c->uid, &c->gid))
            return -ESRCH;
        c->switch_user = true;
    }
    const proc_io_t *io[3] = {&spec->in, &spec->out, &spec->err};
    for (int i = 0; i < 3; i++) {
        int rc = stream_open(io[i], i, c);
        if (rc) {
            child_close(c, true);
            return rc;
        }
    }
    if (spec->env && !(c->envp = env_make(spec->env))) {
        int rc = -errno;
        child_close(c, true);
        return rc;
    }
    return 0;
}

/* In the child: only async-signal-safe calls from here to exec. */
_Noreturn static void child_exec(const proc_spec_t *spec, const child_t *c)
{
    if (spec->own_group)
        setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, spec->death_signal ? spec->death_signal : SIGKILL);
    if (getppid() != c->parent) /* the caller died before prctl */
        _exit(127);
    for (int i = 0; i < 3; i++)
        if (c->fd[i] >= 0 && dup2(c->fd[i], i) < 0)
            goto out_report;
    if (c->err_to_out && dup2(1, 2) < 0)
        goto out_report;
    if (c->switch_user && (setgid(c->gid) != 0 || setuid(c->uid) != 0))
        goto out_report;
    char *const *argv = (char *const *)spec->argv;
    char **envp = c->envp ? c->envp : environ;
    if (spec->path_search)
        execvpe(argv[0], argv, envp);
    else
        execve(argv[0], argv, envp);
out_report:;
    int err = errno;
    ssize_t w = write(c->report_w, &err, sizeof err);
    (void)w;
    _exit(127);
}

/* Waits for the child to exec (the report pipe closes empty) or to report
 * why it could not. Returns 0 or -errno; on failure the child is reaped. */
static int exec_wait(pid_t pid, int report_r)
{
    uint64_t deadline = util_mono_ms() + PROC_EXEC_MS_LIMIT;
    for (;;) {
        uint64_t now = util_mono_ms();
        struct pollfd p = {.fd = report_r, .events = POLLIN};
        int n = now < deadline ? poll(&p, 1, (int)(deadline - now)) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        int err = 0;
        ssize_t r = read(report_r, &err, sizeof err);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return 0;
        proc_wait(pid, PROC_REAP_MS_LIMIT, NULL);
        return r == (ssize_t)sizeof err && err > 0 ? -err : -EIO;
    }
    kill(pid, SIGKILL);
    proc_wait(pid, PROC_REAP_MS_LIMIT, NULL);
    return -ETIMEDOUT;
}

pid_t proc_start(const proc_spec_t *spec, int *out_fd)
{
    child_t c;
    int rc = child_prepare(spec, &c);
    if (rc)
        return rc;
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        rc = -errno;
        child_close(&c, true);
        return rc;
    }
    c.report_w = report[1];
    fflush(NULL); /* what the caller printed comes before what the child prints */
    pid_t pid = fork();
    if (pid == 0)
        child_exec(spec, &c);
    rc = pid < 0 ? -errno : 0;
    close(report[1]);
    if (pid > 0)
        rc = exec_wait(pid, report[0]);
    close(report[0]);
    child_close(&c, rc != 0);
    if (rc)
        return rc;
    if (c.pipe_r >= 0)
        *out_fd = c.pipe_r;
    return pid;
}

int proc_wait(pid_t pid, int timeout_ms, int *status)
{
    if (pid <= 0)
        return -ECHILD;
    uint64_t deadline = util_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status)
                *status = st;
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -ECHILD;
        uint64_t now = util_mono_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        util_sleep_ms((long)(deadline - now < PROC_POLL_MS ? deadline - now : PROC_POLL_MS));
    }
}

int proc_end(pid_t pid, int sig, int timeout_ms, const char *name)
{
    if (pid <= 0)
        return -ECHILD;
    int status = 0;
    kill(pid, sig);
    int rc = proc_wait(pid, timeout_ms, &status);
    if (rc == -ETIMEDOUT) {
        fprintf(stderr, "%s (pid %d) did not exit within %d ms of signal %d: SIGKILL\n",
                name ? name : "child", (int)pid, timeout_ms, sig);
        kill(pid, SIGKILL);
        rc = proc_wait(pid, PROC_REAP_MS_LIMIT, &status);
    }
    return rc ? rc : status;
}

int proc_run(const proc_spec_t *spec, int timeout_ms)
{
    if (spec->out.kind == PROC_IO_PIPE)
        return -EINVAL;
    pid_t pid = proc_start(spec, NULL);
    if (pid < 0)
        return pid;
    int status = 0;
    int rc = proc_wait(pid, timeout_ms, &status);
    if (rc == -ETIMEDOUT) {
        kill(pid, SIGKILL);
        proc_wait(pid, PROC_REAP_MS_LIMIT, NULL);
    }
    return rc ? rc : status;
}

int proc_exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

int proc_read_line(int fd, char *buf, size_t size, int timeout_ms)
{
    uint64_t deadline = util_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    size_t len = 0;
    while (len + 1 < size) {
        uint64_t now = util_mono_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - now)) <= 0)
            continue; /* EINTR, or the deadline: looked at above */
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EIO;
        if (ch == '\n')
            break;
        buf[len++] = ch;
    }
    buf[len] = '\0';
    return 0;
}

/* The first whole line of text[0..n) with needle in it (any first line
 * when needle is NULL), moved to the start of text and NUL-terminated.
 * False when there is none yet. */
static bool line_take(char *text, size_t n, const char *needle)
{
    text[n] = '\0';
    char *at = needle ? strstr(text, needle) : text;
    char *nl = at ? strchr(at, '\n') : NULL;
    if (!nl)
        return false;
    char *start = at;
    while (start > text && start[-1] != '\n')
        start--;
    *nl = '\0';
    memmove(text, start, (size_t)(nl - start) + 1);
    return true;
}

int proc_file_line(pid_t pid, const char *path, const char *needle, char *line, size_t size,
                   int timeout_ms, int *status)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint64_t deadline = util_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int rc;
    for (;;) {
        ssize_t n = pread(fd, line, size - 1, 0);
        if (n > 0 && line_take(line, (size_t)n, needle)) {
            rc = 0;
            break;
        }
        if (proc_wait(pid, 0, status) != -ETIMEDOUT) {
            rc = -ECHILD;
            break;
        }
        if (util_mono_ms() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        util_sleep_ms(PROC_POLL_MS);
    }
    close(fd);
    return rc;
}
