# The L4 suite: one `edge l4` worker thread against HAProxy in TCP mode
# (nbthread 1), both in front of the same "L7 node" — an nginx that
# accepts PROXY v2 — and both sending PROXY v2: short connections (a new
# connection per small request, wrk with Connection: close) and bulk
# transfer (one 512 MiB download), with the proxy's CPU time per GB.

l4_topology() { # FILE PORT HEALTH_PORT
  cat >"$1" <<YAML
$(bench_edge_only_dns)
regions:
  bench:
    location: { lat: 0, lon: 0 }
    vip: { ipv4: 127.0.8.1, ports: { http: $2, https: $(bench_free_port) } }
    l4:
      nodes: [{ name: bench-l4, admin: "127.0.8.1:$(bench_free_port)" }]
      health: { kind: tcp, port: $3, interval: 5s, timeout: 1s }
    l7:
      nodes: [{ name: bench-l7, address: 127.0.8.11, admin: "127.0.8.11:$(bench_free_port)" }]
      proxy_protocol: true   # the nginx "L7 node" accepts PROXY v2, as the topology requires behind an L4
YAML
}

l4_bulk() { # SIDE ROUND URL PID
  local before after speed
  before=$(bench_cpu_us "$4")
  speed=$(curl -fsS -o /dev/null -w '%{speed_download}' "$3")
  after=$(bench_cpu_us "$4")
  # MiB/s, and proxy CPU milliseconds per GiB moved.
  bench_record vs-haproxy-tcp bulk-download "$1" "$2" \
    "mib_per_s=$(awk -v s="$speed" 'BEGIN {printf "%.0f", s / 1048576}')" \
    "cpu_ms_per_gib=$(awk -v a="$before" -v b="$after" 'BEGIN {printf "%.0f", (b - a) / 1000 * 2}')"
}

# l4_start — installs and builds what is missing, starts the "L7 node",
# edge l4 and HAProxy; sets L4_OURS / L4_PEER (pids) and L4_OURS_URL /
# L4_PEER_URL (the same small page through each; "big" after them is the
# bulk file). bench/profile uses it too.
l4_start() {
  bench_install wrk:wrk haproxy:haproxy nginx:nginx
  bench_machine
  local edge=${BENCH_EDGE:-}
  if [ -z "$edge" ]; then
    echo "bench: building edge (dist profile)"
    cargo build --profile dist --locked -q -p edge
    edge="$PWD/target/dist/edge"
  fi
  local work="$BENCH_DIR/l4" port health_port
  mkdir -p "$work/www"
  port=$(bench_free_port)
  health_port=$(bench_free_port)
  echo ok >"$work/www/index.html"
  head -c $((512 * 1024 * 1024)) /dev/zero >"$work/www/big"

  # The "L7 node": accepts PROXY v2 on the traffic port, plain on the health port.
  # (`user`: the files live in a private temporary directory.)
  cat >"$work/node.conf" <<NGINX
user $(id -un);
worker_processes 1;
pid $work/node.pid;
error_log $work/node-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  server { listen 127.0.8.11:$port proxy_protocol; root $work/www; }
  server { listen 127.0.8.11:$health_port; return 200 "ok\n"; }
}
NGINX
  bench_spawn "$work/node.log" nginx -c "$work/node.conf" -g 'daemon off;'

  l4_topology "$work/topology.yaml" "$port" "$health_port"
  bench_spawn "$work/edge.log" env TOKIO_WORKER_THREADS=1 RUST_LOG=warn,edge=info "$edge" l4 --config "$work/topology.yaml" --node bench-l4
  local ours=$BENCH_PID
  bench_wait_for "$work/edge.log" "L4 node serving" 30 "$ours"

  cat >"$work/haproxy.cfg" <<HAPROXY
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend vip
  bind 127.0.8.21:$port
  default_backend l7
backend l7
  server n1 127.0.8.11:$port send-proxy-v2
HAPROXY
  bench_spawn "$work/haproxy.log" haproxy -db -f "$work/haproxy.cfg"
  local haproxy=$BENCH_PID
  sleep 1 # HAProxy prints no readiness line; the curl checks below confirm
  L4_OURS=$ours L4_PEER=$haproxy
  L4_OURS_URL="http://127.0.8.1:$port/" L4_PEER_URL="http://127.0.8.21:$port/"
  for url in "$L4_OURS_URL" "$L4_PEER_URL"; do
    curl -fsS -o /dev/null "$url" || { echo "bench: $url does not answer" >&2; return 1; }
  done
}

suite_main() {
  l4_start
  local ours=$L4_OURS haproxy=$L4_PEER round side
  local -A pid=([ours]=$ours [peer]=$haproxy) url=([ours]=$L4_OURS_URL [peer]=$L4_PEER_URL)
  for round in $(seq 1 "$BENCH_ROUNDS"); do
    for side in $(bench_order "$round"); do
      bench_wrk vs-haproxy-tcp short-connections "$side" "$round" "${pid[$side]}" "${url[$side]}" -H "Connection: close"
    done
    for side in $(bench_order "$round"); do
      l4_bulk "$side" "$round" "${url[$side]}big" "${pid[$side]}"
    done
  done
  bench_record vs-haproxy-tcp rss ours 1 "rss_mib=$(($(bench_rss_kb "$ours") / 1024))"
  bench_record vs-haproxy-tcp rss peer 1 "rss_mib=$(($(bench_rss_kb "$haproxy") / 1024))"
  echo
  echo "L4: one edge l4 worker thread vs HAProxy TCP mode (nbthread 1), both sending PROXY v2; ${BENCH_SECONDS}s x ${BENCH_ROUNDS} rounds"
  BENCH_QPS_TARGET=1.0 bench_table edge-l4 haproxy
}
