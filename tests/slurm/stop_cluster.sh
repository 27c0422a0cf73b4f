#!/usr/bin/env bash
# Stop the cluster that start_cluster.sh STATE_DIR started: cancel its jobs, stop the
# daemons listed in STATE_DIR/started.pids by PID (newest first), and remove the
# /etc/slurm/slurm.conf it wrote. Daemons it did not start are left alone.
#   tests/slurm/stop_cluster.sh /tmp/htvs-slurm
set -euo pipefail

state_dir=$(realpath -m "${1:?usage: stop_cluster.sh STATE_DIR}")
conf=/etc/slurm/slurm.conf
marker="# crystal-htvs single-node test cluster (tests/slurm/start_cluster.sh)"
started="$state_dir/started.pids"

# Is PID still the daemon NAME (and not a reused PID)?
is_running() { [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ]; }

stop_daemon() {  # NAME PID
  local i
  is_running "$1" "$2" || return 0
  kill -TERM "$2"
  for ((i = 0; i < 150; i++)); do
    is_running "$1" "$2" || return 0
    sleep 0.1
  done
  echo "stop_cluster.sh: $1 ($2) ignored SIGTERM for 15 s, killing it" >&2
  kill -KILL "$2"
}

if [ -s "$started" ]; then
  if grep -q '^slurmctld ' "$started" && command -v squeue >/dev/null; then
    squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
  fi
  tac "$started" | while read -r name pid; do
    stop_daemon "$name" "$pid"
  done
  rm -f "$started"
fi
if [ -e "$conf" ] && grep -qF "$marker" "$conf"; then
  rm -f "$conf"
fi
