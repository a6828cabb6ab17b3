//! The argument vectors of the `barman-cloud-*` commands, built from an ObjectStore's
//! configuration exactly as the plugin's Go library builds them (architecture §5-§7), so a
//! store that works with the plugin's sidecar gets the same command lines here.
//!
//! Option order is the library's, option by option; it matters where Barman's parser is
//! order-sensitive (the provider before the endpoint for `barman-cloud-restore`, Barman
//! 3.13.0) and where users' additional arguments land (`wal-restore`'s go between the
//! server name and the WAL name). Tags are sorted by key: the library iterates a Go map, whose
//! order is random, so any order is as faithful and sorted is reproducible.
//!
//! Users' additional arguments are de-duplicated as the library does: an extra argument
//! whose text before the first `=` is empty, equals one of the options already built, or
//! equals the text before the first `=` of one of them, is dropped. The options are
//! whatever the builder has put in the vector by then (for `wal-restore` that includes the
//! destination and the server name).

use crate::credentials::cloud_provider_args;
use crate::objectstore::BarmanObjectStoreConfiguration;

/// Archives one WAL file.
pub const WAL_ARCHIVE: &str = "barman-cloud-wal-archive";
/// Fails when the destination already holds WAL for the server.
pub const CHECK_WAL_ARCHIVE: &str = "barman-cloud-check-wal-archive";
/// Restores one WAL file.
pub const WAL_RESTORE: &str = "barman-cloud-wal-restore";
/// Takes a base backup.
pub const BACKUP: &str = "barman-cloud-backup";
/// Describes one backup.
pub const BACKUP_SHOW: &str = "barman-cloud-backup-show";
/// Lists a server's backups.
pub const BACKUP_LIST: &str = "barman-cloud-backup-list";
/// Restores a base backup into a data directory.
pub const RESTORE: &str = "barman-cloud-restore";

/// The server name of the WAL commands: the store's own `serverName` when set (the CRD
/// forbids it, but the library still honours it), else the one the Cluster's plugin
/// parameters give. The backup commands take theirs as given, as the library does.
fn wal_server_name<'a>(
    configuration: &'a BarmanObjectStoreConfiguration,
    server: &'a str,
) -> &'a str {
    configuration
        .server_name
        .as_deref()
        .filter(|name| !name.is_empty())
        .unwrap_or(server)
}

/// `--endpoint-url URL` when the store has one.
fn push_endpoint(options: &mut Vec<String>, configuration: &BarmanObjectStoreConfiguration) {
    if let Some(url) = configuration
        .endpoint_url
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        options.push("--endpoint-url".to_owned());
        options.push(url.to_owned());
    }
}

/// `OPTION k,v k,v …` when `tags` is not empty.
fn push_tags(
    options: &mut Vec<String>,
    option: &str,
    tags: &std::collections::BTreeMap<String, String>,
) {
    if tags.is_empty() {
        return;
    }
    options.push(option.to_owned());
    options.extend(tags.iter().map(|(key, value)| format!("{key},{value}")));
}

/// Appends `extra` to `options` unless an argument's key (its text before the first `=`) is
/// empty or is already an option or an option's key.
fn push_additional(options: &mut Vec<String>, extra: &[String]) {
    let key = |argument: &str| argument.split('=').next().unwrap_or_default().to_owned();
    let existing_keys: std::collections::HashSet<String> = options
        .iter()
        .map(|option| key(option))
        .filter(|k| !k.is_empty())
        .collect();
    for argument in extra {
        let argument_key = key(argument);
        // `options` grows as arguments are taken, the key set does not: an exact repeat of
        // an extra argument is dropped, `--x=1` after `--x=2` is not (the library's rule).
        if argument_key.is_empty()
            || options.contains(&argument_key)
            || existing_keys.contains(&argument_key)
        {
            continue;
        }
        options.push(argument.clone());
    }
}

