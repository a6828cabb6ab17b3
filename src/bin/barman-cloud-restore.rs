//! `barman-cloud-restore`: see [`barman_cloud::cli::restore`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::main(barman_cloud::cli::restore::run)
}
