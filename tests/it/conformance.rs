//! Storage conformance: what the WAL and backup code relies on from a store, as named
//! properties, each run on file, S3 (moto), Azure (Azurite) and GCS (emulator) as a test of
//! its own (`conformance::<property>::<provider>`), as object_store's `integration.rs` does.
//!
//! A store is a row of the first provider list given to `properties!` below, `name =>` an
//! `Option<Subject>` (`None`: skipped). The in-memory store the library's own unit tests use
//! is a row too, so it is held to the same properties as the real ones.

use barman_cloud::error::Error;
use barman_cloud::storage::{Storage, WriteOptions};
use bytes::Bytes;
use object_store::path::Path;

use crate::support::{Provider, Store, block_on, wal_like_bytes};

/// A store under test: the library's client and the key prefix the properties write under.
pub struct Subject {
    storage: Storage,
    root: String,
    /// The bucket behind it, kept for as long as the test runs.
    _store: Option<Store>,
}

impl Subject {
    fn key(&self, key: &str) -> Path {
        Path::from(format!("{}/{key}", self.root))
    }

    /// Every key under `dir`, as text, sorted.
    async fn keys(&self, dir: &str) -> Vec<String> {
        let listed = self.storage.list_all(&self.key(dir)).await.unwrap();
        sorted(listed.into_iter().map(|m| m.location.to_string()))
    }

    /// The keys directly under `dir`, as text.
    async fn dir(&self, dir: &str) -> Vec<String> {
        let listed = self.storage.list_dir(&self.key(dir)).await.unwrap();
        listed.into_iter().map(|m| m.location.to_string()).collect()
    }

    async fn put(&self, key: &str, body: Bytes) {
        self.storage
            .put(&self.key(key), body, &WriteOptions::default())
            .await
            .unwrap();
    }

    async fn get(&self, key: &str) -> Bytes {
        self.storage.get(&self.key(key)).await.unwrap()
    }
}

fn sorted(keys: impl Iterator<Item = String>) -> Vec<String> {
    let mut keys: Vec<String> = keys.collect();
    keys.sort();
    keys
}

/// A fresh bucket on `provider`, through the library's client.
fn bucket(provider: Provider) -> Option<Subject> {
    let store = Store::new(provider)?;
    let storage = store.open(&store.url);
    Some(Subject {
        root: storage.location().prefix.trim_matches('/').to_string(),
        storage,
        _store: Some(store),
    })
}

/// A client for a bucket that does not exist, on the service behind `provider`.
fn missing_bucket(provider: Provider) -> Option<Subject> {
    let store = Store::new(provider)?;
    let storage = store.open(&store.url.replace("bcrs-", "bcrs-missing-"));
    Some(Subject {
        root: "prefix".into(),
        storage,
        _store: Some(store),
    })
}

/// A body large enough for chunked transfer and for several 5 MiB parts.
fn big() -> Bytes {
    Bytes::from(wal_like_bytes(20 << 20, 42))
}

/// One test per property and store: `mod <property> { fn <store>() }`.
macro_rules! properties {
    ($stores:tt $($property:ident),* $(,)?) => {
        $(properties!(@one $property $stores);)*
    };
    (@one $property:ident [$($store:ident => $subject:expr),* $(,)?]) => {
        mod $property {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $store() {
                    if let Some(subject) = $subject {
                        block_on(super::$property(subject));
                    }
                }
            )*
        }
    };
}

properties! {
    [
        memory => Some(Subject { storage: Storage::in_memory(), root: "it".into(), _store: None }),
        file => bucket(Provider::File),
        s3 => bucket(Provider::S3),
        azure => bucket(Provider::Azure),
        gcs => bucket(Provider::Gcs),
    ]
    check_passes_on_an_existing_bucket,
    put_get_round_trip,
    put_replaces_whole_objects,
    list_level,
    list_until_stops_early,
    get_missing_is_object_not_found,
    upload_is_invisible_until_finished,
    aborted_upload_leaves_nothing,
    delete_many_ignores_missing,
}

// A file:// store has no buckets to miss.
properties! {
    [
        s3 => missing_bucket(Provider::S3),
        azure => missing_bucket(Provider::Azure),
        gcs => missing_bucket(Provider::Gcs),
    ]
    check_missing_bucket,
}

async fn check_passes_on_an_existing_bucket(s: Subject) {
    s.storage
        .check()
        .await
        .expect("check on an existing bucket");
}

/// What is put is got back, a small body and a large tagged one.
async fn put_get_round_trip(s: Subject) {
    s.put("a/one", Bytes::from_static(b"1")).await;
    let tagged = WriteOptions {
        tags: vec![("env".into(), "test".into())],
    };
    s.storage
        .put(&s.key("a/b/two"), big(), &tagged)
        .await
        .unwrap();
    assert_eq!(s.get("a/one").await, Bytes::from_static(b"1"));
    assert_eq!(s.get("a/b/two").await, big());
}

