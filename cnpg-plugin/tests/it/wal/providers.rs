//! The WAL calls through the sidecar on Azure and GCS, as on S3 in [`super::replay`]: the
//! ObjectStore and its credentials' Secret in the API stand-in (an Azure connection string, a
//! SAS token inside one, a GCS service-account key), a segment archived by the Archive call
//! and fetched back by the Restore call, byte for byte, and no Secret value in the log.

use std::path::Path;

use cnpg_plugin::proto::wal::{WalArchiveRequest, WalRestoreRequest, wal_client::WalClient};
use serde_json::{Value, json};

use super::rig::{Rig, cluster, definition, shared_dir};
use crate::rounds::{
    GCS_PRIVATE_KEY, azurite, create_azure_container, create_gcs_bucket, gcs_key, required, unique,
};

const HISTORY: &str = "00000002.history";
const HISTORY_TEXT: &[u8] = b"1\t0/3000000\tno recovery target specified\n";

/// Archives and restores [`HISTORY`] through a sidecar reading the ObjectStore `store` (with
/// `configuration`) and the Secret `secret` (`key` = `value`); `env` is the sidecar's own
/// extra environment. Returns the sidecar's log.
async fn round(
    rig: &Rig,
    store: &str,
    configuration: Value,
    (secret, key, value): (&str, &str, &str),
    env: &[(&str, &Path)],
) -> String {
    rig.api.put_secret(secret, &[(key, value.as_bytes())]);
    rig.api.put_object_store(store, configuration);
    let pgdata = shared_dir(&rig.root.join(store).join("data"));
    let wal = shared_dir(&pgdata.join("pg_wal"));
    let source = wal.join(HISTORY);
    std::fs::write(&source, HISTORY_TEXT).unwrap();
    let sidecar = rig.sidecar_with_env(store, &pgdata, env).await;
    let definition = definition(&cluster(Some(store), store));
    let mut client = WalClient::new(sidecar.channel().await);
    client
        .archive(WalArchiveRequest {
            cluster_definition: definition.clone(),
            source_file_name: path(&source),
            ..WalArchiveRequest::default()
        })
        .await
        .unwrap_or_else(|status| panic!("archive on {store}: {status:?}\n{}", sidecar.log()));
    let restored = shared_dir(&rig.root.join(store).join("restored")).join(HISTORY);
    client
        .restore(WalRestoreRequest {
            cluster_definition: definition,
            source_wal_name: HISTORY.into(),
            destination_file_name: path(&restored),
            ..WalRestoreRequest::default()
        })
        .await
        .unwrap_or_else(|status| panic!("restore on {store}: {status:?}\n{}", sidecar.log()));
    assert_eq!(std::fs::read(&restored).unwrap(), HISTORY_TEXT, "{store}");
    sidecar.log()
}

fn path(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_and_restore_through_the_sidecar_on_azure_and_gcs() {
    let Some(rig) = Rig::new() else { return };
    let Some((endpoint, connection, account_key)) = azurite() else {
        return;
    };
    let Some(gcs) = required("BCRS_GCS_ENDPOINT") else {
        return;
    };

    let container = unique("sidecar");
    create_azure_container(&connection, &container).expect("an Azure container");
    let log = round(
        &rig,
        "azure-key",
        json!({
            "destinationPath": format!("{endpoint}/{container}/key"),
            "azureCredentials": {"connectionString": {"name": "azure-key", "key": "CONNECTION"}},
        }),
        ("azure-key", "CONNECTION", &connection),
        &[],
    )
    .await;
    assert!(!log.contains(&account_key));

    let sas = crate::rounds::azurite_sas(&connection).expect("a SAS from Azurite's key");
    let signature = sas
        .split('&')
        .find_map(|pair| pair.strip_prefix("sig="))
        .expect("a signature in the SAS")
        .to_owned();
    // An emulated endpoint needs a connection string (as in Barman): the SAS goes inside one.
    let sas_connection = format!("BlobEndpoint={endpoint};SharedAccessSignature={sas};");
    let log = round(
        &rig,
        "azure-sas",
        json!({
            "destinationPath": format!("{endpoint}/{container}/sas"),
            "azureCredentials": {"connectionString": {"name": "azure-sas", "key": "CONNECTION"}},
        }),
        ("azure-sas", "CONNECTION", &sas_connection),
        &[],
    )
    .await;
    assert!(!log.contains(&signature) && !log.contains(&account_key));

    let bucket = create_gcs_bucket(&gcs);
    let log = round(
        &rig,
        "gcs",
        json!({
            "destinationPath": format!("gs://{bucket}/cluster"),
            "googleCredentials": {"applicationCredentials": {"name": "gcs", "key": "KEY"}},
        }),
        ("gcs", "KEY", &gcs_key()),
        // In a deployment: the ObjectStore's instanceSidecarConfiguration.env.
        &[("STORAGE_EMULATOR_HOST", Path::new(&gcs))],
    )
    .await;
    assert!(!log.contains(GCS_PRIVATE_KEY));
}
