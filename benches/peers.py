#!/usr/bin/env python3
"""Ours against pgBackRest 2.45 and Barman 3.19.1: same machine, same server, same data.

Run through benches/peers.sh, which builds the release binaries, starts s3s-fs with stunnel
in front of it (a throwaway CA; every tool verifies the certificate and the host name) and
calls this with Barman's venv python. Every tool runs as the postgres user, as
archive_command runs it, switched to by this process before exec (no runuser in the timing),
under /usr/bin/time -v (peak RSS of the largest process); wall time around it with a
monotonic clock. Each repetition archives under a new name, so every tool really uploads.
"""

import argparse
import datetime
import json
import os
import platform
import pwd
import shutil
import subprocess
import sys
import threading

import bench
from bench import Failed, SEGMENT, log, median, timed

USER = "postgres"
PGBACKREST = shutil.which("pgbackrest") or "/usr/bin/pgbackrest"
# Our flag -> pgBackRest's --compress-type. Each tool at its default level.
PGBR_COMPRESSION = {"none": "none", "gzip": "gz", "lz4": "lz4", "zstd": "zst"}
FLAGS = {"none": [], "gzip": ["--gzip"], "lz4": ["--lz4"], "zstd": ["--zstd"],
         "snappy": ["--snappy"]}


def own(path):
    """Makes `path` (a directory) belong to the user the tools run as."""
    os.makedirs(path, exist_ok=True)
    pw = pwd.getpwnam(USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


class Rig:
    """The three tools and where each keeps its archive."""

    def __init__(self, a, pg):
        self.work = a.work
        self.bin = os.path.join(a.work, "bin")
        # Uploads go to "s3" (s3s-fs), downloads come from "s3dl" (moto); both behind TLS.
        self.tls = {"s3": a.endpoint, "s3dl": a.endpoint_dl}
        self.plain = {"s3": a.endpoint_plain, "s3dl": a.endpoint_dl_plain}
        self.ca = a.ca
        self.s3fs = os.path.join(a.s3fs_root, "bench")
        self.server_pids = [a.server_pid] if a.server_pid else []
        self.pg = pg
        self.filestore = own(os.path.join(a.work, "filestore"))
        pgbr = own(os.path.join(a.work, "pgbackrest"))
        for d in ("lock", "log", "spool", "posix"):
            own(os.path.join(pgbr, d))
        self.env = dict(os.environ)
        self.env.update({"HOME": pwd.getpwnam(USER).pw_dir, "AWS_CA_BUNDLE": a.ca})
        self.env.pop("BARMAN_HOOK", None)
        # PostgreSQL started by systemd passes neither to archive_command; a shell that has
        # them set changes where every tool reads its CA roots from.
        for var in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
            self.env.pop(var, None)
        self.conf = {"s3": self._pgbr_conf(pgbr, "s3"), "s3dl": self._pgbr_conf(pgbr, "s3dl"),
                     "file": self._pgbr_conf(pgbr, "file")}
        self.n = 0

    def _pgbr_conf(self, root, kind):
        if kind == "file":
            repo = f"repo1-type=posix\nrepo1-path={root}/posix\n"
        else:
            host, port = self.tls[kind].split("//", 1)[1].split(":")
            repo = f"""repo1-type=s3
repo1-path=/pgbackrest
repo1-s3-bucket=bench
repo1-s3-endpoint={host}
repo1-storage-port={port}
repo1-s3-uri-style=path
repo1-s3-region={os.environ.get('AWS_DEFAULT_REGION', 'us-east-1')}
repo1-s3-key={os.environ['AWS_ACCESS_KEY_ID']}
repo1-s3-key-secret={os.environ['AWS_SECRET_ACCESS_KEY']}
repo1-storage-ca-file={self.ca}
"""
        path = os.path.join(root, f"{kind}.conf")
        with open(path, "w") as f:
            f.write(f"""[global]
{repo}log-level-console=warn
log-level-file=off
log-path={root}/log
lock-path={root}/lock
spool-path={root}/spool
process-max=2
start-fast=y
""")
        os.chmod(path, 0o644)
        return path

    def stanza(self, name, create_in):
        """Declares stanza `name` for our PostgreSQL in every config and creates it in the
        repos of `create_in` (the download repo gets byte copies of the upload repo's)."""
        for conf in self.conf.values():
            with open(conf, "a") as f:
                f.write(f"\n[{name}]\npg1-path={self.pg.data}\npg1-socket-path={self.pg.sock}\n")
        for store in create_in:
            run(self.pgbr(store, name, ["stanza-create"]), self.env)

    def pgbr(self, store, stanza, args):
        return [PGBACKREST, f"--config={self.conf[store]}", f"--stanza={stanza}"] + args

    def ours(self, name, store, prefix, options, positional, tool="ours", plain=False):
        exe = (os.path.join(self.bin, name) if tool == "ours"
               else os.path.join(bench.BARMAN_BIN, name))
        if store == "file":
            root = own(os.path.join(self.filestore, prefix))
            return [exe] + options + [f"file://{root}"] + positional
        ep = (self.plain if plain else self.tls)[store]
        return [exe, "--endpoint-url", ep] + options + [f"s3://bench/{prefix}"] + positional

    def unique(self):
        self.n += 1
        return self.n

    def timed(self, cmd):
        before = [bench.process_cpu_s(p) for p in self.server_pids]
        r = timed(cmd, env=self.env, user=USER)
        after = [bench.process_cpu_s(p) for p in self.server_pids]
        r["server_cpu_s"] = (sum(after) - sum(before)) if None not in before + after else None
        return r


def run(cmd, env):
    p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                       user=USER, group=USER, extra_groups=[])
    if p.returncode != 0:
        raise Failed(f"exit {p.returncode}: {' '.join(map(str, cmd))}\n{p.stdout[-2000:]}"
                     f"{p.stderr[-2000:]}")
    return p.stdout


