# shellcheck shell=bash disable=SC2034
# Shared by lab/up, lab/down and lab/selftest. Sourced, not executed.
#
# The lab's plan lives here, in one place: every host, its LAN and its
# addresses. The multi-host example topology uses exactly these names and
# addresses, so change them together (see lab/README.md).

LAB_DIR="${GTM_LAB_DIR:-/run/gtm-lab}"
LAB_PREFIX="gtm-"

# Regions: short name, long name, IPv4 LAN base (last octet of the /26 in
# 198.51.100.0/24), IPv6 /64, VIP, ASN of its L4 nodes.
LAB_REGIONS="use euw aps"
lab_region_long() {
  case "$1" in use) echo us-east ;; euw) echo eu-west ;; aps) echo ap-south ;; *) return 1 ;; esac
}
lab_region_short() {
  case "$1" in
    use | us-east) echo use ;;
    euw | eu-west) echo euw ;;
    aps | ap-south) echo aps ;;
    *) return 1 ;;
  esac
}
lab_region_base() { case "$1" in use) echo 0 ;; euw) echo 64 ;; aps) echo 128 ;; esac; }
lab_region_v6() { case "$1" in use) echo 2001:db8:1 ;; euw) echo 2001:db8:2 ;; aps) echo 2001:db8:3 ;; esac; }
lab_region_vip() { case "$1" in use) echo 203.0.113.1 ;; euw) echo 203.0.113.2 ;; aps) echo 203.0.113.3 ;; esac; }
lab_region_asn() { case "$1" in use) echo 65001 ;; euw) echo 65002 ;; aps) echo 65003 ;; esac; }
LAB_ROUTER_ASN=64512

# Roles in a region and their offset from the LAN base.
LAB_ROLES="ns:2 l4a:11 l4b:12 l7a:21 l7b:22 web1:31 web2:32"

# One line per host (router excluded):
#   name bridge ipv4 gw4 ipv6 gw6
# The host's interface is eth0 (in its namespace); its peer in the router
# namespace is v-<name>, a port of <bridge>.
lab_hosts() {
  local r role off base v6
  for r in $LAB_REGIONS; do
    base=$(lab_region_base "$r")
    v6=$(lab_region_v6 "$r")
    for role in $LAB_ROLES; do
      off=${role#*:}
      echo "$r-${role%%:*} br-$r 198.51.100.$((base + off)) 198.51.100.$((base + 1)) $v6::$off $v6::1"
    done
  done
  echo "client br-cli 192.0.2.2 192.0.2.1 2001:db8:c::2 2001:db8:c::1"
  echo "ops br-cli 192.0.2.10 192.0.2.1 2001:db8:c::10 2001:db8:c::1"
}
lab_host_names() { lab_hosts | awk '{print $1}'; }
lab_host_field() { # NAME FIELD(2..6)
  lab_hosts | awk -v h="$1" -v f="$2" '$1 == h { print $f }'
}

# Bridges in the router namespace: name ipv4/26 ipv6/64
lab_bridges() {
  echo "br-use 198.51.100.1/26 2001:db8:1::1/64"
  echo "br-euw 198.51.100.65/26 2001:db8:2::1/64"
  echo "br-aps 198.51.100.129/26 2001:db8:3::1/64"
  echo "br-cli 192.0.2.1/26 2001:db8:c::1/64"
}

# The lab ranges: hosts get a route to each through the router, and nothing else.
LAB_V4_RANGES="198.51.100.0/24 192.0.2.0/24 203.0.113.0/24"
LAB_V6_RANGE="2001:db8::/32"

lab_ns() { echo "$LAB_PREFIX$1"; }
lab_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$LAB_PREFIX" || true; }

lab_say() { echo "lab: $*"; }
lab_die() {
  echo "lab: error: $*" >&2
  exit 1
}

lab_require_root() {
  [ "$(id -u)" -eq 0 ] || lab_die "the lab needs root (network namespaces, veth, bridges); run it as root"
}

# Installs the Debian packages whose commands are missing, as .ci/run does.
lab_ensure_tools() {
  local missing=() pair
  for pair in ip:iproute2 sshd:openssh-server ssh:openssh-client ssh-keygen:openssh-client \
    keepalived:keepalived bird:bird2 birdc:bird2 dig:bind9-dnsutils curl:curl \
    ping:iputils-ping unshare:util-linux setsid:util-linux strip:binutils python3:python3; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  # One package may provide several missing commands.
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  lab_say "installing: ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || lab_die "missing ${missing[*]} and no apt-get to install them; install them by hand"
  apt-get update -qq || lab_die "apt-get update failed; install ${missing[*]} by hand"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    lab_die "apt-get install ${missing[*]} failed"
}

# ssh from the ops namespace, as the operator would.
lab_ssh() { # HOST CMD...
  local h="$1"
  shift
  ip netns exec "$(lab_ns ops)" ssh -F "$LAB_DIR/ssh_config" -o BatchMode=yes "$h" "$@"
}

lab_birdc() { ip netns exec "$(lab_ns router)" birdc -s "$LAB_DIR/router/bird.ctl" "$@"; }

# Checks, for lab/selftest and lab/e2e: ok/bad count and print one line each.
checks=0 fails=0
ok() {
  checks=$((checks + 1))
  echo "ok   $*"
}
bad() {
  checks=$((checks + 1))
  fails=$((fails + 1))
  echo "FAIL $*"
}
check() { # DESCRIPTION CMD... : ok when CMD succeeds
  local d="$1"
  shift
  if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}
check_not() { # DESCRIPTION CMD... : ok when CMD fails
  local d="$1"
  shift
  if "$@" >/dev/null 2>&1; then bad "$d"; else ok "$d"; fi
}
# ssh from the ops host, bounded.
tssh() { timeout 20 ip netns exec "$(lab_ns ops)" ssh -F "$LAB_DIR/ssh_config" -o BatchMode=yes "$@"; }
# Polls CMD every 0.1 s for at most SECS seconds.
poll() { # SECS CMD...
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.1
  done
}
# Seconds since T0 (an $EPOCHREALTIME), two decimals.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}'; }
