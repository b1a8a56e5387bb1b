# oms.chaos: kill -9 of every program during a run (uses oms_system from e2e.cmake).
oms_test(chaos 600 oms_system)
oms_needs_whole_system(test_oms_chaos)
set_tests_properties(oms.chaos PROPERTIES RUN_SERIAL TRUE)
set_property(TEST oms.chaos APPEND PROPERTY LABELS stress)
