//! S3 and S3-compatible servers: the builder from the flags, the environment and the AWS
//! profile files (`aws_profile.rs`), and the chunk-signed uploads over plain HTTP
//! (`chunked.rs`).

mod chunked;

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use super::classify::config;
use super::client::{client_options, connector, read_timeout, reqwest_client, retry};
use super::credentials::Fallback;
use super::{AddressingStyle, S3Encryption, StorageOptions, aws_profile};
use crate::error::{Error, Result};

pub(super) use chunked::{Body, ChunkedPut, Failure, Proceed};

/// The client for `bucket`, and the chunk-signed uploads when its payloads are signed (plain
/// HTTP).
pub(super) fn store(
    bucket: &str,
    options: &StorageOptions,
) -> Result<(Arc<dyn ObjectStore>, Option<ChunkedPut>)> {
    let (b, profile) = builder(bucket, options)?;
    // Over plain HTTP, object_store's requests and our uploads share one connection pool.
    let plain = b
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .filter(|e| e.starts_with("http://"))
        .map(|e| reqwest_client(&e, None, read_timeout(options)))
        .transpose()
        .map_err(|e| Error::Config {
            provider: "S3",
            source: Box::new(e),
        })?;
    let mut connector = connector(options);
    connector.plain = plain.clone();
    let b = b
        .with_client_options(client_options(options))
        .with_http_connector(connector);
    let mut store = b.clone().build().map_err(config("S3"))?;
    if let Some(looked_in) = instance_metadata_fallback(&b, &profile) {
        let credentials = Fallback::new(store.credentials().clone(), "S3", looked_in);
        store = b
            .clone()
            .with_credentials(credentials)
            .build()
            .map_err(config("S3"))?;
    }
    let chunked = plain.and_then(|http| chunked_put(&b, bucket, &store, http));
    Ok((Arc::new(store), chunked))
}

/// Chunk-signed uploads, when object_store would sign the payload whole (plain HTTP, none of
/// the settings that change how a PUT is signed or what it carries).
fn chunked_put(
    b: &AmazonS3Builder,
    bucket: &str,
    store: &object_store::aws::AmazonS3,
    http: reqwest::Client,
) -> Option<ChunkedPut> {
    use AmazonS3ConfigKey::*;
    let value = |key: AmazonS3ConfigKey| b.get_config_value(&key);
    let on = |key: AmazonS3ConfigKey| value(key).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    // Each of these changes what object_store sends with a PUT or how it signs it.
    if on(UnsignedPayload)
        || on(SkipSignature)
        || on(RequestPayer)
        || on(S3Express)
        || on(DisableTagging)
        || value(Checksum).is_some()
        || value(ConditionalPut).is_some_and(|v| v != "etag")
    {
        return None;
    }
    let endpoint = value(Endpoint)?;
    let bucket_url = if on(VirtualHostedStyleRequest) {
        endpoint
    } else {
        format!("{}/{bucket}", endpoint.trim_end_matches('/'))
    };
    Some(ChunkedPut::new(
        http,
        store.credentials().clone(),
        value(Region).unwrap_or_else(|| "us-east-1".into()),
        bucket_url,
        encryption_headers(b)?,
    ))
}

/// The encryption headers object_store puts on an upload, from the builder's settings (the
/// `-e`/`--sse-kms-key-id` flags and the `AWS_S*` variables alike); `None` for SSE-C, whose
/// key headers are left to object_store.
fn encryption_headers(b: &AmazonS3Builder) -> Option<Vec<(&'static str, String)>> {
    let value = |name: &str| {
        let key = name.parse::<AmazonS3ConfigKey>().ok()?;
        b.get_config_value(&key)
    };
    let Some(kind) = value("aws_server_side_encryption") else {
        return Some(Vec::new());
    };
    if kind.eq_ignore_ascii_case("sse-c") {
        return None;
    }
    let mut headers = vec![("x-amz-server-side-encryption", kind)];
    if let Some(key) = value("aws_sse_kms_key_id") {
        headers.push(("x-amz-server-side-encryption-aws-kms-key-id", key));
    }
    if let Some(enabled) = value("aws_sse_bucket_key_enabled") {
        let enabled = if enabled.eq_ignore_ascii_case("true") {
            "true"
        } else {
            "false"
        };
        headers.push((
            "x-amz-server-side-encryption-bucket-key-enabled",
            enabled.to_string(),
        ));
    }
    Some(headers)
}

