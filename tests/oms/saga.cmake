# oms.saga: pure state-machine tests; no server needed.
oms_test(saga 120 oms_saga_state)
