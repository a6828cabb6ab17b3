//! The argument vectors of the `barman-cloud-*` commands, as the plugin builds them from an
//! ObjectStore's configuration (architecture §5-§7).

use crate::objectstore::BarmanObjectStoreConfiguration;

/// LEAD PLACEHOLDER until helper "wal" lands the real builders.
pub fn backup(
    configuration: &BarmanObjectStoreConfiguration,
    server: &str,
    name: &str,
) -> Vec<String> {
    let mut args = vec![
        "--user".into(),
        "postgres".into(),
        "--name".into(),
        name.into(),
    ];
    args.extend(common(configuration));
    args.extend([configuration.destination_path.clone(), server.into()]);
    args
}

/// LEAD PLACEHOLDER.
pub fn backup_show(
    configuration: &BarmanObjectStoreConfiguration,
    server: &str,
    name: &str,
) -> Vec<String> {
    let mut args = vec!["--format".into(), "json".into()];
    args.extend(common(configuration));
    args.extend([
        configuration.destination_path.clone(),
        server.into(),
        name.into(),
    ]);
    args
}

/// LEAD PLACEHOLDER.
pub fn backup_list(configuration: &BarmanObjectStoreConfiguration, server: &str) -> Vec<String> {
    let mut args = vec!["--format".into(), "json".into()];
    args.extend(common(configuration));
    args.extend([configuration.destination_path.clone(), server.into()]);
    args
}

fn common(configuration: &BarmanObjectStoreConfiguration) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(url) = &configuration.endpoint_url {
        args.extend(["--endpoint-url".into(), url.clone()]);
    }
    if configuration.s3_credentials.is_some() {
        args.extend(["--cloud-provider".into(), "aws-s3".into()]);
    }
    args
}
