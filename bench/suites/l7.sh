# The L7 suite: one `edge l7` worker thread against HAProxy (nbthread 1) and
# nginx (worker_processes 1), each proxying to the same keep-alive backend
# (an nginx serving a small body), measured with wrk: requests per second
# and p99 over keep-alive connections, new TLS connections per second and
# resumed TLS connections per second (one request each) against HAProxy;
# the proxy's CPU microseconds per request for every workload.

l7_topology() { # FILE PORT HTTPS_PORT BACKEND
  local certs="$PWD/examples/certs"
  cat >"$1" <<YAML
$(bench_edge_only_dns)
regions:
  bench:
    location: { lat: 0, lon: 0 }
    vip: { ipv4: 127.0.7.1, ports: { http: $2, https: $3 } }
    l7:
      nodes: [{ name: bench-l7, address: 127.0.7.11, admin: "127.0.7.11:$(bench_free_port)" }]
      tls: { certs: [{ cert: $certs/example.com.pem, key: $certs/example.com.key }] }
      routes: [{ pool: web }]
      pools:
        web:
          servers: [{ addr: "$4" }]
          health: { path: /, interval: 5s, timeout: 1s }
YAML
}

# l7_resumed SIDE ROUND PID HOST:PORT — TLS connections per second that
# resume a session (openssl s_time -reuse: a full handshake first, then
# every connection resumes it; one request each), from two clients at
# once, with the proxy's CPU microseconds per connection.
l7_resumed() {
  local side=$1 round=$2 pid=$3 target=$4 work="$BENCH_DIR/l7" before after start end i
  before=$(bench_cpu_us "$pid")
  start=$(date +%s.%N)
  local clients=()
  for i in 1 2; do
    openssl s_time -connect "$target" -reuse -time "$BENCH_SECONDS" -www / >"$work/s_time.$i" 2>&1 &
    clients+=($!)
  done
  # Only the clients: a bare `wait` would wait for the servers too.
  wait "${clients[@]}"
  end=$(date +%s.%N)
  after=$(bench_cpu_us "$pid")
  local connections
  connections=$(awk '/connections in .*real seconds/ {n += $1} END {print n + 0}' "$work"/s_time.1 "$work"/s_time.2)
  bench_record vs-haproxy tls-resumed "$side" "$round" \
    "qps=$(awk -v n="$connections" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}')" \
    "cpu_us_per_req=$(awk -v t=$((after - before)) -v n="$connections" 'BEGIN { if (n > 0) printf "%.2f", t / n; else print 0 }')"
}

# l7_start — installs and builds what is missing, starts the backend,
# edge l7, HAProxy and nginx; sets L7_OURS / L7_HAPROXY / L7_NGINX (pids),
# L7_OURS_URL / L7_HAPROXY_URL / L7_NGINX_URL (plain HTTP through each) and
# L7_TLS_PORT. bench/profile uses it too.
l7_start() {
  bench_install wrk:wrk haproxy:haproxy nginx:nginx
  bench_machine
  local edge=${BENCH_EDGE:-}
  if [ -z "$edge" ]; then
    echo "bench: building edge (dist profile)"
    cargo build --profile dist --locked -q -p edge
    edge="$PWD/target/dist/edge"
  fi
  local work="$BENCH_DIR/l7" port tls_port backend_port
  mkdir -p "$work"
  port=$(bench_free_port)
  tls_port=$(bench_free_port)
  backend_port=$(bench_free_port)

  # The backend all three proxy to.
  cat >"$work/backend.conf" <<NGINX
worker_processes 1;
pid $work/backend.pid;
error_log $work/backend-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.7.61:$backend_port; location / { return 200 "ok\n"; } }
}
NGINX
  bench_spawn "$work/backend.log" nginx -c "$work/backend.conf" -g 'daemon off;'

  # Ours: one worker thread.
  l7_topology "$work/topology.yaml" "$port" "$tls_port" "127.0.7.61:$backend_port"
  bench_spawn "$work/edge.log" env TOKIO_WORKER_THREADS=1 RUST_LOG=warn,edge=info "$edge" l7 --config "$work/topology.yaml" --node bench-l7
  local ours=$BENCH_PID
  bench_wait_for "$work/edge.log" "listening" 30 "$ours"

  # HAProxy: one thread, keep-alive to the backend, TLS with the same certificate.
  cat "$PWD/examples/certs/example.com.pem" "$PWD/examples/certs/example.com.key" >"$work/haproxy.pem"
  cat >"$work/haproxy.cfg" <<HAPROXY
