# generate.cmake -- build-time sources of oms-order (cmake -P):
#   -DMODE=types -DIN=oms.pb-c.h -DOUT=x.c   the table of every message
#       descriptor protoc-c generated, for decoding events by type name
#   -DMODE=embed -DIN=openapi.json -DOUT=x.c  the OpenAPI document as bytes
if(MODE STREQUAL "types")
  file(STRINGS ${IN} lines REGEX "^extern const ProtobufCMessageDescriptor [A-Za-z0-9_]+;")
  set(entries "")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^extern const ProtobufCMessageDescriptor ([A-Za-z0-9_]+);.*" "\\1"
           name "${line}")
    string(APPEND entries "    &${name},\n")
  endforeach()
  if(entries STREQUAL "")
    message(FATAL_ERROR "no message descriptors found in ${IN}")
  endif()
  file(WRITE ${OUT}.tmp
"/* Generated from oms.pb-c.h by services/order/generate.cmake: do not edit. */
#include <stddef.h>

#include \"oms.pb-c.h\"

extern const ProtobufCMessageDescriptor *const oms_ord_pb_types[];
extern const size_t oms_ord_pb_type_count;

const ProtobufCMessageDescriptor *const oms_ord_pb_types[] = {
${entries}};
const size_t oms_ord_pb_type_count = sizeof oms_ord_pb_types / sizeof oms_ord_pb_types[0];
")
elseif(MODE STREQUAL "embed")
  file(READ ${IN} hex HEX)
  string(LENGTH "${hex}" hex_len)
  math(EXPR len "${hex_len} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)"
         "\\1\n" bytes "${bytes}")
  file(WRITE ${OUT}.tmp
"/* Generated from openapi.json by services/order/generate.cmake: do not edit. */
#include <stddef.h>

extern const char oms_ord_openapi_json[];
extern const size_t oms_ord_openapi_json_len;

const char oms_ord_openapi_json[] = {
${bytes}0x00};
const size_t oms_ord_openapi_json_len = ${len};
")
else()
  message(FATAL_ERROR "MODE must be types or embed")
endif()
file(RENAME ${OUT}.tmp ${OUT})
