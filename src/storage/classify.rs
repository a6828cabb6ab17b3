//! The one place a store's error gets its meaning (not found, missing bucket, denied,
//! unreachable). object_store keeps some of it only in the text of its errors, so the
//! markers matched here are pinned by tests on the emulators (`tests/it/conformance.rs`,
//! `tests/it/faults.rs`).

use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;

use super::Location;
use super::credentials::NoCredentials;
use super::request::RequestError;
use crate::error::Error;

/// Gives an `object_store` error its meaning.
pub(super) fn classify(
    e: object_store::Error,
    action: &'static str,
    key: &Path,
    location: &Location,
) -> Error {
    if let object_store::Error::NotFound { .. } = e {
        if !bucket_missing(&e) {
            return Error::ObjectNotFound {
                key: key.to_string(),
            };
        }
    }
    // Checked first: the metadata service's own refusal is no refusal by the store.
    if let Some(none) = NoCredentials::find(&e) {
        return Error::NoCredentials {
            action,
            key: key.to_string(),
            looked_in: none.looked_in.clone(),
        };
    }
    let text = e.to_string();
    // A refusal that object_store leaves as a generic error, with only the status in its text.
    let status = match e {
        object_store::Error::Unauthenticated { .. } => Some(401),
        object_store::Error::PermissionDenied { .. } => Some(403),
        _ if text.contains("403 Forbidden") => Some(403),
        _ if text.contains("401 Unauthorized") => Some(401),
        _ => None,
    };
    if let Some(status) = status {
        return Error::AccessDenied {
            action,
            key: key.to_string(),
            status,
        };
    }
    if bucket_missing(&e) {
        return Error::BucketNotFound {
            bucket: location.bucket(),
        };
    }
    if unreachable(&e) {
        return Error::Connection {
            endpoint: location.url_for_messages(),
            source: Box::new(e),
        };
    }
    Error::Storage {
        action,
        key: key.to_string(),
        source: Box::new(e),
    }
}

/// Whether the store never answered: a connection refused or a timeout, somewhere in the chain.
fn unreachable(e: &object_store::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            if matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout) {
                return true;
            }
        }
        source = err.source();
    }
    false
}

/// The provider's code for a missing bucket or container, which object_store keeps only in
/// the error's text: S3's `NoSuchBucket`, Azure's `ContainerNotFound`, and the GCS XML API's
/// message.
fn bucket_missing(e: &object_store::Error) -> bool {
    let text = format!("{e:?}");
    [
        "NoSuchBucket",
        "ContainerNotFound",
        "The specified bucket does not exist",
    ]
    .iter()
    .any(|marker| text.contains(marker))
}

/// Gives the error of a request of our own (GCS's JSON API, S3's chunk-signed uploads) its
/// meaning.
pub(super) fn request(
    e: RequestError,
    action: &'static str,
    key: &Path,
    location: &Location,
) -> Error {
    if e.connect {
        return Error::Connection {
            endpoint: location.url_for_messages(),
            source: Box::new(e),
        };
    }
    if let Some(looked_in) = e.no_credentials {
        return Error::NoCredentials {
            action,
            key: key.to_string(),
            looked_in,
        };
    }
    match e.status {
        Some(status @ (401 | 403)) => Error::AccessDenied {
            action,
            key: key.to_string(),
            status,
        },
        // Listing names no object, so its 404 can only be the bucket's; S3 names it.
        Some(404) if action == "list" || e.message.contains("NoSuchBucket") => {
            Error::BucketNotFound {
                bucket: location.bucket(),
            }
        }
        Some(404) => Error::ObjectNotFound {
            key: key.to_string(),
        },
        _ => Error::Storage {
            action,
            key: key.to_string(),
            source: Box::new(e),
        },
    }
}

/// An error met while building the `provider` client.
pub(super) fn config(provider: &'static str) -> impl Fn(object_store::Error) -> Error {
    move |e| Error::Config {
        provider,
        source: Box::new(e),
    }
}
