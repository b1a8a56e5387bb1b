# oms.order: oms-order over real HTTP (oms_curl) against a real evstored; the
# test writes the read model itself with sqlite3 and parses answers with
# jansson.
oms_test(order 300 oms_curl pbjson PkgConfig::OMS_JANSSON PkgConfig::OMS_SQLITE)
if(TARGET oms-order)
  add_dependencies(test_oms_order oms-order)
endif()
