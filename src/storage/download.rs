//! Object bodies as streams: resumed where they broke off through object_store, read in
//! large blocks from local files, and GCS's as the JSON API sends them.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResult, GetResultPayload, ObjectStore, ObjectStoreExt,
};

use super::Location;
use super::classify::{self, classify};
use super::gcs::GcsJson;
use crate::error::{Error, Result, one_line};
use crate::task;

/// How often a download that breaks off mid-body is resumed from where it stopped.
const RESUMES: u32 = 5;

/// An object's size and body.
type Download = (u64, BoxStream<'static, Result<Bytes>>);

/// How much of a local file one blocking read hands on (cut into pieces for the restore
/// channel, see `blocking`).
const LOCAL_CHUNK: u64 = 256 << 10;

/// An object's size and body from `store`, resumed from the last byte received, pinned to
/// the same version by its ETag, up to [`RESUMES`] times.
pub(super) async fn resumable(
    store: Arc<dyn ObjectStore>,
    key: &Path,
    location: &Location,
) -> Result<Download> {
    let first = store
        .get(key)
        .await
        .map_err(|e| classify(e, "download", key, location))?;
    let size = first.meta.size;
    let state = Resume {
        store,
        location: location.clone(),
        key: key.clone(),
        e_tag: first.meta.e_tag.clone(),
        received: 0,
        size,
        resumes_left: RESUMES,
        body: body_stream(first),
    };
    let stream = futures::stream::try_unfold(state, |mut st| async move {
        loop {
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    st.received += chunk.len() as u64;
                    return Ok(Some((chunk, st)));
                }
                None if st.received >= st.size => return Ok(None),
                None => st.resume("the body ended early".into()).await?,
                Some(Err(e)) => st.resume(one_line(&e)).await?,
            }
        }
    });
    Ok((size, stream.boxed()))
}

/// The state of a resumable download.
struct Resume {
    store: Arc<dyn ObjectStore>,
    location: Location,
    key: Path,
    e_tag: Option<String>,
    received: u64,
    size: u64,
    resumes_left: u32,
    body: BoxStream<'static, object_store::Result<Bytes>>,
}

impl Resume {
    async fn resume(&mut self, why: String) -> Result<()> {
        if self.resumes_left == 0 {
            return Err(Error::Storage {
                action: "download",
                key: self.key.to_string(),
                source: format!("{why} after {} of {} bytes", self.received, self.size).into(),
            });
        }
        self.resumes_left -= 1;
        tracing::warn!(
            "download of '{}' broke off after {} of {} bytes ({why}); resuming",
            self.key,
            self.received,
            self.size
        );
        let options = GetOptions {
            range: Some(GetRange::Offset(self.received)),
            if_match: self.e_tag.clone(),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.key, options)
            .await
            .map_err(|e| classify(e, "download", &self.key, &self.location))?;
        self.body = body_stream(result);
        Ok(())
    }
}

/// The body of a GET as a stream. object_store reads a local file 8 KiB per blocking task,
/// which made a 1 GB `file://` restore spend most of its time handing tasks between threads;
/// we read it [`LOCAL_CHUNK`] at a time instead.
fn body_stream(result: GetResult) -> BoxStream<'static, object_store::Result<Bytes>> {
    let (file, path) = match result.payload {
        GetResultPayload::File(file, path) => (Arc::new(file), Arc::new(path)),
        GetResultPayload::Stream(body) => return body,
    };
    futures::stream::try_unfold(result.range.start, move |offset| {
        let (file, path) = (file.clone(), path.clone());
        let want = result.range.end.saturating_sub(offset).min(LOCAL_CHUNK);
        async move {
            if want == 0 {
                return Ok(None);
            }
            task::blocking("reading the local file", move || {
                let mut buf = vec![0u8; want as usize];
                std::os::unix::fs::FileExt::read_exact_at(&*file, &mut buf, offset)
                    .map(|()| Some((Bytes::from(buf), offset + want)))
                    .map_err(|e| object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: format!("cannot read {}: {e}", path.display()).into(),
                    })
            })
            .await
            .unwrap_or_else(|e| {
                Err(object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: e.into(),
                })
            })
        }
    })
    .boxed()
}

