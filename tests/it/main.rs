//! Integration tests: one binary, one module per area, driving the real binaries against
//! real PostgreSQL and real emulators (see `support`).

// The modules of a test binary share helpers with `pub`; none of it is an API.
#![allow(unreachable_pub)]

mod support;

mod backup;
mod catalog;
mod cli;
mod conformance;
mod corpus;
mod docs;
mod faults;
mod integrity;
mod interrupt;
mod manifest;
mod messages;
mod pg_tls;
mod restore;
mod retention;
mod secrets;
mod tls;
mod verbose;
mod verify;
mod verify_health;
mod wal;
mod wal_integrity;
