//! `contrib/cnpg/Dockerfile` cannot be built on these machines (no container runtime or
//! registry), so this holds it to what can be checked without building it: it copies
//! exactly the root crate's `barman-cloud-*` binaries, every command the sidecar runs is
//! among them, and its final stage is the sidecar the plugin's operator expects (`/manager`
//! as entrypoint, UID/GID 26, a base with no shell, so no `RUN` there).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cnpg_plugin::barman::command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn dockerfile() -> String {
    std::fs::read_to_string(repository().join("contrib/cnpg/Dockerfile")).unwrap()
}

/// The Dockerfile's instructions, continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
}

/// The instructions after the last `FROM`: what the image ships.
fn final_stage(text: &str) -> Vec<String> {
    let all = instructions(text);
    let last_from = all
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("the Dockerfile has a FROM");
    all[last_from..].to_vec()
}

/// The `barman-cloud-*` binaries the final stage copies into `/usr/local/bin/`.
fn copied_commands(stage: &[String]) -> BTreeSet<String> {
    stage
        .iter()
        .filter(|i| i.starts_with("COPY ") && i.trim_end().ends_with("/usr/local/bin/"))
        .flat_map(|i| i.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|word| {
            let name = word.rsplit('/').next()?.to_owned();
            name.starts_with("barman-cloud-").then_some(name)
        })
        .collect()
}

/// The `[[bin]]` names of a Cargo manifest.
fn cargo_bins(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut bins = BTreeSet::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if in_bin && let Some(value) = line.strip_prefix("name = ") {
            bins.insert(value.trim_matches('"').to_owned());
        }
    }
    bins
}

/// Every `"barman-cloud-…"` string literal in the sidecar's sources: the constants of
/// `barman/command.rs` and any program a flow names itself. A new command the sidecar runs
/// shows up here whichever way it is written.
fn commands_in_sources() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("\"barman-cloud-").skip(1) {
                    let tail: String = piece
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                        .collect();
                    if piece[tail.len()..].starts_with('"') {
                        found.insert(format!("barman-cloud-{tail}"));
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found
}

#[test]
fn the_image_copies_every_root_binary_and_every_command_the_sidecar_runs() {
    let stage = final_stage(&dockerfile());
    let copied = copied_commands(&stage);

    let root_bins = cargo_bins(&repository().join("Cargo.toml"));
    // The root crate's ten programs (the nine of Barman's plus barman-cloud-verify).
    assert_eq!(root_bins.len(), 10, "{root_bins:?}");
    assert_eq!(copied, root_bins, "the image must ship every root binary");

    let constants = [
        command::WAL_ARCHIVE,
        command::CHECK_WAL_ARCHIVE,
        command::WAL_RESTORE,
        command::BACKUP,
        command::BACKUP_SHOW,
        command::BACKUP_LIST,
        command::BACKUP_DELETE,
        command::RESTORE,
    ];
    let mut run = commands_in_sources();
    assert!(run.len() >= constants.len(), "{run:?}");
    run.extend(constants.iter().map(|c| (*c).to_owned()));
    let missing: Vec<_> = run.difference(&copied).collect();
    assert!(
        missing.is_empty(),
        "the sidecar runs {missing:?}, which the image does not copy"
    );

    // The root binaries the sidecar does not run, shipped for a user's `kubectl exec`:
    // backup-keep (Barman's image has it too) and our verify.
    let unused: Vec<_> = copied.difference(&run).collect();
    assert_eq!(unused, ["barman-cloud-backup-keep", "barman-cloud-verify"]);
}

#[test]
fn the_image_runs_manager_as_uid_26_on_a_base_without_a_shell() {
    let text = dockerfile();
    let stage = final_stage(&text);

    let from = &stage[0];
    assert!(from.contains("gcr.io/distroless/cc-debian12"), "{from}");
    assert!(
        !stage.iter().any(|i| i.starts_with("RUN ")),
        "a RUN in the final stage needs a shell the image must not have: {stage:?}"
    );
    let all = instructions(&text);
    assert!(
        !all.iter().any(|i| i.to_lowercase().contains("python")),
        "no Python"
    );

    let entrypoints: Vec<_> = stage
        .iter()
        .filter(|i| i.starts_with("ENTRYPOINT "))
        .collect();
    assert_eq!(entrypoints, [r#"ENTRYPOINT ["/manager"]"#]);
    let users: Vec<_> = stage.iter().filter(|i| i.starts_with("USER ")).collect();
    assert_eq!(users, ["USER 26:26"]);

    // `/manager` is the sidecar crate's binary, built in the build stage.
    assert!(
        stage
            .iter()
            .any(|i| i == "COPY --from=build /src/target/release/manager /manager"),
        "{stage:?}"
    );
    let manager_bins = cargo_bins(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    assert_eq!(manager_bins, BTreeSet::from(["manager".to_owned()]));
    assert!(
        all.iter().any(|i| i.starts_with("RUN ")
            && i.contains("cargo build --release --locked -p cnpg-plugin --bin manager")
            && i.contains("cargo build --release --locked --bins")),
        "the build stage builds manager and the root binaries"
    );
}

#[test]
fn the_manifest_patch_points_sidecar_image_at_the_image() {
    let dir = repository().join("contrib/cnpg");
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    assert!(
        kustomization.contains("plugin-barman-cloud/releases/download/")
            && kustomization.contains("- path: sidecar-image-patch.yaml"),
        "{kustomization}"
    );
    let patch = std::fs::read_to_string(dir.join("sidecar-image-patch.yaml")).unwrap();
    // The names in the plugin's manifest: Deployment and container `barman-cloud` in
    // `cnpg-system`, whose SIDECAR_IMAGE comes from a Secret the patch replaces.
    for line in [
        "kind: Deployment",
        "  name: barman-cloud",
        "  namespace: cnpg-system",
        "      - name: barman-cloud",
        "        - name: SIDECAR_IMAGE",
        "          valueFrom: null",
    ] {
        assert!(patch.lines().any(|l| l == line), "{line:?} in {patch}");
    }
}
