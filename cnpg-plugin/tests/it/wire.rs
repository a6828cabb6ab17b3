//! Bytes on the wire, written out by hand from cnpg-i v0.6.0's field numbers
//! (shared/spec/cnpg-i-protocol.md §3), so a wrong number in our `.proto` files fails here
//! even though the server and the stand-in share the generated code.

use cnpg_plugin::metadata::{INSTANCE_SERVICES, plugin_capabilities};
use cnpg_plugin::proto::backup::BackupResult;
use cnpg_plugin::proto::identity::{GetPluginCapabilitiesResponse, GetPluginMetadataResponse};
use cnpg_plugin::proto::wal::{WalArchiveRequest, WalRestoreRequest, wal_restore_request};
use prost::Message;

#[test]
fn plugin_capabilities_encode_as_cnpg_i() {
    let encoded = GetPluginCapabilitiesResponse {
        capabilities: plugin_capabilities(&INSTANCE_SERVICES),
    }
    .encode_to_vec();
    // capabilities (1, message) { service (1, message) { type (1, varint) } }, three times:
    // WAL = 2, BACKUP = 3, METRICS = 10.
    assert_eq!(
        encoded,
        [
            0x0a, 0x04, 0x0a, 0x02, 0x08, 0x02, //
            0x0a, 0x04, 0x0a, 0x02, 0x08, 0x03, //
            0x0a, 0x04, 0x0a, 0x02, 0x08, 0x0a,
        ]
    );
}

#[test]
fn metadata_fields_have_cnpg_i_numbers() {
    let one = |field: fn(&mut GetPluginMetadataResponse) -> &mut String| {
        let mut message = GetPluginMetadataResponse::default();
        *field(&mut message) = "x".into();
        message.encode_to_vec()[0] >> 3
    };
    assert_eq!(one(|m| &mut m.name), 1);
    assert_eq!(one(|m| &mut m.version), 2);
    assert_eq!(one(|m| &mut m.display_name), 3);
    assert_eq!(one(|m| &mut m.description), 4);
    assert_eq!(one(|m| &mut m.project_url), 5);
    assert_eq!(one(|m| &mut m.repository_url), 6);
    assert_eq!(one(|m| &mut m.license), 7);
    assert_eq!(one(|m| &mut m.license_url), 8);
    assert_eq!(one(|m| &mut m.maturity), 9);
    assert_eq!(one(|m| &mut m.vendor), 10);
    let mut manifest = GetPluginMetadataResponse::default();
    manifest.manifest.insert("k".into(), "v".into());
    assert_eq!(manifest.encode_to_vec()[0], (11 << 3) | 2);
}

#[test]
fn check_empty_wal_archive_keeps_its_presence() {
    // Field 4, varint: `false` is sent (0x20 0x00), absence sends nothing.
    let with = |value| WalArchiveRequest {
        check_empty_wal_archive: value,
        ..WalArchiveRequest::default()
    };
    assert_eq!(with(Some(false)).encode_to_vec(), [0x20, 0x00]);
    assert_eq!(with(Some(true)).encode_to_vec(), [0x20, 0x01]);
    assert!(with(None).encode_to_vec().is_empty());
    let decoded = WalArchiveRequest::decode(&[0x20, 0x00][..]).unwrap();
    assert_eq!(decoded.check_empty_wal_archive, Some(false));
    // source_file_name is field 2.
    let path = WalArchiveRequest {
        source_file_name: "/p".into(),
        ..WalArchiveRequest::default()
    };
    assert_eq!(path.encode_to_vec(), [0x12, 0x02, b'/', b'p']);
}

#[test]
fn restore_request_mode_is_field_5() {
    let request = WalRestoreRequest {
        mode: wal_restore_request::Mode::Rewind.into(),
        destination_file_name: "d".into(),
        source_wal_name: "s".into(),
        ..WalRestoreRequest::default()
    };
    // source_wal_name 2, destination_file_name 3, mode 5 = MODE_REWIND (2).
    assert_eq!(
        request.encode_to_vec(),
        [0x12, 0x01, b's', 0x1a, 0x01, b'd', 0x28, 0x02]
    );
}

#[test]
fn backup_result_numbers() {
    let result = BackupResult {
        backup_id: "i".into(),
        instance_id: "p".into(),
        online: true,
        started_at: 1,
        metadata: [("k".to_owned(), "v".to_owned())].into(),
        ..BackupResult::default()
    };
    // backup_id 1, started_at 3, instance_id 11, online 12, metadata 13 (map entry: key 1,
    // value 2).
    assert_eq!(
        result.encode_to_vec(),
        [
            0x0a, 0x01, b'i', 0x18, 0x01, 0x5a, 0x01, b'p', 0x60, 0x01, 0x6a, 0x06, 0x0a, 0x01,
            b'k', 0x12, 0x01, b'v',
        ]
    );
}

#[test]
fn restore_job_messages_have_cnpg_i_numbers() {
    use cnpg_plugin::metadata::RESTORE_SERVICES;
    use cnpg_plugin::proto::wal::{
        RestoreJobHooksCapabilitiesResult, RestoreJobHooksCapability, RestoreRequest,
        RestoreResponse, restore_job_hooks_capability::Kind,
    };
    // The restore role's Identity: RESTORE_JOB = 6, WAL = 2, in the plugin's order.
    let encoded = GetPluginCapabilitiesResponse {
        capabilities: plugin_capabilities(&RESTORE_SERVICES),
    }
    .encode_to_vec();
    assert_eq!(
        encoded,
        [
            0x0a, 0x04, 0x0a, 0x02, 0x08, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0x08, 0x02
        ]
    );
    // capabilities (1) { kind (1) = KIND_RESTORE (1) }.
    let capabilities = RestoreJobHooksCapabilitiesResult {
        capabilities: vec![RestoreJobHooksCapability {
            kind: Kind::Restore.into(),
        }],
    };
    assert_eq!(capabilities.encode_to_vec(), [0x0a, 0x02, 0x08, 0x01]);
    // cluster_definition 1 (bytes), check_empty_wal_archive 2 (optional: false is sent).
    let request = RestoreRequest {
        cluster_definition: b"{}".to_vec(),
        check_empty_wal_archive: Some(false),
    };
    assert_eq!(
        request.encode_to_vec(),
        [0x0a, 0x02, b'{', b'}', 0x10, 0x00]
    );
    let absent = RestoreRequest::decode(&[0x0a, 0x00][..]).unwrap();
    assert_eq!(absent.check_empty_wal_archive, None);
    // restore_config 1 (string), envs 2 (repeated string).
    let response = RestoreResponse {
        restore_config: "a".into(),
        envs: vec!["B=c".into()],
    };
    assert_eq!(
        response.encode_to_vec(),
        [0x0a, 0x01, b'a', 0x12, 0x03, b'B', b'=', b'c']
    );
}

#[test]
fn restore_job_hooks_path_is_in_the_wal_package() {
    use cnpg_plugin::proto::wal::restore_job_hooks_server::SERVICE_NAME;
    assert_eq!(SERVICE_NAME, "cnpgi.wal.v1.RestoreJobHooks");
}
