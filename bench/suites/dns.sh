# The DNS suite: gslb against gdnsd, both answering the same zone and the
# same geo name on loopback, measured alternately: dnsperf at saturation
# (QPS, its mean latency, lost queries, and the server's CPU time per
# query from /proc), then dns-bench's latency-recording client at light
# load (4 queries in flight: p50 and p99 of the round trip); plus cost
# growth (names, regions) and start-up time and memory.
#
# Knobs besides bench/run's: BENCH_DNSPERF_CLIENTS (default 8),
# BENCH_OUTSTANDING (dnsperf -q, default 200), BENCH_GROWTH=0 skips the
# cost-growth runs, BENCH_BIG_NAMES (default 1000000), BENCH_DNSSEC=0
# skips the DNSSEC runs and BENCH_DNSSEC=only runs nothing else,
# BENCH_GSLB=PATH measures that gslb binary instead of building one
# (before/after runs).

DNSPERF_CLIENTS=${BENCH_DNSPERF_CLIENTS:-8}
OUTSTANDING=${BENCH_OUTSTANDING:-200}
LATENCY_SECONDS=$(((BENCH_SECONDS + 1) / 2))
BIG_NAMES=${BENCH_BIG_NAMES:-1000000}
# 81.2.69.0/24 (United Kingdom): FAMILY 1, SOURCE 24, SCOPE 0, 3 octets.
ECS_SUBNET=81.2.69.0/24
ECS_OPTION=8:00011800510245

# dns_start LABEL NAMES REGIONS [SETUP ARGS...] — writes the workload and
# starts both servers; sets WORK, OURS_PORT, PEER_PORT, OURS_PID, PEER_PID
# and records start-up figures under section "startup".
dns_start() {
  local label=$1 names=$2 regions=$3 t0 t1 t2
  shift 3
  WORK="$BENCH_DIR/$label"
  OURS_PORT=$(bench_free_port)
  PEER_PORT=$(bench_free_port)
  while [ "$PEER_PORT" = "$OURS_PORT" ]; do PEER_PORT=$(bench_free_port); done
  "$TOOL" setup --out "$WORK" --names "$names" --regions "$regions" \
    --ours "$OURS_PORT" --peer "$PEER_PORT" --threads "$BENCH_THREADS" "$@"

  t0=$(date +%s%N)
  bench_spawn "$WORK/gslb.log" env GSLB_UDP_THREADS="$BENCH_THREADS" RUST_LOG=info \
    "$GSLB" --config "$WORK/topology.yaml" --listen "127.0.0.1:$OURS_PORT" --state-file "$WORK/state.json"
  OURS_PID=$BENCH_PID
  dns_wait_answer "$OURS_PORT" "$OURS_PID" "$WORK/gslb.log"
  t1=$(date +%s%N)
  bench_wait_for "$WORK/gslb.log" "fast path tables built" 900 "$OURS_PID"
  t2=$(date +%s%N)
  bench_record startup "$label" ours 1 \
    "first_answer_ms=$(((t1 - t0) / 1000000))" "fast_path_ms=$(((t2 - t0) / 1000000))" \
    "rss_mib=$(($(bench_rss_kb "$OURS_PID") / 1024))"

  t0=$(date +%s%N)
  bench_spawn "$WORK/gdnsd.log" gdnsd -c "$WORK/gdnsd" start
  PEER_PID=$BENCH_PID
  bench_wait_for "$WORK/gdnsd.log" "DNS listeners started" 900 "$PEER_PID"
  dns_wait_answer "$PEER_PORT" "$PEER_PID" "$WORK/gdnsd.log"
  t1=$(date +%s%N)
  bench_record startup "$label" peer 1 \
    "first_answer_ms=$(((t1 - t0) / 1000000))" "fast_path_ms=$(((t1 - t0) / 1000000))" \
    "rss_mib=$(($(bench_rss_kb "$PEER_PID") / 1024))"
}

