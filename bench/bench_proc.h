/* bench_proc.h -- starting, watching and stopping the servers a benchmark
 * runs against: child processes with a bounded start and a bounded stop,
 * free loopback ports, temporary directories, and the CPU time a process
 * (and its children) used, from /proc. Every wait here has a deadline. */
#ifndef EVSTORE_BENCH_PROC_H
#define EVSTORE_BENCH_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_STOP_SECONDS_MAX 20.0 /* SIGTERM, then SIGKILL after this */

/* Starts argv[0] (searched in PATH) with argv. If out_fd is not NULL, the
 * child's stdout is a pipe whose read end is returned there; stderr (and
 * stdout when out_fd is NULL) go to log_path (appended), or /dev/null when
 * log_path is NULL. If run_as is not NULL and we are root, the child runs as
 * that user. Returns the pid, or a negative errno. */
pid_t proc_spawn(char *const argv[], int *out_fd, const char *log_path, const char *run_as);

/* Reads one line from fd into buf (without the newline), waiting at most
 * timeout_s. Returns 0, -ETIMEDOUT, or -EIO at end of file. */
int proc_read_line(int fd, char *buf, size_t size, double timeout_s);

/* Runs argv to completion, at most timeout_s (then kills it). Output goes to
 * log_path (or /dev/null). Returns the exit status, or a negative errno
 * (-ETIMEDOUT). */
int proc_run(char *const argv[], const char *log_path, const char *run_as, double timeout_s);

/* SIGTERM, wait at most PROC_STOP_SECONDS_MAX, then SIGKILL and reap.
 * pid <= 0 is a no-op. */
void proc_stop(pid_t pid);

/* True while pid exists and is not a zombie. */
bool proc_alive(pid_t pid);

/* CPU seconds (user + system) of pid, of its reaped children, and of every
 * live process whose parent is pid (server helpers and backends). 0 when
 * pid is gone. */
double proc_tree_cpu_seconds(pid_t pid);

/* A port on 127.0.0.1 that was free a moment ago. 0 on failure. */
uint16_t proc_free_port(void);

/* Waits until a TCP connect to 127.0.0.1:port succeeds, at most timeout_s,
 * giving up early if pid (when > 0) has exited. 0 or -ETIMEDOUT/-ECHILD. */
int proc_wait_port(uint16_t port, pid_t pid, double timeout_s);

/* Creates a fresh directory root/prefix-XXXXXX into out. 0 or -errno. */
int proc_mkdtemp(const char *root, const char *prefix, char *out, size_t size);

/* Removes dir and everything under it (it must be one proc_mkdtemp made). */
void proc_rmtree(const char *dir);

/* Reads the first line of a small file into buf. 0 or -errno. */
int proc_read_file_line(const char *path, char *buf, size_t size);

/* Looks a user up; true and its ids when it exists. */
bool proc_user_ids(const char *user, uid_t *uid, gid_t *gid);

#endif