/// A GCS object's size and body (no resume: a broken GCS body fails the read).
pub(super) async fn gcs(gcs: &GcsJson, key: &Path, location: &Location) -> Result<Download> {
    let response = gcs
        .get(key)
        .await
        .map_err(|e| classify::request(e, "download", key, location))?;
    let size = response.content_length().unwrap_or(0);
    let (endpoint, owned_key) = (location.url_for_messages(), key.clone());
    let stream = response
        .bytes_stream()
        .map_err(move |e| Error::Connection {
            endpoint: endpoint.clone(),
            source: format!("reading '{owned_key}': {}", e.without_url()).into(),
        })
        .boxed();
    Ok((size, stream))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use object_store::local::LocalFileSystem;
    use object_store::{Attributes, ObjectMeta, PutOptions};

    use super::super::{Backend, Provider, Storage};
    use super::*;

    /// An in-memory store whose first download of each object breaks off after `cut` bytes.
    #[derive(Debug)]
    struct Flaky {
        inner: object_store::memory::InMemory,
        cut: usize,
        broken: std::sync::Mutex<std::collections::HashSet<Path>>,
    }

    impl std::fmt::Display for Flaky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Flaky")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Flaky {
        async fn put_opts(
            &self,
            location: &Path,
            payload: object_store::PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            let first =
                options.range.is_none() && self.broken.lock().unwrap().insert(location.clone());
            let result = self.inner.get_opts(location, options).await?;
            if first {
                let cut = self.cut;
                let head = result.bytes().await?.slice(..cut);
                let failing = futures::stream::iter([
                    Ok(head),
                    Err(object_store::Error::Generic {
                        store: "Flaky",
                        source: "connection reset".into(),
                    }),
                ]);
                let meta = self.inner.head(location).await?;
                return Ok(object_store::GetResult {
                    payload: object_store::GetResultPayload::Stream(failing.boxed()),
                    range: 0..meta.size,
                    meta,
                    attributes: Attributes::new(),
                    extensions: Default::default(),
                });
            }
            Ok(result)
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[tokio::test]
    async fn a_broken_download_resumes_where_it_stopped() {
        let flaky = Arc::new(Flaky {
            inner: object_store::memory::InMemory::new(),
            cut: 1000,
            broken: Default::default(),
        });
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let key = Path::from("pg/base/20261125T035049/data.tar");
        flaky.put(&key, data.clone().into()).await.unwrap();
        let storage = Storage {
            backend: Backend::store(flaky),
            location: Location::parse("file:///nonexistent", Provider::AwsS3).unwrap(),
            destination: String::new(),
            read_timeout: Duration::from_secs(60),
            file: None,
            chunked: None,
        };
        let (size, stream) = storage.stream(&key).await.unwrap();
        assert_eq!(size, 100_000);
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        assert!(chunks.len() >= 2, "the download never broke off");
        assert_eq!(chunks.concat(), data);
    }

    #[tokio::test]
    async fn local_files_stream_whole_and_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let len = 3 * LOCAL_CHUNK as usize + 12_345;
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        std::fs::write(dir.path().join("obj"), &data).unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let key = Path::from("obj");
        let collect = |result: GetResult| async {
            let chunks: Vec<Bytes> = body_stream(result).try_collect().await.unwrap();
            assert!(chunks.iter().all(|c| c.len() as u64 <= LOCAL_CHUNK));
            chunks.concat()
        };
        assert_eq!(collect(store.get(&key).await.unwrap()).await, data);
        let options = GetOptions {
            range: Some(GetRange::Offset(LOCAL_CHUNK + 7)),
            ..GetOptions::default()
        };
        let tail = collect(store.get_opts(&key, options).await.unwrap()).await;
        assert_eq!(tail, data[LOCAL_CHUNK as usize + 7..]);
    }
}
