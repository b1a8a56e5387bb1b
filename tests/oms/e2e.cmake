# oms.e2e: evstored and every service, 200 orders over HTTP.
add_library(oms_system STATIC ${CMAKE_CURRENT_SOURCE_DIR}/oms_system.c)
target_link_libraries(oms_system PUBLIC oms_test_util oms_curl oms_runtime)
oms_test(e2e 600 oms_system PkgConfig::OMS_JANSSON PkgConfig::OMS_SQLITE)
oms_needs_whole_system(test_oms_e2e)
set_tests_properties(oms.e2e PROPERTIES RUN_SERIAL TRUE)
set_property(TEST oms.e2e APPEND PROPERTY LABELS stress)
