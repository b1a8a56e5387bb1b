/* worker.c -- the engine's one background thread. It keeps slow, blocking
 * file work off the append path: writing out the next segment ahead of need
 * (so that fdatasync never has to commit new extents) and writing the index
 * file of a segment once it is sealed and durable. */
#include "log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WORKER_ZERO_CHUNK_BYTES (1u << 20)
/* Preparing syncs every this many bytes: a segment's worth of dirty zeros
 * written back at once made appends' fdatasyncs wait behind it (100+ ms). */
#define WORKER_SYNC_EVERY_BYTES (8u << 20)
#define WORKER_INDEX_QUEUE_MAX 64u

typedef struct {
    segment_t *segment;
    uint64_t end_position, end_offset, end_checksum;
} index_job_t;

struct log_worker_s {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *dir;
    uint64_t segment_bytes;
    bool prepare;
    bool stop;
    atomic_bool stop_requested; /* read without the lock by a running preparation */
    bool want_prepared; /* a prepared file is asked for */
    bool prepared;      /* prepared.next is complete and synced */
    bool busy;
    index_job_t jobs[WORKER_INDEX_QUEUE_MAX];
    uint32_t job_count;
};

/* The finished prepared segment; kept across restarts. */
static void prepared_path(char *buf, size_t cap, const char *dir)
{
    snprintf(buf, cap, "%s/prepared.next", dir);
}

/* The prepared segment while it is being written. */
static void preparing_path(char *buf, size_t cap, const char *dir)
{
    snprintf(buf, cap, "%s/prepared.tmp", dir);
}

/* Writes a whole segment-sized file of zeros, syncs it, and renames it into
 * place. Gives up early (-ECANCELED) when the worker is asked to stop. */
static int prepare_file(log_worker_t *w)
{
    char path[4096], done[4096];
    preparing_path(path, sizeof path, w->dir);
    prepared_path(done, sizeof done, w->dir);
    uint64_t bytes = w->segment_bytes;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    static const uint8_t zeros[WORKER_ZERO_CHUNK_BYTES];
    int rc = 0;
    for (uint64_t off = 0; off < bytes && rc == 0;) {
        if (atomic_load(&w->stop_requested)) {
            rc = -ECANCELED;
            break;
        }
        size_t n = bytes - off < sizeof zeros ? (size_t)(bytes - off) : sizeof zeros;
        ssize_t written = pwrite(fd, zeros, n, (off_t)off);
        if (written < 0 && errno != EINTR)
            rc = -errno;
        else if (written > 0)
            off += (uint64_t)written;
        if (rc == 0 && off % WORKER_SYNC_EVERY_BYTES == 0 && fdatasync(fd) != 0)
            rc = -errno;
    }
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(path, done) != 0)
        rc = -errno;
    if (rc)
        unlink(path);
    return rc;
}

static void *worker_main(void *arg)
{
    log_worker_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && w->job_count == 0 && !(w->want_prepared && !w->prepared))
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->job_count > 0) {
            index_job_t job = w->jobs[0];
            w->busy = true;
            pthread_mutex_unlock(&w->mu);
            /* A failure leaves the segment without an index file: recovery
             * then scans it, so nothing is lost but start-up time. */
            int rc = segment_index_write(w->dir, job.segment, job.end_position, job.end_offset,
                                         job.end_checksum);
            pthread_mutex_lock(&w->mu);
            if (rc == 0)
                job.segment->indexed = true;
            /* The list served only this file; the in-memory index has the rest. */
            free(job.segment->builder);
            job.segment->builder = NULL;
            job.segment->builder_count = job.segment->builder_cap = 0;
            memmove(w->jobs, w->jobs + 1, (w->job_count - 1) * sizeof *w->jobs);
            w->job_count--;
            w->busy = false;
            pthread_cond_broadcast(&w->cv);
            continue;
        }
        if (w->stop)
            break;
        w->busy = true;
        pthread_mutex_unlock(&w->mu);
        int rc = prepare_file(w);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
        if (rc == 0)
            w->prepared = true;
        else
            w->want_prepared = false; /* rolls fall back to creating files */
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int worker_start(log_worker_t **out, const char *dir, uint64_t segment_bytes, bool prepare)
{
    log_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->dir = strdup(dir);
    if (!w->dir) {
        free(w);
        return -ENOMEM;
    }
    w->segment_bytes = segment_bytes;
    w->prepare = prepare;
    w->want_prepared = false; /* asked for by worker_want_prepared() */
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    /* A preparation cut short is made anew; a finished one of the right size
     * is used. */
    char path[4096];
    preparing_path(path, sizeof path, dir);
    unlink(path);
    prepared_path(path, sizeof path, dir);
    struct stat st;
    if (stat(path, &st) == 0) {
        if ((uint64_t)st.st_size == segment_bytes && prepare)
            w->prepared = true;
        else
            unlink(path);
    }
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc) {
        free(w->dir);
        free(w);
        return -rc;
    }
    *out = w;
    return 0;
}

void worker_stop(log_worker_t *w)
{
    if (!w)
        return;
    atomic_store(&w->stop_requested, true);
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->dir);
    free(w);
}

int worker_take_prepared(log_worker_t *w, const char *path)
{
    int fd = -1;
    pthread_mutex_lock(&w->mu);
    if (w->prepared) {
        char tmp[4096];
        prepared_path(tmp, sizeof tmp, w->dir);
        if (rename(tmp, path) == 0)
            fd = open(path, O_RDWR | O_CLOEXEC);
        w->prepared = false;
    }
    w->want_prepared = false;
    pthread_mutex_unlock(&w->mu);
    return fd;
}

void worker_want_prepared(log_worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    if (w->prepare && !w->want_prepared && !w->prepared) {
        w->want_prepared = true;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

void worker_wait_prepared(log_worker_t *w)
{
    worker_want_prepared(w);
    pthread_mutex_lock(&w->mu);
    while (w->want_prepared && !w->prepared)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void worker_queue_index(log_worker_t *w, segment_t *s, uint64_t end_position, uint64_t end_offset,
                        uint64_t end_checksum)
{
    pthread_mutex_lock(&w->mu);
    while (w->job_count == WORKER_INDEX_QUEUE_MAX)
        pthread_cond_wait(&w->cv, &w->mu);
    w->jobs[w->job_count++] = (index_job_t){s, end_position, end_offset, end_checksum};
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void worker_flush(log_worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->job_count > 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}
