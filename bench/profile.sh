# The measurements of bench/profile, sourced after bench/lib.sh and the
# suite whose setup it reuses.

# The system calls counted one by one; the rest are summed as "other".
PROFILE_SYSCALLS=(accept4 connect socket setsockopt getsockopt fcntl
  epoll_wait epoll_ctl read recvfrom write writev sendto splice pipe2
  shutdown close futex)

# profile_ctxsw PID — "VOLUNTARY INVOLUNTARY" context switches, all threads.
profile_ctxsw() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v + 0, n + 0}'
}

# profile_cpu PID — "USER SYSTEM" CPU time in microseconds.
profile_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f %.0f\n", $14 * 1e6 / hz, $15 * 1e6 / hz}' "/proc/$1/stat"
}

# profile_segments — TCP segments sent so far on this machine (nstat keeps
# its own history file; -a: absolute counters).
profile_segments() {
  nstat -az TcpOutSegs | awk '$1 == "TcpOutSegs" {print $2}'
}

# profile_measure SECTION WORKLOAD SIDE ROUND PID URL [WRK ARGS...]
profile_measure() {
  local section=$1 workload=$2 side=$3 round=$4 pid=$5 url=$6
  shift 6
  local events=raw_syscalls:sys_enter name
  for name in "${PROFILE_SYSCALLS[@]}"; do
    events+=",syscalls:sys_enter_$name"
  done
  local perf_out="$BENCH_DIR/perf-$side-$round.csv" out
  local cpu0 cpu1 sw0 sw1 seg0 seg1
  read -r -a cpu0 <<<"$(profile_cpu "$pid")"
  read -r -a sw0 <<<"$(profile_ctxsw "$pid")"
  seg0=$(profile_segments)
  # PROFILE_RECORD=1: also sample where the proxy's CPU time goes.
  local record=()
  if [ "${PROFILE_RECORD:-0}" = 1 ]; then
    record=(perf record -q -e cpu-clock -g -o "$BENCH_DIR/record-$side-$round.data" -p "$pid" --)
  fi
  # perf counts PID's threads for as long as wrk runs.
  out=$(perf stat -x, -o "$perf_out" -e "$events" -p "$pid" -- \
    "${record[@]}" wrk -t1 -c32 -d"${BENCH_SECONDS}s" --latency "$@" "$url" 2>&1)
  if [ "${PROFILE_RECORD:-0}" = 1 ]; then
    local data="$BENCH_DIR/record-$side-$round.data"
    echo "--- $section/$workload $side round $round: CPU time by object, then by system call (kernel time inside it, with children)"
    perf report -q -i "$data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^$' | head -6
    perf report -q -i "$data" --children --sort sym --stdio -g none 2>/dev/null |
      grep -E '\] (__x64_sys_|do_writev|do_syscall_64|entry_SYSCALL|asm_sysvec|schedule$|net_rx_action|__do_softirq|handle_softirqs)' | head -14
  fi
  seg1=$(profile_segments)
  read -r -a sw1 <<<"$(profile_ctxsw "$pid")"
  read -r -a cpu1 <<<"$(profile_cpu "$pid")"
  local requests rps p99
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  read -r rps p99 <<<"$(bench_wrk_figures "$out")"
  if [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
    echo "bench: $side made no requests:" >&2
    echo "$out" >&2
    return 1
  fi
  local fields=("qps=$rps" "p99_us=$p99")
  fields+=("$(awk -v n="$requests" -v a="${cpu0[0]}" -v b="${cpu1[0]}" 'BEGIN {printf "user_us=%.2f", (b - a) / n}')")
  fields+=("$(awk -v n="$requests" -v a="${cpu0[1]}" -v b="${cpu1[1]}" 'BEGIN {printf "sys_us=%.2f", (b - a) / n}')")
  fields+=("$(awk -v n="$requests" -v a="${sw0[0]}" -v b="${sw1[0]}" 'BEGIN {printf "vol_ctxsw=%.3f", (b - a) / n}')")
  fields+=("$(awk -v n="$requests" -v a="${sw0[1]}" -v b="${sw1[1]}" 'BEGIN {printf "invol_ctxsw=%.3f", (b - a) / n}')")
  fields+=("$(awk -v n="$requests" -v a="$seg0" -v b="$seg1" 'BEGIN {printf "tcp_segs=%.2f", (b - a) / n}')")
  # perf -x, lines: COUNT,,EVENT,...
  local line
  while IFS= read -r line; do
    fields+=("$line")
  done < <(awk -F, -v n="$requests" '
      $3 == "raw_syscalls:sys_enter" { total = $1; next }
      $3 ~ /^syscalls:sys_enter_/ { name = $3; sub(/^syscalls:sys_enter_/, "", name); count[name] = $1; listed += $1; order[++k] = name }
      END {
        printf "syscalls=%.2f\n", total / n
        for (i = 1; i <= k; i++) if (count[order[i]] > 0) printf "sc_%s=%.3f\n", order[i], count[order[i]] / n
        printf "sc_other=%.3f\n", (total - listed) / n
      }' "$perf_out")
  bench_record "$section" "$workload" "$side" "$round" "${fields[@]}"
}

profile_main() {
  bench_install wrk:wrk perf:linux-perf nstat:iproute2
  local round
  case "$1" in
    l7)
      l7_start
      for round in $(seq 1 "$BENCH_ROUNDS"); do
        profile_measure per-request keepalive ours "$round" "$L7_OURS" "$L7_OURS_URL"
        profile_measure per-request keepalive peer "$round" "$L7_HAPROXY" "$L7_HAPROXY_URL"
      done
      echo
      echo "L7 per request: edge l7 (1 worker) vs HAProxy (nbthread 1), wrk -t1 -c32 keep-alive, ${BENCH_SECONDS}s x ${BENCH_ROUNDS} rounds"
      ;;
    l4)
      l4_start
      for round in $(seq 1 "$BENCH_ROUNDS"); do
        profile_measure per-connection short ours "$round" "$L4_OURS" "$L4_OURS_URL" -H "Connection: close"
        profile_measure per-connection short peer "$round" "$L4_PEER" "$L4_PEER_URL" -H "Connection: close"
      done
      echo
      echo "L4 per connection: edge l4 (1 worker) vs HAProxy TCP (nbthread 1), wrk -t1 -c32 Connection: close, ${BENCH_SECONDS}s x ${BENCH_ROUNDS} rounds"
      ;;
  esac
  echo "(medians of the rounds; tcp_segs counts the whole machine's segments per request)"
  BENCH_QPS_TARGET=1.0 bench_table ours haproxy
}
