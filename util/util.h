/* util.h -- the few helpers every part of the project may use: a clock, a
 * sleep, hex, HOST:PORT, and an assertion that stays on in release builds.
 *
 * util/ sits below every other folder (docs/architecture.md): it includes
 * nothing of the project's and links nothing but libc. */
#ifndef EVS_UTIL_H
#define EVS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* VERIFY(cond): an invariant whose violation would lose or duplicate data.
 * It stays on in every build (NDEBUG or not): a wrong answer costs more than
 * the branch. On failure it names the condition and the place, and aborts.
 * Use assert() for invariants that are costly to check. */
#define VERIFY(cond)                                                                           \
    ((cond) ? (void)0 : util_verify_failed(#cond, __FILE__, __LINE__, __func__))

/* Prints "file:line: func: invariant failed: cond" to stderr and aborts. */
_Noreturn void util_verify_failed(const char *cond, const char *file, int line, const char *func);

/* Nanoseconds on CLOCK_MONOTONIC: for deadlines and durations. */
uint64_t util_mono_ns(void);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t util_mono_ms(void);

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME): for timestamps only. */
uint64_t util_real_ns(void);

/* Sleeps ms milliseconds (none when ms <= 0), resuming after signals. */
void util_sleep_ms(long ms);

/* Writes the 2*n lower-case hex digits of p[0..n) and a NUL to out, which
 * holds at least 2*n+1 bytes. Returns out. */
char *util_hex(const void *p, size_t n, char *out);

/* Writes the 2*n lower-case hex digits of p[0..n) to f. */
void util_hex_print(FILE *f, const void *p, size_t n);

/* The value of one hex digit (either case), or -1 when c is not one. */
int util_hex_digit(char c);

/* Reads exactly 2*n hex digits (either case) from text into out[0..n).
 * Returns 0, or -EINVAL when text is not 2*n hex digits followed by NUL. */
int util_unhex(const char *text, void *out, size_t n);

/* Splits "HOST:PORT" at its last colon ("[::1]:7000" keeps its brackets in
 * host). host gets at most host_bytes-1 characters. Ports are 1..65535, or
 * 0..65535 with allow_zero (0: "any free port"). Returns 0 or -EINVAL (no
 * colon, empty host, host too long, port not a number in range). */
int util_hostport(const char *text, char *host, size_t host_bytes, uint16_t *port,
                  bool allow_zero);

#endif
