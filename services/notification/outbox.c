/* outbox.c -- the notification outbox: whole, durable JSON lines. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "notification.h"

/* mkdir -p of path's parent directory. */
static int parent_make(const char *path)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return -ENAMETOOLONG;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; p <= slash; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = c;
    }
    return 0;
}

int oms_outbox_open(oms_outbox_t *o, const char *path)
{
    int rc = parent_make(path);
    if (rc == 0) {
        o->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        rc = o->fd < 0 ? -errno : 0;
    }
    if (rc) {
        fprintf(stderr, "outbox %s: %s\n", path, strerror(-rc));
        return rc;
    }
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->synced, NULL);
    o->written = o->durable = o->failed = 0;
    o->syncing = false;
    return 0;
}

void oms_outbox_close(oms_outbox_t *o)
{
    close(o->fd);
    pthread_cond_destroy(&o->synced);
    pthread_mutex_destroy(&o->lock);
}

/* Writes line and a newline, resuming after short writes. */
static int write_all(int fd, const char *line, size_t len)
{
    static const char nl = '\n';
    size_t total = len + 1, done = 0;
    while (done < total) {
        struct iovec iov[2];
        int n = 0;
        if (done < len)
            iov[n++] = (struct iovec){(void *)(line + done), len - done};
        iov[n++] = (struct iovec){(void *)&nl, 1};
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        done += (size_t)w;
    }
    return 0;
}

/* Waits (lock held) until line number seq is durable: the first waiter
 * with no sync running syncs everything written so far, without the lock;
 * the others wait for it. A failed sync fails every line it covered. */
static int outbox_sync(oms_outbox_t *o, uint64_t seq)
{
    while (o->durable < seq) {
        if (seq <= o->failed)
            return -EIO;
        if (o->syncing) {
            pthread_cond_wait(&o->synced, &o->lock);
            continue;
        }
        uint64_t target = o->written;
        o->syncing = true;
        pthread_mutex_unlock(&o->lock);
        int rc = fdatasync(o->fd) != 0 ? -errno : 0;
        pthread_mutex_lock(&o->lock);
        o->syncing = false;
        if (rc == 0 && target > o->durable)
            o->durable = target;
        if (rc != 0 && target > o->failed)
            o->failed = target;
        pthread_cond_broadcast(&o->synced);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int oms_outbox_append(oms_outbox_t *o, const char *line, size_t len)
{
    pthread_mutex_lock(&o->lock);
    int rc = 0;
    off_t before = lseek(o->fd, 0, SEEK_END);
    if (before < 0)
        rc = -errno;
    if (rc == 0 && (rc = write_all(o->fd, line, len)) != 0)
        (void)!ftruncate(o->fd, before); /* best effort: no torn line */
    if (rc == 0)
        rc = outbox_sync(o, ++o->written);
    pthread_mutex_unlock(&o->lock);
    return rc;
}
