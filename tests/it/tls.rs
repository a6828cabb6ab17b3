//! HTTPS endpoints, as every real cloud is: the TLS client is only built for them (plain-HTTP
//! endpoints skip the CA certificates), it verifies the server against the system roots plus
//! `AWS_CA_BUNDLE`, and S3 payloads go unsigned over TLS (as botocore sends them), which the
//! server and Barman's tools accept.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestCommand, barman, ours, required, temp_dir, wal_like_bytes};

/// moto serving HTTPS with a certificate made for this test (signed by `dir/ca.pem`), with
/// `bucket` created; killed on drop.
struct TlsMoto {
    child: Child,
    endpoint: String,
}

impl Drop for TlsMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tls_moto(dir: &Path, bucket: &str) -> Option<TlsMoto> {
    let moto = required("BCRS_MOTO_SERVER")?;
    // A CA, and a server certificate for 127.0.0.1 signed by it (webpki refuses a CA
    // certificate used as the server's own).
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ext = dir.join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        Command::new("openssl").args(args).current_dir(dir).code(0);
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=bcrs test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .arg("-c")
        .arg(&cert)
        .arg("-k")
        .arg(&key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let server = TlsMoto {
        child,
        endpoint: format!("https://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("curl")
        .args(["-sf", "-X", "PUT", "--cacert"])
        .arg(dir.join("ca.pem"))
        .arg(format!("{}/{bucket}", server.endpoint))
        .code(0);
    Some(server)
}

#[test]
fn https_endpoint_with_a_ca_bundle() {
    let dir = temp_dir();
    let Some(moto) = start_tls_moto(dir.path(), "tls") else {
        return;
    };
    let cert = dir.path().join("ca.pem");

    let name = "000000010000000000000001";
    let wal = dir.path().join(name);
    std::fs::write(&wal, wal_like_bytes(16 << 20, 7)).unwrap();
    let tool = |program: &Path, bundle: Option<&Path>, args: &[&str]| {
        let mut cmd = Command::new(program);
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("REQUESTS_CA_BUNDLE")
            .args(["--endpoint-url", &moto.endpoint])
            .args(args);
        if let Some(bundle) = bundle {
            cmd.env("AWS_CA_BUNDLE", bundle);
        }
        cmd.ran()
    };
    let url = "s3://tls/prefix";
    let wal_arg = wal.to_str().unwrap();

    // Without the bundle the self-signed server is refused: verification is on.
    let refused = tool(
        &ours("barman-cloud-wal-archive"),
        None,
        &[url, "pg", wal_arg],
    );
    assert!(!refused.success(), "an unknown certificate was accepted");

    for flag in ["--gzip", "--lz4"] {
        let server = format!("pg{flag}");
        tool(
            &ours("barman-cloud-wal-archive"),
            Some(&cert),
            &[flag, url, &server, wal_arg],
        )
        .code(0);
        let back = dir.path().join(format!("back{flag}"));
        tool(
            &ours("barman-cloud-wal-restore"),
            Some(&cert),
            &[url, &server, name, back.to_str().unwrap()],
        )
        .code(0);
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&wal).unwrap());

        // Barman (boto3, with the same bundle) reads what we sent unsigned.
        let Some(barman_restore) = barman("barman-cloud-wal-restore") else {
            continue;
        };
        let theirs = dir.path().join(format!("barman{flag}"));
        tool(
            &barman_restore,
            Some(&cert),
            &[url, &server, name, theirs.to_str().unwrap()],
        )
        .code(0);
        assert_eq!(
            std::fs::read(&theirs).unwrap(),
            std::fs::read(&wal).unwrap()
        );
    }
}

/// No program links aws-lc's CPU-jitter entropy source: it costs ~30 ms of CPU in every new
/// process before the first handshake (issue #19 item 2). `.cargo/config.toml` turns it off at
/// build time; this fails if that setting is lost or stops applying.
#[test]
fn no_program_seeds_its_random_numbers_from_cpu_jitter() {
    for (name, path) in crate::support::PROGRAMS {
        let binary = std::fs::read(path).expect("read the built program");
        let jitter = binary
            .windows(b"jent_entropy".len())
            .any(|w| w == b"jent_entropy");
        assert!(
            !jitter,
            "{name} links aws-lc's CPU-jitter entropy (jent_entropy*)"
        );
    }
}

/// The roots come from the system's CA bundle file first; a server whose issuer is only under
/// the certificate directory is tried again with every root, so nothing trusted before is
/// refused now, and a server no root vouches for is still refused.
#[test]
fn a_root_only_in_the_certificate_directory_is_still_trusted() {
    let dir = temp_dir();
    let Some(moto) = start_tls_moto(dir.path(), "tls-dir") else {
        return;
    };
    let ca = dir.path().join("ca.pem");
    let (with_ca, empty) = (dir.path().join("with-ca"), dir.path().join("empty"));
    std::fs::create_dir(&with_ca).unwrap();
    std::fs::create_dir(&empty).unwrap();
    std::fs::copy(&ca, with_ca.join("bcrs-test-ca.pem")).unwrap();
    // Any bundle without the test CA: a second, unrelated CA.
    let other = dir.path().join("other.pem");
    Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=bcrs unrelated CA",
            "-keyout",
            "other.key",
            "-out",
        ])
        .arg(&other)
        .current_dir(dir.path())
        .code(0);
    let wal = dir.path().join("000000010000000000000001");
    std::fs::write(&wal, wal_like_bytes(1 << 20, 3)).unwrap();

    let archive = |server: &str, file: Option<&Path>, cert_dir: Option<&Path>| {
        let mut cmd = Command::new(ours("barman-cloud-wal-archive"));
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .args([
                "-vv",
                "--endpoint-url",
                &moto.endpoint,
                "s3://tls-dir/prefix",
                server,
            ])
            .arg(&wal);
        if let Some(file) = file {
            cmd.env("SSL_CERT_FILE", file);
        }
        if let Some(cert_dir) = cert_dir {
            cmd.env("SSL_CERT_DIR", cert_dir);
        }
        cmd.ran()
    };
    let retried = |ran: &crate::support::Ran| ran.stderr().contains("trying every system root");

    let in_file = archive("file", Some(&ca), Some(&empty)).code(0);
    assert!(
        !retried(&in_file),
        "a root in the bundle file needed a retry"
    );
    let in_dir = archive("dir", Some(&other), Some(&with_ca)).code(0);
    assert!(
        retried(&in_dir),
        "the bundle file alone accepted an unknown root"
    );
    archive("dir-only", None, Some(&with_ca)).code(0);
    let nowhere = archive("nowhere", Some(&other), Some(&empty));
    assert!(
        !nowhere.success(),
        "a certificate no root signed was accepted"
    );
    assert!(retried(&nowhere));
}