async fn put_replaces_whole_objects(s: Subject) {
    s.put("a/one", Bytes::from_static(b"1")).await;
    s.put("a/one", Bytes::from_static(b"uno")).await;
    assert_eq!(s.get("a/one").await, Bytes::from_static(b"uno"));
}

/// A directory listing holds only direct children; a recursive one holds everything; an
/// empty directory lists nothing.
async fn list_level(s: Subject) {
    s.put("a/one", Bytes::from_static(b"1")).await;
    s.put("a/b/two", Bytes::from_static(b"2")).await;
    assert_eq!(s.dir("a").await, vec![s.key("a/one").to_string()]);
    assert_eq!(
        s.keys("a").await,
        vec![s.key("a/b/two").to_string(), s.key("a/one").to_string()]
    );
    assert_eq!(s.dir("empty").await, Vec::<String>::new());
}

/// A listing cut at a key: everything up to it, in key order.
async fn list_until_stops_early(s: Subject) {
    s.put("a/one", Bytes::from_static(b"1")).await;
    s.put("a/b/two", Bytes::from_static(b"2")).await;
    let cut = |last: &str| {
        let (s, last) = (&s, s.key(last).to_string());
        async move {
            let listed = s.storage.list_until(&s.key("a"), &last).await.unwrap();
            sorted(listed.into_iter().map(|m| m.location.to_string()))
        }
    };
    let two = vec![s.key("a/b/two").to_string()];
    assert_eq!(cut("a/b/two").await, two);
    assert_eq!(cut("a/b/twp").await, two);
    assert_eq!(cut("a/z").await, s.keys("a").await);
}

async fn get_missing_is_object_not_found(s: Subject) {
    assert!(matches!(
        s.storage.get(&s.key("missing")).await,
        Err(Error::ObjectNotFound { .. })
    ));
}

/// A streamed upload with several 5 MiB parts in flight is invisible until finished.
async fn upload_is_invisible_until_finished(s: Subject) {
    let big = big();
    let mut upload = s
        .storage
        .upload(&s.key("multi/part"), &WriteOptions::default(), 5 << 20, 2)
        .await
        .unwrap();
    for chunk in big.chunks(3 << 20) {
        upload.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(s.dir("multi").await, Vec::<String>::new());
    upload.finish().await.unwrap();
    assert_eq!(s.get("multi/part").await, big);
}

async fn aborted_upload_leaves_nothing(s: Subject) {
    let mut aborted = s
        .storage
        .upload(
            &s.key("multi/aborted"),
            &WriteOptions::default(),
            5 << 20,
            2,
        )
        .await
        .unwrap();
    aborted.write(big().slice(..(6 << 20))).await.unwrap();
    aborted.abort().await;
    assert_eq!(s.keys("multi").await, Vec::<String>::new());
}

/// Bulk deletes: several batches (one smaller than the rest), missing keys included, the
/// rest untouched; an empty list is no request at all.
async fn delete_many_ignores_missing(s: Subject) {
    let names: Vec<String> = (0..25).map(|n| format!("bulk/{n:03}")).collect();
    for name in &names {
        s.put(name, Bytes::from_static(b"x")).await;
    }
    let mut doomed: Vec<Path> = names[..20].iter().map(|n| s.key(n)).collect();
    doomed.push(s.key("bulk/never-there"));
    s.storage.delete_many(&doomed, 7).await.unwrap();
    let kept: Vec<String> = names[20..].iter().map(|n| s.key(n).to_string()).collect();
    assert_eq!(s.keys("bulk").await, kept);
    s.storage.delete_many(&[], 7).await.unwrap();
}

/// A missing bucket fails the check, and a listing says the bucket is missing.
async fn check_missing_bucket(s: Subject) {
    let err = s
        .storage
        .check()
        .await
        .expect_err("a missing bucket must fail the check");
    assert!(matches!(err, Error::BucketCheckFailed { .. }), "{err}");
    let missing = s.storage.list_all(&Path::from(s.root.as_str())).await;
    assert!(
        matches!(missing, Err(Error::BucketNotFound { .. })),
        "{missing:?}"
    );
    // A read names a key, so only the provider's code for a missing bucket (NoSuchBucket,
    // ContainerNotFound), which object_store keeps in its text alone, tells it from a
    // missing object. (GCS's JSON API answers a read with a bare 404.)
    if s.storage.provider() != barman_cloud::storage::Provider::GoogleCloudStorage {
        let read = s.storage.get(&s.key("key")).await;
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
    let storage = store.open(&store.url);
    block_on(async {
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
