//! TLS to PostgreSQL (issue #17 item 12): a real PostgreSQL 15 with `ssl=on` and a test CA
//! made here with openssl, reached over TCP. verify-full passes with the right CA and host
//! and fails in one line naming host, CA and fix with the wrong CA or host; require works
//! without a CA; disable against a `hostssl`-only server fails clearly; a client certificate
//! (`hostssl ... cert`) works, from the conninfo and from `PGSSL*`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::pg::as_postgres;
use crate::support::primary::{By, Options, Primary};
use crate::support::{Provider, TestCommand, chmod_world, next_backup_second};

/// The host name in the server's certificate.
const HOST: &str = "pg.test";

fn openssl(dir: &Path, args: &[&str]) {
    Command::new("openssl").current_dir(dir).args(args).ok();
}

/// A CA named `name`: `<name>.crt` and `<name>.key` in `dir`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A certificate for `cn` (and `san`, when given) signed by CA `ca`: `<name>.crt/.key`.
fn issue(dir: &Path, ca: &str, name: &str, cn: &str, san: Option<&str>) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        match san {
            Some(san) => format!("subjectAltName={san}\n"),
            None => "basicConstraints=CA:FALSE\n".into(),
        },
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A loopback address of its own for this test run (all of 127/8 is local on Linux), so
/// port 5432 is ours whatever else runs.
fn loopback() -> String {
    let n = std::process::id();
    format!(
        "127.{}.{}.{}",
        10 + (n >> 16) % 200,
        (n >> 8) % 250,
        1 + n % 250
    )
}

struct Rig {
    source: Primary,
    certs: PathBuf,
    addr: String,
}

impl Rig {
    fn new() -> Option<Rig> {
        let source = Primary::new(Provider::File, Options::default())?;
        let certs = source.dir("certs");
        ca(&certs, "ca");
        ca(&certs, "other-ca");
        issue(&certs, "ca", "server", HOST, Some(&format!("DNS:{HOST}")));
        issue(&certs, "ca", "client", "certuser", None);
        chmod_world(&certs);
        let addr = loopback();
        let pg = &source.pg;
        for file in ["server.crt", "server.key", "ca.crt"] {
            pg.write_file(file, &std::fs::read_to_string(certs.join(file)).unwrap());
        }
        as_postgres("chmod")
            .arg("600")
            .arg(pg.data.join("server.key"))
            .ok();
        pg.conf(&format!(
            "listen_addresses = '{addr}'\nssl = on\nssl_cert_file = 'server.crt'\n\
             ssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'"
        ));
        pg.write_file(
            "pg_hba.conf",
            "local all all trust\nhostssl all certuser 127.0.0.0/8 cert\n\
             hostssl all all 127.0.0.0/8 trust\n",
        );
        let mut source = source;
        source.pg.stop();
        source.pg.start();
        source.pg.sql("CREATE ROLE certuser SUPERUSER LOGIN");
        Some(Rig {
            source,
            certs,
            addr,
        })
    }

