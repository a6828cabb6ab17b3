//! The `barman-cloud-*` commands the sidecar runs: their argument vectors, built as the
//! plugin builds them ([`command`]), and running one with its output streamed into the
//! sidecar's log ([`run`]).

pub mod command;
pub mod run;
