//! `barman-cloud-verify`: see [`barman_cloud::cli::verify`].

fn main() -> std::process::ExitCode {
    barman_cloud::cli::main(barman_cloud::cli::verify::run)
}
