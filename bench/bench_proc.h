/* bench_proc.h -- the servers a benchmark runs against, the way the
 * benchmark runs them: started (with util's proc.h) in a process group of
 * their own, stdin from /dev/null, output to a log, as another user when
 * asked, stopped with a bounded wait; and free loopback ports, temporary
 * directories, and the CPU time a process (and its children) used, from
 * /proc. Every wait here has a deadline. A server's ready line is read with
 * proc_read_line() of proc.h. */
#ifndef EVSTORE_BENCH_PROC_H
#define EVSTORE_BENCH_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc.h"

#define BENCH_STOP_MS_MAX 20000 /* SIGTERM, then SIGKILL after this */

/* Starts argv[0] (searched in PATH) with argv. If out_fd is not NULL, the
 * child's stdout is a pipe whose read end is returned there; stderr (and
 * stdout when out_fd is NULL) go to log_path (appended), or /dev/null when
 * log_path is NULL. If run_as is not NULL and we are root, the child runs as
 * that user. It gets SIGTERM when the benchmark dies. Returns the pid, or a
 * negative errno. */
pid_t bench_spawn(char *const argv[], int *out_fd, const char *log_path, const char *run_as);

/* Runs argv as bench_spawn() would, to completion, at most timeout_s (then
 * kills it). Returns the exit code (128 + signal when a signal ended it), or
 * a negative errno (-ETIMEDOUT). */
int bench_run(char *const argv[], const char *log_path, const char *run_as, double timeout_s);

/* SIGTERM, wait at most BENCH_STOP_MS_MAX, then SIGKILL and reap. pid <= 0
 * is a no-op; a pid that is not our child only gets the SIGTERM. */
void bench_stop(pid_t pid);

/* True while pid exists and is not a zombie (our child or not). */
bool bench_alive(pid_t pid);

/* CPU seconds (user + system) of pid, of its reaped children, and of every
 * live process whose parent is pid (server helpers and backends). 0 when
 * pid is gone. */
double bench_tree_cpu_seconds(pid_t pid);

/* A port on 127.0.0.1 that was free a moment ago. 0 on failure. */
uint16_t bench_free_port(void);

/* Waits until a TCP connect to 127.0.0.1:port succeeds, at most timeout_s,
 * giving up early if pid (when > 0) has exited. 0 or -ETIMEDOUT/-ECHILD. */
int bench_wait_port(uint16_t port, pid_t pid, double timeout_s);

/* Creates a fresh directory root/prefix-XXXXXX into out. 0 or -errno. */
int bench_mkdtemp(const char *root, const char *prefix, char *out, size_t size);

/* Removes dir and everything under it (it must be one bench_mkdtemp made). */
void bench_rmtree(const char *dir);

/* Reads the first line of a small file into buf. 0 or -errno. */
int bench_read_file_line(const char *path, char *buf, size_t size);

#endif
