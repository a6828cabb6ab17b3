//! Destination URLs, parsed the way Barman parses them for each provider.

use crate::error::{Error, Result};

/// The `--cloud-provider` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Provider {
    /// AWS S3 and S3-compatible servers.
    #[default]
    #[cfg_attr(feature = "cli", value(name = "aws-s3"))]
    AwsS3,
    /// Azure Blob Storage (and Azurite).
    #[cfg_attr(feature = "cli", value(name = "azure-blob-storage"))]
    AzureBlobStorage,
    /// Google Cloud Storage.
    #[cfg_attr(feature = "cli", value(name = "google-cloud-storage"))]
    GoogleCloudStorage,
}

/// Which service a destination points at, and the coordinates inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An S3 bucket.
    S3 {
        /// The bucket.
        bucket: String,
    },
    /// An Azure container; `endpoint` is set for emulated storage (Azurite), where the URL is
    /// `http://HOST:PORT/ACCOUNT/CONTAINER/...`.
    Azure {
        /// The storage account.
        account: String,
        /// The container.
        container: String,
        /// The emulator's account URL, `http://HOST:PORT/ACCOUNT`.
        endpoint: Option<String>,
    },
    /// A GCS bucket.
    Gcs {
        /// The bucket.
        bucket: String,
    },
    /// A local (or NFS) directory: our addition to Barman's providers.
    File {
        /// The directory the URL names.
        root: std::path::PathBuf,
    },
    /// A store in memory, for tests and demos ([`Storage::in_memory`](super::Storage::in_memory));
    /// no URL parses to it.
    Memory,
}

/// A parsed destination: the service, and the key prefix inside the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The URL as given, for messages.
    pub url: String,
    /// The service and bucket.
    pub target: Target,
    /// The key prefix ("path") inside the bucket, possibly empty.
    pub prefix: String,
}

/// Every destination form we accept, with the provider each needs, for the one-line error
/// about a URL that is none of them (issue #17).
const ACCEPTED: &str = "expected s3://BUCKET[/PATH] (the default --cloud-provider aws-s3), \
     https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH] or, for an emulator, \
     http://HOST:PORT/ACCOUNT/CONTAINER[/PATH] (--cloud-provider azure-blob-storage), \
     gs://BUCKET[/PATH] or https://console.cloud.google.com/storage/browser/BUCKET[/PATH] \
     (--cloud-provider google-cloud-storage), or file:///ABSOLUTE/PATH (any provider)";

impl Location {
    /// Parses a destination URL for `provider`. `file://` URLs are accepted whatever the
    /// provider, since no cloud provider claims that scheme.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] naming what is wrong with the URL.
    pub fn parse(raw: &str, provider: Provider) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: raw.to_string(),
            reason: reason.to_string(),
        };
        let url = url::Url::parse(raw).map_err(|e| invalid(&format!("{e}; {ACCEPTED}")))?;
        let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
        let (target, prefix) = if url.scheme() == "file" {
            let root = url
                .to_file_path()
                .map_err(|()| invalid("a file:// URL needs an absolute path"))?;
            (Target::File { root }, String::new())
        } else {
            match provider {
                Provider::AwsS3 => {
                    let bucket = url
                        .host_str()
                        .filter(|h| url.scheme() == "s3" && !h.is_empty());
                    let bucket = bucket.ok_or_else(|| invalid(ACCEPTED))?;
                    // Barman strips only the leading '/', so a trailing one stays in the prefix.
                    let path = url.path().strip_prefix('/').unwrap_or(url.path());
                    (
                        Target::S3 {
                            bucket: bucket.to_string(),
                        },
                        path.to_string(),
                    )
                }
                Provider::GoogleCloudStorage => {
                    parse_gcs(&url, &segments).ok_or_else(|| invalid(ACCEPTED))?
                }
                Provider::AzureBlobStorage => {
                    parse_azure(&url, &segments).ok_or_else(|| invalid(ACCEPTED))?
                }
            }
        };
        Ok(Self {
            url: raw.to_string(),
            target,
            prefix,
        })
    }

    /// The bucket, container or directory, for messages.
    pub fn bucket(&self) -> String {
        match &self.target {
            Target::S3 { bucket } | Target::Gcs { bucket } => bucket.clone(),
            Target::Azure { container, .. } => container.clone(),
            Target::File { root } => root.display().to_string(),
            Target::Memory => "memory".into(),
        }
    }

    /// The URL without any query string (a SAS token would live there).
    pub fn url_for_messages(&self) -> String {
        self.url.split('?').next().unwrap_or_default().to_string()
    }
}

