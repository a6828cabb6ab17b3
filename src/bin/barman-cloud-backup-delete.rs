//! `barman-cloud-backup-delete`: see [`barman_cloud::cli::backup_delete`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::main(barman_cloud::cli::backup_delete::run)
}
