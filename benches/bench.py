#!/usr/bin/env python3
"""Ours against Barman 3.19.1's barman-cloud-* tools, same machine, same S3 server, same data.

Run through benches/run.sh, which installs the rig, builds the release binaries, starts the
object stores and calls this with the environment set. Runs with Barman's venv python (it has
psycopg2 and boto3, used here to watch PostgreSQL and to list backups).

Every command runs under `/usr/bin/time -v` (peak RSS); wall time is measured around it with a
monotonic clock. Each repeated run uses a fresh server name, so both tools really upload.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3
import psycopg2
from botocore.config import Config

PG_BIN = os.environ.get("BCRS_PG_BIN", "/usr/lib/postgresql/15/bin")
BARMAN_BIN = os.environ.get("BCRS_BARMAN_BIN", "/opt/bcrs/barman-venv/bin")
MiB = 1 << 20
SEGMENT = 16 * MiB
WAL_COMPRESSIONS = ["none", "gzip", "bzip2", "xz", "snappy", "zstd", "lz4"]
FLAG = {"none": [], "gzip": ["--gzip"], "bzip2": ["--bzip2"], "xz": ["--xz"],
        "snappy": ["--snappy"], "zstd": ["--zstd"], "lz4": ["--lz4"]}

T_START = time.monotonic()


def log(msg):
    print(f"[bench {time.monotonic() - T_START:7.1f}s] {msg}", flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


LOAD_SAMPLES = []   # (seconds since start, 1-minute load average), every 10 s


def sample_load(stop):
    while not stop.wait(10):
        with open("/proc/loadavg") as f:
            LOAD_SAMPLES.append((round(time.monotonic() - T_START), float(f.read().split()[0])))


# --------------------------------------------------------------------------------------------
# Running and timing commands


class Failed(Exception):
    pass


# CPU that /usr/bin/time itself costs around a command (measured around /bin/true at start).
TIME_CPU_S = 0.0


def calibrate_time_cpu(n=21):
    global TIME_CPU_S
    TIME_CPU_S = median([timed(["/bin/true"])["cpu_s"] for _ in range(n)])


def timed(cmd, env=None, check=True, stdin=None, user=None):
    """Runs cmd under /usr/bin/time -v; returns {"s": wall seconds, "rss_kb": peak RSS,
    "cpu_s": user + system seconds of the command and the children it waited for, less what
    /usr/bin/time costs around /bin/true}.
    CPU comes from this process's rusage of waited-for children (microseconds, where
    /usr/bin/time prints hundredths): only the command (and `time`) ends during the call.
    With `user`, the child switches to that user before exec (no runuser in the timing)."""
    with tempfile.NamedTemporaryFile(prefix="bench-time-", suffix=".txt") as tf:
        if user is not None:
            os.chmod(tf.name, 0o666)
        full = ["/usr/bin/time", "-v", "-o", tf.name] + [str(c) for c in cmd]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(full, env=env, capture_output=True, stdin=stdin, user=user,
                           group=user, extra_groups=[] if user is not None else None)
        dt = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime) - TIME_CPU_S
        rss = None
        with open(tf.name) as f:
            for line in f:
                line = line.strip()
                if line.startswith("Maximum resident set size (kbytes):"):
                    rss = int(line.split(":")[1])
    if check and p.returncode != 0:
        raise Failed(f"exit {p.returncode}: {' '.join(map(str, cmd))}\n"
                     f"{p.stdout.decode(errors='replace')[-2000:]}"
                     f"{p.stderr.decode(errors='replace')[-3000:]}")
    return {"s": dt, "rss_kb": rss, "cpu_s": cpu, "rc": p.returncode}


def process_cpu_s(pid):
    """User + system seconds a running process (a server) has used so far, or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sh(cmd, check=True, **kw):
    return subprocess.run([str(c) for c in cmd], check=check, **kw)


def as_pg(cmd):
    return ["runuser", "-u", "postgres", "--"] + [str(c) for c in cmd]


def median(xs):
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------------------------
# Results: each metric has ours, Barman's (maybe none) and our file:// ceiling (maybe none).


class Results:
    def __init__(self):
        self.metrics = []   # dicts: id, label, unit, better, ours, barman, file, runs
        self.rss = {}       # (tool, command) -> max kB
        self.extra = {}
        self.cur = {}       # tool -> max kB since the last add(): the RSS of one metric
        self.cur_cpu = {}   # tool -> [(own CPU s, server CPU s or None)] since the last add()

    def add(self, mid, label, unit, better, ours=None, barman=None, file=None, **detail):
        m = {"id": mid, "label": label, "unit": unit, "better": better,
             "ours": ours, "barman": barman, "ours_file": file,
             "peak_rss_kb": dict(self.cur)}
        cpu = {t: {"client_s": median([c for c, _s in xs]),
                   "server_s": median([sv for _c, sv in xs if sv is not None])}
               for t, xs in self.cur_cpu.items()}
        if cpu:
            m["cpu_median_s"] = cpu
        self.cur = {}
        self.cur_cpu = {}
        if ours is not None and barman not in (None, 0) and ours != 0:
            m["ratio_ours_over_barman"] = ours / barman
            m["advantage"] = (barman / ours) if better == "lower" else (ours / barman)
        m.update(detail)
        self.metrics.append(m)
        adv = f"  ({m['advantage']:.1f}x)" if "advantage" in m else ""
        log(f"  {label}: ours {fmt(ours, unit)}  Barman {fmt(barman, unit)}"
            f"  file:// {fmt(file, unit)}{adv}")
        return m

    def note_rss(self, tool, command, rss_kb):
        if rss_kb is None:
            return
        key = (tool, command)
        self.rss[key] = max(self.rss.get(key, 0), rss_kb)
        self.cur[tool] = max(self.cur.get(tool, 0), rss_kb)

    def note_cpu(self, tool, cpu_s, server_cpu_s):
        self.cur_cpu.setdefault(tool, []).append((cpu_s, server_cpu_s))


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    if unit in ("MB/s", "seg/s"):
        return f"{v:.2f}" if v < 10 else f"{v:.1f}"
    if unit == "MB":
        return f"{v:.1f}"
    return f"{v:.3g}"


# --------------------------------------------------------------------------------------------
# The tools


