#!/usr/bin/env bash
# A one-node Slurm cluster on localhost for the workflow tests: munge + slurmctld + slurmd from
# Debian packages, with every file (config, keys, state, logs, pidfiles) under one directory.
#
#   tests/slurm/cluster.sh start    install the packages if needed, start the daemons, wait
#                                   until the node is idle; prints the SLURM_CONF to use
#   tests/slurm/cluster.sh stop     stop the daemons this script started (by their pidfiles)
#   tests/slurm/cluster.sh status   exit 0 when the cluster answers
#
# The cluster listens on its own ports, so it does not disturb a Slurm already running on the
# machine; it uses a munged already running, or starts its own. Starting twice reuses the running
# daemons. Needs root (the daemons run as root/munge) and, to install, apt-get.
#
# UNETSCAPE_SLURM_DIR     where everything lives (default: $TMPDIR/unetscape-slurm)
# UNETSCAPE_SLURM_CPUS    CPUs the node declares (default: what slurmd -C finds)
# UNETSCAPE_SLURM_MEM_MB  memory the node declares (default: 256 GiB, see write_config)
set -euo pipefail

DIR="${UNETSCAPE_SLURM_DIR:-${TMPDIR:-/tmp}/unetscape-slurm}"
CONF="$DIR/slurm.conf"
PARTITION=debug
CTLD_PORT=6917 # not Slurm's default 6817/6818: a real cluster on this host keeps its ports
SLURMD_PORT=6918
PACKAGES=(munge slurmctld slurmd slurm-client)

log() { echo "cluster.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# PID from a pidfile if that process is alive and is the daemon named; nothing otherwise.
# (A stale pidfile can name a recycled PID: /proc/PID/comm tells them apart.)
live_pid() {
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm ]] || return 1
    [[ $(</proc/"$pid"/comm) == "$name" ]] || return 1
    echo "$pid"
}

wait_for() {
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq "$((seconds * 2))"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "$what did not come up within ${seconds}s (logs in $DIR)"
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || die "Slurm is not installed and there is no apt-get"
    log "installing ${PACKAGES[*]}"
    # Without an init system the packages' post-install scripts would try to start services.
    local policy=/usr/sbin/policy-rc.d added=""
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$DIR/apt.log" 2>&1 ||
        { apt-get update -q >>"$DIR/apt.log" 2>&1 &&
            apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$DIR/apt.log" 2>&1; } ||
        rc=$?
    [[ -n $added ]] && rm -f "$policy"
    [[ $rc == 0 ]] || die "apt-get install failed (see $DIR/apt.log)"
}

write_config() {
    local node cpus mem
    node=$(hostname -s)
    # slurmd -C: "NodeName=... CPUs=2 ... RealMemory=24105"
    read -r cpus mem < <(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*RealMemory=\([0-9]*\).*/\1 \2/p')
    cpus=${UNETSCAPE_SLURM_CPUS:-$cpus}
    # The profile asks memory sized for the paper-scale config; test jobs use a fraction of it
    # and, without cgroups, Slurm does not enforce it: declare enough that CPUs, not memory,
    # limit how many jobs run at once.
    mem=${UNETSCAPE_SLURM_MEM_MB:-262144}
    cat >"$CONF" <<EOF
ClusterName=unetscape-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
# No cgroups in containers.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without it a job that gives no --mem takes the whole node.
DefMemPerCPU=1024
ReturnToService=2
# Lets the node declare more CPUs than the machine has.
SlurmdParameters=config_overrides
# slurmd fetches the config from slurmctld and hands every job a copy in SLURM_CONF (the
# Slurm executor drops the submitter's SLURM_* variables, so srun in a job would find none).
SlurmctldParameters=enable_configless
# A record of every finished job and its state, without an accounting database.
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

# munged on its default socket (slurmd fetches its config before it could learn another one):
# one already serving it is used as it is; otherwise ours runs, with its own key and pidfile.
start_munge() {
    if munge -n </dev/null >/dev/null 2>&1; then return; fi
    mkdir -p "$DIR/munge" /run/munge
    [[ -s $DIR/munge/munge.key ]] || mungekey --create --keyfile="$DIR/munge/munge.key"
    chown -R munge:munge "$DIR/munge" /run/munge
    chmod 700 "$DIR/munge"
    chmod 400 "$DIR/munge/munge.key"
    runuser -u munge -- munged --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
    wait_for munged 10 munge -n
}

node_idle() {
    [[ $(sinfo -h -N -o %t) == idle ]]
}

start() {
    [[ $(id -u) == 0 ]] || die "must run as root (the Slurm daemons run as root)"
    mkdir -p "$DIR/ctld" "$DIR/slurmd"
    install_packages
    export SLURM_CONF=$CONF
    if live_pid "$DIR/slurmctld.pid" slurmctld >/dev/null &&
        live_pid "$DIR/slurmd.pid" slurmd >/dev/null && node_idle; then
        log "already running"
        echo "$CONF"
        return
    fi
    live_pid "$DIR/slurmctld.pid" slurmctld >/dev/null || write_config
    start_munge
    if ! live_pid "$DIR/slurmctld.pid" slurmctld >/dev/null; then
        # -c: start with no jobs left over from an earlier cluster; job ids start again at 1,
        # so the completion log starts afresh too.
        : >"$DIR/jobcomp.log"
        slurmctld -c -f "$CONF"
    fi
    wait_for slurmctld 30 scontrol ping
    if ! live_pid "$DIR/slurmd.pid" slurmd >/dev/null; then
        slurmd --conf-server "127.0.0.1:$CTLD_PORT"
    fi
    for _ in $(seq 60); do
        node_idle && break
        case $(sinfo -h -N -o %t) in
        down* | drain* | drng*) scontrol update NodeName="$(hostname -s)" State=RESUME || true ;;
        esac
        sleep 0.5
    done
    node_idle || die "node did not become idle: $(sinfo -h -N -o '%t %E')"
    log "up: partition $PARTITION, SLURM_CONF=$CONF"
    echo "$CONF"
}

stop_daemon() {
    local pidfile=$1 name=$2 pid
    pid=$(live_pid "$pidfile" "$name") || return 0
    kill "$pid"
    for _ in $(seq 40); do
        [[ -d /proc/$pid ]] || return 0
        sleep 0.25
    done
    log "$name ($pid) ignored SIGTERM; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    # slurmd first: it stops the job steps it runs.
    stop_daemon "$DIR/slurmd.pid" slurmd
    stop_daemon "$DIR/slurmctld.pid" slurmctld
    stop_daemon "$DIR/munge/munged.pid" munged
}

status() {
    export SLURM_CONF=$CONF
    live_pid "$DIR/slurmctld.pid" slurmctld >/dev/null &&
        live_pid "$DIR/slurmd.pid" slurmd >/dev/null && scontrol ping >/dev/null
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 start|stop|status" ;;
esac