class Table:
    """Rows of ours / pgBackRest (and Barman where measured)."""

    def __init__(self):
        self.rows = []

    def add(self, group, label, unit, better, values, **detail):
        """values: tool -> list of samples (medians are taken)."""
        med = {t: median(v) for t, v in values.items() if v}
        row = {"group": group, "label": label, "unit": unit, "better": better,
               "median": med, "runs": values}
        row.update(detail)
        o, p = med.get("ours"), med.get("pgbackrest")
        if o is not None and p:
            row["ours_over_pgbackrest"] = o / p
            row["worse"] = (o > p) if better == "lower" else (o < p)
        self.rows.append(row)
        log(f"  {label}: " + "  ".join(f"{t} {bench.fmt(v, unit)}" for t, v in med.items())
            + (f"  ours/pgBackRest {row['ours_over_pgbackrest']:.2f}"
               if "ours_over_pgbackrest" in row else ""))
        return row


def ms(r):
    return r["s"] * 1e3


def link_as(src, dirname, name):
    """A hard link of `src` named `name` (the tools take the WAL name from the path)."""
    os.makedirs(dirname, exist_ok=True)
    dst = os.path.join(dirname, name)
    if not os.path.exists(dst):
        os.link(src, dst)
    return dst


def seg_name(k):
    return f"00000001{0x1000 + k:08X}00000001"


