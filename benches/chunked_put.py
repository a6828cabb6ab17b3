#!/usr/bin/env python3
"""How fast a signed PUT can be over plain HTTP when its hash overlaps the send (SigV4's
`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, which object_store does not offer), beside an unsigned
PUT and a single-chunk signed one (hash computed inside the timing), all from one process,
connect included, interleaved (issue #19 item 3; see benches/README.md, "Close to the
wire"). A measurement of the protocol against one server, not of our tools:

    benches/chunked_put.py HOST PORT BUCKET ACCESS_KEY SECRET_KEY FILE REPS

against an S3 server already running there (e.g. s3s-fs as benches/servers.sh starts it),
whose BUCKET exists. Prints the median of each mode and its ratio to the unsigned PUT.
"""
import datetime
import hashlib
import hmac
import http.client
import statistics
import sys
import time

host, port, bucket, ak, sk, path, reps = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
region, service = "us-east-1", "s3"
data = open(path, "rb").read()


def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(day):
    k = hm(("AWS4" + sk).encode(), day)
    k = hm(k, region)
    k = hm(k, service)
    return hm(k, "aws4_request")


def sign(method, uri, headers, payload_hash, amz_date):
    day = amz_date[:8]
    names = sorted(h.lower() for h in headers)
    canon_headers = "".join(f"{n}:{headers_lc(headers)[n].strip()}\n" for n in names)
    signed = ";".join(names)
    creq = "\n".join([method, uri, "", canon_headers, signed, payload_hash])
    scope = f"{day}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = signing_key(day)
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}"
    return auth, sig, key, scope


def headers_lc(h):
    return {k.lower(): v for k, v in h.items()}


def put(mode, key_name, chunk=64 << 10):
    uri = f"/{bucket}/{key_name}"
    t0 = time.perf_counter()
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    conn = http.client.HTTPConnection(host, port)
    h = {"host": f"{host}:{port}", "x-amz-date": amz_date}
    if mode == "unsigned":
        h["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        auth, *_ = sign("PUT", uri, h, "UNSIGNED-PAYLOAD", amz_date)
        h["Authorization"] = auth
        h["Content-Length"] = str(len(data))
        conn.request("PUT", uri, body=data, headers=h)
    elif mode == "signed":
        ph = hashlib.sha256(data).hexdigest()
        h["x-amz-content-sha256"] = ph
        auth, *_ = sign("PUT", uri, h, ph, amz_date)
        h["Authorization"] = auth
        h["Content-Length"] = str(len(data))
        conn.request("PUT", uri, body=data, headers=h)
    else:
        n = len(data)
        sizes = [min(chunk, n - i) for i in range(0, n, chunk)] + [0]
        framed = sum(len(f"{s:x};chunk-signature=") + 64 + 2 + s + 2 for s in sizes)
        h["x-amz-content-sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
        h["content-encoding"] = "aws-chunked"
        h["x-amz-decoded-content-length"] = str(n)
        h["content-length"] = str(framed)
        auth, seed, skey, scope = sign("PUT", uri, h, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", amz_date)
        h["Authorization"] = auth
        conn.putrequest("PUT", uri, skip_host=True, skip_accept_encoding=True)
        for k, v in h.items():
            conn.putheader(k, v)
        conn.endheaders()
        prev = seed
        empty = hashlib.sha256(b"").hexdigest()
        mv = memoryview(data)
        off = 0
        for s in sizes:
            piece = mv[off:off + s]
            off += s
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty,
                             hashlib.sha256(piece).hexdigest()])
            sig = hmac.new(skey, sts.encode(), hashlib.sha256).hexdigest()
            conn.send(f"{s:x};chunk-signature={sig}\r\n".encode())
            conn.send(piece)
            conn.send(b"\r\n")
            prev = sig
    r = conn.getresponse()
    body = r.read()
    t = time.perf_counter() - t0
    conn.close()
    if r.status != 200:
        raise SystemExit(f"{mode}: {r.status} {body[:300]}")
    return t * 1000


modes = ["unsigned", "signed", "chunked", "chunked1m"]
times = {m: [] for m in modes}
for i in range(reps):
    for m in modes:
        if m == "chunked1m":
            times[m].append(put("chunked", f"c1m-{i}", 1 << 20))
        else:
            times[m].append(put(m, f"{m}-{i}"))
base = statistics.median(times["unsigned"])
for m in modes:
    med = statistics.median(times[m])
    print(f"{m:10s} median {med:6.1f} ms  ({med / base:.2f}x unsigned)  min {min(times[m]):6.1f}")