/// Where the chain looked, when it ends at the instance metadata service because nothing
/// before it is configured; in object_store's order (`AmazonS3Builder::build`), with the
/// shared files read here before it.
fn instance_metadata_fallback(b: &AmazonS3Builder, profile: &str) -> Option<String> {
    use AmazonS3ConfigKey::*;
    let set = |key: AmazonS3ConfigKey| b.get_config_value(&key).is_some();
    let skip_signature = b
        .get_config_value(&SkipSignature)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if skip_signature
        || set(AccessKeyId)
        || set(SecretAccessKey)
        || (set(WebIdentityTokenFile) && set(RoleArn))
        || set(ContainerCredentialsRelativeUri)
        || (set(ContainerCredentialsFullUri) && set(ContainerAuthorizationTokenFile))
    {
        return None;
    }
    let imds = b
        .get_config_value(&MetadataEndpoint)
        .unwrap_or_else(|| "http://169.254.169.254".into());
    Some(format!(
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, profile '{profile}' in {}, \
         AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, \
         AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, the EC2 \
         instance metadata service at {imds}",
        aws_profile::files()
    ))
}

/// The S3 endpoint override: `--endpoint-url`, else the AWS CLI's variables.
pub(super) fn endpoint(options: &StorageOptions) -> Option<String> {
    options
        .endpoint_url
        .clone()
        .or_else(|| options.var("AWS_ENDPOINT_URL_S3"))
        .or_else(|| options.var("AWS_ENDPOINT_URL"))
}

/// The builder, and the name of the profile it read (or would have read).
fn builder(bucket: &str, options: &StorageOptions) -> Result<(AmazonS3Builder, String)> {
    let env = |name: &str| options.var(name);
    let mut b = AmazonS3Builder::from_env();
    // The overlay carries every kind of variable; those that name no S3 setting are not ours.
    for (key, value) in &options.env {
        if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            b = b.with_config(key, value);
        }
    }
    let mut b = b.with_bucket_name(bucket).with_retry(retry());
    if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
        b = b.with_region("us-east-1");
    }
    let named = options
        .aws_profile
        .clone()
        .or_else(|| env("AWS_PROFILE").filter(|_| env("AWS_ACCESS_KEY_ID").is_none()));
    let has_keys = b
        .get_config_value(&AmazonS3ConfigKey::AccessKeyId)
        .is_some();
    let web_identity = b
        .get_config_value(&AmazonS3ConfigKey::WebIdentityTokenFile)
        .is_some();
    // As boto3 does, with nothing named the shared files' `default` profile comes after the
    // variables and web identity, and before container and instance credentials.
    let (profile_name, profile) = match named {
        Some(name) => {
            let profile = aws_profile::load(&name).ok_or_else(|| Error::Config {
                provider: "S3",
                source: format!("profile '{name}' not found in the AWS credentials or config file")
                    .into(),
            })?;
            (name, Some(profile))
        }
        None if has_keys || web_identity => ("default".to_string(), None),
        None => ("default".to_string(), aws_profile::load("default")),
    };
    if let Some(profile) = profile {
        if let (Some(id), Some(secret)) = (profile.access_key_id, profile.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(token) = profile.session_token {
                b = b.with_token(token);
            }
        }
        if let Some(region) = profile.region {
            b = b.with_region(region);
        }
    }
    let endpoint = endpoint(options);
    let plain_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let virtual_style = match options.addressing_style {
        AddressingStyle::Virtual => true,
        AddressingStyle::Path => false,
        AddressingStyle::Auto => endpoint.is_none(),
    };
    if let Some(endpoint) = endpoint {
        let endpoint = if virtual_style {
            // object_store expects the bucket in a virtual-hosted endpoint.
            let mut url = url::Url::parse(&endpoint)
                .map_err(|e| Error::Input(format!("invalid --endpoint-url '{endpoint}': {e}")))?;
            let host = format!("{bucket}.{}", url.host_str().unwrap_or_default());
            url.set_host(Some(&host))
                .map_err(|e| Error::Input(format!("invalid --endpoint-url '{endpoint}': {e}")))?;
            url.to_string().trim_end_matches('/').to_string()
        } else {
            endpoint
        };
        b = b.with_endpoint(endpoint);
    }
    b = b.with_virtual_hosted_style_request(virtual_style);
    // As botocore does: over TLS the payload is not hashed into the signature (TLS already
    // protects it, and in a profile of a 16 MiB upload SHA-256 took 31% of our samples);
    // over plain HTTP it is.
    if env("AWS_UNSIGNED_PAYLOAD").is_none() {
        b = b.with_unsigned_payload(!plain_http);
    }
    Ok((encryption(b, options)?, profile_name))
}

