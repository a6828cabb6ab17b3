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
//! Every flow shells out to our `barman-cloud-*` binaries on `PATH` with the argument
//! vectors and environment the plugin builds, so the tested CLI is the only code that touches
//! the object store, and a crashed upload fails one call, not the sidecar:
//!
//! ```text
//! CNPG-I call          flow            Kubernetes (kube)               commands run
//! WAL/Archive     ──▶  wal::archive    ObjectStore, Secrets (10 s)     barman-cloud-check-wal-archive, -wal-archive ×maxParallel
//! WAL/Restore     ──▶  wal::restore    ObjectStore, Secrets            barman-cloud-wal-restore ×maxParallel (spool prefetch)
//! Backup/Backup   ──▶  backup          + status PUT (409 retried)      barman-cloud-backup, -backup-show, -backup-list
//! Metrics/Collect ──▶  services        ObjectStore status              —
//! (background)         retention       Cluster, Backups, Events        barman-cloud-backup-delete, -backup-list
//! RestoreJobHooks ──▶  recovery        ObjectStores, Secrets           barman-cloud-backup-list, -wal-restore, -restore
//! ```
//!
//! `manager instance` serves the first five in every instance Pod; `manager restore` is the
//! recovery Job's sidecar (issue #16), serving WAL Restore and `RestoreJobHooks`, whose
//! `Restore` bootstraps an empty PGDATA from a backup ([`recovery`]).
//!
//! Layers, each importing only those below it: [`cli`] → [`server`] → [`services`] → the flows
//! ([`wal`], [`backup`], [`recovery`], [`retention`]) → [`instance`] (shared state) →
//! [`barman`] (argv, runner, the JSON of backup-show/-list) → [`credentials`] →
//! [`kubernetes`] → the types ([`cluster`], [`objectstore`], [`config`], [`log`],
//! [`metadata`], [`proto`]). [`client`] and [`healthcheck`] are the socket's client side (the
//! probe, the tests' CNPG stand-in).

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