dns_stop() {
  bench_stop "$OURS_PID"
  bench_stop "$PEER_PID"
}

# dns_wait_answer PORT PID LOG — until static.example.com answers.
dns_wait_answer() {
  local port=$1 pid=$2 log=$3 tries=0
  until [ "$(dig +short +tries=1 +time=1 @127.0.0.1 -p "$port" static.example.com A 2>/dev/null)" = 127.0.0.80 ]; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$tries" -ge 45000 ]; then
      echo "bench: no answer on port $port:" >&2
      tail -20 "$log" >&2
      return 1
    fi
    tries=$((tries + 1))
    sleep 0.02
  done
}

# dns_same_answers — both servers give the same answers to the workload's
# questions (answer data and rcode; gdnsd's ECS scopes may differ).
dns_same_answers() {
  local question subnet ours peer differ=0
  for question in "static.example.com A" "www.example.com A" "www.example.com AAAA" "nx1.example.com A" "static.example.com MX" "h1.example.com A"; do
    for subnet in "" "+subnet=81.2.69.0/24" "+subnet=1.1.1.0/24" "+subnet=8.8.8.0/24" "+subnet=2a02:8800::/32"; do
      # shellcheck disable=SC2086
      ours=$(dig +tries=1 +time=2 @127.0.0.1 -p "$OURS_PORT" $question $subnet | sed -n 's/.*status: \([A-Z]*\).*/\1/p;/^[^;].*IN/p' | awk '{print $1, $NF}' | sort)
      # shellcheck disable=SC2086
      peer=$(dig +tries=1 +time=2 @127.0.0.1 -p "$PEER_PORT" $question $subnet | sed -n 's/.*status: \([A-Z]*\).*/\1/p;/^[^;].*IN/p' | awk '{print $1, $NF}' | sort)
      if [ "$ours" != "$peer" ]; then
        echo "bench: WARNING: answers differ for '$question $subnet': gslb [$ours] gdnsd [$peer]" >&2
        differ=1
      fi
    done
  done
  [ "$differ" = 0 ] && echo "bench: both servers give the same answers"
  return 0
}

# dns_measure SECTION WORKLOAD ROUND SIDE [latency] — one dnsperf run (and
# one latency run if asked) against SIDE (ours or peer).
dns_measure() {
  local section=$1 workload=$2 round=$3 side=$4 latency=${5:-} port pid file out
  local perf=() load=()
  if [ "$side" = ours ]; then port=$OURS_PORT pid=$OURS_PID; else port=$PEER_PORT pid=$PEER_PID; fi
  case "$workload" in
    "static A") file=static.txt ;;
    "geo A, no ECS") file=geo.txt ;;
    "geo A, ECS") file=geo.txt perf=(-E "$ECS_OPTION") load=(--ecs "$ECS_SUBNET") ;;
    "mix with NXDOMAIN") file=mix.txt ;;
    "static A, all names") file=spread.txt ;;
    *) echo "bench: unknown workload $workload" >&2; return 1 ;;
  esac
  # DNS_DO names the side(s) whose queries set the DO bit: "ours", "peer"
  # or "both" (the signed-against-unsigned runs query one server twice).
  if [ "${DNS_DO:-}" = both ] || [ "${DNS_DO:-}" = "$side" ]; then
    perf+=(-D)
    load+=(--dnssec)
  fi
  local cpu_before
  cpu_before=$(bench_cpu_us "$pid")
  out=$(timeout $((BENCH_SECONDS + 60)) dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/$file" \
    -c "$DNSPERF_CLIENTS" -q "$OUTSTANDING" -l "$BENCH_SECONDS" "${perf[@]}" 2>&1) || {
    echo "bench: dnsperf failed against $side:" >&2
    echo "$out" >&2
    return 1
  }
  local qps lost mean completed cpu_after
  cpu_after=$(bench_cpu_us "$pid")
  qps=$(awk '/Queries per second:/ {printf "%.0f", $4}' <<<"$out")
  lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
  completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
  mean=$(awk '/Average Latency \(s\):/ {printf "%.1f", $4 * 1000000}' <<<"$out")
  local cpu
  cpu=$(awk -v t=$((cpu_after - cpu_before)) -v n="$completed" 'BEGIN { if (n > 0) printf "%.2f", t / n; else print 0 }')
  local fields=("qps=$qps" "lost=$lost" "sat_mean_us=$mean" "cpu_us_per_q=$cpu")
  if [ -n "$latency" ]; then
    local line
    line=$(timeout $((LATENCY_SECONDS + 30)) "$TOOL" load --server "127.0.0.1:$port" \
      --queries "$WORK/$file" --clients 4 --window 1 --seconds "$LATENCY_SECONDS" "${load[@]}")
    fields+=("p50_us=$(sed -n 's/.*p50_us=\([0-9.]*\).*/\1/p' <<<"$line")")
    fields+=("p99_us=$(sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' <<<"$line")")
  fi
  fields+=("rss_mib=$(($(bench_rss_kb "$pid") / 1024))")
  bench_record "$section" "$workload" "$side" "$round" "${fields[@]}"
  printf 'bench: %-8s %-22s %-5s round %s: %s\n' "$section" "$workload" "$side" "$round" "${fields[*]}"
}

