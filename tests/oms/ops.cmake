# oms.ops: Debian's prometheus (/usr/bin/prometheus) scraping a running
# system with a copy of ops/prometheus/prometheus.yml, the metrics of
# ops/grafana/oms-dashboard.json, and oms-demo against the system.
oms_test(ops 300 oms_curl PkgConfig::OMS_JANSSON)
target_compile_definitions(test_oms_ops PRIVATE
  OMS_OPS_DIR="${PROJECT_SOURCE_DIR}/ops" PROMETHEUS_PATH="/usr/bin/prometheus")
oms_needs_whole_system(test_oms_ops)
