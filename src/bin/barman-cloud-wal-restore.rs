//! `barman-cloud-wal-restore`: see [`barman_cloud::cli::wal_restore`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::main(barman_cloud::cli::wal_restore::run)
}