def bench_archive(t, rig, seg, reps, reps_fixed, barman):
    work = os.path.join(rig.work, "push")
    os.makedirs(work, exist_ok=True)
    hist_src = os.path.join(rig.work, "history.src")
    with open(hist_src, "w") as f:
        f.write("1\t0/5000000\tbefore 2026-01-01 00:00:00+00\n")
    os.chmod(hist_src, 0o644)

    def history():
        return link_as(hist_src, work, f"{0x100 + rig.unique():08X}.history")

    for store in ("s3", "file"):
        where = "S3 over TLS" if store == "s3" else "local dir (ours file://, pgBackRest posix)"
        log(f"archive: fixed cost, {where}")
        v = {"ours": [], "pgbackrest": [], "barman": []}
        cpu = {"ours": [], "pgbackrest": [], "barman": []}
        for _ in range(reps_fixed):
            for tool in ("ours", "pgbackrest", "barman"):
                if tool == "barman" and not (barman and store == "s3"):
                    continue
                h = history()
                cmd = (rig.pgbr(store, "wal", ["archive-push", h]) if tool == "pgbackrest"
                       else rig.ours("barman-cloud-wal-archive", store, "wal", [], ["wal", h],
                                     tool=tool))
                r = rig.timed(cmd)
                v[tool].append(ms(r))
                cpu[tool].append(r["cpu_s"] * 1e3)
        t.add("archive", f"archive fixed cost (.history), {where}", "ms", "lower", v,
              cpu_ms={k: median(x) for k, x in cpu.items() if x})
        if store == "s3":
            v = {"ours": []}
            for _ in range(reps_fixed):
                v["ours"].append(ms(rig.timed(rig.ours(
                    "barman-cloud-wal-archive", "s3", "wal", [], ["wal", history()],
                    plain=True))))
            t.add("archive", "archive fixed cost (.history), ours over plain HTTP (reference)",
                  "ms", "lower", v)

        comps = ["none", "gzip", "lz4", "zstd"]
        for comp in comps:
            log(f"archive: 16 MiB segment, {comp}, {where}")
            v = {"ours": [], "pgbackrest": [], "barman": []}
            for _ in range(reps):
                for tool in ("ours", "pgbackrest", "barman"):
                    if tool == "barman" and not (barman and store == "s3"):
                        continue
                    s = link_as(seg, work, seg_name(rig.unique()))
                    cmd = (rig.pgbr(store, "wal", [f"--compress-type={PGBR_COMPRESSION[comp]}",
                                                   "archive-push", s])
                           if tool == "pgbackrest" else
                           rig.ours("barman-cloud-wal-archive", store, "wal", FLAGS[comp],
                                    ["wal", s], tool=tool))
                    v[tool].append(ms(rig.timed(cmd)))
            t.add("archive", f"archive 16 MiB segment, {comp}, {where}", "ms", "lower", v)
        if store == "s3":
            v = {"ours": []}
            for _ in range(reps):
                s = link_as(seg, work, seg_name(rig.unique()))
                v["ours"].append(ms(rig.timed(rig.ours(
                    "barman-cloud-wal-archive", "s3", "wal", [], ["wal", s], plain=True))))
            t.add("archive", "archive 16 MiB segment, none, ours over plain HTTP (reference)",
                  "ms", "lower", v)


def bench_restore(t, rig, seg, reps, barman):
    """Every tool archives one segment per compression under its own name, then restores it
    `reps` times into a new file."""
    work = os.path.join(rig.work, "push")
    dest = own(os.path.join(rig.work, "restored"))
    for store in ("s3dl", "file"):
        where = "S3 over TLS" if store == "s3dl" else "local dir"
        for comp in ("none", "gzip", "lz4", "zstd"):
            log(f"wal-restore: 16 MiB, {comp}, {where}")
            names = {}
            for tool in ("ours", "pgbackrest", "barman"):
                if tool == "barman" and not (barman and store == "s3dl"):
                    continue
                n = seg_name(rig.unique())
                s = link_as(seg, work, n)
                if tool == "pgbackrest":
                    run(rig.pgbr(store, "wal", [f"--compress-type={PGBR_COMPRESSION[comp]}",
                                                "archive-push", s]), rig.env)
                else:
                    run(rig.ours("barman-cloud-wal-archive", store, "wal", FLAGS[comp],
                                 ["wal", s], tool=tool), rig.env)
                names[tool] = n
            v = {tool: [] for tool in names}
            for i in range(reps):
                for tool, n in names.items():
                    out = os.path.join(dest, f"{tool}-{i}")
                    cmd = (rig.pgbr(store, "wal", ["archive-get", n, out])
                           if tool == "pgbackrest" else
                           rig.ours("barman-cloud-wal-restore", store, "wal", [],
                                    ["wal", n, out], tool=tool))
                    v[tool].append(ms(rig.timed(cmd)))
                    if os.path.getsize(out) != SEGMENT:
                        raise Failed(f"{tool} restored {os.path.getsize(out)} bytes")
                    os.unlink(out)
            t.add("restore", f"wal-restore 16 MiB, {comp}, {where}", "ms", "lower", v)
        if store == "s3dl":
            n = seg_name(rig.unique())
            run(rig.ours("barman-cloud-wal-archive", "s3dl", "wal", [],
                         ["wal", link_as(seg, work, n)]), rig.env)
            v = {"ours": []}
            for i in range(reps):
                out = os.path.join(dest, f"plain-{i}")
                v["ours"].append(ms(rig.timed(rig.ours(
                    "barman-cloud-wal-restore", "s3dl", "wal", [], ["wal", n, out],
                    plain=True))))
                os.unlink(out)
            t.add("restore", "wal-restore 16 MiB, none, ours over plain HTTP (reference)", "ms",
                  "lower", v)


