//! Our own CloudNativePG sidecar: a drop-in for the instance sidecar of the Barman Cloud
//! Plugin (`barman-cloud.cloudnative-pg.io`), issue #15.
//!
//! CloudNativePG's instance manager finds the sidecar by listing `/plugins` and connects to
//! the Unix socket named after the plugin with plaintext HTTP/2 gRPC (CNPG-I). On every new
//! connection it asks Identity for the metadata and the capabilities, then each advertised
//! service for its own capabilities, and only then makes the call it came for (archive a
//! segment, restore one, take a backup). The kubelet's startup probe runs
//! `manager healthcheck unix`, which asks `grpc.health.v1.Health` on the same socket.
//!
//! The flows themselves (WAL Archive and Restore, Backup, metrics collection) shell out to our
//! `barman-cloud-*` binaries; this crate so far answers the handshake and the capability
//! queries, and refuses the flow calls with UNIMPLEMENTED.
//!
//! `manager restore` is the recovery Job's sidecar (issue #16): the same socket with
//! Identity, WAL and `RestoreJobHooks`, whose `Restore` bootstraps an empty PGDATA from a
//! backup ([`recovery`]).
//!
//! Modules: [`cli`] (the `manager` command line), [`config`] (the environment the plugin's
//! operator sets), [`log`] (JSON lines with the plugin's keys), [`server`] (the socket and the
//! services), [`services`] (one module per CNPG-I service), [`healthcheck`], [`client`] (the
//! socket's client side, shared with the tests), [`proto`] (the generated messages).

pub mod backup;
pub mod barman;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod credentials;
pub mod error;
pub mod healthcheck;
pub mod instance;
pub mod kubernetes;
pub mod log;
pub mod metadata;
pub mod objectstore;
pub mod proto;
pub mod recovery;
pub mod retention;
pub mod server;
pub mod services;
pub mod wal;

pub use error::Error;
