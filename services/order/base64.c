/* base64.c -- base64 for list cursors (URL alphabet, unpadded). Payloads
 * the API cannot decode are shown by util's pbjson_base64(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t oms_ord_base64(const void *data, size_t len, bool url, char *out, size_t cap)
{
    const unsigned char *p = data;
    const char *abc = url ? b64_url : b64_std;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t left = len - i;
        if (left > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (left > 2)
            v |= p[i + 2];
        char quad[4] = {abc[v >> 18 & 63], abc[v >> 12 & 63], abc[v >> 6 & 63], abc[v & 63]};
        size_t keep = left >= 3 ? 4 : left + 1;
        for (size_t k = 0; k < 4; k++) {
            char c = k < keep ? quad[k] : '=';
            if (k >= keep && url)
                break;
            if (n + 1 < cap)
                out[n] = c;
            n++;
        }
    }
    if (cap)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

static int b64url_value(char c)
{
    const char *hit = c ? strchr(b64_url, c) : NULL;
    return hit ? (int)(hit - b64_url) : -1;
}

int oms_ord_base64url_decode(const char *text, void *out, size_t cap, size_t *len)
{
    unsigned char *o = out;
    size_t tl = strlen(text), n = 0;
    if (tl % 4 == 1)
        return -EINVAL;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < tl; i++) {
        int v = b64url_value(text[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -EMSGSIZE;
            o[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) /* stray bits: not what the encoder writes */
        return -EINVAL;
    *len = n;
    return 0;
}
