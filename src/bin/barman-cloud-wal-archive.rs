//! `barman-cloud-wal-archive`: see [`barman_cloud::cli::wal_archive`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::main(barman_cloud::cli::wal_archive::run)
}
