//! One storage conformance suite, run against every provider: what the WAL and backup code
//! relies on from a store, checked on file, S3 (moto), Azure (Azurite) and GCS (emulator).

use barman_cloud::error::Error;
use barman_cloud::storage::{Location, Storage, StorageOptions, WriteOptions};
use bytes::Bytes;
use object_store::path::Path;

use crate::support::{Provider, Store};

fn provider_flag(store: &Store) -> barman_cloud::storage::Provider {
    use barman_cloud::storage::Provider as P;
    match store
        .args
        .iter()
        .position(|a| a == "--cloud-provider")
        .map(|i| store.args[i + 1].as_str())
    {
        Some("azure-blob-storage") => P::AzureBlobStorage,
        Some("google-cloud-storage") => P::GoogleCloudStorage,
        _ => P::AwsS3,
    }
}

/// Opens the library's client for a test store, with the store's credentials as overrides.
pub fn open(store: &Store, url: &str) -> Storage {
    let location = Location::parse(url, provider_flag(store)).unwrap();
    let endpoint = store
        .args
        .iter()
        .position(|a| a == "--endpoint-url")
        .map(|i| store.args[i + 1].clone());
    let options = StorageOptions {
        provider: provider_flag(store),
        endpoint_url: endpoint,
        env: store.env.clone(),
        ..Default::default()
    };
    Storage::open(&location, &options).unwrap()
}

