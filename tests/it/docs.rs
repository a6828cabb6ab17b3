//! Shell completions (`completions/`) and man pages (`man/`) are generated from the clap
//! definitions and committed; this test fails when they are stale. Regenerate with
//! `BCRS_UPDATE_DOCS=1 cargo test --test it docs`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use barman_cloud::cli;

use crate::support::PROGRAMS;

/// Every command we ship, in the order of [`PROGRAMS`].
fn commands() -> Vec<clap::Command> {
    let commands = vec![
        cli::wal_archive::Args::command(),
        cli::wal_restore::Args::command(),
        cli::check_wal_archive::Args::command(),
        cli::backup::Args::command(),
        cli::restore::Args::command(),
        cli::backup_list::Args::command(),
        cli::backup_show::Args::command(),
        cli::backup_delete::Args::command(),
        cli::backup_keep::Args::command(),
        cli::verify::Args::command(),
    ];
    let names: Vec<&str> = commands.iter().map(clap::Command::get_name).collect();
    assert_eq!(
        names,
        PROGRAMS.map(|(name, _)| name),
        "a program without docs"
    );
    commands
}

/// Each generated file and its expected content.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for cmd in commands() {
        let name = cmd.get_name().to_string();
        for (shell, file) in [
            (Shell::Bash, format!("bash/{name}")),
            (Shell::Zsh, format!("zsh/_{name}")),
            (Shell::Fish, format!("fish/{name}.fish")),
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), name.clone(), &mut out);
            files.push((root.join("completions").join(file), out));
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .render(&mut page)
            .unwrap();
        files.push((root.join("man").join(format!("{name}.1")), page));
    }
    files
}

#[test]
fn completions_and_man_pages_are_current() {
    let update = std::env::var("BCRS_UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, content) in generated() {
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(content.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated docs (run BCRS_UPDATE_DOCS=1 cargo test --test it docs): {stale:?}"
    );
}

/// The README's Quick start is exactly the two commands CI runs: `.ci/run` runs the test
/// command, and the test command runs the demo.
#[test]
fn quick_start_commands_are_the_ones_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|s| s.split("```sh").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("a Quick start code block");
    let commands: Vec<&str> = section
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(commands, ["harness/demo.sh", "harness/test.sh"]);
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.contains("harness/test.sh"), "{ci}");
    let test = std::fs::read_to_string(root.join("harness/test.sh")).unwrap();
    assert!(
        test.lines().any(|l| l.trim() == "harness/demo.sh"),
        "harness/test.sh does not run the demo"
    );
}
