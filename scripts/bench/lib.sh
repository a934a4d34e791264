# scripts/bench/lib.sh: shared helpers of the benchmark scripts in scripts/bench/.
# Sourced, not run. Sets:
#   REPO       the repository root
#   BULK       the helm-bulk binary under test ($HELM_BULK_BIN, default
#              target/release/helm-bulk; build it with `cargo build --release`;
#              HELM_BULK_BIN_COMMIT, if set, is reported as the commit it was built from)
#   TESTENV    scripts/testenv
#   PYENV      the Python venv with boto3 and moto (scripts/test creates it)
# and provides: say, die, machine_info, timed (wall seconds + peak RSS of one
# command), median, and up_env / down_env for a throwaway control plane.
# shellcheck shell=bash

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
BULK=${HELM_BULK_BIN:-$REPO/target/release/helm-bulk}
TESTENV="$REPO/scripts/testenv"
PYENV=${HELM_BULK_PYENV:-${HELM_BULK_TESTENV_CACHE:-$HOME/.cache/helm-bulk/testenv}/py}
BENCH_DIR="$REPO/scripts/bench"

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

bench_preflight() {
  [ -x "$BULK" ] || die "no helm-bulk binary at $BULK: run 'cargo build --release' (or set HELM_BULK_BIN)"
  [ -x /usr/bin/time ] || die "/usr/bin/time is required (apt-get install -y time)"
  "$TESTENV" paths >/dev/null || die "the test environment binaries are not built: scripts/testenv build"
  # Numbers taken while something else uses the CPU are not worth recording.
  local busy
  busy=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 20 { printf "%s(%s%%) ", $2, $1 }')
  [ -z "$busy" ] || printf 'bench: WARNING: other processes are busy: %s\n' "$busy" >&2
}

# machine_info: one Markdown-ready block describing the machine and its load now.
machine_info() {
  local cpu
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
  [ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
  echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc:   $(nproc)"
  echo "cpu:     $cpu"
  echo "memory:  $(free -g | awk '/^Mem:/ {print $2 " GiB total, " $7 " GiB available"}')"
  echo "uptime:  $(uptime)"
  echo "binary:  $BULK (sha256 $(sha256sum "$BULK" | cut -c1-12), built $(date -u -r "$BULK" '+%Y-%m-%d %H:%M UTC')${HELM_BULK_BIN_COMMIT:+ from $HELM_BULK_BIN_COMMIT})"
  echo "repo:    HEAD $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || echo ', src modified')"
}

# cpu_ticks PIDFILE: user+system CPU time (clock ticks) of the process in PIDFILE so far.
cpu_ticks() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || { echo 0; return; }
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0
}

# timed OUTFILE CMD...: runs CMD under /usr/bin/time -v (stdout to /dev/null,
# stderr appended to OUTFILE.log) and appends one line to OUTFILE:
#   WALL_S MAX_RSS_KIB EXIT USER_S SYS_S APISERVER_CPU_S ETCD_CPU_S EXTRA_CPU_S
# The last three are the CPU seconds kube-apiserver, etcd and the process whose
# PID is in $BENCH_EXTRA_PIDFILE (e.g. moto) spent meanwhile (0 when not running).
# Returns CMD's exit status.
timed() {
  local out=$1
  shift
  local tv rc=0 a0 e0 a1 e1 x0 x1 hz
  tv=$(mktemp)
  hz=$(getconf CLK_TCK)
  a0=$(cpu_ticks "${HELM_BULK_TESTENV_DIR:-/nonexistent}/apiserver.pid")
  e0=$(cpu_ticks "${HELM_BULK_TESTENV_DIR:-/nonexistent}/etcd.pid")
  x0=$(cpu_ticks "${BENCH_EXTRA_PIDFILE:-/nonexistent}")
  /usr/bin/time -v -o "$tv" "$@" >/dev/null 2>>"$out.log" || rc=$?
  a1=$(cpu_ticks "${HELM_BULK_TESTENV_DIR:-/nonexistent}/apiserver.pid")
  e1=$(cpu_ticks "${HELM_BULK_TESTENV_DIR:-/nonexistent}/etcd.pid")
  x1=$(cpu_ticks "${BENCH_EXTRA_PIDFILE:-/nonexistent}")
  local wall rss usr sys
  # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:01.23"
  wall=$(sed -n 's/^.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tv" \
    | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$tv")
  usr=$(sed -n 's/^[[:space:]]*User time (seconds): //p' "$tv")
  sys=$(sed -n 's/^[[:space:]]*System time (seconds): //p' "$tv")
  rm -f "$tv"
  echo "$wall $rss $rc $usr $sys $(awk -v a="$a0" -v b="$a1" -v h="$hz" 'BEGIN{print (b-a)/h}') $(awk -v a="$e0" -v b="$e1" -v h="$hz" 'BEGIN{print (b-a)/h}') $(awk -v a="$x0" -v b="$x1" -v h="$hz" 'BEGIN{print (b-a)/h}')" >>"$out"
  return "$rc"
}

# col FILE N: column N of FILE's lines (1 = wall, 2 = RSS KiB, ...).
col() { awk -v n="$2" '{ print $n }' "$1"; }

# now_s: a monotonic-enough clock in seconds with nanoseconds (for loops of commands).
now_s() { date +%s.%N; }

# median: the median of the numbers on stdin.
median() {
  sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'
}

# PIN: a command prefix that runs a command on the CPUs in $BENCH_CPUS (a
# taskset list such as "0"), empty when BENCH_CPUS is unset.
PIN=()
[ -z "${BENCH_CPUS:-}" ] || PIN=(taskset -c "$BENCH_CPUS")

# up_env DIR: a fresh control plane in DIR; sources DIR/env into this shell.
# With BENCH_CPUS set, kube-apiserver and etcd (every thread) are pinned to it.
up_env() {
  "$TESTENV" up "$1" >/dev/null
  # shellcheck disable=SC1091
  . "$1/env"
  export HELM_BIN=$HELM4
  if [ -n "${BENCH_CPUS:-}" ]; then
    local p
    for p in apiserver etcd; do taskset -a -cp "$BENCH_CPUS" "$(cat "$1/$p.pid")" >/dev/null; done
  fi
}

down_env() {
  [ -d "$1" ] && "$TESTENV" down "$1" >/dev/null 2>&1 || true
}

# settle [SECONDS]: give the control plane a moment after bulk writes or a wipe, so
# that compaction and start-up work do not land in the next measurement.
settle() { sleep "${1:-3}"; "$KUBECTL" get --raw /readyz >/dev/null; }
