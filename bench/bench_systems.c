/* bench_systems.c -- the drivers compiled into this build (see bench_sys.h).
 * A peer is compiled in only when CMake found its client library. */
#include "bench_sys.h"

#include <string.h>

extern const bench_driver_t bench_driver_evstored;
#ifdef BENCH_HAVE_PG
extern const bench_driver_t bench_driver_pg;
#endif
#ifdef BENCH_HAVE_REDIS
extern const bench_driver_t bench_driver_redis;
#endif
#ifdef BENCH_HAVE_NATS
extern const bench_driver_t bench_driver_nats;
#endif

static const bench_driver_t *const drivers[] = {
    &bench_driver_evstored,
#ifdef BENCH_HAVE_PG
    &bench_driver_pg,
#endif
#ifdef BENCH_HAVE_REDIS
    &bench_driver_redis,
#endif
#ifdef BENCH_HAVE_NATS
    &bench_driver_nats,
#endif
};

const bench_driver_t *bench_driver_find(const char *name)
{
    for (size_t i = 0; i < sizeof drivers / sizeof *drivers; i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}

const char *bench_driver_names(void)
{
    static char names[128];
    if (!names[0])
        for (size_t i = 0; i < sizeof drivers / sizeof *drivers; i++) {
            if (i)
                strcat(names, ",");
            strcat(names, drivers[i]->name);
        }
    return names;
}