# dns_alternate SECTION WORKLOAD ROUNDS [latency] — ours and the peer in
# turn, the first to go alternating between rounds.
dns_alternate() {
  local section=$1 workload=$2 rounds=$3 latency=${4:-} round
  local side
  for round in $(seq 1 "$rounds"); do
    for side in $(bench_order "$round"); do
      dns_measure "$section" "$workload" "$round" "$side" "$latency"
    done
  done
}

# dns_signed_answers — both servers sign: a DO query for static.example.com
# gets the address and an RRSIG of algorithm 13 from gslb and from Knot.
dns_signed_answers() {
  local port side answer
  for side in ours peer; do
    if [ "$side" = ours ]; then port=$OURS_PORT; else port=$PEER_PORT; fi
    answer=$(dig +dnssec +tries=1 +time=2 @127.0.0.1 -p "$port" static.example.com A | awk '$4 == "A" || $4 == "RRSIG" {print $4, $5, $6}' | sort | tr '\n' ' ')
    if [ "$answer" != "A 127.0.0.80  RRSIG A 13 " ]; then
      echo "bench: $side does not sign static.example.com A: [$answer]" >&2
      return 1
    fi
  done
  echo "bench: both servers sign"
}

# dns_dnssec — the DNSSEC runs: one gslb serving the zone signed, queried
# with and without the DO bit (signed against unsigned, static A and geo A
# with ECS), then against Knot DNS serving the same static data signed by
# its own automatic signing (static A with DO; Knot has no geo answers).
dns_dnssec() {
  local label=dnssec workload
  WORK="$BENCH_DIR/$label"
  OURS_PORT=$(bench_free_port)
  PEER_PORT=$(bench_free_port)
  while [ "$PEER_PORT" = "$OURS_PORT" ]; do PEER_PORT=$(bench_free_port); done
  "$TOOL" setup --out "$WORK" --names 1000 --regions 3 --dnssec \
    --ours "$OURS_PORT" --peer "$PEER_PORT" --threads "$BENCH_THREADS"
  bench_spawn "$WORK/gslb.log" env GSLB_UDP_THREADS="$BENCH_THREADS" RUST_LOG=info \
    "$GSLB" --config "$WORK/topology.yaml" --listen "127.0.0.1:$OURS_PORT" --state-file "$WORK/state.json"
  OURS_PID=$BENCH_PID
  dns_wait_answer "$OURS_PORT" "$OURS_PID" "$WORK/gslb.log"
  bench_wait_for "$WORK/gslb.log" "fast path tables built" 900 "$OURS_PID"
  bench_spawn "$WORK/knot.log" knotd -c "$WORK/knot/knot.conf"
  PEER_PID=$BENCH_PID
  bench_wait_for "$WORK/knot.log" "server started" 60 "$PEER_PID"
  dns_wait_answer "$PEER_PORT" "$PEER_PID" "$WORK/knot.log"
  dns_signed_answers

  # Signed (DO, "ours") against unsigned (no DO, "peer"), same server.
  for workload in "static A" "geo A, ECS"; do
    BENCH_RESULTS="$BENCH_DIR/signing.tsv" PEER_PORT=$OURS_PORT PEER_PID=$OURS_PID DNS_DO=ours \
      dns_alternate signing "$workload" "$BENCH_ROUNDS" latency
  done
  BENCH_RESULTS="$BENCH_DIR/knot.tsv" DNS_DO=both dns_alternate knot "static A" "$BENCH_ROUNDS" latency
  dns_stop
}

