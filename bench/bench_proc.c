/* bench_proc.c -- child processes, ports, temp dirs, CPU time (see bench_proc.h). */
#define _GNU_SOURCE
#include "bench_proc.h"
#include "bench_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROC_POLL_MS 20

bool proc_user_ids(const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(user, &pw, buf, sizeof buf, &res) != 0 || !res)
        return false;
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    return true;
}

/* In the child: become run_as (when root) and route output. Never returns
 * on failure paths other than _exit. */
static void child_setup(int out_w, const char *log_path, const char *run_as)
{
    int log = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
        dup2(log, 2);
        dup2(out_w >= 0 ? out_w : log, 1);
        close(log);
    }
    if (out_w >= 0)
        close(out_w);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    setpgid(0, 0); /* its own group: a stray terminal signal does not hit it twice */
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a harness that dies takes its servers with it */
    if (run_as && geteuid() == 0) {
        uid_t uid;
        gid_t gid;
        if (!proc_user_ids(run_as, &uid, &gid) || setgid(gid) != 0 || setuid(uid) != 0) {
            fprintf(stderr, "cannot become user %s\n", run_as);
            _exit(126);
        }
    }
}

pid_t proc_spawn(char *const argv[], int *out_fd, const char *log_path, const char *run_as)
{
    int p[2] = {-1, -1};
    if (out_fd && pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        if (out_fd) {
            close(p[0]);
            close(p[1]);
        }
        return err;
    }
    if (pid == 0) {
        if (out_fd)
            close(p[0]);
        child_setup(out_fd ? p[1] : -1, log_path, run_as);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (out_fd) {
        close(p[1]);
        *out_fd = p[0];
    }
    return pid;
}

int proc_read_line(int fd, char *buf, size_t size, double timeout_s)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    size_t len = 0;
    while (len + 1 < size) {
        uint64_t now = bench_now_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ms = (int)((deadline - now) / 1000000u) + 1;
        int n = poll(&pfd, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -EIO;
        if (ch == '\n')
            break;
        buf[len++] = ch;
    }
    buf[len] = '\0';
    return 0;
}

/* Waits for pid to exit, at most timeout_s; returns its status or -ETIMEDOUT. */
static int wait_exit(pid_t pid, double timeout_s)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        if (r < 0 && errno != EINTR)
            return -ECHILD;
        if (bench_now_ns() >= deadline)
            return -ETIMEDOUT;
        usleep(PROC_POLL_MS * 1000);
    }
}

int proc_run(char *const argv[], const char *log_path, const char *run_as, double timeout_s)
{
    pid_t pid = proc_spawn(argv, NULL, log_path, run_as);
    if (pid < 0)
        return pid;
    int rc = wait_exit(pid, timeout_s);
    if (rc == -ETIMEDOUT) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return rc;
}

void proc_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    if (wait_exit(pid, PROC_STOP_SECONDS_MAX) == -ETIMEDOUT) {
        fprintf(stderr, "evstore-bench: pid %d ignored SIGTERM for %.0f s: killing it\n", (int)pid,
                PROC_STOP_SECONDS_MAX);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

bool proc_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (proc_read_file_line(path, buf, sizeof buf) != 0)
        return false;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* utime+stime in ticks and the parent of one process; false if gone. */
static bool stat_ticks(pid_t pid, unsigned long long *ticks, pid_t *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (proc_read_file_line(path, buf, sizeof buf) != 0)
        return false;
    char *p = strrchr(buf, ')');
    int pp = 0;
    unsigned long long ut = 0, st = 0, cut = 0, cst = 0;
    if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &pp,
                     &ut, &st, &cut, &cst) != 5)
        return false;
    /* cutime/cstime: children that exited and were reaped (PostgreSQL's
     * backends), so the total never goes down when one ends. */
    *ticks = ut + st + cut + cst;
    *ppid = pp;
    return true;
}

double proc_tree_cpu_seconds(pid_t pid)
{
    unsigned long long total = 0, t;
    pid_t pp;
    if (pid <= 0 || !stat_ticks(pid, &total, &pp))
        return 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        pid_t child = (pid_t)atoi(e->d_name);
        if (child > 0 && child != pid && stat_ticks(child, &t, &pp) && pp == pid)
            total += t;
    }
    if (d)
        closedir(d);
    return (double)total / (double)sysconf(_SC_CLK_TCK);
}

uint16_t proc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int proc_wait_port(uint16_t port, pid_t pid, double timeout_s)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    while (bench_now_ns() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return 0;
        if (pid > 0 && !proc_alive(pid))
            return -ECHILD;
        usleep(PROC_POLL_MS * 1000);
    }
    return -ETIMEDOUT;
}

int proc_mkdtemp(const char *root, const char *prefix, char *out, size_t size)
{
    if (mkdir(root, 0755) != 0 && errno != EEXIST)
        return -errno;
    if ((size_t)snprintf(out, size, "%s/%s-XXXXXX", root, prefix) >= size)
        return -ENAMETOOLONG;
    if (!mkdtemp(out))
        return -errno;
    chmod(out, 0755);
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void proc_rmtree(const char *dir)
{
    if (dir && dir[0] && strcmp(dir, "/") != 0)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int proc_read_file_line(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    return 0;
}
