# Common steps of the benchmark suites; sourced by bench/run in each
# suite's shell (see bench/run). Every process a suite starts goes through
# bench_spawn, and the EXIT trap stops them all and removes the work
# directory, whatever happens.

BENCH_SECONDS=${BENCH_SECONDS:-8}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
# Server UDP threads: one core is left to the load generator.
BENCH_THREADS=${BENCH_THREADS:-$(($(nproc) > 1 ? $(nproc) - 1 : 1))}
BENCH_DIR=$(mktemp -d /tmp/gtm-bench.XXXXXX)
BENCH_PIDS=()
# One line per measurement: section, workload, side, round, then
# key=value fields (see bench_record).
BENCH_RESULTS="$BENCH_DIR/results.tsv"
: >"$BENCH_RESULTS"

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "bench: kept $BENCH_DIR"
  else
    rm -rf "$BENCH_DIR"
  fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# bench_install COMMAND:PACKAGE... — installs the Debian packages whose
# command is missing.
bench_install() {
  local missing=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "bench: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# bench_machine — prints the CPU model, core count and load (other work on
# the machine makes figures provisional).
bench_machine() {
  local model
  model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
  [ -n "$model" ] || model=$(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)
  BENCH_CPU="$model, $(nproc) cores"
  echo "bench: CPU: $BENCH_CPU; kernel $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# bench_spawn LOG COMMAND... — starts COMMAND in the background with its
# output in LOG, tracked for clean-up; its pid is left in BENCH_PID.
bench_spawn() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  BENCH_PID=$!
  BENCH_PIDS+=("$BENCH_PID")
}

# bench_stop PID — stops one tracked process and waits for it.
bench_stop() {
  local pid=$1 kept=() p
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${BENCH_PIDS[@]}"; do
    [ "$p" = "$pid" ] || kept+=("$p")
  done
  BENCH_PIDS=("${kept[@]}")
}

# bench_wait_for LOG NEEDLE SECONDS PID — waits until LOG holds a line
# with NEEDLE; fails (showing the log) if PID exits or time runs out.
bench_wait_for() {
  local log=$1 needle=$2 seconds=$3 pid=$4 waited=0
  while ! grep -q -- "$needle" "$log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench: process $pid exited before saying '$needle':" >&2
      tail -20 "$log" >&2
      return 1
    fi
    if [ "$waited" -ge $((seconds * 10)) ]; then
      echo "bench: no '$needle' within ${seconds}s:" >&2
      tail -20 "$log" >&2
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# bench_rss_kb PID — resident set size in KiB.
bench_rss_kb() {
  ps -o rss= -p "$1" 2>/dev/null | tr -d ' ' || echo 0
}

# bench_free_port — a free TCP and UDP port on loopback (racy but fine on
# a benchmark machine).
bench_free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 30000))
    if ! (ss -Hlnut 2>/dev/null | awk '{print $5}' | grep -q ":$port\$"); then
      echo "$port"
      return
    fi
  done
}

# bench_edge_only_dns — the smallest `dns:` block a topology needs, for
# suites that run only edge tiers.
bench_edge_only_dns() {
  cat <<'YAML'
dns:
  nodes: [{ name: ns1, listen: ["127.0.0.1:1"] }]
  zones:
    - origin: example.com.
      soa: { mname: ns1, rname: hostmaster }
      records:
        - { name: "@", type: NS, value: ns1 }
        - { name: ns1, type: A, value: 127.0.0.1 }
YAML
}

# bench_wrk_figures OUTPUT — "REQUESTS_PER_SECOND P99_MICROSECONDS" from
# the output of `wrk --latency` (0 for what it lacks).
bench_wrk_figures() {
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$1")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /ms$/) {sub(/ms/,"",v); v*=1000} else if (v ~ /us$/) {sub(/us/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000000}; print v}' <<<"$1")
  echo "${rps:-0} ${p99:-0}"
}

