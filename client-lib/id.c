/* id.c -- 16-byte event ids: random, as text, from text. */
#include "evstore.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int evs_id_random(uint8_t id[EVS_ID_BYTES])
{
    size_t done = 0;
    while (done < EVS_ID_BYTES) {
        ssize_t n = getrandom(id + done, EVS_ID_BYTES - done, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* UUID version 4 */
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    return 0;
}

char *evs_id_format(const uint8_t id[EVS_ID_BYTES], char out[EVS_ID_TEXT_BYTES])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < EVS_ID_BYTES; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[id[i] >> 4];
        *p++ = hex[id[i] & 15];
    }
    *p = '\0';
    return out;
}

int evs_id_parse(const char *text, uint8_t id[EVS_ID_BYTES])
{
    uint8_t tmp[EVS_ID_BYTES];
    int n = 0;
    if (!text)
        return -EINVAL;
    for (const char *p = text; *p; ) {
        if (*p == '-' && n > 0 && n < EVS_ID_BYTES && p[1] != '-') {
            p++;
            continue;
        }
        int hi = util_hex_digit(p[0]);
        int lo = hi < 0 ? -1 : util_hex_digit(p[1]);
        if (lo < 0 || n == EVS_ID_BYTES)
            return -EINVAL;
        tmp[n++] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    if (n != EVS_ID_BYTES)
        return -EINVAL;
    memcpy(id, tmp, sizeof tmp);
    return 0;
}