/// Every key under the store's URL prefix plus `sub`, sorted.
pub fn list_keys(store: &Store, sub: &str) -> Vec<String> {
    let storage = open(store, &store.url);
    let prefix = storage.location().prefix.trim_matches('/').to_string();
    let dir = if sub.is_empty() {
        prefix
    } else {
        format!("{prefix}/{sub}")
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut keys: Vec<String> = rt
        .block_on(storage.list_all(&Path::from(dir)))
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    keys.sort();
    keys
}

/// The text of the object at `sub` under the store's URL prefix.
pub fn get_text(store: &Store, sub: &str) -> String {
    let storage = open(store, &store.url);
    let key = format!("{}/{sub}", storage.location().prefix.trim_matches('/'));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = rt.block_on(storage.get(&Path::from(key))).unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn suite(store: &Store) {
    let storage = open(store, &store.url);
    let root = storage.location().prefix.trim_matches('/').to_string();
    let key = |k: &str| Path::from(format!("{root}/{k}"));
    storage.check().await.expect("check on an existing bucket");

    // Round trip, including a body large enough for chunked transfer.
    let big = Bytes::from(crate::support::wal_like_bytes(20 << 20, 42));
    storage
        .put(
            &key("a/one"),
            Bytes::from_static(b"1"),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    storage
        .put(
            &key("a/b/two"),
            big.clone(),
            &WriteOptions {
                tags: vec![("env".into(), "test".into())],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        storage.get(&key("a/one")).await.unwrap(),
        Bytes::from_static(b"1")
    );
    assert_eq!(storage.get(&key("a/b/two")).await.unwrap(), big);

    // Overwrite replaces whole objects.
    storage
        .put(
            &key("a/one"),
            Bytes::from_static(b"uno"),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        storage.get(&key("a/one")).await.unwrap(),
        Bytes::from_static(b"uno")
    );

    // A directory listing holds only direct children; a recursive one holds everything.
    let direct: Vec<String> = storage
        .list_dir(&key("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    assert_eq!(direct, vec![key("a/one").to_string()]);
    let mut all: Vec<String> = storage
        .list_all(&key("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    all.sort();
    assert_eq!(
        all,
        vec![key("a/b/two").to_string(), key("a/one").to_string()]
    );
    assert!(storage.list_dir(&key("empty")).await.unwrap().is_empty());
    // A listing cut at a key: everything up to it, in key order.
    let cut = |last: &str| {
        let storage = &storage;
        let last = key(last).to_string();
        async move {
            let mut got: Vec<String> = storage
                .list_until(&key("a"), &last)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.location.to_string())
                .collect();
            got.sort();
            got
        }
    };
    assert_eq!(cut("a/b/two").await, vec![key("a/b/two").to_string()]);
    assert_eq!(cut("a/b/twp").await, vec![key("a/b/two").to_string()]);
    assert_eq!(cut("a/z").await, all);

    // Missing objects and buckets have their own meanings.
    assert!(matches!(
        storage.get(&key("missing")).await,
        Err(Error::ObjectNotFound { .. })
    ));

    // Streamed uploads: several 5 MiB parts in flight, invisible until finished; an aborted
    // one leaves nothing.
    let mut upload = storage
        .upload(&key("multi/part"), &WriteOptions::default(), 5 << 20, 2)
        .await
        .unwrap();
    for chunk in big.chunks(3 << 20) {
        upload.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert!(storage.list_dir(&key("multi")).await.unwrap().is_empty());
    upload.finish().await.unwrap();
    assert_eq!(storage.get(&key("multi/part")).await.unwrap(), big);
    let mut aborted = storage
        .upload(&key("multi/aborted"), &WriteOptions::default(), 5 << 20, 2)
        .await
        .unwrap();
    aborted.write(big.slice(..(6 << 20))).await.unwrap();
    aborted.abort().await;
    let left: Vec<_> = storage.list_all(&key("multi")).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");

    // Bulk deletes: several batches (one smaller than the rest), missing keys included, the
    // rest untouched.
    let many: Vec<Path> = (0..25).map(|n| key(&format!("bulk/{n:03}"))).collect();
    for k in &many {
        storage
            .put(k, Bytes::from_static(b"x"), &WriteOptions::default())
            .await
            .unwrap();
    }
    let mut doomed: Vec<Path> = many[..20].to_vec();
    doomed.push(key("bulk/never-there"));
    storage.delete_many(&doomed, 7).await.unwrap();
    let mut left: Vec<String> = storage
        .list_all(&key("bulk"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    left.sort();
    let kept: Vec<String> = many[20..].iter().map(Path::to_string).collect();
    assert_eq!(left, kept);
    storage.delete_many(&[], 7).await.unwrap();
}

async fn missing_bucket(store: &Store) {
    let url = store.url.replace("bcrs-", "bcrs-missing-");
    let storage = open(store, &url);
    let err = storage
        .check()
        .await
        .expect_err("a missing bucket must fail the check");
    assert!(matches!(err, Error::BucketCheckFailed { .. }), "{err}");
    let missing = storage
        .list_all(&object_store::path::Path::from("prefix"))
        .await;
    assert!(
        matches!(missing, Err(Error::BucketNotFound { .. })),
        "{missing:?}"
    );
    // A read names a key, so only the provider's code for a missing bucket (NoSuchBucket,
    // ContainerNotFound), which object_store keeps in its text alone, tells it from a
    // missing object. (GCS's JSON API answers a read with a bare 404.)
    if provider_flag(store) != barman_cloud::storage::Provider::GoogleCloudStorage {
        let read = storage.get(&Path::from("prefix/key")).await;
        assert!(
            matches!(read, Err(Error::BucketNotFound { .. })),
            "{read:?}"
        );
    }
}

/// A refused key is [`Error::AccessDenied`] for every kind of request, whichever way
/// object_store reports the refusal: a typed error, or only the status in its text (the
/// `403 Forbidden` that `storage/classify.rs` matches).
#[test]
fn refused_credentials_are_access_denied() {
    let Some(mut store) = Store::new(Provider::Azure) else {
        return;
    };
    let connection = &mut store.env[0].1;
    let key = connection
        .split(';')
        .find_map(|p| p.strip_prefix("AccountKey="))
        .unwrap()
        .to_string();
    *connection = connection.replace(&key, "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=");
    let storage = open(&store, &store.url);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = Path::from(storage.location().prefix.trim_matches('/'));
        let key = dir.clone().join("refused");
        let outcomes = [
            ("list", storage.list_all(&dir).await.map(drop)),
            ("list one level", storage.list_dir(&dir).await.map(drop)),
            ("get", storage.get(&key).await.map(drop)),
            (
                "put",
                storage
                    .put(&key, Bytes::from_static(b"x"), &WriteOptions::default())
                    .await,
            ),
            (
                "delete",
                storage.delete_many(std::slice::from_ref(&key), 10).await,
            ),
        ];
        for (what, outcome) in outcomes {
            assert!(
                matches!(outcome, Err(Error::AccessDenied { .. })),
                "{what}: {outcome:?}"
            );
        }
    });
}

fn run_suite(provider: Provider) {
    let Some(store) = Store::new(provider) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(suite(&store));
    if provider != Provider::File {
        rt.block_on(missing_bucket(&store));
    }
}

#[test]
fn conformance_file() {
    run_suite(Provider::File);
}

#[test]
fn conformance_s3() {
    run_suite(Provider::S3);
}

#[test]
fn conformance_azure() {
    run_suite(Provider::Azure);
}

#[test]
fn conformance_gcs() {
    run_suite(Provider::Gcs);
}