fn parse_gcs(url: &url::Url, segments: &[&str]) -> Option<(Target, String)> {
    let (bucket, rest) = match (url.scheme(), url.host_str()) {
        ("gs", Some(host)) if !host.is_empty() => (host.to_string(), segments),
        ("https", Some("console.cloud.google.com")) => {
            let rest = segments.strip_prefix(&["storage", "browser"])?;
            (rest.first()?.to_string(), &rest[1..])
        }
        _ => return None,
    };
    Some((Target::Gcs { bucket }, rest.join("/")))
}

fn parse_azure(url: &url::Url, segments: &[&str]) -> Option<(Target, String)> {
    let host = url.host_str()?;
    if let Some(account) = host.strip_suffix(".blob.core.windows.net") {
        let (container, rest) = segments.split_first()?;
        let target = Target::Azure {
            account: account.to_string(),
            container: container.to_string(),
            endpoint: None,
        };
        return Some((target, join_keeping_trailing_slash(rest, url.path())));
    }
    let [account, container, rest @ ..] = segments else {
        return None;
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let endpoint = format!("{}://{host}{port}/{account}", url.scheme());
    let target = Target::Azure {
        account: account.to_string(),
        container: container.to_string(),
        endpoint: Some(endpoint),
    };
    Some((target, join_keeping_trailing_slash(rest, url.path())))
}

fn join_keeping_trailing_slash(rest: &[&str], path: &str) -> String {
    let mut joined = rest.join("/");
    if !joined.is_empty() && path.ends_with('/') {
        joined.push('/');
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str, p: Provider) -> (Target, String) {
        let l = Location::parse(url, p).unwrap();
        (l.target, l.prefix)
    }

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse("s3://b/p/q", Provider::AwsS3),
            (Target::S3 { bucket: "b".into() }, "p/q".into())
        );
        assert_eq!(parse("s3://b", Provider::AwsS3).1, "");
        assert_eq!(parse("s3://b/p/", Provider::AwsS3).1, "p/");
        assert!(Location::parse("https://b/p", Provider::AwsS3).is_err());
        assert!(Location::parse("s3:///p", Provider::AwsS3).is_err());
    }

    #[test]
    fn azure_urls() {
        let (t, p) = parse(
            "https://acct.blob.core.windows.net/cont/a/b",
            Provider::AzureBlobStorage,
        );
        assert_eq!(
            t,
            Target::Azure {
                account: "acct".into(),
                container: "cont".into(),
                endpoint: None
            }
        );
        assert_eq!(p, "a/b");
        let (t, p) = parse(
            "http://127.0.0.1:10000/devstoreaccount1/cont/x",
            Provider::AzureBlobStorage,
        );
        assert_eq!(
            t,
            Target::Azure {
                account: "devstoreaccount1".into(),
                container: "cont".into(),
                endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into())
            }
        );
        assert_eq!(p, "x");
    }

    #[test]
    fn gcs_and_file_urls() {
        assert_eq!(
            parse("gs://b/p/", Provider::GoogleCloudStorage),
            (Target::Gcs { bucket: "b".into() }, "p".into())
        );
        let (t, p) = parse(
            "https://console.cloud.google.com/storage/browser/b/x",
            Provider::GoogleCloudStorage,
        );
        assert_eq!((t, p), (Target::Gcs { bucket: "b".into() }, "x".into()));
        let (t, p) = parse("file:///var/backups/pg", Provider::AwsS3);
        assert_eq!(
            (t, p),
            (
                Target::File {
                    root: "/var/backups/pg".into()
                },
                String::new()
            )
        );
    }
}