class Tools:
    def __init__(self, work, endpoint, endpoint_dl, bucket, filestore, server_pids):
        self.bin = os.path.join(work, "bin")
        self.endpoint = endpoint         # store "s3": uploads are measured here
        self.endpoint_dl = endpoint_dl   # store "s3dl": downloads are measured here
        self.bucket = bucket
        self.filestore = filestore
        self.server_pids = server_pids   # store -> PID of the server behind it, for its CPU
        self.env = dict(os.environ)
        self.env.pop("BARMAN_HOOK", None)

    def ours(self, name):
        return os.path.join(self.bin, name)

    def barman(self, name):
        return os.path.join(BARMAN_BIN, name)

    def url(self, tool, store, prefix):
        if store == "file":
            return f"file://{self.filestore}/{prefix}"
        return f"s3://{self.bucket}/{prefix}"

    def cmd(self, tool, name, store, prefix, options, positional):
        """One command line: options before positionals (Barman's argparse needs that)."""
        exe = self.ours(name) if tool == "ours" else self.barman(name)
        ep = {"s3": ["--endpoint-url", self.endpoint],
              "s3dl": ["--endpoint-url", self.endpoint_dl]}.get(store, [])
        return [exe] + ep + list(options) + [self.url(tool, store, prefix)] + list(positional)

    def run(self, res, tool, name, store, prefix, options, positional, check=True):
        pid = self.server_pids.get(store)
        before = process_cpu_s(pid)
        r = timed(self.cmd(tool, name, store, prefix, options, positional), env=self.env,
                  check=check)
        after = process_cpu_s(pid)
        r["server_cpu_s"] = after - before if None not in (before, after) else None
        key = tool + ("-file" if store == "file" else "")
        res.note_rss(key, name, r["rss_kb"])
        res.note_cpu(key, r["cpu_s"], r["server_cpu_s"])
        return r


# --------------------------------------------------------------------------------------------
# PostgreSQL


class Postgres:
    def __init__(self, work):
        self.dir = os.path.join(work, "pg")
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.log = os.path.join(self.dir, "log")
        self.conn = None

    def init(self):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)
        sh(as_pg([f"{PG_BIN}/initdb", "-A", "trust", "-U", "postgres", "-D", self.data]),
           stdout=subprocess.DEVNULL)
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            f.write(f"""
listen_addresses = ''
unix_socket_directories = '{self.sock}'
wal_level = replica
archive_mode = on
archive_command = ''
max_wal_size = '8GB'
min_wal_size = '1GB'
checkpoint_timeout = '15min'
shared_buffers = '256MB'
synchronous_commit = off
max_connections = 30
""")

    def start(self):
        sh(as_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "120",
                  "start"]), stdout=subprocess.DEVNULL)
        self.conn = psycopg2.connect(host=self.sock, user="postgres", dbname="postgres")
        self.conn.autocommit = True

    def stop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            sh(as_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"]),
               check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def q(self, sql, args=None):
        with self.conn.cursor() as c:
            c.execute(sql, args)
            return c.fetchall() if c.description else None

    def q1(self, sql, args=None):
        return self.q(sql, args)[0][0]

    def set_archive_command(self, command):
        self.q("ALTER SYSTEM SET archive_command = %s", (command,))
        self.q("SELECT pg_reload_conf()")

    def archived(self):
        return self.q("SELECT archived_count, failed_count FROM pg_stat_archiver")[0]

    def ready(self):
        return sum(1 for n in os.listdir(os.path.join(self.data, "pg_wal", "archive_status"))
                   if n.endswith(".ready"))

    def pgbench(self, args, background=False, **kw):
        cmd = [f"{PG_BIN}/pgbench", "-h", self.sock, "-U", "postgres"] + [str(a) for a in args] \
            + ["postgres"]
        if background:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kw.get("check", True) and r.returncode != 0:
            raise Failed(f"pgbench {' '.join(map(str, args))}: exit {r.returncode}\n"
                         f"{r.stderr[-2000:]}")
        return r

    def drain(self, tools, timeout=300):
        """Lets the archiver mark every .ready file done with a no-op command."""
        self.set_archive_command("/bin/true")
        deadline = time.monotonic() + timeout
        self.q("SELECT pg_switch_wal()")
        while self.ready() > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.q("CHECKPOINT")

    def du(self):
        """Bytes a base backup copies: PGDATA without pg_wal."""
        total = 0
        for root, dirs, files in os.walk(self.data):
            if root == self.data:
                dirs[:] = [d for d in dirs if d != "pg_wal"]
            for n in files:
                try:
                    total += os.lstat(os.path.join(root, n)).st_size
                except FileNotFoundError:
                    pass
        return total


def stop_pgbench(p):
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=20)
    except Exception:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


# --------------------------------------------------------------------------------------------
# Phases


