#!/usr/bin/env bash
# A real one-node SLURM cluster with accounting on this machine, for autotune's slurm tests and CI.
#
#   bash scripts/slurm-local.sh start    install the Debian packages if missing, write the
#                                        configuration, start munge, MariaDB, slurmdbd, slurmctld
#                                        and slurmd (idempotent: what already runs is left alone)
#   bash scripts/slurm-local.sh stop     stop them again, by their pid files (never by name)
#   bash scripts/slurm-local.sh status   which daemons run, and sinfo
#
# Must run as root (Debian 12, no systemd needed). Configuration goes to /etc/slurm (where the
# client commands look for it); pid files, logs and MariaDB's data under $SLURM_LOCAL_DIR
# (default /var/lib/autotune-slurm). Partitions:
#   debug   the default; OverSubscribe=FORCE:4, so a 2-core box runs up to 8 tiny jobs at once
#   gpu     one core per job and a fake gres/gpu:2 (counts only, no device), for --gres=gpu:1 jobs
#   urgent  PriorityTier 10: a job here preempts (requeues) debug/gpu jobs, to test preemption
# Requeue is made practical: KillWait=5 (a requeued or cancelled job is gone in seconds),
# JobRequeue=1 (batch jobs are requeued after a node failure), PreemptMode=REQUEUE.
set -euo pipefail

BASE=${SLURM_LOCAL_DIR:-/var/lib/autotune-slurm}
RUN=$BASE/run
LOG=$BASE/log
DBDATA=$BASE/mysql
DBSOCK=/run/mysqld/mysqld.sock   # libmariadb's default: slurmdbd finds it with StorageHost=localhost
DBPID=/run/mysqld/autotune-mariadb.pid   # MariaDB runs as mysql: its pid file and log are its own
DBLOG=$LOG/mariadb/mariadb.log
ETC=/etc/slurm
CLUSTER=autotune-local
PACKAGES="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }

alive() {  # alive PIDFILE: the process named in it exists
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 5; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    die "$what did not come up within ${limit}s (logs in $LOG)"
}

install_packages() {
    local missing=0 cmd
    for cmd in slurmctld slurmd sbatch sacct munged slurmdbd mariadbd mariadb-install-db; do
        command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing=1
    done
    [ $missing = 0 ] && return 0
    say "installing $PACKAGES (about a minute)"
    # keep the packages' init scripts from starting daemons: this script starts them itself
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' > $policy
        chmod 755 $policy
        created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends $PACKAGES >"$LOG/apt.log" 2>&1; then
        apt-get update -q >>"$LOG/apt.log" 2>&1
        apt-get install -y -q --no-install-recommends $PACKAGES >>"$LOG/apt.log" 2>&1 \
            || { [ $created = 1 ] && rm -f $policy; die "apt-get install failed, see $LOG/apt.log"; }
    fi
    [ $created = 1 ] && rm -f $policy
    return 0
}

write_config() {
    local ncpu mem
    ncpu=$(nproc)
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    [ "$mem" -gt 64 ] || mem=1024
    mkdir -p $ETC /var/spool/slurmctld /var/spool/slurmd
    chown slurm:slurm /var/spool/slurmctld $RUN $LOG
    cat > $ETC/slurm.conf.new <<EOF
# written by autotune scripts/slurm-local.sh: a one-node cluster on localhost
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=300
GresTypes=gpu
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$ncpu Sockets=1 CoresPerSocket=$ncpu ThreadsPerCore=1 RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4 PriorityTier=1
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=localhost MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
    mv $ETC/slurm.conf.new $ETC/slurm.conf
    # fake GPUs: two empty files stand for the device files (with task/none nothing is bound)
    touch $BASE/fakegpu0 $BASE/fakegpu1
    echo "NodeName=localhost Name=gpu File=$BASE/fakegpu[0-1]" > $ETC/gres.conf
    # with proctrack/linuxproc and task/none, a cgroup.conf makes slurmd die: ship none
    rm -f $ETC/cgroup.conf
    if [ ! -s $BASE/dbpass ]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > $BASE/dbpass)
    fi
    (umask 077; cat > $ETC/slurmdbd.conf <<EOF
# written by autotune scripts/slurm-local.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$(cat $BASE/dbpass)
StorageLoc=slurm_acct_db
EOF
    )
    chown slurm:slurm $ETC/slurmdbd.conf
    chmod 600 $ETC/slurmdbd.conf
}