/// `-e/--encryption` and `--sse-kms-key-id`.
fn encryption(b: AmazonS3Builder, options: &StorageOptions) -> Result<AmazonS3Builder> {
    match (options.s3_encryption, &options.sse_kms_key_id) {
        (Some(S3Encryption::AwsKms), Some(key)) => Ok(b.with_sse_kms_encryption(key)),
        (_, Some(_)) => Err(Error::Input(
            "Encryption type must be \"aws:kms\" if SSE KMS Key ID is specified: add -e aws:kms"
                .into(),
        )),
        (Some(kind), None) => {
            let value = match kind {
                S3Encryption::Aes256 => "AES256",
                S3Encryption::AwsKms => "aws:kms",
            };
            // object_store has a typed setter for SSE-KMS with a key only, and does not
            // export the type of this key; its name is checked when parsed.
            let key: AmazonS3ConfigKey =
                "aws_server_side_encryption".parse().map_err(config("S3"))?;
            Ok(b.with_config(key, value))
        }
        (None, None) => Ok(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(b: AmazonS3Builder) -> Option<Vec<(&'static str, String)>> {
        encryption_headers(&b)
    }

    fn set(b: AmazonS3Builder, name: &str, value: &str) -> AmazonS3Builder {
        b.with_config(name.parse().unwrap(), value)
    }

    #[test]
    fn chunk_signed_uploads_carry_the_encryption_object_store_would_send() {
        let none = AmazonS3Builder::new();
        assert_eq!(headers(none.clone()), Some(vec![]));
        let kms = none.clone().with_sse_kms_encryption("key-1");
        assert_eq!(
            headers(kms),
            Some(vec![
                ("x-amz-server-side-encryption", "aws:kms".to_string()),
                (
                    "x-amz-server-side-encryption-aws-kms-key-id",
                    "key-1".to_string()
                ),
            ])
        );
        // From the environment's names, as AmazonS3Builder::from_env reads them.
        let s3 = set(none.clone(), "aws_server_side_encryption", "AES256");
        let s3 = set(s3, "aws_sse_bucket_key_enabled", "true");
        assert_eq!(
            headers(s3),
            Some(vec![
                ("x-amz-server-side-encryption", "AES256".to_string()),
                (
                    "x-amz-server-side-encryption-bucket-key-enabled",
                    "true".to_string()
                ),
            ])
        );
        // SSE-C's key headers are object_store's to send: no chunk-signed uploads.
        assert_eq!(
            headers(set(none, "aws_server_side_encryption", "sse-c")),
            None
        );
    }
}