def prepare_wal_samples(pg, work, nseg):
    """A few consecutive real WAL segments written under pgbench's TPC-B-like load."""
    log(f"writing WAL under pgbench (tpcb-like) for {nseg} sample segments")
    pg.set_archive_command("")
    start_lsn = pg.q1("SELECT pg_current_wal_lsn()")
    start = pg.q1("SELECT pg_walfile_name(%s)", (start_lsn,))
    p = pg.pgbench(["-c", "4", "-j", "2", "-T", "300", "-n"], background=True)
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline:
            done = pg.q1("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (start_lsn,))
            if float(done) >= (nseg + 1) * SEGMENT:
                break
            time.sleep(0.5)
    finally:
        stop_pgbench(p)
    pg.q("SELECT pg_switch_wal()")
    time.sleep(0.5)
    # Complete segments are the ones marked .ready (archiving is paused); pg_wal also holds
    # recycled files under future names.
    status = os.path.join(pg.data, "pg_wal", "archive_status")
    names = sorted(n[:-6] for n in os.listdir(status)
                   if n.endswith(".ready") and len(n) == 30 and n[:-6] > start)
    names = names[:nseg]
    dst = os.path.join(work, "wal")
    os.makedirs(dst, exist_ok=True)
    for n in names:
        shutil.copyfile(os.path.join(pg.data, "pg_wal", n), os.path.join(dst, n))
    log(f"  {len(names)} segments {names[0]}..{names[-1]}")
    return dst, names


def bench_wal_archive(res, tools, walsrc, names, reps, reps_fixed, work, file_ceiling):
    log("wal-archive: fixed cost (a .history file)")
    hdir = os.path.join(work, "history")
    os.makedirs(hdir, exist_ok=True)
    hist = os.path.join(hdir, "00000002.history")
    with open(hist, "w") as f:
        f.write("1\t0/5000000\tbefore 2026-01-01 00:00:00+00\n")
    times = {"ours": [], "barman": [], "file": []}
    for i in range(reps_fixed):
        for tool in ("barman", "ours"):
            r = tools.run(res, tool, "barman-cloud-wal-archive", "s3", "wa", [],
                          [f"fixed-{tool}-{i}", hist])
            times[tool].append(r["s"])
        if file_ceiling:
            r = tools.run(res, "ours", "barman-cloud-wal-archive", "file", "wa", [],
                          [f"fixed-{i}", hist])
            times["file"].append(r["s"])
    res.add("wal_archive_history_ms", "wal-archive .history (fixed cost)", "ms", "lower",
            median(times["ours"]) * 1e3, median(times["barman"]) * 1e3,
            median(times["file"]) * 1e3 if times["file"] else None,
            runs={k: v for k, v in times.items()})

    seg = os.path.join(walsrc, names[0])
    for comp in WAL_COMPRESSIONS:
        log(f"wal-archive: 16 MiB segment, {comp}")
        times = {"ours": [], "barman": [], "file": []}
        for i in range(reps):
            for tool in ("barman", "ours"):
                r = tools.run(res, tool, "barman-cloud-wal-archive", "s3", "wa", FLAG[comp],
                              [f"seg-{comp}-{tool}-{i}", seg])
                times[tool].append(r["s"])
            if file_ceiling:
                r = tools.run(res, "ours", "barman-cloud-wal-archive", "file", "wa",
                              FLAG[comp], [f"seg-{comp}-{i}", seg])
                times["file"].append(r["s"])
        res.add(f"wal_archive_16MiB_{comp}_ms", f"wal-archive 16 MiB {comp}", "ms", "lower",
                median(times["ours"]) * 1e3, median(times["barman"]) * 1e3,
                median(times["file"]) * 1e3 if times["file"] else None, runs=times)


def bench_wal_restore(res, tools, walsrc, names, reps, prefetch_reps, work, file_ceiling,
                      parallel):
    log(f"wal-restore: uploading {len(names)} segments (ours, none and gzip)")
    stores = ["s3dl", "file"] if file_ceiling else ["s3dl"]
    for store in stores:
        for comp in ("none", "gzip"):
            for n in names:
                tools.run(res, "ours", "barman-cloud-wal-archive", store, "wr", FLAG[comp],
                          [f"src-{comp}", os.path.join(walsrc, n)])
    # Those uploads are set-up: their peak RSS must not count as the first restore's.
    res.cur = {}
    dest = os.path.join(work, "restored-wal")
    os.makedirs(dest, exist_ok=True)

    for comp in ("none", "gzip"):
        log(f"wal-restore: cold, 16 MiB {comp}")
        times = {"ours": [], "barman": [], "file": []}
        for i in range(reps):
            n = names[i % len(names)]
            for tool, store in (("barman", "s3dl"), ("ours", "s3dl"), ("file", "file")):
                if store not in stores:
                    continue
                out = os.path.join(dest, f"{tool}-{n}")
                r = tools.run(res, "ours" if tool == "file" else tool,
                              "barman-cloud-wal-restore", store, "wr", [],
                              [f"src-{comp}", n, out])
                times[tool].append(r["s"])
                if os.path.getsize(out) != SEGMENT:
                    raise Failed(f"restored {out} is {os.path.getsize(out)} bytes")
                os.unlink(out)
        res.add(f"wal_restore_cold_{comp}_ms", f"wal-restore 16 MiB {comp}, cold", "ms",
                "lower", median(times["ours"]) * 1e3, median(times["barman"]) * 1e3,
                median(times["file"]) * 1e3 if times["file"] else None, runs=times)

    comp = "gzip"
    log(f"wal-restore: {len(names)} consecutive segments ({comp}), --parallel {parallel}, "
        "per segment")
    times = {"ours": [], "barman": [], "file": []}
    for i in range(prefetch_reps):
        for tool, store in (("barman", "s3dl"), ("ours", "s3dl"), ("file", "file")):
            if store not in stores:
                continue
            spool = os.path.join(work, f"spool-{tool}-{i}")
            t0 = time.perf_counter()
            for n in names:
                out = os.path.join(dest, f"{tool}-{n}")
                tools.run(res, "ours" if tool == "file" else tool, "barman-cloud-wal-restore",
                          store, "wr", ["--parallel", str(parallel), "--spool-dir", spool],
                          [f"src-{comp}", n, out])
                if os.path.getsize(out) != SEGMENT:
                    raise Failed(f"restored {out} is {os.path.getsize(out)} bytes")
                os.unlink(out)
            times[tool].append((time.perf_counter() - t0) / len(names))
            shutil.rmtree(spool, ignore_errors=True)
    res.add(f"wal_restore_prefetch_{comp}_ms",
            f"wal-restore 16 MiB {comp}, --parallel {parallel} (per segment, "
            f"{len(names)} in sequence)", "ms", "lower",
            median(times["ours"]) * 1e3, median(times["barman"]) * 1e3,
            median(times["file"]) * 1e3 if times["file"] else None, runs=times)


BULK_SQL = """\
INSERT INTO bench_load SELECT g, md5(random()::text), repeat(md5(g::text), 3)
  FROM generate_series(1, 4000) g;
"""


def bulk_script(pg, work):
    """The bulk-INSERT pgbench script that writes WAL while archiving is measured."""
    script = os.path.join(work, "bulk.sql")
    with open(script, "w") as f:
        f.write(BULK_SQL)
    os.chmod(script, 0o644)
    pg.q("DROP TABLE IF EXISTS bench_load")
    pg.q("CREATE TABLE bench_load (id int, a text, b text)")
    return script


def pace(pg, script, seg_rate):
    """Transactions per second of `script` that write ~seg_rate WAL segments per second, and
    the WAL bytes one transaction writes."""
    lsn0 = pg.q1("SELECT pg_current_wal_lsn()")
    pg.pgbench(["-n", "-f", script, "-t", "20", "-c", "1"])
    lsn1 = pg.q1("SELECT pg_current_wal_lsn()")
    per_tx = float(pg.q1("SELECT pg_wal_lsn_diff(%s, %s)", (lsn1, lsn0))) / 20
    rate = max(1, round(seg_rate * SEGMENT / per_tx))
    log(f"sustained: {per_tx / 1024:.0f} KiB WAL per transaction; pacing at {rate} tx/s "
        f"(~{seg_rate} segments/s)")
    return rate, per_tx


def measure_archiving(pg, tools, name, command, script, backlog, window, rate,
                      shown=None):
    """Builds a backlog of `backlog` .ready segments under pgbench with archiving paused, then
    switches `command` on as archive_command while pgbench keeps writing at `rate` tx/s, and
    watches pg_stat_archiver and archive_status for `window` seconds (or until the backlog
    is gone and has stayed under 2 for 5 s)."""
    pg.q("TRUNCATE bench_load")
    pg.drain(tools)
    pg.set_archive_command("")
    log(f"sustained [{name}]: building a backlog of {backlog} segments")
    tb = time.monotonic()
    p = pg.pgbench(["-n", "-f", script, "-c", "2", "-T", "600"], background=True)
    deadline = time.monotonic() + 180
    while pg.ready() < backlog and time.monotonic() < deadline:
        time.sleep(0.2)
        if p.poll() is not None:
            raise Failed("pgbench stopped while building the backlog")
    stop_pgbench(p)
    pg.q("TRUNCATE bench_load")
    start_ready = pg.ready()
    log(f"  {start_ready} ready after {time.monotonic() - tb:.1f}s; archive_command = "
        f"{shown or command}")
    a0, f0 = pg.archived()
    wal0 = pg.q1("SELECT pg_current_wal_lsn()")
    p = pg.pgbench(["-n", "-f", script, "-c", "1", "-T", int(window) + 60, "-R", rate],
                   background=True)
    pg.set_archive_command(command)
    t0 = time.monotonic()
    samples = []
    drained_at = None
    low_since = None
    while True:
        time.sleep(0.1)
        t = time.monotonic() - t0
        a, fcount = pg.archived()
        ready = pg.ready()
        samples.append((round(t, 2), ready, a - a0, fcount - f0))
        if drained_at is None and a - a0 >= start_ready:
            drained_at = t
        low_since = (low_since or t) if ready < 2 else None
        if t >= window or (drained_at is not None and low_since is not None
                           and t - low_since >= 5 and t >= 10):
            break
    elapsed = samples[-1][0]
    walgen = float(pg.q1("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (wal0,))) / SEGMENT
    if p.poll() is not None:
        raise Failed(f"the pgbench load stopped early (exit {p.returncode})")
    stop_pgbench(p)
    archived = samples[-1][2]
    failures = samples[-1][3]
    if drained_at is not None:
        # Capacity: the initial backlog went out in drained_at seconds.
        seg_s = start_ready / drained_at
    else:
        seg_s = archived / elapsed
    log(f"sustained [{name}]: {archived} archived in {elapsed:.1f}s, backlog "
        f"{start_ready} -> {samples[-1][1]}, drained at "
        f"{'%.1fs' % drained_at if drained_at else 'never'}, {seg_s:.2f} seg/s, "
        f"{failures} failures, {walgen:.1f} segments written meanwhile")
    series, last_sec = [], -1
    for smp in samples:
        if int(smp[0]) > last_sec:
            last_sec = int(smp[0])
            series.append(smp)
    series.append(samples[-1])
    return {"seg_per_s": seg_s, "initial_backlog": start_ready,
            "archived": archived, "seconds": elapsed, "drained_at_s": drained_at,
            "failures": failures, "final_backlog": samples[-1][1],
            "max_backlog": max(s[1] for s in samples),
            "segments_written_during": walgen,
            "backlog_series_t_ready_archived_failed": series}


def bench_sustained(res, tools, pg, work, configs, backlog, window, seg_rate):
    """Per config, measure_archiving() with the tool as archive_command."""
    script = bulk_script(pg, work)
    rate, per_tx = pace(pg, script, seg_rate)
    bin_dir = tools.bin
    env = (f"AWS_ACCESS_KEY_ID={os.environ['AWS_ACCESS_KEY_ID']} "
           f"AWS_SECRET_ACCESS_KEY={os.environ['AWS_SECRET_ACCESS_KEY']} "
           f"AWS_DEFAULT_REGION={os.environ.get('AWS_DEFAULT_REGION', 'us-east-1')} ")
    out = {}
    for name, comp, tool, store, extra in configs:
        flags = FLAG[comp] + extra
        server = f"sus-{name}"
        if tool == "barman":
            exe = os.path.join(BARMAN_BIN, "barman-cloud-wal-archive")
        else:
            exe = os.path.join(bin_dir, "barman-cloud-wal-archive")
        spool = os.path.join(work, f"archive-spool-{name}")
        if "--max-parallel" in extra:
            os.makedirs(spool, exist_ok=True)
            os.chmod(spool, 0o777)
            flags = flags + ["--spool-dir", spool]
        ep = f"--endpoint-url {tools.endpoint} " if store == "s3" else ""
        command = (f"{env}{exe} {ep}{' '.join(flags)} "
                   f"{tools.url(tool, store, 'sus')} {server} %p")
        shown = command.replace(os.environ['AWS_SECRET_ACCESS_KEY'], '***')
        m = measure_archiving(pg, tools, name, command, script, backlog, window, rate, shown)
        m.update({"command_flags": flags, "compression": comp, "tool": tool, "store": store})
        out[name] = m
    pg.drain(tools)
    pg.q("DROP TABLE bench_load")
    return out, rate, per_tx


def s3client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint,
                        config=Config(s3={"addressing_style": "path"}))


def copy_to_download_server(tools, prefix, server, s3fs_root):
    """Byte copies of the objects of `server` from s3s-fs's directory to the download server."""
    s3 = s3client(tools.endpoint_dl)
    root = os.path.join(s3fs_root, tools.bucket)
    for d, _s, fs in os.walk(os.path.join(root, prefix, server)):
        for n in fs:
            path = os.path.join(d, n)
            key = os.path.relpath(path, root)
            with open(path, "rb") as f:
                s3.upload_fileobj(f, tools.bucket, key)


def list_backup_ids(tools, store, prefix, server):
    if store == "file":
        base = os.path.join(tools.filestore, prefix, server, "base")
        return sorted(os.listdir(base))
    s3 = s3client(tools.endpoint)
    r = s3.list_objects_v2(Bucket=tools.bucket, Prefix=f"{prefix}/{server}/base/", Delimiter="/")
    return sorted(cp["Prefix"].rstrip("/").rsplit("/", 1)[1] for cp in r.get("CommonPrefixes", []))


def delete_prefix(tools, store, prefix, server, s3fs_root):
    if store == "file":
        shutil.rmtree(os.path.join(tools.filestore, prefix, server), ignore_errors=True)
        return
    if s3fs_root:
        shutil.rmtree(os.path.join(s3fs_root, tools.bucket, prefix, server), ignore_errors=True)
        delete_s3(tools, tools.endpoint_dl, prefix, server)
    else:
        delete_s3(tools, tools.endpoint, prefix, server)


def clear_upload_server(tools, s3fs_root):
    """Empties s3s-fs's bucket between phases: its root may be on tmpfs, i.e. in memory."""
    if not s3fs_root:
        return
    root = os.path.join(s3fs_root, tools.bucket)
    for n in os.listdir(root):
        path = os.path.join(root, n)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def delete_s3(tools, endpoint, prefix, server):
    s3 = s3client(endpoint)
    token = None
    while True:
        kw = {"Bucket": tools.bucket, "Prefix": f"{prefix}/{server}/"}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        keys = [{"Key": o["Key"]} for o in r.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=tools.bucket, Delete={"Objects": keys})
        if not r.get("IsTruncated"):
            break
        token = r["NextContinuationToken"]


def bench_backup_restore(res, tools, pg, work, plan, s3fs_root, reps, tmpfs_root):
    """plan: list of (tool, store, compression). `reps` rounds of one backup and one restore
    each, the rounds one after the other so that load changes spread over every config.
    With `tmpfs_root`, each backup is also restored there: the tool's own speed, without
    this VM's disk (whose ext4 has no journal, so creating files just after others were
    deleted scans past every recently freed inode)."""
    size = pg.du()
    log(f"backup/restore: PGDATA without pg_wal is {size / 1e9:.2f} GB ({size / MiB:.0f} MiB)")
    out = []
    conn = ["-h", pg.sock, "-U", "postgres"]
    restore_root = os.path.join(work, "restore")
    for i, (tool, store, comp) in [(i, p) for i in range(reps) for p in plan]:
        server = f"bk-{tool}-{store}-{comp}-{i}"
        flags = {"none": [], "gzip": ["--gzip"], "snappy": ["--snappy"], "lz4": ["--lz4"],
                 "bzip2": ["--bzip2"],
                 # Ours at Barman's level (tarfile's gzip level 9) for a like-for-like figure.
                 "gzip9": ["--gzip", "--compression-level", "9"]}[comp]
        log(f"backup [{tool} {store} {comp}] round {i + 1}/{reps} (load {loadavg()})")
        # Start from a clean page cache: the previous round's GB of dirty pages (s3s-fs's
        # store, the restored copy) would otherwise be written back during this measurement,
        # and ours, which fsyncs, would pay for the writeback of the others' data.
        sh(["sync"])
        b = tools.run(res, tool, "barman-cloud-backup", store, "bk",
                      flags + conn + ["--immediate-checkpoint"], [server])
        ids = list_backup_ids(tools, store, "bk", server)
        if len(ids) != 1:
            raise Failed(f"expected one backup for {server}, found {ids}")
        dest = os.path.join(restore_root, server)
        shutil.rmtree(dest, ignore_errors=True)
        rstore = store
        if store == "s3" and tools.endpoint_dl != tools.endpoint:
            copy_to_download_server(tools, "bk", server, s3fs_root)
            rstore = "s3dl"
        log(f"restore [{tool} {rstore} {comp}] {ids[0]}")
        sh(["sync"])
        r = tools.run(res, tool, "barman-cloud-restore", rstore, "bk", [],
                      [server, ids[0], dest])
        # Ours fsyncs the restored tree before it exits; Barman leaves it in the page cache.
        # syncfs afterwards, timed apart, puts both on the same footing ("durable" figures).
        t0 = time.perf_counter()
        sh(["sync", "-f", dest])
        flush = time.perf_counter() - t0
        restored = sum(os.lstat(os.path.join(d, n)).st_size
                       for d, _s, fs in os.walk(dest) for n in fs)
        shutil.rmtree(dest, ignore_errors=True)
        t = {}
        if tmpfs_root:
            tdest = os.path.join(tmpfs_root, server)
            shutil.rmtree(tdest, ignore_errors=True)
            t = tools.run(res, tool, "barman-cloud-restore", rstore, "bk", [],
                          [server, ids[0], tdest])
            shutil.rmtree(tdest, ignore_errors=True)
        tmpfs_s = t.get("s")
        stored = stored_size(tools, store, "bk", server, s3fs_root)
        out.append({"tool": tool, "store": store, "compression": comp, "round": i,
                    "backup_s": b["s"], "restore_s": r["s"], "flush_after_restore_s": flush,
                    "restore_durable_MBps": size / 1e6 / (r["s"] + flush),
                    "backup_MBps": size / 1e6 / b["s"], "restore_MBps": size / 1e6 / r["s"],
                    "restore_tmpfs_s": tmpfs_s,
                    "tmpfs_restore_MBps": tmpfs_s and size / 1e6 / tmpfs_s,
                    "backup_rss_kb": b["rss_kb"], "restore_rss_kb": r["rss_kb"],
                    "backup_cpu_s": b["cpu_s"], "backup_server_cpu_s": b["server_cpu_s"],
                    "restore_cpu_s": r["cpu_s"], "restore_server_cpu_s": r["server_cpu_s"],
                    "tmpfs_restore_cpu_s": t.get("cpu_s"),
                    "tmpfs_restore_server_cpu_s": t.get("server_cpu_s"),
                    "pgdata_bytes": size, "restored_bytes": restored, "stored_bytes": stored})
        log(f"  backup {b['s']:.1f}s ({size / 1e6 / b['s']:.1f} MB/s, RSS "
            f"{b['rss_kb'] / 1024:.0f} MB), restore {r['s']:.1f}s "
            f"({size / 1e6 / r['s']:.1f} MB/s, RSS {r['rss_kb'] / 1024:.0f} MB) + sync "
            f"{flush:.1f}s" + (f", into tmpfs {tmpfs_s:.1f}s" if tmpfs_s else "") + ", "
            f"stored {stored / 1e6:.0f} MB, restored {restored / 1e6:.0f} MB")
        delete_prefix(tools, store, "bk", server, s3fs_root)
    return out


def stored_size(tools, store, prefix, server, s3fs_root):
    if store == "file" or s3fs_root:
        root = os.path.join(tools.filestore if store == "file" else
                            os.path.join(s3fs_root, tools.bucket), prefix, server)
        return sum(os.lstat(os.path.join(d, n)).st_size for d, _s, fs in os.walk(root)
                   for n in fs)
    s3 = s3client(tools.endpoint)
    r = s3.list_objects_v2(Bucket=tools.bucket, Prefix=f"{prefix}/{server}/")
    return sum(o["Size"] for o in r.get("Contents", []))


# --------------------------------------------------------------------------------------------
# Report


TARGETS = [
    # id, description, metric, how to read it, threshold
    ("fixed", "wal-archive fixed cost >= 30x lower", "wal_archive_history_ms", "advantage", 30),
    ("segment", "16 MiB segment, same compression, >= 15x faster (every compression)",
     "wal_archive_16MiB_*", "advantage_min", 15),
    ("sustained_mp", "sustained archiving >= 20x segments/s with --max-parallel 8",
     "sustained_*_mp8", "advantage_each", 20),
    ("sustained", "sustained archiving >= 10x segments/s without --max-parallel",
     "sustained_*_seg_per_s", "advantage_each", 10),
    ("backup_none", "backup throughput >= 3x uncompressed", "backup_none_MBps", "advantage", 3),
    ("backup_gzip", "backup throughput gzip >= 10x (our default level)", "backup_gzip_MBps",
     "advantage", 10),
    ("backup_gzip_same", "backup throughput gzip >= 2x at the same level (9) on 2 cores",
     "backup_gzip9_MBps", "advantage", 2),
    ("restore_comp", "restore >= 2x on compressed backups (every compression)",
     "restore_*_MBps", "advantage_min_compressed", 2),
    ("restore_comp_durable", "restore >= 2x on compressed backups, both flushed to disk "
     "(every compression)", "durable_restore_*_MBps", "advantage_min_compressed", 2),
    ("restore_comp_tmpfs", "restore >= 2x on compressed backups, both into tmpfs "
     "(every compression)", "tmpfs_restore_*_MBps", "advantage_min_compressed", 2),
    ("rss_wal", "peak RSS wal-archive <= 15 MB", "rss:barman-cloud-wal-archive", "rss", 15),
    ("rss_backup", "peak RSS backup <= 200 MB", "rss:barman-cloud-backup", "rss", 200),
]


def evaluate_targets(res):
    by_id = {m["id"]: m for m in res.metrics}
    out = []
    for tid, desc, metric, how, thr in TARGETS:
        value, met, note = None, None, ""
        if how == "advantage":
            m = by_id.get(metric)
            if m and "advantage" in m:
                value = m["advantage"]
                met = value >= thr
        elif how in ("advantage_min", "advantage_min_compressed"):
            pre = metric.split("*")[0]
            post = metric.split("*")[1]
            ms = [m for m in res.metrics if m["id"].startswith(pre) and m["id"].endswith(post)
                  and "advantage" in m]
            if how == "advantage_min_compressed":
                ms = [m for m in ms if "_none_" not in m["id"]]
            if ms:
                worst = min(ms, key=lambda m: m["advantage"])
                value = worst["advantage"]
                met = value >= thr
                note = "worst: " + worst["label"] + "; " + ", ".join(
                    f"{m['label'].split()[-1] if 'wal-archive' in m['label'] else m['label']}"
                    f" {m['advantage']:.1f}x" for m in ms)
        elif how == "advantage_each":
            pre, post = metric.split("*")
            for m in res.metrics:
                if m["id"].startswith(pre) and m["id"].endswith(post) and "advantage" in m:
                    out.append({"target": f"{desc} [{m['label']}]", "value": m["advantage"],
                                "threshold": thr, "met": m["advantage"] >= thr, "note": ""})
            continue
        elif how == "rss":
            cmd = metric.split(":")[1]
            v = [kb for (tool, c), kb in res.rss.items() if c == cmd and tool.startswith("ours")]
            if v:
                value = max(v) / 1024
                met = value <= thr
        out.append({"target": desc, "value": value, "threshold": thr, "met": met,
                    "note": note})
    return out


def rss_row(label, o, b, f):
    """A table row of peak RSS in KiB: ours, Barman's, ours on file://."""
    mb = lambda kb: fmt(kb / 1024 if kb else None, "MB")  # noqa: E731
    ratio = (o / b) if (o and b) else None
    return (label, "MB", mb(o), mb(b), "-" if ratio is None else f"{ratio:.3g}",
            "-" if ratio is None else f"{1 / ratio:.1f}x", mb(f))


def table(res):
    rows = [("metric", "unit", "ours", "Barman", "ours/Barman", "better by", "ours file://")]
    for m in res.metrics:
        ratio = m.get("ratio_ours_over_barman")
        adv = m.get("advantage")
        rows.append((m["label"], m["unit"], fmt(m["ours"], m["unit"]),
                     fmt(m["barman"], m["unit"]),
                     "-" if ratio is None else f"{ratio:.3g}",
                     "-" if adv is None else f"{adv:.1f}x",
                     fmt(m.get("ours_file"), m["unit"])))
    for m in res.metrics:
        if m["id"] not in ("wal_archive_history_ms", "wal_archive_16MiB_none_ms",
                           "wal_archive_16MiB_gzip_ms", "wal_restore_cold_none_ms"):
            continue
        rss = m["peak_rss_kb"]
        rows.append(rss_row(f"peak RSS {m['label']}", rss.get("ours"), rss.get("barman"),
                            rss.get("ours-file")))
    cmds = sorted({c for (_t, c) in res.rss})
    for c in cmds:
        o = max([kb for (t, cc), kb in res.rss.items() if cc == c and t == "ours"], default=None)
        rows.append(rss_row(f"peak RSS {c} (max of all runs)", o, res.rss.get(("barman", c)),
                            res.rss.get(("ours-file", c))))
    return markdown_rows(rows)


def cpu_table(res):
    """Per metric, the CPU each tool used and what the server used while it ran (medians):
    on these 2 cores the server competes with the tool, so a wall-clock ratio can be the
    server's speed more than either tool's."""
    rows = [("metric", "CPU unit", "ours", "server during ours", "Barman",
             "server during Barman", "ours/Barman (own CPU)", "less CPU by")]
    for m in res.metrics:
        cpu = m.get("cpu_median_s", {})
        o, b = cpu.get("ours"), cpu.get("barman")
        if not (o and b):
            continue
        scale, unit = (1e3, "ms") if m["unit"] == "ms" else (1, "s")
        v = lambda x: "-" if x is None else f"{x * scale:.3g}"  # noqa: E731
        ratio = o["client_s"] / b["client_s"] if b["client_s"] else None
        rows.append((m["label"], unit, v(o["client_s"]), v(o["server_s"]), v(b["client_s"]),
                     v(b["server_s"]), "-" if ratio is None else f"{ratio:.3g}",
                     "-" if not ratio else f"{1 / ratio:.1f}x"))
    return markdown_rows(rows) if len(rows) > 1 else ""


def markdown_rows(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(r))]
        lines.append("| " + " | ".join(cells) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":"
                                        for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--bucket", default="bench")
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--endpoint-dl", default="")
    ap.add_argument("--s3-server", required=True)
    ap.add_argument("--s3fs-root", default="")
    ap.add_argument("--server-pid", type=int, default=0, help="upload server, for its CPU")
    ap.add_argument("--server-dl-pid", type=int, default=0, help="download server")
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--command", default="benches/run.sh")
    a = ap.parse_args()

    quick = os.environ.get("BENCH_QUICK", "0") == "1"
    scale = int(os.environ.get("BENCH_SCALE", "2" if quick else "70"))
    reps = int(os.environ.get("BENCH_REPS", "2" if quick else "5"))
    reps_fixed = int(os.environ.get("BENCH_REPS_FIXED", "3" if quick else "11"))
    nseg = int(os.environ.get("BENCH_RESTORE_SEGMENTS", "4" if quick else "16"))
    parallel = int(os.environ.get("BENCH_PARALLEL", "8"))
    backlog = int(os.environ.get("BENCH_BACKLOG", "8" if quick else "48"))
    window = float(os.environ.get("BENCH_WINDOW", "15" if quick else "40"))
    seg_rate = float(os.environ.get("BENCH_LOAD_SEG_RATE", "1"))
    sus_comps = os.environ.get("BENCH_SUSTAINED_COMPRESSIONS", "none gzip").split()
    backup_comps = os.environ.get("BENCH_BACKUP_COMPRESSIONS", "none gzip snappy lz4").split()
    barman_backup_comps = os.environ.get("BENCH_BARMAN_BACKUP_COMPRESSIONS",
                                         " ".join(backup_comps)).split()
    file_ceiling = os.environ.get("BENCH_FILE", "1") == "1"
    backup_reps = int(os.environ.get("BENCH_BACKUP_REPS", "1" if quick else "3"))
    phases = os.environ.get("BENCH_PHASES", "archive restore sustained backup").split()
    # Backups are also restored into tmpfs (the tools without this VM's disk) when it has room.
    restore_tmpfs = (os.environ.get("BENCH_RESTORE_TMPFS", "1") == "1"
                     and os.path.isdir("/dev/shm")
                     and shutil.disk_usage("/dev/shm").free > 4e9)

    work = a.work
    filestore = os.path.join(work, "filestore")
    os.makedirs(filestore, exist_ok=True)
    for sub in ("", "wa", "wr", "sus", "bk", "bkwal"):
        # file:// "buckets" must exist; archive_command (as postgres) writes to two of them.
        os.makedirs(os.path.join(filestore, sub), exist_ok=True)
        os.chmod(os.path.join(filestore, sub), 0o777)
    tools = Tools(work, a.endpoint, a.endpoint_dl or a.endpoint, a.bucket, filestore,
                  {"s3": a.server_pid, "s3dl": a.server_dl_pid or a.server_pid})
    res = Results()
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": a.command,
        "quick": quick,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "kernel": platform.release(),
        "load_before": loadavg(),
        "s3_server": a.s3_server,
        "s3_endpoint": a.endpoint,
        "s3_download_endpoint": a.endpoint_dl or a.endpoint,
        "ours_version": subprocess.run([tools.ours("barman-cloud-wal-archive"), "--version"],
                                       capture_output=True, text=True).stdout.strip(),
        "barman_version": subprocess.run([tools.barman("barman-cloud-wal-archive"),
                                          "--version"], capture_output=True,
                                         text=True).stdout.strip()
        or subprocess.run([tools.barman("barman-cloud-wal-archive"), "--version"],
                          capture_output=True, text=True).stderr.strip(),
        "postgres": subprocess.run([f"{PG_BIN}/postgres", "--version"], capture_output=True,
                                   text=True).stdout.strip(),
        "settings": {"scale": scale, "reps": reps, "reps_fixed": reps_fixed,
                     "restore_segments": nseg, "parallel": parallel, "backlog": backlog,
                     "window_s": window, "load_seg_rate": seg_rate,
                     "sustained_compressions": sus_comps, "backup_compressions": backup_comps,
                     "barman_backup_compressions": barman_backup_comps,
                     "file_ceiling": file_ceiling, "phases": phases,
                     "restore_tmpfs": restore_tmpfs,
                     "backup_reps": backup_reps},
    }
    log(f"load {meta['load_before']}; S3 server {a.s3_server} at {a.endpoint}")
    calibrate_time_cpu()
    meta["time_overhead_cpu_ms"] = round(TIME_CPU_S * 1e3, 2)
    sustained = backups = None
    pg = Postgres(work)
    stop_sampler = threading.Event()
    threading.Thread(target=sample_load, args=(stop_sampler,), daemon=True).start()
    try:
        pg.init()
        pg.start()
        log(f"pgbench -i -s {scale} (archiving paused)")
        t0 = time.monotonic()
        pg.pgbench(["-i", "-s", scale, "-q"], check=True)
        pg.q("CHECKPOINT")
        log(f"  initialised in {time.monotonic() - t0:.0f}s; database "
            f"{pg.q1('SELECT pg_size_pretty(pg_database_size(current_database()))')}")
        pg.drain(tools)
        walsrc, names = prepare_wal_samples(pg, work, nseg)
        pg.drain(tools)
        sh(["sync"])
        if "archive" in phases:
            bench_wal_archive(res, tools, walsrc, names, reps, reps_fixed, work, file_ceiling)
            clear_upload_server(tools, a.s3fs_root)
        sh(["sync"])
        if "restore" in phases:
            bench_wal_restore(res, tools, walsrc, names, max(reps, 3),
                              max(1, reps // 2 + (1 if quick else 0)), work, file_ceiling,
                              parallel)
        if "sustained" in phases:
            mp = ["--max-parallel", str(parallel)]
            configs = []
            for c in sus_comps:
                configs += [(f"barman-{c}", c, "barman", "s3", []),
                            (f"ours-{c}", c, "ours", "s3", []),
                            (f"ours-{c}-mp{parallel}", c, "ours", "s3", mp)]
                if file_ceiling:
                    configs.append((f"ours-{c}-mp{parallel}-file", c, "ours", "file", mp))
            sustained, rate, per_tx = bench_sustained(res, tools, pg, work, configs, backlog,
                                                      window, seg_rate)
            clear_upload_server(tools, a.s3fs_root)
            res.extra["sustained"] = {"load_tx_per_s": rate, "wal_bytes_per_tx": per_tx,
                                      "configs": sustained}
            for c in sus_comps:
                b = sustained[f"barman-{c}"]["seg_per_s"]
                f = sustained.get(f"ours-{c}-mp{parallel}-file", {}).get("seg_per_s")
                res.add(f"sustained_{c}_seg_per_s", f"sustained archiving {c}, segments/s",
                        "seg/s", "higher", sustained[f"ours-{c}"]["seg_per_s"], b)
                res.add(f"sustained_{c}_mp8",
                        f"sustained archiving {c} --max-parallel {parallel}, segments/s",
                        "seg/s", "higher", sustained[f"ours-{c}-mp{parallel}"]["seg_per_s"], b,
                        f)
        if "backup" in phases:
            # pg_backup_stop waits for its WAL to be archived: a fast archive_command for both.
            pg.set_archive_command(
                f"{tools.ours('barman-cloud-wal-archive')} file://{filestore}/bkwal pg %p")
            pg.q("VACUUM")
            pg.q("CHECKPOINT")
            plan = []
            for comp in backup_comps:
                if comp in barman_backup_comps:
                    plan.append(("barman", "s3", comp))
                plan.append(("ours", "s3", comp))
                if comp == "gzip":
                    plan.append(("ours", "s3", "gzip9"))
                if file_ceiling and comp in ("none", "lz4"):   # gzip: CPU-bound, same as S3
                    plan.append(("ours", "file", comp))
            tmpfs_root = tempfile.mkdtemp(prefix="bcrs-restore-", dir="/dev/shm") \
                if restore_tmpfs else None
            try:
                backups = bench_backup_restore(res, tools, pg, work, plan,
                                               a.s3fs_root or None, backup_reps, tmpfs_root)
            finally:
                if tmpfs_root:
                    shutil.rmtree(tmpfs_root, ignore_errors=True)
            res.extra["backups"] = backups

            def med(tool, store, comp, field):
                xs = [x[field] for x in backups if x["tool"] == tool and x["store"] == store
                      and x["compression"] == comp]
                return median(xs)

            n = f"median of {backup_reps}" if backup_reps > 1 else "1 run"
            for mid, label, field in (("backup_{}_MBps", "backup {} ({})", "backup_MBps"),
                                      ("restore_{}_MBps", "restore {} ({})", "restore_MBps"),
                                      ("durable_restore_{}_MBps", "restore {} + sync -f ({})",
                                       "restore_durable_MBps"),
                                      ("tmpfs_restore_{}_MBps", "restore {} into tmpfs ({})",
                                       "tmpfs_restore_MBps")):
                if field == "tmpfs_restore_MBps" and not restore_tmpfs:
                    continue
                run = {"backup_MBps": "backup", "tmpfs_restore_MBps": "tmpfs_restore"}.get(
                    field, "restore")
                for comp in backup_comps:
                    rss_field = "backup_rss_kb" if field == "backup_MBps" else "restore_rss_kb"
                    res.cur = {}
                    res.cur_cpu = {}
                    for t in ("ours", "barman", "ours-file"):
                        xs = [x for x in backups if x["tool"] == t.split("-")[0]
                              and x["store"] == ("file" if t.endswith("file") else "s3")
                              and x["compression"] == comp]
                        if xs:
                            res.cur[t] = max(x[rss_field] for x in xs)
                            res.cur_cpu[t] = [(x[f"{run}_cpu_s"], x[f"{run}_server_cpu_s"])
                                              for x in xs]
                    res.add(mid.format(comp), label.format(comp, n), "MB/s", "higher",
                            med("ours", "s3", comp, field), med("barman", "s3", comp, field),
                            med("ours", "file", comp, field))
                if field == "backup_MBps" and "gzip" in backup_comps:
                    res.cur = {}
                    res.cur_cpu = {}
                    res.add("backup_gzip9_MBps", f"backup gzip, ours at level 9 too ({n})",
                            "MB/s", "higher", med("ours", "s3", "gzip9", field),
                            med("barman", "s3", "gzip", field))
    except BaseException:
        # Whatever went wrong, PostgreSQL's own account of it goes with the traceback.
        try:
            with open(pg.log, errors="replace") as f:
                tail = f.readlines()[-40:]
            print("---- last lines of the PostgreSQL log ----\n" + "".join(tail), file=sys.stderr)
        except OSError:
            pass
        raise
    finally:
        pg.stop()
        stop_sampler.set()
    meta["load_after"] = loadavg()
    loads = [x[1] for x in LOAD_SAMPLES]
    meta["load_1min_during"] = {"min": min(loads, default=None), "max": max(loads, default=None),
                                "median": median(loads), "samples_every_10s": LOAD_SAMPLES}
    meta["elapsed_s"] = round(time.monotonic() - T_START)
    targets = evaluate_targets(res)
    tbl = table(res)
    cpu_tbl = cpu_table(res)
    tlines = []
    for t in targets:
        v = "-" if t["value"] is None else (f"{t['value']:.1f} MB" if "RSS" in t["target"]
                                            else f"{t['value']:.1f}x")
        state = {True: "MET", False: "not met", None: "not measured"}[t["met"]]
        tlines.append(f"- {t['target']}: {v} — **{state}**" +
                      (f" ({t['note']})" if t["note"] else ""))
    sus_lines = []
    if sustained:
        sus_lines.append(f"Sustained archiving (load: pgbench custom bulk-INSERT "
                         f"script paced at {res.extra['sustained']['load_tx_per_s']} tx/s ≈ "
                         f"{seg_rate} segment/s; backlog built first with archiving paused):")
        sus_lines.append("")
        sus_lines.append("| config | seg/s | initial backlog | drained after | backlog at end "
                         "| max backlog | archived | failures | backlog every 5 s |")
        sus_lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for name, s in sustained.items():
            series = [r for r in s["backlog_series_t_ready_archived_failed"]
                      if round(r[0]) % 5 == 0]
            seen, pts = set(), []
            for r in series:
                if round(r[0]) not in seen:
                    seen.add(round(r[0]))
                    pts.append(str(r[1]))
            sus_lines.append(
                f"| {name} | {s['seg_per_s']:.2f} | {s['initial_backlog']} | "
                f"{'%.1f s' % s['drained_at_s'] if s['drained_at_s'] else 'not within %.0f s' % s['seconds']} | "
                f"{s['final_backlog']} | {s['max_backlog']} | {s['archived']} | {s['failures']} | "
                f"{' '.join(pts)} |")
    bk_lines = []
    if backups:
        bk_lines.append("Backups and restores, every run (MB/s = bytes of PGDATA without pg_wal "
                        "/ wall time; the restore is measured from the download server):")
        bk_lines.append("")
        bk_lines.append("| round | tool | store | compression | backup s | backup MB/s | backup RSS MB | "
                        "restore s | restore MB/s | restore RSS MB | sync -f after s | stored MB |")
        bk_lines.append("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in backups:
            bk_lines.append(
                f"| {x['round'] + 1} | {x['tool']} | {x['store']} | {x['compression']} | "
                f"{x['backup_s']:.1f} | "
                f"{x['backup_MBps']:.1f} | {x['backup_rss_kb'] / 1024:.0f} | "
                f"{x['restore_s']:.1f} | {x['restore_MBps']:.1f} | "
                f"{x['restore_rss_kb'] / 1024:.0f} | {x['flush_after_restore_s']:.1f} | "
                f"{x['stored_bytes'] / 1e6:.0f} |")
    report = "\n".join([
        f"# barman-cloud-rs vs Barman {meta['barman_version']}: benchmark",
        "",
        f"- date: {meta['date']}; command: `{meta['command']}`"
        + (" (BENCH_QUICK=1)" if quick else ""),
        f"- machine: {meta['cpus']} CPUs, {meta['mem_gb']} GB RAM, kernel {meta['kernel']}; "
        f"load average before {meta['load_before']}, after {meta['load_after']}, 1-minute "
        f"load during the run min {meta['load_1min_during']['min']} / median "
        f"{meta['load_1min_during']['median']} / max {meta['load_1min_during']['max']} "
        "(shared machine: other engineers' builds and tests ran at the same time; our own "
        "benchmark adds about 1-2)",
        f"- S3 server: {a.s3_server} on loopback; ours: {meta['ours_version']}; "
        f"{meta['postgres']}",
        f"- settings: {json.dumps(meta['settings'])}",
        f"- elapsed: {meta['elapsed_s']} s",
        "",
        "Times are medians of repeated runs (wall clock around `/usr/bin/time -v`, peak RSS "
        "from it); `ours/Barman` is the plain ratio of the two columns, `better by` how many "
        "times ours is faster, higher or smaller; `ours file://` is our own ceiling on a local "
        "directory (fsynced). Every run archives under a fresh server name, so both tools "
        "really upload. Both tools run as root with options before positionals; Barman's "
        "defaults otherwise (backup `-J 2`; tarball gzip: Barman level 9 as Python's "
        "tarfile writes it, ours at its own default level).",
        "",
        "- wal-archive: one `.history` file (fixed cost), then one real 16 MiB segment written "
        "under pgbench's TPC-B-like load, per compression.",
        "- wal-restore: segments archived by ours (byte-compatible), restored to a file; cold "
        "= one call, no spool; `--parallel` = every segment of a 16-segment run restored in "
        "order with `--parallel 8` and a fresh spool dir (what PostgreSQL's restore_command "
        "does), time per segment.",
        "- sustained: PostgreSQL 15 with the tool as `archive_command`: a backlog of `.ready` "
        "segments is built with archiving paused, then the command is switched on while "
        "pgbench keeps writing at a fixed rate; segments/s = initial backlog / time until "
        "the archiver has archived that many (or archived / window when it never drains).",
        "- backup/restore: `barman-cloud-backup --immediate-checkpoint` of the pgbench "
        "database (hot, in the page cache), then `barman-cloud-restore` of that backup into "
        "an empty directory; MB/s over PGDATA without pg_wal. Ours fsyncs what it restores, "
        "Barman does not: `+ sync -f` adds a timed syncfs after either restore. `into "
        "tmpfs`: the same backup restored again into /dev/shm, without this VM's disk (its "
        "ext4 has no journal and slows file creation after deletions; see benches/README.md).",
        "",
        tbl,
        "",
        "Targets:",
        "",
        *tlines,
        "",
        *(["Where the time goes: CPU time (user + system) of each tool's process and of the "
           "S3 server process while that tool ran, medians of the same runs (the tool's CPU "
           f"from rusage, less the {meta['time_overhead_cpu_ms']} ms that `/usr/bin/time` costs "
           "around `/bin/true`; the server's from /proc, in 10 ms ticks). The server runs on "
           "the same 2 cores (and hashes every upload with MD5 for its ETag), so where its "
           "CPU is close to the wall time, the server sets the pace; the tools' own CPU is "
           "what carries over to a remote object store.", "", cpu_tbl, ""] if cpu_tbl else []),
        *sus_lines,
        "",
        *bk_lines,
        "",
    ])
    print()
    print(report)
    result = {"meta": meta, "metrics": res.metrics,
              "peak_rss_kb": [{"tool": t, "command": c, "kb": kb}
                              for (t, c), kb in sorted(res.rss.items())],
              "targets": targets, **res.extra}
    with open(a.json, "w") as f:
        json.dump(result, f, indent=1)
    with open(a.md, "w") as f:
        f.write(report)
    log(f"wrote {a.json} and {a.md}")


if __name__ == "__main__":
    main()
