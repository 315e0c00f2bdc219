"""A throw-away single-node SLURM cluster on loopback, for testing the SLURM profile for real.

Debian's ``slurm-wlm`` (slurmctld, slurmd and the client commands) and ``munge`` must be installed
(``.ci/run`` installs them); this module only starts daemons, it never installs anything. Every
file (munge key and socket, ``slurm.conf``, state, spool, logs) lives in one temporary folder, the
daemons run in the foreground as children of the test process on free ports, and :meth:`stop`
ends exactly the processes started here, by pid. Nothing under /etc or /run is read or written.

    with SlurmCluster() as cluster:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.env)

``cluster.env`` is ``os.environ`` plus ``SLURM_CONF`` (the generated file) and a ``PATH`` whose
first entry holds an ``srun`` wrapper. The wrapper is needed because the Snakemake job-step
executor (snakemake-executor-plugin-slurm-jobstep 0.6.1) deletes every ``SLURM_*`` variable,
``SLURM_CONF`` included, before the ``srun`` it runs inside each job; on a real cluster ``srun``
then reads /etc/slurm/slurm.conf (or the configless cache), which this cluster does not touch, so
the wrapper puts ``SLURM_CONF`` back. It changes nothing else.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "srun", "scancel")
MEMORY_MARGIN_MB = 1024  # kept back from what `slurmd -C` reports, for the OS and the test itself


def _which(name: str) -> str | None:
    """A binary on PATH or in the sbin folders (where Debian puts the daemons)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def missing_binaries() -> list[str]:
    """The daemons and client commands this module needs that are not installed."""
    return [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_hardware() -> dict[str, int]:
    """CPUs, sockets, cores, threads and RealMemory (MB) as `slurmd -C` reports this machine."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0]
    fields = dict(kv.split("=", 1) for kv in first.split() if "=" in kv)
    keys = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    return {k: int(fields[k]) for k in keys if k in fields}


class SlurmCluster:
    """munged + slurmctld + slurmd on 127.0.0.1: one node, a default partition (plus any
    `extra_partitions`, on the same node), no GPUs.

    No accounting storage (``sacct`` cannot answer: status goes through ``squeue``, kept honest
    by ``MinJobAge``), proctrack/linuxproc and task/none (no cgroups), select/cons_tres with cores
    and memory as consumable resources, ``GresTypes=gpu`` declared but no GPU on the node: a job
    asking for one is refused at submission.
    """

    def __init__(
        self,
        partition: str = "debug",
        extra_partitions: tuple[str, ...] = (),
        min_job_age_s: int = 3600,
        root: Path | None = None,
    ):
        self.partition = partition  # the default partition (`sinfo` marks it *)
        self.extra_partitions = tuple(extra_partitions)  # more partitions on the same node
        self.min_job_age_s = min_job_age_s
        self._own_root = root is None
        # A short path under /tmp: the munge socket path must stay below ~100 characters and every
        # folder above it must be searchable by all (munged checks), which pytest's tmp is not.
        self.root = Path(tempfile.mkdtemp(prefix="ecgxai-slurm-")) if root is None else Path(root)
        self.hostname = socket.gethostname().split(".")[0]
        self.user = getpass.getuser()
        self.conf = self.root / "etc" / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.logs = self.root / "log"
        self.pids: dict[str, int] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._log_handles = []
        self.hardware: dict[str, int] = {}

    # -- configuration ---------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment for client commands and for Snakemake submitting to this cluster."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = os.pathsep.join([str(self.root / "bin"), env.get("PATH", "")])
        for var in [v for v in env if v.startswith(("SBATCH_", "SRUN_", "SQUEUE_"))]:
            del env[var]  # the caller's own defaults must not leak into submissions here
        return env

    def _write_files(self) -> None:
        for sub in ("etc", "munge", "state", "spool", "log", "bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        os.chmod(self.root / "munge", 0o755)
        key = self.root / "etc" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)

        hw = self.hardware = node_hardware()
        mem = max(512, hw["RealMemory"] - MEMORY_MARGIN_MB)
        topology = " ".join(
            f"{k}={hw[k]}" for k in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore") if k in hw
        )
        self.ctld_port = _free_port()
        self.slurmd_port = next(p for p in iter(_free_port, None) if p != self.ctld_port)
        (self.root / "etc" / "plugstack.conf").write_text("")
        (self.root / "etc" / "gres.conf").write_text("# no GPUs on this node\n")
        conf = f"""# generated by tests/slurm_cluster.py
ClusterName=ecgxai-test
SlurmctldHost={self.hostname}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
SlurmUser={self.user}
SlurmdUser={self.user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={self.root / "state"}
SlurmdSpoolDir={self.root / "spool"}
SlurmctldPidFile={self.root / "state" / "slurmctld.pid"}
SlurmdPidFile={self.root / "spool" / "slurmd.pid"}
SlurmctldLogFile={self.logs / "slurmctld.log"}
SlurmdLogFile={self.logs / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={self.root / "etc" / "plugstack.conf"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge={self.min_job_age_s}
KillWait=5
InactiveLimit=0
GresTypes=gpu
NodeName={self.hostname} NodeAddr=127.0.0.1 NodeHostname={self.hostname} {topology} RealMemory={mem} State=UNKNOWN
PartitionName={self.partition} Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP
""" + "".join(
            f"PartitionName={p} Nodes={self.hostname} Default=NO MaxTime=INFINITE State=UP\n"
            for p in self.extra_partitions
        )
        self.conf.write_text(conf)
        srun = self.root / "bin" / "srun"
        srun.write_text(f'#!/bin/sh\nexport SLURM_CONF="{self.conf}"\nexec "{_which("srun")}" "$@"\n')
        os.chmod(srun, 0o755)

    # -- processes -------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.logs / f"{name}.out", "ab")
        self._log_handles.append(log)
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**self.env},
            cwd=self.root,
            start_new_session=True,
        )
        self._procs[name], self.pids[name] = proc, proc.pid
        time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} at start:\n{self.log_tail(name)}")

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """A client command (sinfo, squeue, scontrol, ...) against this cluster."""
        return subprocess.run(list(argv), capture_output=True, text=True, env=self.env, check=check, timeout=timeout)

    def _wait_for(self, what: str, predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} died while waiting for {what}:\n{self.log_tail(name)}")
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(f"timed out waiting for {what}:\n{self.log_tail('slurmctld')}\n{self.log_tail('slurmd')}")

    def node_state(self) -> str:
        """The node's state as sinfo reports it ("idle", "mixed", ...; one line per partition)."""
        res = self.run("sinfo", "-h", "-N", "-o", "%T", check=False)
        states = set(res.stdout.split()) if res.returncode == 0 else set()
        return states.pop() if len(states) == 1 else ",".join(sorted(states))

    def start(self, timeout: float = 60) -> "SlurmCluster":
        self._write_files()
        munged, slurmctld, slurmd = (_which(d) for d in DAEMONS)
        self._spawn(
            "munged",
            [
                munged,
                "--foreground",
                f"--socket={self.munge_socket}",
                f"--key-file={self.root / 'etc' / 'munge.key'}",
                f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                f"--seed-file={self.root / 'munge' / 'munged.seed'}",
                f"--log-file={self.logs / 'munged.log'}",
            ],
        )
        self._wait_for("the munge socket", self.munge_socket.exists, 15)
        # -D: foreground (the pid is the daemon's); -f: this conf; -i: ignore stale state files
        self._spawn("slurmctld", [slurmctld, "-D", "-i", "-f", str(self.conf)])
        self._wait_for("slurmctld", lambda: self.run("scontrol", "ping", check=False).stdout.count("UP") > 0, 30)
        self._spawn("slurmd", [slurmd, "-D", "-f", str(self.conf), "-N", self.hostname])
        self._wait_for("the node to be idle", lambda: self.node_state() == "idle", timeout)
        return self

    def log_tail(self, name: str, chars: int = 3000) -> str:
        for path in (self.logs / f"{name}.log", self.logs / f"{name}.out"):  # daemon log, else stdout
            if path.exists() and path.stat().st_size:
                return f"--- {path}\n" + path.read_text(errors="replace")[-chars:]
        return f"--- no log of {name}"

    def stop(self) -> None:
        """Cancel what is left in the queue, then end exactly the daemons started here."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            self.run("scancel", "--user", self.user, check=False)
        for name in reversed(DAEMONS):  # slurmd, slurmctld, then munged they authenticate with
            proc = self._procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for handle in self._log_handles:
            handle.close()
        self._log_handles.clear()
        self._procs.clear()

    def cleanup(self) -> None:
        """Remove the temporary folder (only one this object created)."""
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SlurmCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def job_ids_in(text: str) -> list[str]:
    """SLURM job ids that the SLURM executor plugin reports as submitted in a Snakemake log."""
    return re.findall(r"has been submitted with SLURM jobid (\d+)", text)
