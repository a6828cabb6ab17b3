//! `barman-cloud-backup-show`: see [`barman_cloud::cli::backup_show`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::main(barman_cloud::cli::backup_show::run)
}