/// `barman-cloud-wal-archive [--COMPRESSION] [-e ENC] [archiveAdditionalCommandArgs…]
/// [--endpoint-url URL] [--tags k,v …] [--history-tags k,v …] [--cloud-provider P
/// [--credential C]] DEST SERVER WAL_PATH`.
pub fn wal_archive(
    configuration: &BarmanObjectStoreConfiguration,
    server: &str,
    wal_path: &str,
) -> Vec<String> {
    let mut options = Vec::new();
    if let Some(wal) = &configuration.wal {
        if let Some(compression) = wal.compression.as_deref().filter(|c| !c.is_empty()) {
            options.push(format!("--{compression}"));
        }
        if let Some(encryption) = wal.encryption.as_deref().filter(|e| !e.is_empty()) {
            options.push("-e".to_owned());
            options.push(encryption.to_owned());
        }
        push_additional(&mut options, &wal.archive_additional_command_args);
    }
    push_endpoint(&mut options, configuration);
    push_tags(&mut options, "--tags", &configuration.tags);
    push_tags(&mut options, "--history-tags", &configuration.history_tags);
    options.extend(cloud_provider_args(configuration));
    options.push(configuration.destination_path.clone());
    options.push(wal_server_name(configuration, server).to_owned());
    options.push(wal_path.to_owned());
    options
}

/// `barman-cloud-check-wal-archive [--endpoint-url URL] [--cloud-provider P [--credential
/// C]] DEST SERVER`.
pub fn check_wal_archive(
    configuration: &BarmanObjectStoreConfiguration,
    server: &str,
) -> Vec<String> {
    let mut options = Vec::new();
    push_endpoint(&mut options, configuration);
    options.extend(cloud_provider_args(configuration));
    options.push(configuration.destination_path.clone());
    options.push(wal_server_name(configuration, server).to_owned());
    options
}

/// `barman-cloud-wal-restore [--endpoint-url URL] [--cloud-provider P [--credential C]] DEST
/// SERVER [restoreAdditionalCommandArgs…] WAL_NAME DESTINATION`: the additional arguments
/// come after the server name, so the tool must take options among its positionals.
pub fn wal_restore(
    configuration: &BarmanObjectStoreConfiguration,
    server: &str,
    wal_name: &str,
    destination: &str,
) -> Vec<String> {
    let mut options = Vec::new();
    push_endpoint(&mut options, configuration);
    options.extend(cloud_provider_args(configuration));
    options.push(configuration.destination_path.clone());
    options.push(wal_server_name(configuration, server).to_owned());
    if let Some(wal) = &configuration.wal {
        push_additional(&mut options, &wal.restore_additional_command_args);
    }
    options.push(wal_name.to_owned());
    options.push(destination.to_owned());
    options
}

/// `barman-cloud-backup --user postgres --name NAME [--COMPRESSION] [--encryption ENC]
/// [--immediate-checkpoint] [--jobs N] [additionalCommandArgs…] [--tags k,v …]
/// [--endpoint-url URL] [--cloud-provider P [--credential C]] DEST SERVER`.
pub fn backup(
    configuration: &BarmanObjectStoreConfiguration,
    backup_name: &str,
    server: &str,
) -> Vec<String> {
    let mut options = vec![
        "--user".to_owned(),
        "postgres".to_owned(),
        "--name".to_owned(),
        backup_name.to_owned(),
    ];
    if let Some(data) = &configuration.data {
        if let Some(compression) = data.compression.as_deref().filter(|c| !c.is_empty()) {
            options.push(format!("--{compression}"));
        }
        if let Some(encryption) = data.encryption.as_deref().filter(|e| !e.is_empty()) {
            options.push("--encryption".to_owned());
            options.push(encryption.to_owned());
        }
        if data.immediate_checkpoint {
            options.push("--immediate-checkpoint".to_owned());
        }
        if let Some(jobs) = data.jobs {
            options.push("--jobs".to_owned());
            options.push(jobs.to_string());
        }
        push_additional(&mut options, &data.additional_command_args);
    }
    push_tags(&mut options, "--tags", &configuration.tags);
    push_endpoint(&mut options, configuration);
    options.extend(cloud_provider_args(configuration));
    options.push(configuration.destination_path.clone());
    options.push(server.to_owned());
    options
}