def bench_sustained(t, rig, pg, backlog, window, seg_rate, stores, parallel):
    script = bench.bulk_script(pg, rig.work)
    rate, _per_tx = bench.pace(pg, script, seg_rate)
    env = " ".join(f"{k}={rig.env[k]}" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                 "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"))
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    for store in stores:
        where = "S3 over TLS, none" if store == "s3" else "local dir, none"
        spool = own(os.path.join(rig.work, f"sustained-spool-{store}"))
        ours = " ".join(rig.ours("barman-cloud-wal-archive", store, "sus",
                                 ["--max-parallel", parallel, "--spool-dir", spool], ["sus", "%p"]))
        pgbr = " ".join(rig.pgbr(store, "wal", ["--archive-async", "--compress-type=none",
                                                "archive-push", "%p"]))
        v = {}
        detail = {}
        for tool, command in (("ours", f"{env} {ours}"), ("pgbackrest", pgbr)):
            m = bench.measure_archiving(pg, rig, f"{tool} {where}", command, script, backlog,
                                        window, rate, command.replace(secret, "***"))
            if m["failures"]:
                raise Failed(f"{tool}: {m['failures']} archive failures")
            v[tool] = [m["seg_per_s"]]
            detail[tool] = m
        t.add("sustained", f"sustained archiving under bulk load, {where} "
              f"(ours --max-parallel {parallel}, pgBackRest archive-async process-max=2)", "seg/s",
              "higher", v, detail=detail)
    pg.drain(rig)
    pg.q("DROP TABLE bench_load")


def copy_to_download(rig, rel):
    """Byte copies of the objects under `rel` from s3s-fs's directory to the download server."""
    s3 = bench.s3client(rig.plain["s3dl"])
    for d, _s, fs in os.walk(os.path.join(rig.s3fs, rel)):
        for n in fs:
            path = os.path.join(d, n)
            with open(path, "rb") as f:
                s3.upload_fileobj(f, "bench", os.path.relpath(path, rig.s3fs))


def delete_from_download(rig, rel):
    s3 = bench.s3client(rig.plain["s3dl"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=rel + "/")
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket="bench", Delete={"Objects": keys})


def tree_bytes(path):
    return sum(os.lstat(os.path.join(d, n)).st_size for d, _s, fs in os.walk(path) for n in fs)