    fn cert(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    /// Our backup with conninfo `conninfo` and `env`, as the postgres user.
    fn backup(&self, conninfo: &str, env: &[(&str, String)]) -> Command {
        next_backup_second();
        let mut cmd = self.source.backup_command(
            By::Us,
            &self.source.store,
            self.source.pg.socket_dir(),
            &["--immediate-checkpoint", "-d", conninfo],
        );
        cmd.env("HOME", &self.certs);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `hostaddr` for the socket, `host` for the certificate's name.
    fn at(&self, host: &str, rest: &str) -> String {
        format!(
            "host={host} hostaddr={} user=postgres dbname=postgres {rest}",
            self.addr
        )
    }
}

/// The one `Cannot connect` line of a failed run.
fn connect_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("Cannot connect to postgres"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_string()
}

#[test]
fn tls_to_postgres_verifies_as_libpq_does() {
    let Some(rig) = Rig::new() else {
        return;
    };
    let ca = rig.cert("ca.crt");
    let other = rig.cert("other-ca.crt");
    // verify-full, the right CA and host.
    rig.backup(
        &rig.at(HOST, &format!("sslmode=verify-full sslrootcert={ca}")),
        &[],
    )
    .ok();
    // (Every success here is over TLS: the server has no other entry for TCP.)
    // The wrong CA: one line naming host, CA and fix; exit 1 as any connection failure.
    let out = rig
        .backup(
            &rig.at(HOST, &format!("sslmode=verify-full sslrootcert={other}")),
            &[],
        )
        .code(1);
    let line = connect_error(out.stderr());
    assert!(
        line.contains(&format!(
            "the certificate of server \"{HOST}\" is not signed by the CA in \"{other}\" \
             (sslmode=verify-full): set sslrootcert to the CA that signed it"
        )),
        "{line}"
    );
    // The wrong host name (the address itself, not in the certificate).
    let addr = rig.addr.clone();
    let out = rig
        .backup(
            &rig.at(&addr, &format!("sslmode=verify-full sslrootcert={ca}")),
            &[],
        )
        .code(1);
    let line = connect_error(out.stderr());
    assert!(
        line.contains(&format!(
            "the certificate of server \"{addr}\" is not issued for host name \"{addr}\""
        )) && line.contains("sslmode=verify-ca"),
        "{line}"
    );
    // verify-ca checks the chain only: the same host name is then fine...
    rig.backup(
        &rig.at(&addr, &format!("sslmode=verify-ca sslrootcert={ca}")),
        &[],
    )
    .ok();
    // ...but not the wrong CA.
    rig.backup(
        &rig.at(&addr, &format!("sslmode=verify-ca sslrootcert={other}")),
        &[],
    )
    .code(1);
    // require with no CA anywhere: encrypted, not verified.
    rig.backup(&rig.at(&addr, "sslmode=require"), &[]).ok();
    // The environment as libpq reads it, the conninfo first.
    rig.backup(
        &rig.at(HOST, ""),
        &[
            ("PGSSLMODE", "verify-full".into()),
            ("PGSSLROOTCERT", ca.clone()),
        ],
    )
    .ok();
    rig.backup(
        &rig.at(HOST, &format!("sslrootcert={other}")),
        &[
            ("PGSSLMODE", "verify-full".into()),
            ("PGSSLROOTCERT", ca.clone()),
        ],
    )
    .code(1);
    // disable against a hostssl-only server: PostgreSQL's own refusal, in one line.
    let out = rig.backup(&rig.at(HOST, "sslmode=disable"), &[]).code(1);
    let line = connect_error(out.stderr());
    assert!(
        line.contains("no pg_hba.conf entry")
            && line.contains(
                "no encryption: the server takes this connection over TLS only; use \
                 sslmode=require (or verify-ca, verify-full) instead of sslmode=disable"
            ),
        "{line}"
    );
    // A client certificate for `hostssl ... cert`, in the conninfo and from PGSSLCERT/KEY.
    let certuser = format!(
        "host={HOST} hostaddr={} user=certuser dbname=postgres sslmode=verify-full \
         sslrootcert={ca}",
        rig.addr
    );
    rig.backup(
        &format!(
            "{certuser} sslcert={} sslkey={}",
            rig.cert("client.crt"),
            rig.cert("client.key")
        ),
        &[],
    )
    .ok();
    rig.backup(
        &certuser,
        &[
            ("PGSSLCERT", rig.cert("client.crt")),
            ("PGSSLKEY", rig.cert("client.key")),
        ],
    )
    .ok();
    // Without one, the server refuses certuser.
    rig.backup(&certuser, &[]).code(1);
    let done = rig
        .source
        .backup_ids()
        .iter()
        .filter(|id| {
            rig.source
                .store
                .get_text(&format!("pg/base/{id}/backup.info"))
                .contains("\nstatus=DONE\n")
        })
        .count();
    assert_eq!(done, 6);
}