/// `barman-cloud-restore [--cloud-provider P [--credential C]] [--endpoint-url URL]
/// [data.restoreAdditionalCommandArgs…] DEST SERVER BACKUP_ID PGDATA`: the provider before
/// the endpoint, as the plugin orders them to work around Barman 3.13.0's parser (#209).
pub fn restore(
    configuration: &BarmanObjectStoreConfiguration,
    server: &str,
    backup_id: &str,
    pgdata: &str,
) -> Vec<String> {
    let mut options = cloud_provider_args(configuration);
    push_endpoint(&mut options, configuration);
    if let Some(data) = &configuration.data {
        push_additional(&mut options, &data.restore_additional_command_args);
    }
    options.push(configuration.destination_path.clone());
    options.push(server.to_owned());
    options.push(backup_id.to_owned());
    options.push(pgdata.to_owned());
    options
}

/// The library's query commands: `--format json [--endpoint-url URL] [--cloud-provider P
/// [--credential C]] DEST SERVER [trailing…]`.
fn query(
    configuration: &BarmanObjectStoreConfiguration,
    server: &str,
    trailing: &[&str],
) -> Vec<String> {
    let mut options = vec!["--format".to_owned(), "json".to_owned()];
    push_endpoint(&mut options, configuration);
    options.extend(cloud_provider_args(configuration));
    options.push(configuration.destination_path.clone());
    options.push(server.to_owned());
    options.extend(trailing.iter().map(|&t| t.to_owned()));
    options
}

/// `barman-cloud-backup-show --format json [--endpoint-url URL] [--cloud-provider P
/// [--credential C]] DEST SERVER BACKUP`.
pub fn backup_show(
    configuration: &BarmanObjectStoreConfiguration,
    server: &str,
    backup: &str,
) -> Vec<String> {
    query(configuration, server, &[backup])
}

/// `barman-cloud-backup-list --format json [--endpoint-url URL] [--cloud-provider P
/// [--credential C]] DEST SERVER`.
pub fn backup_list(configuration: &BarmanObjectStoreConfiguration, server: &str) -> Vec<String> {
    query(configuration, server, &[])
}

/// Deletes the backups (and the WAL only they need) a retention policy no longer keeps.
pub const BACKUP_DELETE: &str = "barman-cloud-backup-delete";

