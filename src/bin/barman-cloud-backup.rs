//! `barman-cloud-backup`: see [`barman_cloud::cli::backup`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::return_large_buffers_to_the_system();
    barman_cloud::cli::main(barman_cloud::cli::backup::run)
}
