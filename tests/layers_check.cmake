# layers_check.cmake -- fails when a folder includes a header it may not.
#
#   cmake -DSOURCE_DIR=<project root> -P tests/layers_check.cmake
#
# The arrows of the design (docs/architecture.md), and nothing else, may be
# crossed by an #include "...":
#
#   services, tools/cli, bench -> client-lib -> protocol
#   server -> storage, protocol
#   tools/inspect -> storage, protocol
#   bench -> storage            (log_bench measures the log without a server)
#   every folder -> util
#
# Across an arrow only the target folder's public headers may be named: the
# ones its CMakeLists.txt gives to evs_public_headers() (and protocol's
# generated evstore.pb-c.h). A folder's own headers are its own business.
# tests/ may include anything: a unit test sees its module's internals.
#
# Angle-bracket includes are system and package headers and are not checked.

cmake_minimum_required(VERSION 3.20)

if(NOT SOURCE_DIR)
  message(FATAL_ERROR "layers_check: pass -DSOURCE_DIR=<project root>")
endif()

set(FOLDERS util protocol storage server client-lib services tools/cli tools/inspect tools bench)
set(ALLOWED_util "")
set(ALLOWED_protocol util)
set(ALLOWED_storage util)
set(ALLOWED_server storage protocol util)
set(ALLOWED_client-lib protocol util)
set(ALLOWED_services client-lib util)
set(ALLOWED_tools/cli client-lib util)
set(ALLOWED_tools/inspect storage protocol util)
set(ALLOWED_tools storage util)
set(ALLOWED_bench client-lib storage util)

# folder_of(<path relative to SOURCE_DIR> <out var>): the most specific
# folder of FOLDERS that holds the path, or "" when none does.
function(folder_of rel out)
  set(best "")
  foreach(f ${FOLDERS})
    string(LENGTH "${f}/" n)
    string(SUBSTRING "${rel}" 0 ${n} head)
    string(LENGTH "${best}" bn)
    if(head STREQUAL "${f}/" AND n GREATER bn)
      set(best ${f})
    endif()
  endforeach()
  set(${out} "${best}" PARENT_SCOPE)
endfunction()

# The public headers of each folder, from its evs_public_headers() calls.
foreach(f ${FOLDERS})
  set(PUBLIC_${f} "")
endforeach()
set(PUBLIC_protocol evstore.pb-c.h)
file(GLOB_RECURSE cmake_lists RELATIVE ${SOURCE_DIR} ${SOURCE_DIR}/*/CMakeLists.txt)
foreach(cl ${cmake_lists})
  folder_of("${cl}" f)
  if(f STREQUAL "")
    continue()
  endif()
  file(STRINGS ${SOURCE_DIR}/${cl} calls REGEX "^[ \t]*evs_public_headers\\(")
  foreach(call ${calls})
    string(REGEX REPLACE "^[ \t]*evs_public_headers\\([^ \t)]+[ \t]*([^)]*)\\).*" "\\1" hs "${call}")
    separate_arguments(hs)
    list(APPEND PUBLIC_${f} ${hs})
  endforeach()
endforeach()

# Which folder owns each header name (generated protobuf headers included).
file(GLOB_RECURSE headers RELATIVE ${SOURCE_DIR} ${SOURCE_DIR}/*.h)
set(OWNER_evstore.pb-c.h protocol)
set(OWNER_oms.pb-c.h services)
foreach(h ${headers})
  folder_of("${h}" f)
  get_filename_component(name ${h} NAME)
  if(NOT f STREQUAL "")
    list(APPEND OWNER_${name} ${f})
  endif()
endforeach()

set(violations 0)
set(checked 0)
file(GLOB_RECURSE sources RELATIVE ${SOURCE_DIR} ${SOURCE_DIR}/*.c ${SOURCE_DIR}/*.h)
foreach(src ${sources})
  folder_of("${src}" f)
  if(f STREQUAL "")
    continue() # tests/, docs/ examples, build trees
  endif()
  file(STRINGS ${SOURCE_DIR}/${src} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line ${lines})
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*" "\\1" inc "${line}")
    get_filename_component(name ${inc} NAME)
    math(EXPR checked "${checked} + 1")
    set(owners ${OWNER_${name}})
    if(NOT owners)
      message("layers_check: ${src}: includes \"${inc}\", which no folder owns")
      math(EXPR violations "${violations} + 1")
      continue()
    endif()
    if(f IN_LIST owners)
      continue()
    endif()
    set(ok FALSE)
    foreach(o ${owners})
      if(o IN_LIST ALLOWED_${f} AND name IN_LIST PUBLIC_${o})
        set(ok TRUE)
      endif()
    endforeach()
    if(NOT ok)
      list(JOIN owners ", " owner_text)
      list(JOIN ALLOWED_${f} ", " allowed_text)
      message("layers_check: ${src}: includes \"${inc}\" of ${owner_text}; "
              "${f} may include only the public headers of: ${allowed_text}")
      math(EXPR violations "${violations} + 1")
    endif()
  endforeach()
endforeach()

if(violations GREATER 0)
  message(FATAL_ERROR "layers_check: ${violations} include(s) against the arrows "
                      "(of ${checked} checked); see docs/architecture.md")
endif()
message("layers_check: ${checked} includes follow the arrows")
