# oms.services: oms-payment, oms-inventory, oms-shipping and oms-notification,
# each as a real program on a real evstored; the test reads the outbox with
# jansson and GETs /metrics with oms_curl.
pkg_check_modules(OMS_SVC_TEST_JANSSON REQUIRED IMPORTED_TARGET jansson)
oms_test(services 600 PkgConfig::OMS_SVC_TEST_JANSSON oms_curl)
# the inventory's version-conflict race, workers racing on one SKU
set_property(TEST oms.services APPEND PROPERTY LABELS stress)
foreach(program oms-payment oms-inventory oms-shipping oms-notification)
  if(TARGET ${program})
    add_dependencies(test_oms_services ${program})
  endif()
endforeach()