def bench_backup(t, rig, pg, comps, reps):
    size = pg.du()
    log(f"backup/restore: PGDATA without pg_wal is {size / 1e9:.2f} GB")
    conn = ["-h", pg.sock, "-U", "postgres", "--immediate-checkpoint"]
    restore_root = own(os.path.join(rig.work, "restore"))
    results = {c: {"ours": [], "pgbackrest": []} for c in comps}
    for i in range(reps):
        for comp in comps:
            for tool in ("ours", "pgbackrest"):
                name = f"bk{i}{comp}"
                # Each waits for its own archive of the backup's last segment, as users run it.
                if tool == "pgbackrest":
                    rig.stanza(name, ["s3"])
                    pg.set_archive_command(" ".join(rig.pgbr("s3", name, ["archive-push", "%p"])))
                    cmd = rig.pgbr("s3", name, ["--type=full",
                                                f"--compress-type={PGBR_COMPRESSION[comp]}",
                                                "backup"])
                else:
                    pg.set_archive_command(" ".join(
                        [f"{k}={rig.env[k]}" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                       "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE")]
                        + rig.ours("barman-cloud-wal-archive", "s3", "bk", [], [name, "%p"])))
                    cmd = rig.ours("barman-cloud-backup", "s3", "bk", FLAGS[comp] + conn, [name])
                log(f"backup [{tool} {comp}] round {i + 1}/{reps} (load {bench.loadavg()})")
                bench.sh(["sync"])
                b = rig.timed(cmd)
                if tool == "pgbackrest":
                    info = json.loads(run(rig.pgbr("s3", name, ["info", "--output=json"]),
                                          rig.env))
                    label = info[0]["backup"][-1]["label"]
                    stored = tree_bytes(os.path.join(rig.s3fs, "pgbackrest", "backup", name))
                    dest = os.path.join(restore_root, name + "-pgbr")
                    own(dest)
                    os.chmod(dest, 0o700)
                    copied = [f"pgbackrest/backup/{name}", f"pgbackrest/archive/{name}"]
                    rcmd = rig.pgbr("s3dl", name, [f"--pg1-path={dest}", f"--set={label}",
                                                   "restore"])
                else:
                    base = os.path.join(rig.s3fs, "bk", name, "base")
                    label = sorted(os.listdir(base))[-1]
                    stored = tree_bytes(os.path.join(base, label))
                    dest = os.path.join(restore_root, name + "-ours")
                    copied = [f"bk/{name}"]
                    rcmd = rig.ours("barman-cloud-restore", "s3dl", "bk", [],
                                    [name, label, dest])
                for rel in copied:
                    copy_to_download(rig, rel)
                bench.sh(["sync"])
                r = rig.timed(rcmd)
                restored = tree_bytes(dest)
                log(f"  backup {b['s']:.1f}s RSS {b['rss_kb'] / 1024:.0f} MB, stored "
                    f"{stored / 1e6:.0f} MB; restore {r['s']:.1f}s RSS {r['rss_kb'] / 1024:.0f} "
                    f"MB, {restored / 1e6:.0f} MB restored")
                results[comp][tool].append({"backup_s": b["s"], "restore_s": r["s"],
                                            "backup_rss_kb": b["rss_kb"],
                                            "restore_rss_kb": r["rss_kb"],
                                            "backup_cpu_s": b["cpu_s"],
                                            "restore_cpu_s": r["cpu_s"],
                                            "stored_bytes": stored, "restored_bytes": restored})
                shutil.rmtree(dest, ignore_errors=True)
                for rel in copied:
                    shutil.rmtree(os.path.join(rig.s3fs, rel), ignore_errors=True)
                    delete_from_download(rig, rel)
    pg.drain(rig)
    gb = size / 1e9
    for key, label, unit, better, conv in (
            ("backup_s", "backup", "s", "lower", lambda x: x),
            ("restore_s", "restore", "s", "lower", lambda x: x),
            ("backup_rss_kb", "backup peak RSS, largest process", "MB", "lower",
             lambda x: x / 1024),
            ("restore_rss_kb", "restore peak RSS, largest process", "MB", "lower",
             lambda x: x / 1024),
            ("stored_bytes", "backup stored size", "MB", "lower", lambda x: x / 1e6)):
        for comp in comps:
            v = {tool: [conv(x[key]) for x in xs] for tool, xs in results[comp].items()}
            t.add("backup", f"{label} {gb:.2f} GB, S3 over TLS, {comp}", unit, better, v)


