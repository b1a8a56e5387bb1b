/* openapi.c -- GET /openapi.json: the OpenAPI 3.0 document of this API,
 * services/order/openapi.json, embedded at build time (embed.cmake). */
#include <stdlib.h>
#include <string.h>

#include "order.h"

void oms_ord_openapi(oms_ord_reply_t *out)
{
    char *body = malloc(oms_ord_openapi_json_len + 1);
    if (!body) {
        oms_ord_reply_error(out, 500, "internal", NULL, "out of memory");
        return;
    }
    memcpy(body, oms_ord_openapi_json, oms_ord_openapi_json_len);
    body[oms_ord_openapi_json_len] = '\0';
    out->status = 200;
    out->body = body;
    out->content_type = "application/json";
}
