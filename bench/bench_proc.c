/* bench_proc.c -- child processes, ports, temp dirs, CPU time (see bench_proc.h). */
#define _GNU_SOURCE
#include "bench_proc.h"
#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BENCH_PORT_POLL_MS 20 /* bench_wait_port tries to connect this often */

pid_t bench_spawn(char *const argv[], int *out_fd, const char *log_path, const char *run_as)
{
    proc_io_t log = log_path ? (proc_io_t){PROC_IO_APPEND, .path = log_path}
                             : (proc_io_t){PROC_IO_NULL};
    proc_spec_t spec = {
        .argv = (const char *const *)argv,
        .in = {PROC_IO_NULL},
        .out = out_fd ? (proc_io_t){PROC_IO_PIPE} : log,
        .err = log,
        .path_search = true,
        .own_group = true,       /* a stray terminal signal does not hit it twice */
        .death_signal = SIGTERM, /* a harness that dies takes its servers with it */
        .run_as = run_as,
    };
    pid_t pid = proc_start(&spec, out_fd);
    if (pid < 0)
        fprintf(stderr, "evstore-bench: cannot run %s: %s\n", argv[0], strerror((int)-pid));
    return pid;
}

int bench_run(char *const argv[], const char *log_path, const char *run_as, double timeout_s)
{
    pid_t pid = bench_spawn(argv, NULL, log_path, run_as);
    if (pid < 0)
        return pid;
    int status = 0;
    int rc = proc_wait(pid, (int)(timeout_s * 1000), &status);
    if (rc == -ETIMEDOUT)
        proc_end(pid, SIGKILL, PROC_REAP_MS_LIMIT, argv[0]);
    return rc ? rc : proc_exit_code(status);
}

void bench_stop(pid_t pid)
{
    if (pid > 0)
        proc_end(pid, SIGTERM, BENCH_STOP_MS_MAX, "evstore-bench: a server");
}

bool bench_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (bench_read_file_line(path, buf, sizeof buf) != 0)
        return false;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* utime+stime in ticks and the parent of one process; false if gone. */
static bool stat_ticks(pid_t pid, unsigned long long *ticks, pid_t *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (bench_read_file_line(path, buf, sizeof buf) != 0)
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

double bench_tree_cpu_seconds(pid_t pid)
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

uint16_t bench_free_port(void)
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

int bench_wait_port(uint16_t port, pid_t pid, double timeout_s)
{
    uint64_t deadline = util_mono_ns() + (uint64_t)(timeout_s * 1e9);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    while (util_mono_ns() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return 0;
        if (pid > 0 && !bench_alive(pid))
            return -ECHILD;
        util_sleep_ms(BENCH_PORT_POLL_MS);
    }
    return -ETIMEDOUT;
}

int bench_mkdtemp(const char *root, const char *prefix, char *out, size_t size)
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

void bench_rmtree(const char *dir)
{
    if (dir && dir[0] && strcmp(dir, "/") != 0)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int bench_read_file_line(const char *path, char *buf, size_t size)
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
