//! Telling "no credentials found" from a refusal by the store (issue #17).
//!
//! When the user configured no credentials, every provider's chain in `object_store` ends at
//! a metadata service (EC2's, Azure's managed identity, GCE's); off a cloud machine that
//! request fails, and its failure used to read as "access denied", though the store was never
//! asked. [`Fallback`] wraps such a chain's provider so that its failure carries
//! [`NoCredentials`], naming every place that was looked in; `classify.rs` finds it in the
//! error's chain. A chain the user configured (keys, a token file, a profile) is left alone:
//! its failure is about that source.

use std::sync::Arc;

use object_store::CredentialProvider;

/// The marker a failed fallback chain leaves in its error.
#[derive(Debug)]
pub(crate) struct NoCredentials {
    /// Every source consulted, in order, in words that fit after "looked in: ".
    pub looked_in: String,
    /// The metadata service's own failure, for `-v` and library callers.
    source: object_store::Error,
}

impl std::fmt::Display for NoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no credentials found (looked in: {})", self.looked_in)
    }
}

impl std::error::Error for NoCredentials {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl NoCredentials {
    /// The marker somewhere in `e`'s chain, if the failure came from a fallback chain.
    pub(crate) fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a NoCredentials> {
        let mut source = Some(e);
        while let Some(err) = source {
            if let Some(found) = err.downcast_ref::<NoCredentials>() {
                return Some(found);
            }
            source = err.source();
        }
        None
    }
}

/// A provider whose chain ended at the metadata service because nothing else was configured.
pub(super) struct Fallback<C> {
    inner: Arc<dyn CredentialProvider<Credential = C>>,
    store: &'static str,
    looked_in: String,
}

impl<C> Fallback<C> {
    /// Wraps `inner`, the chain `object_store` built for `store` ("S3", "GCS", ...).
    pub(super) fn new(
        inner: Arc<dyn CredentialProvider<Credential = C>>,
        store: &'static str,
        looked_in: String,
    ) -> Arc<Self> {
        Arc::new(Fallback {
            inner,
            store,
            looked_in,
        })
    }
}

impl<C> std::fmt::Debug for Fallback<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fallback")
            .field("store", &self.store)
            .field("looked_in", &self.looked_in)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<C: Send + Sync + 'static> CredentialProvider for Fallback<C> {
    type Credential = C;

    async fn get_credential(&self) -> object_store::Result<Arc<C>> {
        self.inner.get_credential().await.map_err(|source| {
            tracing::debug!(
                "{} credentials from the metadata service: {source}",
                self.store
            );
            object_store::Error::Generic {
                store: self.store,
                source: Box::new(NoCredentials {
                    looked_in: self.looked_in.clone(),
                    source,
                }),
            }
        })
    }
}
