"""An S3 emulator (moto) for benches/catalog.sh, filled in process and counting requests.

Uploading 100,000 WAL objects through moto's HTTP front end takes minutes; putting them
straight into its in-memory backend takes seconds, and the tools under test then reach the
very same moto over HTTP. Every request is appended to the log file as `METHOD PATH?QUERY`,
so the benchmark can count what each tool sent.

Usage: python catalog_moto.py PORT LOG READY BACKUPS WALS BUCKET...
READY is created once the buckets are filled and the server listens.
"""

import datetime
import sys
import threading

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

SEGMENTS_PER_LOG = 256
PREFIX = "bench/pg"


def segment(n):
    """The name of the n-th WAL segment on timeline 1 (16 MiB segments)."""
    return "00000001%08X%08X" % (n // SEGMENTS_PER_LOG, n % SEGMENTS_PER_LOG)


def backup_info(n, begin, start):
    """A DONE backup.info as barman-cloud-backup writes one, keys in order."""
    end = start + datetime.timedelta(minutes=5)
    fields = {
        "backup_label": repr("START WAL LOCATION: 0/0 (file %s)\nSTART TIMELINE: 1\n" % begin),
        "backup_name": "bench-%02d" % n,
        "begin_offset": "40",
        "begin_time": str(start),
        "begin_wal": begin,
        "begin_xlog": "%X/%X" % (int(begin[8:16], 16), int(begin[16:], 16) << 24 | 40),
        "children_backup_ids": "None",
        "cluster_size": str(1000000 + n),
        "compression": "None",
        "config_file": "/var/lib/pg/data/postgresql.conf",
        "copy_stats": repr({"total_time": 12.5, "number_of_workers": 2, "copy_time": 11.25}),
        "data_checksums": "off",
        "deduplicated_size": "None",
        "encryption": "None",
        "end_offset": "256",
        "end_time": str(end),
        "end_wal": begin,
        "end_xlog": "%X/%X" % (int(begin[8:16], 16), int(begin[16:], 16) << 24 | 256),
        "error": "None",
        "hba_file": "/var/lib/pg/data/pg_hba.conf",
        "ident_file": "/var/lib/pg/data/pg_ident.conf",
        "included_files": "None",
        "mode": "None",
        "parent_backup_id": "None",
        "pgdata": "/var/lib/pg/data",
        "server_name": "cloud",
        "size": "None",
        "status": "DONE",
        "summarize_wal": "None",
        "systemid": "7711951383660576474",
        "tablespaces": "None",
        "timeline": "1",
        "version": "150018",
        "xlog_segment_size": "16777216",
    }
    return "".join("%s=%s\n" % kv for kv in sorted(fields.items())).encode()


def fill(backend, bucket, backups, wals, now):
    backend.create_bucket(bucket, "us-east-1")
    spacing = wals // backups
    for n in range(backups):
        start = now - datetime.timedelta(days=backups - n)
        backup_id = start.strftime("%Y%m%dT%H%M%S")
        begin = segment(n * spacing + spacing // 2)
        base = "%s/base/%s" % (PREFIX, backup_id)
        backend.put_object(bucket, base + "/backup.info", backup_info(n, begin, start))
        backend.put_object(bucket, base + "/data.tar.gz", b"tar")
        backend.put_object(bucket, "%s/wals/%s/%s.00000028.backup" % (PREFIX, begin[:16], begin), b"l")
    for n in range(wals):
        name = segment(n)
        backend.put_object(bucket, "%s/wals/%s/%s.gz" % (PREFIX, name[:16], name), b"w")


class Counter:
    """WSGI middleware: one log line per request."""

    def __init__(self, app, path):
        self.app = app
        self.log = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        line = "%s %s?%s\n" % (
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
        )
        with self.lock:
            self.log.write(line)
        return self.app(environ, start_response)


def main():
    port, log, ready, backups, wals = sys.argv[1:6]
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    # One clock for every bucket, so that they hold the same backup IDs.
    now = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=1)))
    for bucket in sys.argv[6:]:
        fill(backend, bucket, int(backups), int(wals), now)
    app = Counter(DomainDispatcherApplication(create_backend_app), log)
    server = make_server("127.0.0.1", int(port), app, threaded=True)
    open(ready, "w").close()
    server.serve_forever()


if __name__ == "__main__":
    main()