def markdown(t, meta):
    lines = [f"# Ours against pgBackRest {meta['pgbackrest']} and Barman 3.19.1", "",
             f"`{meta['command']}` on {meta['date']}, {meta['machine']}. {meta['servers']}", "",
             "| row | ours | pgBackRest | Barman | ours ÷ pgBackRest |",
             "|---|---:|---:|---:|---:|"]
    for r in t.rows:
        m = r["median"]
        unit = r["unit"]
        ratio = r.get("ours_over_pgbackrest")
        rtxt = "" if ratio is None else (f"**{ratio:.2f} (worse)**" if r["worse"]
                                         else f"{ratio:.2f}")
        lines.append(f"| {r['label']} ({unit}) | {bench.fmt(m.get('ours'), unit)} | "
                     f"{bench.fmt(m.get('pgbackrest'), unit)} | "
                     f"{bench.fmt(m.get('barman'), unit)} | {rtxt} |")
    lines += ["", "Medians. Time rows: lower is better, a ratio under 1 is ours faster. "
              "seg/s rows: higher is better. Peak RSS: the largest process of the command "
              "(`/usr/bin/time -v`).", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    for opt in ("--work", "--endpoint", "--endpoint-plain", "--endpoint-dl",
                "--endpoint-dl-plain", "--ca", "--s3fs-root", "--json", "--md", "--command"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--server-pid", type=int, default=0)
    a = ap.parse_args()
    quick = os.environ.get("BENCH_QUICK") == "1"
    reps = int(os.environ.get("BENCH_REPS", 3 if quick else 7))
    reps_fixed = 5 if quick else max(11, reps)
    backup_reps = int(os.environ.get("BENCH_BACKUP_REPS", 1 if quick else 2))
    scale = int(os.environ.get("BENCH_SCALE", 2 if quick else 70))
    phases = os.environ.get("BENCH_PHASES", "archive restore sustained backup").split()
    barman = os.environ.get("BENCH_BARMAN", "1") == "1"
    comps = os.environ.get("BENCH_BACKUP_COMPRESSIONS", "none gzip lz4 zstd").split()

    stop = threading.Event()
    threading.Thread(target=bench.sample_load, args=(stop,), daemon=True).start()
    bench.calibrate_time_cpu()
    pg = bench.Postgres(a.work)
    pg.init()
    pg.start()
    t = Table()
    try:
        rig = Rig(a, pg)
        rig.stanza("wal", ["s3", "s3dl", "file"])
        log(f"pgbench -i -s {scale}")
        pg.pgbench(["-i", "-s", scale, "-q"])
        pg.q("CHECKPOINT")
        if {"archive", "restore"} & set(phases):
            walsrc, names = bench.prepare_wal_samples(pg, a.work, 2)
            seg = os.path.join(walsrc, names[0])
            os.chmod(seg, 0o644)
            pg.drain(rig)
            if "archive" in phases:
                bench_archive(t, rig, seg, reps, reps_fixed, barman)
            if "restore" in phases:
                bench_restore(t, rig, seg, reps, barman)
        if "sustained" in phases:
            bench_sustained(t, rig, pg, 16 if quick else 48, 40, 1,
                            os.environ.get("BENCH_SUSTAINED_STORES", "s3 file").split(),
                            os.environ.get("BENCH_MAX_PARALLEL", "8"))
        if "backup" in phases:
            bench_backup(t, rig, pg, comps, backup_reps)
    finally:
        stop.set()
        pg.stop()
    version = subprocess.run([PGBACKREST, "version"], capture_output=True,
                             text=True).stdout.split()[-1]
    meta = {"command": a.command,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} cores, {platform.platform()}",
            "pgbackrest": version,
            "servers": "Uploads to s3s-fs 0.14.1 (store on tmpfs), downloads from moto 5.2.5 "
                       "(in memory; backups copied over byte for byte), each behind stunnel4 "
                       "(TLS, a test CA; every tool checks the certificate and the host "
                       "name). Local dir: this VM's disk.",
            "load_samples": bench.LOAD_SAMPLES}
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "rows": t.rows}, f, indent=1)
    md = markdown(t, meta)
    with open(a.md, "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    sys.exit(main())
