//! Integration tests: one binary, one module per area, driving the real binaries against
//! real PostgreSQL and real emulators (see `support`).

mod support;

mod backup;
mod catalog;
mod cli;
mod conformance;
mod corpus;
mod docs;
mod faults;
mod integrity;
mod restore;
mod retention;
mod secrets;
mod tls;
mod wal;
mod wal_integrity;
