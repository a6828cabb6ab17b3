//! Shell completions (`completions/`) and man pages (`man/`) are generated from the clap
//! definitions and committed; this test fails when they are stale. Regenerate with
//! `BCRS_UPDATE_DOCS=1 cargo test --test it docs`. Each man page is clap_mangen's sections
//! for the options, plus EXIT STATUS, ENVIRONMENT and EXAMPLES from `cli::manual`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use roff::{Roff, bold, roman};

use barman_cloud::cli::{self, manual};

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
        files.push((root.join("man").join(format!("{name}.1")), man_page(cmd)));
    }
    files
}

/// What `.TH` says: the page's title and section, no date, the source (the footer's left
/// side, short enough for the footer to stay whole at 80 columns) and a blank header middle
/// (groff's default, "General Commands Manual", overlaps the longest titles).
fn title_line(name: &str) -> String {
    format!(".TH {name} 1 \"\" \"{}\" \" \"\n", source())
}

fn source() -> String {
    format!("barman-cloud-rs {}", env!("CARGO_PKG_VERSION"))
}

/// One man page: clap_mangen's sections for the options, then ours.
fn man_page(cmd: clap::Command) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd);
    let mut out = title_line(&name).into_bytes();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    let page = manual::page(&name);
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, when) in page.exit_status {
        roff.control("TP", [])
            .text([bold(code.to_string())])
            .text([roman(*when)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "Credentials are read from the environment and files only, never printed; an empty \
         value counts as unset.",
    )]);
    let mut group = None;
    for (var, g, meaning) in manual::environment(&name) {
        if group != Some(*g) {
            roff.control("SS", [g.heading()]);
            group = Some(*g);
        }
        roff.control("TP", [])
            .text([bold(*var)])
            .text([roman(*meaning)]);
    }
    roff.control("SH", ["EXAMPLES"]);
    for (what, command) in page.examples {
        roff.control("PP", []).text([roman(*what)]);
        roff.control("RS", ["4"]).control("nf", []);
        roff.text([bold(*command)]);
        roff.control("fi", []).control("RE", []);
    }
    roff.control("SH", ["SEE ALSO"]);
    let others: Vec<String> = PROGRAMS
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| *p != name)
        .map(|p| format!("{p}(1)"))
        .collect();
    // Unhyphenated: "bar-man-cloud-..." is hard to read.
    roff.control("nh", [])
        .text([roman(others.join(", "))])
        .control("hy", []);
    roff.to_writer(&mut out).unwrap();
    man.render_version_section(&mut out).unwrap();
    out
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

/// Issue #17 item 10: each page has these sections, in this order.
#[test]
fn each_man_page_has_exit_status_environment_and_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for cmd in commands() {
        let name = cmd.get_name();
        let page = man_page(cmd.clone());
        let page = String::from_utf8(page).unwrap();
        let sections: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix(".SH "))
            .map(|s| s.trim_matches('"'))
            .filter(|s| !s.starts_with("EXTRA OPTIONS") && !s.starts_with("RECOVERY SETTINGS"))
            .collect();
        assert_eq!(
            sections,
            [
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "OPTIONS",
                "EXIT STATUS",
                "ENVIRONMENT",
                "EXAMPLES",
                "SEE ALSO",
                "VERSION"
            ],
            "{name}"
        );
        let p = manual::page(name);
        for code in [0, 1, 2, 3, 4] {
            assert!(
                p.exit_status.iter().any(|(c, _)| *c == code),
                "{name}: exit {code} undocumented"
            );
        }
        assert!(!p.examples.is_empty(), "{name}");
        // Each example runs this command (or is the PostgreSQL setting that does).
        for (_, example) in p.examples {
            assert!(example.contains(&format!("{name} ")), "{name}: {example}");
        }
        let help = cmd.clone().render_help().to_string();
        assert!(help.contains("Examples:"), "{name}: {help}");
        assert!(help.contains(p.examples[0].1), "{name}: {help}");
        // The man page committed is the one rendered here.
        let committed = std::fs::read_to_string(root.join("man").join(format!("{name}.1")));
        assert!(committed.is_ok(), "{name}: no man page");
    }
}

