#!/usr/bin/env python3
"""Our CloudNativePG sidecar against barman-cloud-wal-archive alone, on the S3 emulator.

Run through benches/sidecar.sh (it builds the release binaries, starts moto and calls this
with Barman's venv Python). Reuses bench.py's helpers (`timed`, `Postgres`).

1. Latency of one WAL Archive as CloudNativePG makes it: `cnpg_standin wal-archive PATH` is a
   fresh process per segment doing what CloudNativePG's `manager wal-archive` does (connect to
   the socket, the plugin handshake, one Archive call), through `manager instance`, which
   runs our `barman-cloud-wal-archive`. Next to it: Barman's `barman-cloud-wal-archive` alone
   (what the Go + Python sidecar runs per segment, so its floor) and ours alone. A `.history`
   file (the fixed cost) and a 16 MiB segment, uncompressed; every call uploads a new object.
2. The sidecar's memory (VmRSS of the `manager` process) idle, after the latency runs, and
   sampled while a PostgreSQL 15 under pgbench archives SEGMENTS segments through it with
   `maxParallel` 4 and zstd.
"""

import argparse
import base64
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

PLUGIN = "barman-cloud.cloudnative-pg.io"
MiB = 1 << 20


def log(msg):
    print(f"[sidecar {time.monotonic() - T0:7.1f}s] {msg}", flush=True)


T0 = time.monotonic()


def percentile(xs, p):
    """Nearest rank."""
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def rss_kb(pid):
    """(VmRSS, VmHWM) of a running process, in kB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def shared_dir(path):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)
    return path


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)
    os.chmod(path, 0o644)


def aws_env():
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret",
               AWS_DEFAULT_REGION="us-east-1")
    return env


def objects(bucket, endpoint):
    """The Secret and the two ObjectStores the sidecar reads from the API stand-in."""
    def b64(text):
        return base64.b64encode(text.encode()).decode()
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "s3", "namespace": "default"},
              "data": {"ID": b64("bench"), "KEY": b64("bench-secret"), "REGION": b64("us-east-1")}}
    ref = lambda key: {"name": "s3", "key": key}  # noqa: E731

    def store(name, wal):
        return {"apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"configuration": {
                    "destinationPath": f"s3://{bucket}/{name}", "endpointURL": endpoint,
                    "s3Credentials": {"accessKeyId": ref("ID"), "secretAccessKey": ref("KEY"),
                                      "region": ref("REGION")},
                    "wal": wal}}}
    return [secret, store("plain", {"maxParallel": 4}),
            store("zstd", {"maxParallel": 4, "compression": "zstd"})]


def cluster(store):
    return {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "pg", "namespace": "default", "uid": "bench-uid"},
            "spec": {"instances": 1, "plugins": [
                {"name": PLUGIN, "isWALArchiver": True,
                 "parameters": {"barmanObjectName": store, "serverName": "pg"}}]},
            "status": {"currentPrimary": "pg-1"}}


class Sidecar:
    """`manager instance` as the postgres user (as in a Pod, where both containers share it)."""

    def __init__(self, work, name, pgdata, kubeconfig):
        home = shared_dir(os.path.join(work, name))
        self.plugins = shared_dir(os.path.join(home, "plugins"))
        self.socket = os.path.join(self.plugins, PLUGIN)
        env = {"PATH": f"{work}/bin:/usr/bin:/bin", "NAMESPACE": "default",
               "CLUSTER_NAME": "pg", "POD_NAME": "pg-1", "PGDATA": pgdata,
               "SPOOL_DIRECTORY": shared_dir(os.path.join(home, "spool")),
               "BARMAN_CLOUD_CONTROLLER_DIR": shared_dir(os.path.join(home, "controller")),
               "KUBECONFIG": kubeconfig, "HOME": home}
        self.log = open(os.path.join(home, "sidecar.log"), "w")
        self.proc = subprocess.Popen(
            [f"{work}/bin/manager", "--plugin-path", self.plugins, "instance"], env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
            user="postgres", group="postgres")
        deadline = time.monotonic() + 30
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise bench.Failed(f"the sidecar did not listen; see {self.log.name}")
            time.sleep(0.05)

    def rss(self):
        return rss_kb(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def latency(work, endpoint, bucket, sidecar, reps_history, reps_segment):
    """Per case: seconds of each call through the sidecar, of Barman's tool, of ours."""
    pgdata = os.path.join(work, "fake", "pgdata")
    wal_dir = os.path.join(pgdata, "pg_wal")
    cluster_file = os.path.join(work, "cluster-plain.json")
    write_json(cluster_file, cluster("plain"))
    payload = os.urandom(16 * MiB)
    template = os.path.join(work, "fake", "segment")
    with open(template, "wb") as f:
        f.write(payload)
    cases = []
    for kind, reps in (("history", reps_history), ("segment", reps_segment)):
        names = []
        for i in range(reps):
            if kind == "history":
                name = f"{i + 2:08X}.history"
                with open(os.path.join(wal_dir, name), "w") as f:
                    f.write(f"1\t0/{i + 3:X}000000\tno recovery target specified\n")
            else:
                name = f"00000001000000{i // 256:02X}000000{i % 256:02X}"
                os.link(template, os.path.join(wal_dir, name))
            os.chmod(os.path.join(wal_dir, name), 0o644)
            names.append(name)
        results = {"sidecar": [], "barman": [], "ours": []}
        for name in names:
            path = os.path.join(wal_dir, name)
            r = bench.timed([f"{work}/bin/cnpg_standin", "--socket", sidecar.socket,
                             "--cluster", cluster_file, "wal-archive", path])
            results["sidecar"].append(r["s"])
            for tool, program in (("barman", f"{bench.BARMAN_BIN}/barman-cloud-wal-archive"),
                                  ("ours", f"{work}/bin/barman-cloud-wal-archive")):
                r = bench.timed([program, "--cloud-provider", "aws-s3", "--endpoint-url",
                                 endpoint, f"s3://{bucket}/alone-{tool}", "pg", path],
                                env=aws_env())
                results[tool].append(r["s"])
        for tool, xs in results.items():
            cases.append({"case": kind, "tool": tool, "n": len(xs),
                          "p50_ms": statistics.median(xs) * 1000,
                          "p99_ms": percentile(xs, 99) * 1000})
            log(f"{kind:8} {tool:8} p50 {cases[-1]['p50_ms']:7.1f} ms  "
                f"p99 {cases[-1]['p99_ms']:7.1f} ms  (n={len(xs)})")
    return cases


