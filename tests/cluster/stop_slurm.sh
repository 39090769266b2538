#!/usr/bin/env bash
# Stop the single-node SLURM cluster that tests/cluster/start_slurm.sh started.
#
#   bash tests/cluster/stop_slurm.sh
#
# Cancels the jobs still in its queue, then stops exactly the daemons whose PID
# files start_slurm.sh left in $STATE (SPNRESTORE_SLURM_DIR, default
# /tmp/spnrestore-slurm): slurmd, slurmctld and munged when it started that one.
# A PID is only signalled while /proc/PID/comm still names that daemon. Logs and
# /etc/slurm/*.conf stay for inspection; start_slurm.sh rewrites them.
set -euo pipefail

STATE=${SPNRESTORE_SLURM_DIR:-/tmp/spnrestore-slurm}

running() { # running NAME: the PID in $STATE/NAME.pid is alive and still that daemon
    local pid
    [ -s "$STATE/$1.pid" ] || return 1
    pid=$(tr -dc 0-9 <"$STATE/$1.pid")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

if running slurmctld; then
    jobs=$(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 30); do
            [ -z "$(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null || true)" ] && break
            sleep 0.5
        done
    fi
fi

stop() { # stop NAME: SIGTERM the PID in $STATE/NAME.pid if it is still NAME, SIGKILL after 10 s
    local name=$1 file="$STATE/$1.pid" pid
    [ -s "$file" ] || return 0
    pid=$(tr -dc 0-9 <"$file")
    if running "$name"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        if [ -d "/proc/$pid" ]; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stop_slurm.sh: stopped $name (PID $pid)"
    fi
    rm -f "$file"
}

stop slurmd
stop slurmctld
stop munged