# bench_cpu_us PID — CPU time (user + system, in microseconds) used so far
# by PID and its child processes (nginx's worker is its master's child).
bench_cpu_us() {
  local pid
  for pid in "$1" $(pgrep -P "$1" 2>/dev/null); do
    # Fields after the command name, which may hold spaces: utime is the
    # 12th, stime the 13th.
    sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null
  done | awk -v hz="$(getconf CLK_TCK)" '{ t += $12 + $13 } END { printf "%.0f", t * 1000000 / hz }'
}

# bench_wrk SECTION WORKLOAD SIDE ROUND PID URL [WRK ARGS...] — one wrk
# run (1 thread, 32 connections) against URL, recorded with its requests
# per second, p99 and the CPU microseconds PID (the proxy) spent per
# request; errors wrk reports are printed.
bench_wrk() {
  local section=$1 workload=$2 side=$3 round=$4 pid=$5 url=$6
  shift 6
  local out before after
  before=$(bench_cpu_us "$pid")
  out=$(wrk -t1 -c32 -d"${BENCH_SECONDS}s" --latency "$@" "$url" 2>&1)
  after=$(bench_cpu_us "$pid")
  local rps p99 requests errors
  read -r rps p99 <<<"$(bench_wrk_figures "$out")"
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  [ -n "$errors" ] && echo "bench: $section/$workload $side: $errors"
  bench_record "$section" "$workload" "$side" "$round" "qps=${rps:-0}" "p99_us=${p99:-0}" \
    "cpu_us_per_req=$(awk -v t=$((after - before)) -v n="${requests:-0}" 'BEGIN { if (n > 0) printf "%.2f", t / n; else print 0 }')"
}

# bench_order ROUND — the two sides in the order they run in ROUND: ours
# first in odd rounds, the peer first in even ones, so neither always runs
# on a machine the other has just warmed (or heated).
bench_order() {
  if [ $(($1 % 2)) = 1 ]; then echo "ours peer"; else echo "peer ours"; fi
}

# bench_record SECTION WORKLOAD SIDE ROUND KEY=VALUE...
bench_record() {
  local IFS=$'\t'
  echo "$*" >>"$BENCH_RESULTS"
}

# bench_table OURS PEER — prints, per section and workload, the median over
# rounds of each metric for both sides and the ratio ours / peer. Metrics:
# qps (higher is better; target BENCH_QPS_TARGET, default 1.2), mean_us,
# p99_us and cpu_us_per_* (lower is
# better; target ≤ 1.0), lost, rss_mib.
bench_table() {
  local ours=$1 peer=$2
  awk -F'\t' -v ours="$ours" -v peer="$peer" -v goal="${BENCH_QPS_TARGET:-1.2}" '
    function median(list,   n, a, i, j, t) {
      n = split(list, a, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      if (n == 0) return ""
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
      key = $1 "\t" $2
      if (!(key in seen)) { seen[key] = 1; order[++count] = key }
      for (i = 5; i <= NF; i++) {
        split($i, kv, "=")
        values[key, $3, kv[1]] = values[key, $3, kv[1]] " " kv[2]
        if (!((key, kv[1]) in has)) { has[key, kv[1]] = 1; metrics[key] = metrics[key] " " kv[1] }
      }
    }
    END {
      printf "%-10s %-22s %-14s %12s %12s %9s  %s\n", "section", "workload", "metric", ours, peer, "ratio", "target"
      for (c = 1; c <= count; c++) {
        key = order[c]; split(key, parts, "\t")
        n = split(metrics[key], names, " ")
        for (m = 1; m <= n; m++) {
          name = names[m]
          a = median(values[key, "ours", name]); b = median(values[key, "peer", name])
          ratio = (b + 0 > 0 && a != "") ? sprintf("%.2f", a / b) : "-"
          target = ""
          if (name == "qps" && ratio != "-") target = (a / b >= goal) ? sprintf("met (>= %.2f)", goal) : sprintf("MISSED (>= %.2f)", goal)
          if ((name == "p99_us" || name ~ /^cpu_us/) && ratio != "-") target = (a / b <= 1.0) ? "met (<= 1.00)" : "MISSED (<= 1.00)"
          printf "%-10s %-22s %-14s %12s %12s %9s  %s\n", parts[1], parts[2], name, a, b, ratio, target
        }
      }
    }' "$BENCH_RESULTS"
}
