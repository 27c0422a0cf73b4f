#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (Debian/Ubuntu, as root): munged,
# slurmctld and slurmd; one node with all its cores in partition "cpu", the CPU partition
# named in profiles/slurm. For tests/test_slurm.py and for trying the profile without a
# cluster.
#
#   tests/slurm/start_cluster.sh /tmp/htvs-slurm    # installs the Debian packages if missing
#   tests/slurm/stop_cluster.sh /tmp/htvs-slurm     # stops exactly what this started, by PID
#
# Logs, spool and state go under STATE_DIR. Two things cannot: the configuration is
# written to /etc/slurm/slurm.conf (the jobstep executor drops SLURM_CONF before its inner
# `srun`, which then reads the default path), and munged uses /run/munge. An existing
# /etc/slurm/slurm.conf that this script did not write is never touched.
# No accounting database: `sacct` sees no jobs, so query job status with `squeue`
# (MinJobAge keeps finished jobs visible to it for 10 minutes).
set -euo pipefail

state_dir=$(realpath -m "${1:?usage: start_cluster.sh STATE_DIR}")
conf=/etc/slurm/slurm.conf
marker="# crystal-htvs single-node test cluster (tests/slurm/start_cluster.sh)"
started="$state_dir/started.pids"   # "<command> <pid>" of every daemon started here

die() { echo "start_cluster.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts daemons)"
if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
  die "$conf exists and was not written by this script: a SLURM is already set up here"
fi

install_packages() {
  local packages="slurmctld slurmd slurm-client munge"
  if command -v slurmctld && command -v slurmd && command -v sbatch && command -v munged; then
    return
  fi >/dev/null
  command -v apt-get >/dev/null || die "slurm is not installed and there is no apt-get"
  # Keep the packages' service scripts from starting daemons: this script starts its
  # own and stop_cluster.sh stops them by PID.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $packages \
    || { apt-get update -q && apt-get install -y -q --no-install-recommends $packages; }
  if [ "$own_policy" -eq 1 ]; then rm -f "$policy"; fi
}

wait_for_file() {  # PATH SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -s "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

start_munged() {
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 0600 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "start_cluster.sh: using the munged already running"
    return
  fi
  rm -f /run/munge/munged.pid
  runuser -u munge -- munged   # forks, then writes its PID file
  wait_for_file /run/munge/munged.pid 10 || die "munged did not start (see /var/log/munge/munged.log)"
  echo "munged $(cat /run/munge/munged.pid)" >>"$started"
}

write_config() {
  local host cpus mem_mb
  host=$(hostname -s)
  cpus=$(nproc)
  mem_mb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  mkdir -p /etc/slurm "$state_dir/ctld" "$state_dir/slurmd"
  cat >"$conf" <<EOF
$marker
# State under $state_dir; stop with tests/slurm/stop_cluster.sh $state_dir
ClusterName=htvs-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state_dir/ctld
SlurmdSpoolDir=$state_dir/slurmd
SlurmctldPidFile=$state_dir/slurmctld.pid
SlurmdPidFile=$state_dir/slurmd.pid
SlurmctldLogFile=$state_dir/slurmctld.log
SlurmdLogFile=$state_dir/slurmd.log
# No cgroups: works in containers and VMs without a delegated cgroup tree.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_daemon() {  # NAME PIDFILE
  rm -f "$2"
  "$1" || die "$1 failed to start (see $state_dir/$1.log)"
  wait_for_file "$2" 30 || die "$1 wrote no PID file (see $state_dir/$1.log)"
  echo "$1 $(cat "$2")" >>"$started"
}

wait_for_idle_node() {
  local i state=""
  for ((i = 0; i < 120; i++)); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1)
    [ "$state" = idle ] && return 0
    sleep 0.5
  done
  die "the node did not become idle (state '$state'; see $state_dir/slurmd.log)"
}

mkdir -p "$state_dir"
[ ! -s "$started" ] || die "$started exists: stop that cluster first (stop_cluster.sh $state_dir)"
for daemon in slurmctld slurmd; do
  if pid=$(pgrep -x "$daemon"); then
    die "a $daemon is already running (PID $pid): stop it first"
  fi
done
install_packages
start_munged
write_config
start_daemon slurmctld "$state_dir/slurmctld.pid"
start_daemon slurmd "$state_dir/slurmd.pid"
wait_for_idle_node
echo "start_cluster.sh: cluster up, $(sinfo -h -o '%P %D node(s) %c CPUs %m MB')"
