#!/usr/bin/env bash
# User-space instructions per proxied request of every proxy of the engine comparison, under
# `valgrind --tool=callgrind`: each proxy alone on one thread in front of a static nginx, warmed up
# with 500 requests, counters zeroed, then N requests (oha, 8 connections) counted. Instruction
# counts do not move with the machine's load, as throughput does; they leave out the kernel (most
# of a loopback proxy's time: see the profiles) and say nothing of stalls.
#
# usage: benches/engines/callgrind.sh FIREWALL_BINARY PROXY_BENCH_BINARY ENGINES_DIR
#   FIREWALL_BINARY     target/release/graphql-firewall
#   PROXY_BENCH_BINARY  the executable `cargo bench --bench proxy --no-run` prints
#   ENGINES_DIR         where benches/engines' binaries are (benches/engines/target/release)
# Needs nginx, valgrind, oha and curl. N (default 3000) requests per target.
set -euo pipefail
firewall=$1 bench=$2 engines=$3
N=${N:-3000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -p "$work/static" -c nginx.conf -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
body='{"query":"query Feed($first: Int!) { users(first: $first) { id name email posts(first: 2) { id title comments(first: 3) { text author { name } } } friends(first: 3) { id name } } }","operationName":"Feed","variables":{"first":5}}'
answer='{"data":{"users":[{"id":"u0","name":"Ada","posts":[{"title":"Post 0 by Ada"},{"title":"Post 1 by Ada"}]},{"id":"u1","name":"Grace","posts":[{"title":"Post 3 by Grace"}]}]}}'
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
temp_paths() { for t in client_body proxy fastcgi uwsgi scgi; do echo "${t}_temp_path $1/$t;"; done; }

up=$(port)
mkdir -p "$work/static/logs" "$work/proxy/logs"
cat > "$work/static/nginx.conf" <<CONF
daemon on; worker_processes 1; pid $work/static/nginx.pid; error_log $work/static/logs/error.log warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; $(temp_paths "$work/static")
  server { listen 127.0.0.1:$up; location / { default_type application/json; return 200 '$answer'; } } }
CONF
nginx -p "$work/static" -c nginx.conf

# One proxy under callgrind on $1 (port): prints its instructions per request.
count() {
  local name=$1 listen=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" "$@" > "$work/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$listen/" && break; sleep 0.2; done
  local load=(--no-tui -c 8 -m POST -H 'Content-Type: application/json' -d "$body")
  oha "${load[@]}" -n 500 "http://127.0.0.1:$listen/graphql" > /dev/null
  callgrind_control -z "$pid" > /dev/null 2>&1
  oha "${load[@]}" -n "$N" --output-format json "http://127.0.0.1:$listen/graphql" > "$work/$name.json"
  callgrind_control -d "$pid" > /dev/null 2>&1
  sleep 1
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local total statuses
  total=$(grep -h '^summary:\|^totals:' "$work/$name.out".* | tail -1 | awk '{print $2}')
  statuses=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['statusCodeDistribution'])" "$work/$name.json")
  printf '%-24s %10d instructions/request  (answers: %s)\n' "$name" $((total / N)) "$statuses"
}

p=$(port)
cat > "$work/proxy/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $work/proxy/nginx.pid; error_log $work/proxy/logs/error.log warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; $(temp_paths "$work/proxy")
  upstream static_upstream { server 127.0.0.1:$up; keepalive 128; }
  server { listen 127.0.0.1:$p; location / { proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header X-Forwarded-For \$remote_addr; proxy_pass http://static_upstream; } } }
CONF
count "b: nginx proxy" "$p" nginx -p "$work/proxy" -c nginx.conf

p=$(port)
GRAPHQL_FIREWALL_UPSTREAM_URL="http://127.0.0.1:$up/graphql" GRAPHQL_FIREWALL_LISTEN="127.0.0.1:$p" \
  GRAPHQL_FIREWALL_METRICS_LISTEN=off GRAPHQL_FIREWALL_LOG=warn GRAPHQL_FIREWALL_WORKERS=1 \
  count "c: graphql-firewall" "$p" "$firewall" serve

for target in d g h0 h1 h2 h3 h4 h5; do
  p=$(port)
  PROXY_BENCH_SERVE="$target,$p,$up" PROXY_BENCH_WORKERS=1 count "$target (bench)" "$p" "$bench" --bench
done

p=$(port)
count "e: Pingora" "$p" "$engines/engine-pingora" --threads 1 --listen "127.0.0.1:$p" --upstream "127.0.0.1:$up"
p=$(port)
count "f: monoio io_uring" "$p" "$engines/engine-monoio" --threads 1 --listen "127.0.0.1:$p" --upstream "127.0.0.1:$up"
