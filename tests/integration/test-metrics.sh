#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# GET /metrics on a TCP listener of its own (metrics-listen), and Debian's real Prometheus
# scraping it: the listener serves that route alone; runs' ends, durations and launch
# latencies are there; Prometheus's query API returns corral's series.
. "$(dirname "$0")/lib.sh"
require curl jq python3 prometheus

free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PROM_PID=
extra_cleanup() {
        if [ -n "$PROM_PID" ]; then
                kill "$PROM_PID" 2>/dev/null
                wait "$PROM_PID" 2>/dev/null
        fi
}

out=$("$CORRALD" --state-dir "$STATE" --socket "$SOCK" --placement none --sandbox no --metrics-listen nowhere 2>&1)
is "a --metrics-listen that is no address: exit 2, as any bad option" "$?" 2
like "... saying what it must be" "$out" "metrics-listen must be an address and port, 127.0.0.1:9464 or \\[::1\\]:9464"

port=$(free_port)
check "corrald starts with a metrics listener" start_daemon --metrics-listen "127.0.0.1:$port"
metrics() {
        curl -sS "http://127.0.0.1:$port/metrics"
}
like "GET /metrics answers on TCP" "$(metrics)" "^corral_supervised_runs 0$"
body=$(curl -sS -o - -w ' %{http_code}' "http://127.0.0.1:$port/api/health")
is "... and nothing else of the API" "$body" '{"error":"this listener serves GET /metrics only"} 404'
is "... not even another method" "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/metrics")" 404

company=$(api POST /api/companies '{"name":"Metered","issuePrefix":"MET"}' | jq -r .id)
agent=$(api POST "/api/companies/$company/agents" '{"name":"m","adapterConfig":{"command":"/bin/true"}}' | jq -r .id)
run=$(api POST "/api/agents/$agent/wakeup" '{}' | jq -r .id)
wait_run "$run" >/dev/null
fail=$(api POST "/api/companies/$company/agents" '{"name":"f","adapterConfig":{"command":"/bin/false"}}' | jq -r .id)
wait_run "$(api POST "/api/agents/$fail/wakeup" '{}' | jq -r .id)" >/dev/null
m=$(metrics)
like "run ends by status, adapter and error code" "$m" \
        'corral_run_ends_total\{status="succeeded",adapter="process",error_code=""\} 1'
like "... a failure too" "$m" 'corral_run_ends_total\{status="failed",adapter="process",error_code="adapter_failed"\} 1'
like "launch latency is a histogram" "$m" "corral_launch_latency_seconds_count 2"
like "... with buckets" "$m" 'corral_launch_latency_seconds_bucket\{le="\+Inf"\} 2'
like "run durations too" "$m" "corral_run_duration_seconds_count 2"
like "runs by status" "$m" 'corral_runs\{status="succeeded"\} 1'
like "the socket's metrics are the same" "$(curl -sS --unix-socket "$SOCK" http://localhost/metrics | grep -c '^corral_')" \
        "$(grep -c '^corral_' <<<"$m")"

# --- Debian's Prometheus scrapes it ---
prom=$(free_port)
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: corral
    static_configs:
      - targets: ["127.0.0.1:$port"]
EOF
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" --web.listen-address="127.0.0.1:$prom" \
        >"$T/prometheus.log" 2>&1 &
PROM_PID=$!
query() {
        curl -sS -G "http://127.0.0.1:$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null
}
scraped() {
        [ "$(query 'corral_supervised_runs' | jq -r '.data.result | length' 2>/dev/null)" = 1 ]
}
if wait_for 60 scraped; then
        ok "Prometheus scrapes the listener"
else
        not_ok "Prometheus scrapes the listener"
        tail -n 20 "$T/prometheus.log" | sed 's/^/#   /'
fi
is "... its target is up" "$(query 'up{job="corral"}' | jq -r '.data.result[0].value[1]')" 1
is "... and its query API returns corral's series" \
        "$(query 'sum(corral_run_ends_total)' | jq -r '.data.result[0].value[1]')" 2
is "... histograms included" "$(query 'corral_launch_latency_seconds_count' | jq -r '.data.result[0].value[1]')" 2

finish
