//! Named AWS profiles (`-P/--aws-profile`, `AWS_PROFILE`), read from the shared files.
//!
//! `object_store` reads `AWS_*` variables, web identity, container and instance credentials,
//! but not `~/.aws/credentials` and `~/.aws/config`; boto3 does, and Barman users rely on
//! `--aws-profile`. This reads the static keys and the region of one profile, nothing more.

use std::collections::HashMap;
use std::path::PathBuf;

/// What a profile provides; secrets stay in here and are never formatted.
#[derive(Default)]
pub(crate) struct Profile {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
}

fn home_file(env: &str, default: &str) -> Option<PathBuf> {
    std::env::var_os(env)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join(default)))
}

/// The two shared files, as read (for "looked in" messages).
pub(crate) fn files() -> String {
    let show = |env: &str, default: &str| match home_file(env, default) {
        Some(path) => path.display().to_string(),
        None => format!("~/.aws/{default}"),
    };
    format!(
        "{} and {}",
        show("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        show("AWS_CONFIG_FILE", "config")
    )
}

/// Parses an INI file into `section → key → value`.
fn ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_string());
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    sections
}

/// Reads profile `name`; `None` when neither file mentions it.
pub(crate) fn load(name: &str) -> Option<Profile> {
    let read = |path: Option<PathBuf>| {
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| ini(&t))
    };
    let credentials =
        read(home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials")).unwrap_or_default();
    let config = read(home_file("AWS_CONFIG_FILE", "config")).unwrap_or_default();
    let config_section = if name == "default" {
        name.to_string()
    } else {
        format!("profile {name}")
    };
    let found: Vec<&HashMap<String, String>> = [credentials.get(name), config.get(&config_section)]
        .into_iter()
        .flatten()
        .collect();
    if found.is_empty() {
        return None;
    }
    let get = |key: &str| found.iter().find_map(|s| s.get(key).cloned());
    Some(Profile {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token"),
        region: get("region"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ini_sections_and_keys() {
        let s =
            super::ini("[default]\naws_access_key_id = A\n# c\n[profile x]\nRegion=eu-west-1\n");
        assert_eq!(s["default"]["aws_access_key_id"], "A");
        assert_eq!(s["profile x"]["region"], "eu-west-1");
    }
}