# dns_dnssec_tables STARTED — the DNSSEC runs' two tables.
dns_dnssec_tables() {
  echo
  echo "DNSSEC: gslb, signed (DO) against unsigned (no DO), same server; $BENCH_CPU; median of rounds; $(($(date +%s) - $1))s"
  BENCH_RESULTS="$BENCH_DIR/signing.tsv" BENCH_QPS_TARGET=0.8 bench_table signed unsigned
  echo
  echo "DNSSEC: gslb against Knot DNS $(knotd --version 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1), both signing (DO)"
  BENCH_RESULTS="$BENCH_DIR/knot.tsv" bench_table gslb knot
}

suite_main() {
  local started workload names regions
  started=$(date +%s)
  bench_install gdnsd:gdnsd dnsperf:dnsperf dig:bind9-dnsutils knotd:knot
  bench_machine
  echo "bench: building gslb (dist profile)"
  if [ -n "${BENCH_GSLB:-}" ]; then
    cargo build --profile dist --locked -q -p gslb --example dns-bench
    GSLB=$(realpath "$BENCH_GSLB")
  else
    cargo build --profile dist --locked -q -p gslb --bin gslb --example dns-bench
    GSLB="$PWD/target/dist/gslb"
  fi
  TOOL="$PWD/target/dist/examples/dns-bench"
  echo "bench: ${BENCH_SECONDS}s per run, ${BENCH_ROUNDS} rounds, ${BENCH_THREADS} UDP threads each, dnsperf -c $DNSPERF_CLIENTS -q $OUTSTANDING"

  if [ "${BENCH_DNSSEC:-1}" = only ]; then
    dns_dnssec
    dns_dnssec_tables "$started"
    return
  fi

  dns_start main 1000 3
  dns_same_answers
  for workload in "static A" "geo A, no ECS" "geo A, ECS" "mix with NXDOMAIN"; do
    dns_alternate dns "$workload" "$BENCH_ROUNDS" latency
  done
  dns_stop

  if [ "${BENCH_GROWTH:-1}" != 0 ]; then
    for names in 10 10000 "$BIG_NAMES"; do
      # A million names come from a zone file, as an operator's would.
      if [ "$names" = "$BIG_NAMES" ]; then
        dns_start "names-$names" "$names" 3 --zone-file
      else
        dns_start "names-$names" "$names" 3
      fi
      dns_alternate "names=$names" "static A, all names" 1
      dns_stop
    done
    for regions in 3 100; do
      dns_start "regions-$regions" 1000 "$regions"
      dns_alternate "regions=$regions" "geo A, ECS" 1
      dns_stop
    done
  fi

  if [ "${BENCH_DNSSEC:-1}" != 0 ]; then
    dns_dnssec
  fi

  echo
  echo "DNS: gslb vs gdnsd $(gdnsd -V 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1); $BENCH_CPU; median of rounds; $(($(date +%s) - started))s"
  bench_table gslb gdnsd
  if [ "${BENCH_DNSSEC:-1}" != 0 ]; then
    dns_dnssec_tables "$started"
  fi
}
