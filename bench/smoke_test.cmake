# A smoke test of the benchmark harness against evstored only (no peers):
# one short append run through the same engine the suite uses. Included from
# tests/CMakeLists.txt.
if(TARGET evstore-bench)
  add_test(NAME bench_smoke_append
           COMMAND evstore-bench append --system evstored --seconds 1 --connections 2
                   --inflight 4 --events-per-append 10 --event-bytes 128
                   --evstored $<TARGET_FILE:evstored>)
  set_tests_properties(bench_smoke_append PROPERTIES
                       TIMEOUT 90
                       PASS_REGULAR_EXPRESSION "events/s +[1-9][0-9]*"
                       FAIL_REGULAR_EXPRESSION "append .* failed|did not start")
endif()
