//! `barman-cloud-backup-keep`: see [`barman_cloud::cli::backup_keep`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::main(barman_cloud::cli::backup_keep::run)
}
