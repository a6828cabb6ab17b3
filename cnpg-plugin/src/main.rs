//! `/manager` in the sidecar image: see the crate docs of `cnpg_plugin`.

fn main() -> std::process::ExitCode {
    cnpg_plugin::cli::main()
}