def sustained(work, kubeconfig, segments):
    """PostgreSQL 15 under pgbench archiving `segments` segments through a fresh sidecar."""
    pg = bench.Postgres(work)
    pg.init()
    sidecar = Sidecar(work, "sidecar-pg", pg.data, kubeconfig)
    cluster_file = os.path.join(work, "cluster-zstd.json")
    write_json(cluster_file, cluster("zstd"))
    with open(os.path.join(pg.data, "postgresql.auto.conf"), "a") as f:
        f.write(f"archive_command = '{work}/bin/cnpg_standin --socket {sidecar.socket} "
                f"--cluster {cluster_file} wal-archive %p'\n"
                "max_wal_size = '32GB'\n")
    pg.start()
    pg.pgbench(["-i", "-s", "2", "-q"])
    idle = sidecar.rss()
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            archived, failed = pg_stats()
            samples.append({"t": time.monotonic() - start, "archived": archived,
                            "failed": failed, "rss_kb": sidecar.rss()[0]})
            stop.wait(0.25)

    def pg_stats():
        import psycopg2
        with psycopg2.connect(host=pg.sock, user="postgres", dbname="postgres") as conn:
            with conn.cursor() as c:
                c.execute("SELECT archived_count, failed_count FROM pg_stat_archiver")
                return c.fetchone()

    base = pg.archived()[0]
    load = pg.pgbench(["-c", "2", "-T", "3600", "-n"], background=True)
    start = time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    switched = 0
    try:
        while switched < segments:
            before = pg.q1("SELECT pg_walfile_name(pg_current_wal_lsn())")
            pg.q("SELECT pg_switch_wal()")
            if pg.q1("SELECT pg_walfile_name(pg_current_wal_lsn())") != before:
                switched += 1
            time.sleep(0.01)
        deadline = time.monotonic() + 900
        while pg.archived()[0] - base < segments and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.monotonic() - start
    finally:
        bench.stop_pgbench(load)
        stop.set()
        sampler.join()
    archived, failed = pg.archived()
    after = sidecar.rss()
    sidecar.stop()
    pg.stop()
    done = archived - base
    rss = [s["rss_kb"] for s in samples]
    tenth = [s["rss_kb"] for s in samples if s["archived"] - base <= segments // 10] or rss[:1]
    last = [s["rss_kb"] for s in samples if s["archived"] - base >= segments * 9 // 10] or rss[-1:]
    result = {"segments": segments, "archived": done, "failed": failed, "seconds": elapsed,
              "segments_per_s": done / elapsed, "rss_idle_kb": idle[0],
              "rss_max_kb": max(rss), "rss_first_tenth_max_kb": max(tenth),
              "rss_last_tenth_max_kb": max(last), "hwm_kb": after[1], "samples": samples}
    log(f"sustained: {done} segments in {elapsed:.1f} s ({result['segments_per_s']:.1f}/s), "
        f"failed {failed}; RSS idle {idle[0]} kB, max {max(rss)} kB "
        f"(first tenth {max(tenth)}, last tenth {max(last)}), VmHWM {after[1]} kB")
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--endpoint", required=True)
    args = ap.parse_args()
    work = args.work
    reps_history = int(os.environ.get("SIDECAR_REPS", "41"))
    reps_segment = max(5, reps_history // 2)
    segments = int(os.environ.get("SIDECAR_SEGMENTS", "1000"))
    bench.calibrate_time_cpu()
    bucket = "sidecar-bench"
    subprocess.run(["curl", "-sf", "-X", "PUT", f"{args.endpoint}/{bucket}"], check=True)
    objects_file = os.path.join(work, "objects.json")
    write_json(objects_file, objects(bucket, args.endpoint))
    kubeconfig = os.path.join(work, "kubeconfig")
    api = subprocess.Popen([f"{work}/bin/api_standin", objects_file, kubeconfig],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    log(f"Kubernetes API stand-in on {api.stdout.readline().strip()}")
    os.chmod(kubeconfig, 0o644)
    fake = shared_dir(os.path.join(work, "fake"))
    shared_dir(os.path.join(fake, "pgdata", "pg_wal", "archive_status"))
    os.chmod(os.path.join(fake, "pgdata"), 0o755)
    os.chmod(os.path.join(fake, "pgdata", "pg_wal"), 0o777)
    try:
        sidecar = Sidecar(work, "sidecar", os.path.join(fake, "pgdata"), kubeconfig)
        time.sleep(1)
        idle = sidecar.rss()
        log(f"sidecar idle: VmRSS {idle[0]} kB")
        cases = latency(work, args.endpoint, bucket, sidecar, reps_history, reps_segment)
        after_latency = sidecar.rss()
        sidecar.stop()
        run = sustained(work, kubeconfig, segments)
    finally:
        api.stdin.close()
        api.wait(timeout=30)
    out_dir = os.path.dirname(os.path.abspath(__file__))
    results = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "load_after": open("/proc/loadavg").read().split()[:3],
               "idle_rss_kb": idle[0], "after_latency_rss_kb": after_latency[0],
               "after_latency_hwm_kb": after_latency[1], "latency": cases, "sustained": run}
    with open(os.path.join(out_dir, "results-sidecar.json"), "w") as f:
        json.dump(results, f, indent=1)
    by = {(c["case"], c["tool"]): c for c in cases}
    lines = [
        "# Sidecar benchmark", "",
        f"`benches/sidecar.sh`, {results['when']}, moto S3 emulator on 127.0.0.1, 2 cores "
        f"(load after: {' '.join(results['load_after'])}).", "",
        "| WAL Archive, uncompressed | through our sidecar (CNPG-like call) | Barman's "
        "`barman-cloud-wal-archive` alone | ours alone |",
        "|---|---|---|---|",
    ]
    for kind, label in (("history", "`.history` (fixed cost)"), ("segment", "16 MiB segment")):
        cells = [f"{by[(kind, t)]['p50_ms']:.0f} / {by[(kind, t)]['p99_ms']:.0f} ms"
                 for t in ("sidecar", "barman", "ours")]
        lines.append(f"| {label}, p50 / p99 (n={by[(kind, 'sidecar')]['n']}) | "
                     + " | ".join(cells) + " |")
    lines += [
        "", "| Sidecar memory (`manager instance`, VmRSS) | |", "|---|---|",
        f"| idle, after start | {idle[0] / 1024:.1f} MB |",
        f"| after the latency runs (peak VmHWM) | {after_latency[0] / 1024:.1f} MB "
        f"({after_latency[1] / 1024:.1f} MB) |",
        f"| PostgreSQL 15 + pgbench, {run['archived']} segments archived (zstd, maxParallel 4, "
        f"{run['segments_per_s']:.1f} segments/s, {run['failed']} failed) | max "
        f"{run['rss_max_kb'] / 1024:.1f} MB; first tenth {run['rss_first_tenth_max_kb'] / 1024:.1f}"
        f" MB, last tenth {run['rss_last_tenth_max_kb'] / 1024:.1f} MB |",
    ]
    with open(os.path.join(out_dir, "SIDECAR.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
