//! `barman-cloud-backup-list`: see [`barman_cloud::cli::backup_list`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::main(barman_cloud::cli::backup_list::run)
}
