/* proc.h -- running other programs: start one with its arguments, its
 * environment and its standard streams where the caller wants them; read its
 * ready line; wait for it, signal it, kill it, reap it. The tests' fixtures
 * and the benchmark start their servers and tools with it.
 *
 * Every wait here has a deadline: the caller's timeout_ms, or a limit named
 * below. Between fork and exec the child only calls async-signal-safe
 * functions (files, environment and user are prepared by the parent), so
 * starting a program from a process with threads is safe.
 *
 * A pid handed to these functions must be a child of the caller that nobody
 * else reaps. Nothing here keeps state: functions are thread-safe as far as
 * the pids they are given are not shared between threads.
 *
 * util/ sits below every other folder: this includes nothing of the
 * project's and links only util. */
#ifndef EVS_PROC_H
#define EVS_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PROC_POLL_MS 5            /* how often a wait looks again */
#define PROC_EXEC_MS_LIMIT 10000  /* proc_start: fork to exec (or its failure) */
#define PROC_REAP_MS_LIMIT 10000  /* after SIGKILL, until the kernel lets it go */
#define PROC_ENV_MAX 4096         /* entries of the child's environment */

/* Where a standard stream of the child goes. */
typedef enum {
    PROC_IO_INHERIT = 0, /* the caller's own */
    PROC_IO_NULL,        /* /dev/null */
    PROC_IO_FILE,        /* path: read (stdin), or created and truncated */
    PROC_IO_APPEND,      /* path: created and appended to (stdout, stderr) */
    PROC_IO_FD,          /* fd, a descriptor of the caller's (it stays open there) */
    PROC_IO_PIPE,        /* stdout only: a pipe, whose read end proc_start returns */
    PROC_IO_STDOUT,      /* stderr only: wherever stdout goes (2>&1) */
} proc_io_kind_t;

typedef struct {
    proc_io_kind_t kind;
    const char *path; /* PROC_IO_FILE, PROC_IO_APPEND */
    int fd;           /* PROC_IO_FD */
} proc_io_t;

/* What to run and how. Zero-initialised fields mean: inherit the stream,
 * the environment, the process group; SIGKILL when the caller dies. */
typedef struct {
    const char *const *argv; /* argv[0] is the program's path; NULL-terminated */
    const char *const *env;  /* "NAME=value" entries set over the caller's
                                environment, NULL-terminated; may be NULL */
    proc_io_t in, out, err;
    bool path_search;        /* argv[0] without a slash is looked up in PATH */
    bool own_group;          /* the child leads a process group of its own */
    int death_signal;        /* sent to the child when the caller dies; 0: SIGKILL */
    const char *run_as;      /* a user to run as when the caller is root; may be NULL */
} proc_spec_t;

/* Starts spec->argv. When spec->out is PROC_IO_PIPE, *out_fd gets the read
 * end of the child's stdout (close-on-exec; the caller closes it). Returns
 * the child's pid once it has exec'd, or a negative errno: from opening the
 * streams, from fork, -ESRCH for an unknown run_as user, -ENOENT, -EACCES
 * and the like from exec (the child is then reaped already), -ETIMEDOUT
 * when the child did not reach exec within PROC_EXEC_MS_LIMIT (it is
 * killed). */
pid_t proc_start(const proc_spec_t *spec, int *out_fd);

/* Waits up to timeout_ms (0: just looks) for pid to exit and reaps it.
 * Returns 0 with *status as waitpid() gives it (status may be NULL),
 * -ETIMEDOUT while it still runs, or -ECHILD when pid is not a child to
 * reap. */
int proc_wait(pid_t pid, int timeout_ms, int *status);

/* Sends sig to pid (0: none, just waits) and waits up to timeout_ms for it
 * to exit; then SIGKILL (said on stderr, naming it name) and up to
 * PROC_REAP_MS_LIMIT more.
 * Returns the status as waitpid() gives it, or a negative errno (-ECHILD,
 * or -ETIMEDOUT when even SIGKILL did not end it in time). */
int proc_end(pid_t pid, int sig, int timeout_ms, const char *name);

/* Runs spec to its end, at most timeout_ms (then SIGKILL and reap).
 * Returns the status as waitpid() gives it, -ETIMEDOUT when it had to be
 * killed, or an error of proc_start(). spec->out may not be a pipe. */
int proc_run(const proc_spec_t *spec, int timeout_ms);

/* The exit code of a waitpid() status; 128 + the signal that ended it. */
int proc_exit_code(int status);

/* Reads one line from fd (a pipe) into buf without its newline, waiting at
 * most timeout_ms; a line longer than size-1 bytes is cut there. Returns 0,
 * -ETIMEDOUT, -EIO at end of file, or -errno of a failed read. */
int proc_read_line(int fd, char *buf, size_t size, int timeout_ms);

/* Waits until the file path (the stdout of pid) holds a whole line with
 * needle in it (the first line, when needle is NULL) in its first size-1
 * bytes, and copies that line, without its newline, to line. Gives up when
 * pid exits first (reaping it: -ECHILD, its status in *status, which may
 * be NULL) or after timeout_ms (-ETIMEDOUT). A file that cannot be read is
 * -errno. */
int proc_file_line(pid_t pid, const char *path, const char *needle, char *line, size_t size,
                   int timeout_ms, int *status);

/* Looks user up: true and its ids when it exists. */
bool proc_user_ids(const char *user, uid_t *uid, gid_t *gid);

#endif
