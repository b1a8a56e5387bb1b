/* srv_util.c -- starting evstored for the server tests, and looking at it. */
#define _GNU_SOURCE
#include "srv_util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Flags every server test runs with: 1 MiB segments are prepared in well
 * under a millisecond, the default 256 MiB ones are not. */
static const char *const srv_base_flags[] = {"--segment-bytes", "1M", NULL};

#define SRV_FILE_BYTES_MAX (1u << 20) /* of a file searched: a test's server log */

/* Runs fn with stderr (fd 2) pointing at log_path, so that a child started
 * by fn inherits it; the test's own stderr is restored afterwards. */
static int with_stderr_to(const char *log_path, int append, int (*fn)(void *), void *arg)
{
    if (!log_path)
        return fn(arg);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0)
        return -1;
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    close(fd);
    int rc = fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return rc;
}

typedef struct {
    test_server_t *srv;
    const char *argv[SRV_EXTRA_MAX + 8];
} start_args_t;

static int do_start(void *p)
{
    start_args_t *a = p;
    return test_server_start(a->srv, a->argv);
}

static int do_restart(void *p)
{
    return test_server_restart(((start_args_t *)p)->srv);
}

int srv_start(test_server_t *srv, const char *const *extra, const char *log_path)
{
    start_args_t a = {.srv = srv};
    size_t n = 0;
    for (size_t i = 0; srv_base_flags[i]; i++)
        a.argv[n++] = srv_base_flags[i];
    for (size_t i = 0; extra && extra[i] && i < SRV_EXTRA_MAX; i++)
        a.argv[n++] = extra[i];
    a.argv[n] = NULL;
    return with_stderr_to(log_path, 0, do_start, &a);
}

int srv_restart(test_server_t *srv, const char *log_path)
{
    start_args_t a = {.srv = srv};
    return with_stderr_to(log_path, 1, do_restart, &a);
}

long srv_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

unsigned srv_file_count(const char *path, const char *needle)
{
    FILE *f = needle[0] ? fopen(path, "r") : NULL;
    if (!f)
        return 0;
    size_t cap = SRV_FILE_BYTES_MAX, len = 0;
    char *buf = malloc(cap + 1);
    if (buf)
        len = fread(buf, 1, cap, f);
    fclose(f);
    if (!buf)
        return 0;
    buf[len] = '\0';
    unsigned count = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        count++;
    free(buf);
    return count;
}

bool srv_file_contains(const char *path, const char *needle)
{
    return srv_file_count(path, needle) > 0;
}

int srv_tmpfile(const char *tag, char *dir, char *path)
{
    if (test_tmpdir_make(tag, dir))
        return -1;
    snprintf(path, PATH_MAX, "%.*s/%s", PATH_MAX - 64, dir, "file");
    return 0;
}
