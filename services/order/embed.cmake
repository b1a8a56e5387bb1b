# embed.cmake -- oms-order's OpenAPI document as a C array, at build time:
#   cmake -DIN=openapi.json -DOUT=oms_ord_openapi.c -P embed.cmake
# (file(READ HEX): no xxd needed; the array ends with a NUL, the length
# does not count it).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR len "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)"
       "\\1\n" bytes "${bytes}")
file(WRITE ${OUT}.tmp
"/* Generated from openapi.json by services/order/embed.cmake: do not edit. */
#include <stddef.h>

extern const char oms_ord_openapi_json[];
extern const size_t oms_ord_openapi_json_len;

const char oms_ord_openapi_json[] = {
${bytes}0x00};
const size_t oms_ord_openapi_json_len = ${len};
")
file(RENAME ${OUT}.tmp ${OUT})
