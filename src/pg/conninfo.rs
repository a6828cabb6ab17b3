//! From Barman's connection flags (and libpq's environment) to a tokio-postgres `Config`.
//!
//! tokio-postgres reads no environment and has no defaults, so what libpq would fill in
//! (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `~/.pgpass`, the socket
//! directory, the OS user) is filled in here, after the explicit flags and conninfo.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio_postgres::config::Host;

use super::tls::{SslParams, Tls};
use crate::error::{Error, Result};

/// The connection flags of `barman-cloud-backup`.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `-h/--host`: a host name, an IP address or a socket directory.
    pub host: Option<String>,
    /// `-p/--port`.
    pub port: Option<String>,
    /// `-U/--user`.
    pub user: Option<String>,
    /// A database name, or a whole conninfo string when it holds `=` or is empty.
    pub dbname: Option<String>,
}

impl ConnectOptions {
    /// The conninfo string Barman builds: `-d` as a whole when it holds `=` (or is empty),
    /// else `key=value` for each given flag, with `dbname` defaulting to `postgres`.
    pub fn conninfo(&self) -> String {
        let dbname = self.dbname.as_deref().unwrap_or("postgres");
        if dbname.is_empty() || dbname.contains('=') {
            return dbname.to_string();
        }
        [
            ("host", self.host.as_deref()),
            ("port", self.port.as_deref()),
            ("user", self.user.as_deref()),
            ("dbname", Some(dbname)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", quote(v))))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// libpq quoting: values with whitespace (or quotes, or empty) in single quotes, `\` and `'`
/// escaped.
fn quote(value: &str) -> String {
    if !value.is_empty() && !value.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return value.to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The environment libpq reads, as a lookup so tests can supply their own.
pub trait Env {
    /// The value of environment variable `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// Where to connect and how: tokio-postgres's settings and ours for TLS.
#[derive(Debug, Clone)]
pub struct Target {
    /// Hosts, user, database and the like.
    pub config: tokio_postgres::Config,
    /// TLS, resolved as libpq resolves it.
    pub tls: Tls,
}

/// Parses `conninfo` (key=value or a `postgresql://` URL) and fills libpq's defaults.
///
/// # Errors
/// [`Error::Input`] for a conninfo tokio-postgres cannot parse or TLS settings that cannot
/// be used (a missing root certificate file, say).
pub fn config(conninfo: &str, env: &dyn Env) -> Result<Target> {
    let invalid = |e: &dyn std::fmt::Display| {
        Error::Input(format!("invalid PostgreSQL connection string: {e}"))
    };
    // tokio-postgres knows only three sslmode values and no certificate files: ours go.
    let mut ssl = SslParams::default();
    let rest = without_ssl_keys(conninfo, &mut ssl).map_err(|e| invalid(&e))?;
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| invalid(&e))?;
    let mut tls = Tls::resolve(&ssl, env)?;
    if config.get_hosts().is_empty() {
        match env.var("PGHOST") {
            Some(hosts) => hosts.split(',').for_each(|h| add_host(&mut config, h)),
            None => {
                config.host_path(default_socket_dir());
            }
        }
    }
    if config.get_ports().is_empty() {
        if let Some(port) = env.var("PGPORT").and_then(|p| p.parse().ok()) {
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        let user = env.var("PGUSER").or_else(os_user).unwrap_or_default();
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        let dbname = env
            .var("PGDATABASE")
            .or_else(|| config.get_user().map(str::to_string));
        if let Some(dbname) = dbname {
            config.dbname(&dbname);
        }
    }
    if config.get_connect_timeout().is_none() {
        if let Some(secs) = env.var("PGCONNECT_TIMEOUT").and_then(|s| s.parse().ok()) {
            config.connect_timeout(std::time::Duration::from_secs(secs));
        }
    }
    if config.get_password().is_none() {
        let password = env.var("PGPASSWORD").or_else(|| pgpass(&config, env));
        if let Some(password) = password {
            config.password(password);
        }
    }
    config.application_name("barman_cloud_backup");
    // libpq never speaks TLS over a Unix socket, whatever the mode.
    if config
        .get_hosts()
        .iter()
        .all(|h| matches!(h, Host::Unix(_)))
    {
        tls = Tls::disabled();
    }
    config.ssl_mode(tls.mode.for_client());
    Ok(Target { config, tls })
}

/// `conninfo` with the `ssl*` keys we handle moved into `ssl`.
fn without_ssl_keys(conninfo: &str, ssl: &mut SslParams) -> std::result::Result<String, String> {
    let trimmed = conninfo.trim_start();
    if trimmed.starts_with("postgresql://") || trimmed.starts_with("postgres://") {
        let mut url = url::Url::parse(trimmed).map_err(|e| e.to_string())?;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, v)| !ssl.take(k, v))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        return Ok(url.to_string());
    }
    let pairs = keywords(conninfo)?;
    Ok(pairs
        .into_iter()
        .filter(|(k, v)| !ssl.take(k, v))
        .map(|(k, v)| format!("{k}={}", quote(&v)))
        .collect::<Vec<_>>()
        .join(" "))
}

/// libpq's `key = value` list: values bare or in single quotes, `\` escaping.
fn keywords(conninfo: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut chars = conninfo.chars().peekable();
    let mut pairs = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("missing \"=\" after \"{key}\""));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted string".into()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                match c {
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        }
        pairs.push((key, value));
    }
}

fn add_host(config: &mut tokio_postgres::Config, host: &str) {
    if host.starts_with('/') {
        config.host_path(host);
    } else {
        config.host(host);
    }
}

/// Debian's libpq looks in /var/run/postgresql; upstream builds use /tmp.
fn default_socket_dir() -> &'static str {
    if Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql"
    } else {
        "/tmp"
    }
}

