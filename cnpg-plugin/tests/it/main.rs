//! The sidecar's integration tests: the real `manager` binary on a temporary plugin
//! directory, driven by a CNPG stand-in (`support::Cnpg`) that dials the Unix socket as
//! CloudNativePG's instance manager does.

mod backup;
mod cli;
mod credentials;
mod handshake;
mod image;
mod kubernetes;
mod retention;
mod rounds;
mod support;
mod wal;
mod wire;
