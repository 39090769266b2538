#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine for tests and benchmarks.
#
#   bash tests/cluster/start_slurm.sh      (as root; stop it with tests/cluster/stop_slurm.sh)
#
# Installs slurm-wlm and munge with apt-get when slurmctld is missing, writes
# /etc/slurm/slurm.conf and /etc/slurm/gres.conf (the default paths: a SLURM_CONF
# elsewhere breaks the srun inside jobs), then starts munged (unless a working one
# is already there), slurmctld and slurmd without systemd. One node "localhost"
# with this machine's CPUs and memory and one fake GPU (gres gpu, File=/dev/null)
# so that jobs asking for --gpus=1 or --gres=gpu:1 are scheduled. No accounting
# database: job status comes from squeue (MinJobAge one day keeps finished jobs
# visible) and every finished job gets a line in $STATE/jobcomp.log.
#
# State, logs and the PID files of the daemons started here live in $STATE
# (SPNRESTORE_SLURM_DIR, default /tmp/spnrestore-slurm); stop_slurm.sh stops
# exactly the daemons whose PID files are there.
#
# Exit status: 0 running (started now or already running), 77 SLURM cannot run
# here (not root, no apt-get, no network to the mirror, a foreign slurm.conf),
# 1 the daemons did not come up (the log tail is printed).
set -euo pipefail

STATE=${SPNRESTORE_SLURM_DIR:-/tmp/spnrestore-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# spnrestore single-node test cluster"

cannot() { echo "start_slurm.sh: $*" >&2; exit 77; }

[ "$(id -u)" -eq 0 ] || cannot "needs root (it installs packages and runs slurmctld as SlurmUser=root); run it as root or skip the SLURM tests"

if [ -f "$CONF" ] && ! head -n 1 "$CONF" | grep -qF "$MARKER"; then
    cannot "$CONF exists and was not written by this script; refusing to replace a real SLURM configuration"
fi

if scontrol ping 2>/dev/null | grep -q "is UP"; then
    echo "start_slurm.sh: slurmctld already running ($CONF)"
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || cannot "slurmctld is not installed and apt-get is missing; install slurm-wlm and munge yourself"
    apt-get update -qq >/dev/null 2>&1 || cannot "apt-get update failed (no network to the Debian mirror?); install slurm-wlm and munge yourself"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 \
        || cannot "apt-get install slurm-wlm munge failed; install them yourself"
fi

# Leftovers of an earlier start whose controller died: stop what that start recorded, then begin afresh.
bash "$(dirname "$0")/stop_slurm.sh" >/dev/null
mkdir -p "$STATE/ctld" "$STATE/slurmd"

# munge: reuse a working daemon, otherwise start one as the munge user and note its PID.
if ! (munge -n | unmunge) >/dev/null 2>&1; then
    [ -s /etc/munge/munge.key ] || cannot "/etc/munge/munge.key is missing; reinstall munge (apt-get install --reinstall munge)"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    runuser -u munge -- munged --force
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    [ -s /run/munge/munged.pid ] || { echo "start_slurm.sh: munged did not start" >&2; tail -n 20 /var/log/munge/munged.log >&2 || true; exit 1; }
    cp /run/munge/munged.pid "$STATE/munged.pid"
fi

cpus=$(nproc)
# Memory as slurmd measures it, less 1 GiB for the daemons and the workflow's own process.
memory=$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') - 1024 ))

cat >"$CONF" <<EOF
$MARKER (tests/cluster/start_slurm.sh; state in $STATE)
ClusterName=spnrestore
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
MinJobAge=86400
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
cat >/etc/slurm/gres.conf <<EOF
$MARKER
NodeName=localhost Name=gpu File=/dev/null
EOF

fail() {
    echo "start_slurm.sh: $*" >&2
    tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 2>/dev/null || true
    exit 1
}

slurmctld -c || fail "slurmctld did not start"
slurmd -N localhost || fail "slurmd did not start"
for _ in $(seq 60); do
    state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
    [ "$state" = idle ] && { echo "start_slurm.sh: node localhost idle ($cpus CPUs, $memory MB, gpu:1); state in $STATE"; exit 0; }
    sleep 1
done
fail "node localhost not idle after 60 s (state: ${state:-unknown})"