/// The login name of the effective user, as libpq defaults `user` to it.
fn os_user() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// Looks the password up in `PGPASSFILE` or `~/.pgpass` (`host:port:db:user:password`, `*`
/// wildcards, `\` escapes), as libpq does. Unix-socket hosts match `localhost`.
fn pgpass(config: &tokio_postgres::Config, env: &dyn Env) -> Option<String> {
    let path = env
        .var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first()? {
        Host::Tcp(h) => h.clone(),
        Host::Unix(_) => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or(""),
        config.get_user().unwrap_or(""),
    ];
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(split_pgpass_line)
        .find(|fields| {
            fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(f, w)| f == "*" || f == w)
        })
        .map(|mut fields| fields.swap_remove(4))
}

fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().expect("one field").extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, String>);

    impl Env for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn vars(pairs: &[(&'static str, &str)]) -> Vars {
        Vars(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
    }

    #[test]
    fn conninfo_is_built_as_barman_builds_it() {
        let o = ConnectOptions {
            host: Some("/tmp/sock dir".into()),
            port: Some("5433".into()),
            ..Default::default()
        };
        assert_eq!(
            o.conninfo(),
            "host='/tmp/sock dir' port=5433 dbname=postgres"
        );
        let whole = ConnectOptions {
            dbname: Some("host=db user=x".into()),
            host: Some("ignored".into()),
            ..Default::default()
        };
        assert_eq!(whole.conninfo(), "host=db user=x");
        assert_eq!(quote("it's"), r"'it\'s'");
    }

    #[test]
    fn environment_fills_what_flags_leave_out() {
        let env = vars(&[
            ("PGHOST", "/run/pg"),
            ("PGPORT", "5499"),
            ("PGUSER", "alice"),
            ("PGPASSWORD", "pw"),
        ]);
        let c = config("dbname=postgres", &env).unwrap().config;
        assert_eq!(c.get_hosts(), &[Host::Unix("/run/pg".into())]);
        assert_eq!(c.get_ports(), &[5499]);
        assert_eq!(c.get_user(), Some("alice"));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        assert_eq!(c.get_application_name(), Some("barman_cloud_backup"));
        let explicit = config("host=db port=1 user=bob dbname=x", &env)
            .unwrap()
            .config;
        assert_eq!(explicit.get_hosts(), &[Host::Tcp("db".into())]);
        assert_eq!(explicit.get_user(), Some("bob"));
    }

    #[test]
    fn pgpass_entries_match_with_wildcards_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "# c\nother:*:*:*:no\nlocalhost:5432:*:bob:a\\:b\n").unwrap();
        let env = vars(&[("PGPASSFILE", file.to_str().unwrap())]);
        let c = config("host=/tmp port=5432 user=bob dbname=x", &env)
            .unwrap()
            .config;
        assert_eq!(c.get_password(), Some(&b"a:b"[..]));
    }

    #[test]
    fn ssl_settings_come_from_conninfo_then_environment() {
        use super::super::tls::SslMode;
        let env = vars(&[("PGSSLMODE", "require"), ("HOME", "/nonexistent")]);
        let t = config("host=db sslmode='disable' user=x", &env).unwrap();
        assert_eq!(t.tls.mode, SslMode::Disable);
        assert_eq!(t.config.get_user(), Some("x"));
        assert_eq!(config("host=db", &env).unwrap().tls.mode, SslMode::Require);
        let url = config(
            "postgresql://db/x?sslmode=allow&connect_timeout=3",
            &vars(&[]),
        );
        let url = url.unwrap();
        assert_eq!(url.tls.mode, SslMode::Allow);
        assert_eq!(url.config.get_dbname(), Some("x"));
        // Over a Unix socket libpq never uses TLS.
        let socket = config("host=/tmp sslmode=require", &env).unwrap();
        assert_eq!(socket.tls.mode, SslMode::Disable);
        let e = config("host=db sslmode=verify-full sslrootcert=/no/ca.crt", &env).unwrap_err();
        assert!(
            e.to_string().contains("\"/no/ca.crt\" does not exist"),
            "{e}"
        );
        let e = config("host=db sslmode=bogus", &env).unwrap_err();
        assert!(e.to_string().contains("verify-full"), "{e}");
    }
}