/// Issue #17 item 10: the footer was `barman-cloud-backup 0.1.0 (barman-cloud-rs; compatible
/// witbarman-cloud-backup(1)`: `.TH` had no date, so the long source took the date's place.
/// Each `.TH` has all five fields, and the footer's parts fit 78 columns (groff's width at
/// MANWIDTH=80) with room between them.
#[test]
fn man_page_titles_fit_an_80_column_footer() {
    for cmd in commands() {
        let name = cmd.get_name();
        let page = String::from_utf8(man_page(cmd.clone())).unwrap();
        let th = page.lines().find(|l| l.starts_with(".TH ")).unwrap();
        // The arguments, quoted or not: an empty one must be written `""`, or the next
        // takes its place.
        let mut fields = Vec::new();
        let mut rest = th.trim_start_matches(".TH ");
        while !rest.is_empty() {
            rest = rest.trim_start();
            let (field, tail) = match rest.strip_prefix('"') {
                Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
                None => rest.split_once(' ').unwrap_or((rest, "")),
            };
            fields.push(field);
            rest = tail;
        }
        assert_eq!(fields, [name, "1", "", &source(), " "], "{name}: {th}");
        // Footer: source on the left, date (empty) in the middle, title(1) on the right.
        let footer = source().len() + format!("{name}(1)").len();
        assert!(footer + 4 <= 78, "{name}: footer of {footer} columns");
        // Header: title(1) on both sides, a blank middle.
        let header = 2 * format!("{name}(1)").len() + 1;
        assert!(header + 4 <= 78, "{name}: header of {header} columns");
    }
}

/// Issue #17 item 10: `-J` said `(default: 2) [default: 2]`. An option whose default clap
/// shows does not state it again in its text.
#[test]
fn no_option_states_its_default_twice() {
    for cmd in commands() {
        for arg in cmd.get_arguments() {
            if arg.get_default_values().is_empty() || arg.is_hide_default_value_set() {
                continue;
            }
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default()
                .to_lowercase();
            assert!(
                !help.contains("default"),
                "{}: --{} states its default, which clap shows: {help}",
                cmd.get_name(),
                arg.get_id()
            );
        }
    }
}

/// Environment variable names as whole string literals in `src/`, outside unit tests: those
/// with a prefix the providers, libpq or Barman use, and any other read with `var("X")`,
/// `env("X")` and the like.
fn variables_read_in_source() -> std::collections::BTreeSet<String> {
    fn looks_like_variable(name: &str) -> bool {
        let upper = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        let prefixed = ["AWS_", "AZURE_", "GOOGLE_", "STORAGE_", "BARMAN_", "REQUESTS_"]
            .iter()
            .any(|p| name.starts_with(p))
            // libpq's PGHOST, PGSSLMODE...; not PG_VERSION (a file).
            || (name.starts_with("PG") && name[2..].chars().all(|c| c.is_ascii_uppercase()) && name.len() > 2)
            || name == "HOME";
        upper && prefixed
    }
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut found = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests set variables of their own.
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let pieces: Vec<&str> = text.split('"').collect();
        // Odd pieces are the insides of string literals (escaped quotes are rare enough
        // here not to matter: a literal holding one is not a variable name).
        for i in (1..pieces.len()).step_by(2) {
            let literal = pieces[i];
            let before = pieces[i - 1].trim_end();
            let read = ["var(", "var_os(", "env(", "has(", "home_file(", "show("]
                .iter()
                .any(|call| before.ends_with(call));
            let upper = !literal.is_empty()
                && literal
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if looks_like_variable(literal) || (read && upper) {
                found.insert(literal.to_string());
            }
        }
    }
    // The data directory's name in messages, not a variable we read.
    found.remove("PGDATA");
    found
}

/// Issue #17 item 10: ENVIRONMENT lists every variable the code reads, and nothing else: a
/// new `var("X")` fails here until `cli::manual::VARIABLES` says what X does.
#[test]
fn environment_sections_list_every_variable_read() {
    let listed: Vec<&str> = manual::VARIABLES.iter().map(|(v, _, _)| *v).collect();
    let read = variables_read_in_source();
    for var in &read {
        assert!(
            listed.contains(&var.as_str()),
            "{var} is read in src/ but not in cli::manual::VARIABLES"
        );
    }
    // The other way: each listed variable is read by us, by object_store's `from_env` (any
    // AWS_* naming one of its S3 settings), or by reqwest (the proxies).
    const PROXIES: [&str; 4] = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"];
    for var in &listed {
        let object_store = var.starts_with("AWS_")
            && var
                .to_ascii_lowercase()
                .parse::<object_store::aws::AmazonS3ConfigKey>()
                .is_ok();
        assert!(
            read.contains(*var) || object_store || PROXIES.contains(var),
            "{var} is listed but nothing reads it"
        );
    }
    let mut unique = listed.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "a variable listed twice");
    // PostgreSQL's variables are on barman-cloud-backup's page only.
    for (program, _) in PROGRAMS {
        let pg = manual::environment(program).any(|(v, _, _)| *v == "PGHOST");
        assert_eq!(pg, program == "barman-cloud-backup", "{program}");
    }
}