global
  nbthread 1
  maxconn 4096
  tune.ssl.default-dh-param 2048
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend plain
  bind 127.0.7.21:$port
  bind 127.0.7.21:$tls_port ssl crt $work/haproxy.pem alpn http/1.1
  # The request headers edge adds: X-Forwarded-For/-Proto/-Host, X-Request-ID.
  option forwardfor
  http-request set-header X-Forwarded-Proto https if { ssl_fc }
  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  unique-id-format %{+X}o\ %ci%cp%fi%fp%Ts%rt%pid
  unique-id-header X-Request-ID
  default_backend web
backend web
  server b1 127.0.7.61:$backend_port
HAPROXY
  bench_spawn "$work/haproxy.log" haproxy -db -f "$work/haproxy.cfg"
  local haproxy=$BENCH_PID

  # nginx as a reverse proxy: one worker, keep-alive upstream.
  cat >"$work/proxy.conf" <<NGINX
worker_processes 1;
pid $work/proxy.pid;
error_log $work/proxy-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream web { server 127.0.7.61:$backend_port; keepalive 64; }
  server {
    listen 127.0.7.31:$port;
    location / {
      proxy_pass http://web; proxy_http_version 1.1; proxy_set_header Connection "";
      # The request headers edge adds.
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Request-ID \$request_id;
    }
  }
}
NGINX
  bench_spawn "$work/proxy.log" nginx -c "$work/proxy.conf" -g 'daemon off;'
  local nginx=$BENCH_PID
  sleep 1 # nginx and HAProxy print no readiness line; the curl checks below confirm
  L7_OURS_URL="http://127.0.7.11:$port/" L7_HAPROXY_URL="http://127.0.7.21:$port/" L7_NGINX_URL="http://127.0.7.31:$port/"
  for url in "$L7_OURS_URL" "$L7_HAPROXY_URL" "$L7_NGINX_URL"; do
    curl -fsS -o /dev/null "$url" || { echo "bench: $url does not answer" >&2; return 1; }
  done
  L7_OURS=$ours L7_HAPROXY=$haproxy L7_NGINX=$nginx L7_TLS_PORT=$tls_port
}

suite_main() {
  l7_start
  local ours=$L7_OURS haproxy=$L7_HAPROXY nginx=$L7_NGINX tls_port=$L7_TLS_PORT round
  local side
  # Per side: the pid and the address, against HAProxy (h) and nginx (n).
  local -A h_pid=([ours]=$ours [peer]=$haproxy) n_pid=([ours]=$ours [peer]=$nginx)
  local -A h_url=([ours]=$L7_OURS_URL [peer]=$L7_HAPROXY_URL) n_url=([ours]=$L7_OURS_URL [peer]=$L7_NGINX_URL)
  local -A tls=([ours]=127.0.7.11:$tls_port [peer]=127.0.7.21:$tls_port)
  for round in $(seq 1 "$BENCH_ROUNDS"); do
    for side in $(bench_order "$round"); do
      bench_wrk vs-haproxy keepalive "$side" "$round" "${h_pid[$side]}" "${h_url[$side]}"
    done
    for side in $(bench_order "$round"); do
      bench_wrk vs-nginx keepalive "$side" "$round" "${n_pid[$side]}" "${n_url[$side]}"
    done
    for side in $(bench_order "$round"); do
      bench_wrk vs-haproxy tls-new-conn "$side" "$round" "${h_pid[$side]}" "https://${tls[$side]}/" -H "Connection: close"
    done
    for side in $(bench_order "$round"); do
      l7_resumed "$side" "$round" "${h_pid[$side]}" "${tls[$side]}"
    done
  done
  bench_record vs-haproxy rss ours 1 "rss_mib=$(($(bench_rss_kb "$ours") / 1024))"
  bench_record vs-haproxy rss peer 1 "rss_mib=$(($(bench_rss_kb "$haproxy") / 1024))"
  bench_record vs-nginx rss peer 1 "rss_mib=$(($(bench_rss_kb "$nginx") / 1024))"
  echo
  echo "L7: one edge l7 worker thread vs HAProxy (nbthread 1) and nginx (1 worker); wrk -t1 -c32, ${BENCH_SECONDS}s x ${BENCH_ROUNDS} rounds"
  BENCH_QPS_TARGET=1.0 bench_table edge-l7 peer
}
