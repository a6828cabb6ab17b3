//! `barman-cloud-check-wal-archive`: see [`barman_cloud::cli::check_wal_archive`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::main(barman_cloud::cli::check_wal_archive::run)
}
