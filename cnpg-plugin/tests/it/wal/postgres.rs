//! The root crate's PostgreSQL 15 fixture and its command runner, included as they are (the
//! fixture needs the runner as its sibling `super::TestCommand`), so both crates' tests run
//! PostgreSQL the same way: as the unprivileged `postgres` user when root, on a Unix socket
//! in the test's own directory.

#[allow(dead_code, unreachable_pub, clippy::all)]
#[path = "../../../../tests/it/support/command.rs"]
pub(crate) mod command;
#[allow(dead_code, unreachable_pub, clippy::all)]
#[path = "../../../../tests/it/support/pg.rs"]
pub(crate) mod pg;

pub(crate) use command::TestCommand;