start_munge() {
    if alive $RUN/munged.pid; then return 0; fi
    [ -s /etc/munge/munge.key ] || { command -v mungekey >/dev/null && mungekey --create --force; }
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    # munged writes /run/munge/munged.pid (its socket lives there too); keep a copy of the name
    runuser -u munge -- /usr/sbin/munged --force
    wait_for 10 munged test -s /run/munge/munged.pid
    cp /run/munge/munged.pid $RUN/munged.pid
}

start_mariadb() {
    if alive $DBPID; then return 0; fi
    if [ ! -d $DBDATA/mysql ]; then
        mkdir -p $DBDATA
        chown mysql:mysql $DBDATA
        mariadb-install-db --user=mysql --datadir=$DBDATA --skip-test-db \
            --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 \
            || die "mariadb-install-db failed, see $LOG/mariadb-install.log"
    fi
    mkdir -p /run/mysqld $LOG/mariadb
    chown mysql:mysql /run/mysqld $LOG/mariadb
    # unix socket only: no TCP port is opened
    setsid nohup /usr/sbin/mariadbd --user=mysql --datadir=$DBDATA --skip-networking \
        --socket=$DBSOCK --pid-file=$DBPID --log-error=$DBLOG </dev/null >/dev/null 2>&1 &
    wait_for 60 MariaDB mariadb --socket=$DBSOCK -e "select 1"
    wait_for 10 "MariaDB pid file" test -s $DBPID
    local pass
    pass=$(cat $BASE/dbpass)
    mariadb --socket=$DBSOCK <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
    if alive $RUN/slurmdbd.pid; then return 0; fi
    /usr/sbin/slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster $CLUSTER >/dev/null 2>&1 || true
}

start_slurm() {
    if ! alive $RUN/slurmctld.pid; then
        /usr/sbin/slurmctld
        wait_for 30 slurmctld scontrol ping
    fi
    if ! alive $RUN/slurmd.pid; then
        /usr/sbin/slurmd -N localhost
        wait_for 30 slurmd test -s $RUN/slurmd.pid
    fi
    local i
    for ((i = 0; i < 100; i++)); do
        state=$(sinfo -h -n localhost -o %T 2>/dev/null | head -1)
        case "$state" in
            idle*|mixed*|allocated*) break ;;
            down*|drain*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.3
    done
    case "$state" in
        idle*|mixed*|allocated*) ;;
        *) die "node localhost is '$state', not idle (logs in $LOG)" ;;
    esac
}

cmd_start() {
    [ "$(id -u)" = 0 ] || die "run as root"
    mkdir -p $BASE $RUN $LOG
    chmod 755 $BASE
    install_packages
    write_config
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurm
    say "up: cluster $CLUSTER, partitions: $(sinfo -h -o %P | tr '\n' ' ')"
    say "config in $ETC (slurm.conf, slurmdbd.conf, gres.conf); logs in $LOG; pid files in $RUN"
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE
    local pid i
    if ! alive "$2"; then
        say "$1 not running"
        return 0
    fi
    pid=$(cat "$2")
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$2"
    say "$1 stopped (pid $pid)"
}

cmd_stop() {
    stop_pidfile slurmd $RUN/slurmd.pid
    stop_pidfile slurmctld $RUN/slurmctld.pid
    stop_pidfile slurmdbd $RUN/slurmdbd.pid
    stop_pidfile mariadb $DBPID
    stop_pidfile munged $RUN/munged.pid
}

cmd_status() {
    local name rc=0
    for name in munged mariadb slurmdbd slurmctld slurmd; do
        pidfile=$RUN/$name.pid
        [ $name = mariadb ] && pidfile=$DBPID
        if alive $pidfile; then
            say "$name running (pid $(cat $pidfile))"
        else
            say "$name not running"
            rc=1
        fi
    done
    sinfo 2>/dev/null || rc=1
    say "config in $ETC; logs in $LOG; pid files in $RUN"
    return $rc
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
