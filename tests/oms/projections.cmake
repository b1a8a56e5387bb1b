# oms.projections: oms-projections against a real evstored; the test reads
# the SQLite read model itself and GETs /metrics with oms_curl.
pkg_check_modules(OMS_PROJ_TEST_SQLITE REQUIRED IMPORTED_TARGET sqlite3)
oms_test(projections 300 PkgConfig::OMS_PROJ_TEST_SQLITE oms_curl)
if(TARGET oms-projections)
  add_dependencies(test_oms_projections oms-projections)
endif()