/// `barman-cloud-backup-delete [--endpoint-url URL] [--cloud-provider P [--credential C]]
/// --retention-policy POLICY DEST SERVER`, `POLICY` being Barman's text (`RECOVERY WINDOW OF
/// 30 DAYS`, `REDUNDANCY 3`). No additional arguments: the library passes none to it.
pub fn backup_delete(
    configuration: &BarmanObjectStoreConfiguration,
    server: &str,
    policy: &str,
) -> Vec<String> {
    let mut options = Vec::new();
    push_endpoint(&mut options, configuration);
    options.extend(crate::credentials::cloud_provider_args(configuration));
    options.extend([
        "--retention-policy".to_owned(),
        policy.to_owned(),
        configuration.destination_path.clone(),
        server.to_owned(),
    ]);
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn configuration(value: serde_json::Value) -> BarmanObjectStoreConfiguration {
        serde_json::from_value(value).unwrap()
    }

    fn s3(extra: serde_json::Value) -> BarmanObjectStoreConfiguration {
        let mut value = json!({
            "destinationPath": "s3://bucket/path",
            "s3Credentials": {
                "accessKeyId": {"name": "aws", "key": "ID"},
                "secretAccessKey": {"name": "aws", "key": "KEY"}
            }
        });
        for (key, field) in extra.as_object().unwrap() {
            value[key] = field.clone();
        }
        configuration(value)
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|&s| s.to_owned()).collect()
    }

    #[test]
    fn backup_delete_puts_the_endpoint_before_the_provider() {
        assert_eq!(
            backup_delete(
                &s3(json!({"endpointURL": "http://minio:9000", "serverName": "other"})),
                "pg",
                "RECOVERY WINDOW OF 30 DAYS"
            ),
            strings(&[
                "--endpoint-url",
                "http://minio:9000",
                "--cloud-provider",
                "aws-s3",
                "--retention-policy",
                "RECOVERY WINDOW OF 30 DAYS",
                "s3://bucket/path",
                "pg",
            ])
        );
        let azure = configuration(json!({
            "destinationPath": "https://account.blob.core.windows.net/c",
            "azureCredentials": {"inheritFromAzureAD": true}
        }));
        assert_eq!(
            backup_delete(&azure, "pg", "REDUNDANCY 2"),
            strings(&[
                "--cloud-provider",
                "azure-blob-storage",
                "--credential",
                "managed-identity",
                "--retention-policy",
                "REDUNDANCY 2",
                "https://account.blob.core.windows.net/c",
                "pg",
            ])
        );
    }

    #[test]
    fn wal_archive_minimal() {
        assert_eq!(
            wal_archive(
                &s3(json!({})),
                "pg",
                "/pgdata/pg_wal/000000010000000000000001"
            ),
            strings(&[
                "--cloud-provider",
                "aws-s3",
                "s3://bucket/path",
                "pg",
                "/pgdata/pg_wal/000000010000000000000001"
            ])
        );
    }

    #[test]
    fn wal_archive_every_option_in_the_librarys_order() {
        let configuration = s3(json!({
            "endpointURL": "http://minio:9000",
            "wal": {"compression": "gzip", "encryption": "AES256",
                    "archiveAdditionalCommandArgs": ["--min-chunk-size=5MB", "--read-timeout=60"]},
            "tags": {"b": "2", "a": "1"},
            "historyTags": {"h": "x"}
        }));
        assert_eq!(
            wal_archive(&configuration, "pg", "/w/1"),
            strings(&[
                "--gzip",
                "-e",
                "AES256",
                "--min-chunk-size=5MB",
                "--read-timeout=60",
                "--endpoint-url",
                "http://minio:9000",
                "--tags",
                "a,1",
                "b,2",
                "--history-tags",
                "h,x",
                "--cloud-provider",
                "aws-s3",
                "s3://bucket/path",
                "pg",
                "/w/1"
            ])
        );
    }

    #[test]
    fn the_stores_own_server_name_wins_for_wal_commands_only() {
        let configuration = s3(json!({"serverName": "legacy"}));
        assert_eq!(wal_archive(&configuration, "pg", "/w")[3], "legacy");
        assert_eq!(check_wal_archive(&configuration, "pg")[3], "legacy");
        assert_eq!(wal_restore(&configuration, "pg", "w", "/d")[3], "legacy");
        assert_eq!(backup_list(&configuration, "pg")[5], "pg");
        let backup = backup(&configuration, "b", "pg");
        assert_eq!(backup.last().unwrap(), "pg");
        // Empty is unset.
        let configuration = s3(json!({"serverName": ""}));
        assert_eq!(check_wal_archive(&configuration, "pg")[3], "pg");
    }

    #[test]
    fn additional_arguments_are_deduplicated_as_the_library_does() {
        let configuration = s3(
            json!({"wal": {"compression": "gzip", "encryption": "aws:kms",
            "archiveAdditionalCommandArgs": [
                "--gzip",            // already an option: dropped
                "-e=AES256",         // key -e is an option: dropped
                "",                  // empty key: dropped
                "=x",                // empty key: dropped
                "--max-concurrency=4",
                "--max-concurrency=8", // the key set is the built options' only: kept
                "--flag",
                "--flag",            // now an option: dropped
                "aws:kms"            // equals an option's value: dropped
            ]}}),
        );
        let options = wal_archive(&configuration, "pg", "/w");
        assert_eq!(
            options[..7],
            strings(&[
                "--gzip",
                "-e",
                "aws:kms",
                "--max-concurrency=4",
                "--max-concurrency=8",
                "--flag",
                "--cloud-provider"
            ])
        );
    }

    #[test]
    fn check_wal_archive_options() {
        let configuration = s3(
            json!({"endpointURL": "http://s3", "wal": {"compression": "gzip"},
                                       "tags": {"a": "1"}}),
        );
        assert_eq!(
            check_wal_archive(&configuration, "pg"),
            strings(&[
                "--endpoint-url",
                "http://s3",
                "--cloud-provider",
                "aws-s3",
                "s3://bucket/path",
                "pg"
            ])
        );
    }

    #[test]
    fn wal_restore_puts_additional_arguments_after_the_server_name() {
        let configuration = s3(json!({"endpointURL": "http://s3",
            "wal": {"restoreAdditionalCommandArgs": ["--read-timeout=9", "pg", "--endpoint-url=x"]}}));
        assert_eq!(
            wal_restore(
                &configuration,
                "pg",
                "000000010000000000000002",
                "/pgdata/pg_wal/RECOVERYXLOG"
            ),
            strings(&[
                "--endpoint-url",
                "http://s3",
                "--cloud-provider",
                "aws-s3",
                "s3://bucket/path",
                "pg",
                "--read-timeout=9",
                "000000010000000000000002",
                "/pgdata/pg_wal/RECOVERYXLOG"
            ])
        );
    }

    #[test]
    fn backup_every_option_in_the_librarys_order() {
        let configuration = s3(json!({
            "endpointURL": "http://s3",
            "data": {"compression": "snappy", "encryption": "AES256", "immediateCheckpoint": true,
                     "jobs": 3, "additionalCommandArgs": ["--min-chunk-size=5MB", "--jobs=9", "postgres"]},
            "tags": {"k": "v"},
            "wal": {"compression": "gzip"}
        }));
        assert_eq!(
            backup(&configuration, "backup-20261202051500", "pg"),
            strings(&[
                "--user",
                "postgres",
                "--name",
                "backup-20261202051500",
                "--snappy",
                "--encryption",
                "AES256",
                "--immediate-checkpoint",
                "--jobs",
                "3",
                "--min-chunk-size=5MB",
                "--tags",
                "k,v",
                "--endpoint-url",
                "http://s3",
                "--cloud-provider",
                "aws-s3",
                "s3://bucket/path",
                "pg"
            ])
        );
    }

    #[test]
    fn backup_minimal() {
        assert_eq!(
            backup(&s3(json!({})), "b", "pg"),
            strings(&[
                "--user",
                "postgres",
                "--name",
                "b",
                "--cloud-provider",
                "aws-s3",
                "s3://bucket/path",
                "pg"
            ])
        );
    }

    #[test]
    fn restore_puts_the_provider_before_the_endpoint() {
        let configuration = s3(json!({
            "endpointURL": "http://s3",
            "serverName": "legacy",
            "data": {"restoreAdditionalCommandArgs": ["--jobs=2", "--endpoint-url=x", "--cloud-provider"],
                     "additionalCommandArgs": ["--min-chunk-size=5MB"]},
            "wal": {"restoreAdditionalCommandArgs": ["--read-timeout=9"]}
        }));
        assert_eq!(
            restore(&configuration, "pg", "20261202T051500", "/pgdata"),
            strings(&[
                "--cloud-provider",
                "aws-s3",
                "--endpoint-url",
                "http://s3",
                "--jobs=2",
                "s3://bucket/path",
                "pg",
                "20261202T051500",
                "/pgdata"
            ])
        );
        assert_eq!(
            restore(&s3(json!({})), "pg", "b", "/d"),
            strings(&[
                "--cloud-provider",
                "aws-s3",
                "s3://bucket/path",
                "pg",
                "b",
                "/d"
            ])
        );
    }

    #[test]
    fn backup_show_and_list_ask_for_json() {
        let configuration =
            s3(json!({"endpointURL": "http://s3", "data": {"compression": "gzip"}}));
        assert_eq!(
            backup_show(&configuration, "pg", "backup-1"),
            strings(&[
                "--format",
                "json",
                "--endpoint-url",
                "http://s3",
                "--cloud-provider",
                "aws-s3",
                "s3://bucket/path",
                "pg",
                "backup-1"
            ])
        );
        assert_eq!(
            backup_list(&configuration, "pg"),
            strings(&[
                "--format",
                "json",
                "--endpoint-url",
                "http://s3",
                "--cloud-provider",
                "aws-s3",
                "s3://bucket/path",
                "pg"
            ])
        );
    }

    #[test]
    fn azure_and_google_providers() {
        let azure = configuration(json!({
            "destinationPath": "https://acct.blob.core.windows.net/c/p",
            "azureCredentials": {"inheritFromAzureAD": true}
        }));
        assert_eq!(
            check_wal_archive(&azure, "pg")[..4],
            strings(&[
                "--cloud-provider",
                "azure-blob-storage",
                "--credential",
                "managed-identity"
            ])
        );
        let google = configuration(json!({
            "destinationPath": "gs://b/p",
            "googleCredentials": {"gkeEnvironment": true}
        }));
        assert_eq!(
            backup_list(&google, "pg"),
            strings(&[
                "--format",
                "json",
                "--cloud-provider",
                "google-cloud-storage",
                "gs://b/p",
                "pg"
            ])
        );
    }
}
