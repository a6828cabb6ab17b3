//! The `barman-cloud-*` commands the sidecar runs: their argument vectors, built as the
//! plugin builds them ([`command`]), running one with its output streamed into the
//! sidecar's log ([`run`]), and reading the JSON of backup-show and backup-list
//! ([`catalog`]).

pub mod catalog;
pub mod command;
pub mod run;
