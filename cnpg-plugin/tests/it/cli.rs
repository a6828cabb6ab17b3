//! The `manager` command line: missing settings of both roles, the accepted global flags.

use crate::support::{INSTANCE_ENV, healthcheck, manager};

/// `INSTANCE_ENV` without `variable`.
fn env_without(variable: &str) -> Vec<(&'static str, &'static str)> {
    INSTANCE_ENV
        .iter()
        .copied()
        .filter(|(name, _)| *name != variable)
        .collect()
}

#[test]
fn instance_names_the_missing_variable_on_one_line() {
    let plugins = tempfile::tempdir().unwrap();
    for variable in ["NAMESPACE", "CLUSTER_NAME", "POD_NAME", "SPOOL_DIRECTORY"] {
        let output = manager(&env_without(variable))
            .arg("--plugin-path")
            .arg(plugins.path())
            .arg("instance")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{variable}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("manager: read required setting"),
            "{stderr}"
        );
        assert!(stderr.contains(variable), "{stderr}");
    }
    // Nothing was listening, nothing was created.
    assert_eq!(std::fs::read_dir(plugins.path()).unwrap().count(), 0);
}

#[test]
fn restore_needs_no_cluster_name_and_names_what_is_missing() {
    let plugins = tempfile::tempdir().unwrap();
    for variable in ["NAMESPACE", "POD_NAME", "SPOOL_DIRECTORY"] {
        let output = manager(&env_without(variable))
            .arg("--plugin-path")
            .arg(plugins.path())
            .arg("restore")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{variable}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable), "{stderr}");
        assert!(!stderr.contains("not implemented"), "{stderr}");
    }
    assert_eq!(std::fs::read_dir(plugins.path()).unwrap().count(), 0);
}

#[test]
fn the_plugins_global_flags_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("manager.json");
    // Nothing listens in `dir`: the probe fails with 1, and its error line goes to the file.
    let output = manager(&[])
        .args([
            "--log-level=debug",
            "--log-field-level=severity",
            "--log-field-timestamp=time",
            "--zap-devel",
            "--zap-encoder=json",
            "--log-destination",
        ])
        .arg(&log)
        .arg("--plugin-path")
        .arg(dir.path())
        .args(["healthcheck", "unix"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["severity"], "error");
    assert!(line["time"].is_string());
    assert_eq!(line["logger"], "healthcheck");
}

#[test]
fn an_unknown_log_level_falls_back_to_info() {
    let dir = tempfile::tempdir().unwrap();
    let output = manager(&[])
        .arg("--log-level=verbose")
        .arg("--plugin-path")
        .arg(dir.path())
        .args(["healthcheck", "unix"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("Invalid log level, defaulting"), "{stderr}");
}

#[test]
fn healthcheck_without_a_sidecar_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(healthcheck(dir.path()).status.code(), Some(1));
}
