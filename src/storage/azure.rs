//! Azure Blob Storage and Azurite: connection strings, SAS tokens, the credential chain.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};

use super::classify::config;
use super::client::{client_options, connector, retry, with_header};
use super::credentials::Fallback;
use super::{AzureCredential, StorageOptions};
use crate::error::{Error, Result};

/// The clients for `container`: one for reads, and one for writes that carries
/// `--encryption-scope` (a per-request header, which reads must not send).
pub(super) fn stores(
    account: &str,
    container: &str,
    emulator_endpoint: Option<&str>,
    options: &StorageOptions,
) -> Result<(Arc<dyn ObjectStore>, Arc<dyn ObjectStore>)> {
    let build = |client| -> Result<Arc<dyn ObjectStore>> {
        let (b, fallback) = builder(account, container, emulator_endpoint, options)?;
        let b = b
            .with_client_options(client)
            .with_http_connector(connector(options));
        let store = b.clone().build().map_err(config("Azure"))?;
        let Some(looked_in) = fallback else {
            return Ok(Arc::new(store));
        };
        let credentials = Fallback::new(store.credentials().clone(), "MicrosoftAzure", looked_in);
        let store = b
            .with_credentials(credentials)
            .build()
            .map_err(config("Azure"))?;
        Ok(Arc::new(store))
    };
    let client = client_options(options);
    let read = build(client.clone())?;
    let write = match &options.encryption_scope {
        Some(scope) => build(with_header(client, "x-ms-encryption-scope", scope)?)?,
        None => read.clone(),
    };
    Ok((read, write))
}

/// The blob endpoint of `AZURE_STORAGE_CONNECTION_STRING`, if it names one.
pub(super) fn emulator_endpoint(options: &StorageOptions) -> Option<String> {
    options
        .var("AZURE_STORAGE_CONNECTION_STRING")
        .and_then(|c| parse_connection_string(&c).blob_endpoint)
}

/// The fields of an Azure connection string that we use.
#[derive(Default)]
struct ConnectionString {
    account_name: Option<String>,
    account_key: Option<String>,
    sas: Option<String>,
    blob_endpoint: Option<String>,
}

fn parse_connection_string(s: &str) -> ConnectionString {
    let mut c = ConnectionString::default();
    for part in s.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let v = Some(v.trim().to_string());
        match k.trim() {
            "AccountName" => c.account_name = v,
            "AccountKey" => c.account_key = v,
            "SharedAccessSignature" => c.sas = v,
            "BlobEndpoint" => c.blob_endpoint = v,
            _ => {}
        }
    }
    c
}

fn sas_pairs(sas: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(sas.trim_start_matches('?').as_bytes())
        .into_owned()
        .collect()
}

fn builder(
    account: &str,
    container: &str,
    emulator_endpoint: Option<&str>,
    options: &StorageOptions,
) -> Result<(MicrosoftAzureBuilder, Option<String>)> {
    let env = |name: &str| options.var(name);
    let base = MicrosoftAzureBuilder::new()
        .with_container_name(container)
        .with_retry(retry());
    let connection = env("AZURE_STORAGE_CONNECTION_STRING").map(|s| parse_connection_string(&s));
    if let Some(endpoint) = emulator_endpoint {
        // Barman insists on a connection string for emulated storage; so do we.
        let c = connection.ok_or_else(|| Error::Config {
            provider: "Azure",
            source: "A connection string must be provided when using emulated storage: set AZURE_STORAGE_CONNECTION_STRING".into(),
        })?;
        let mut b = base
            .with_account(c.account_name.unwrap_or_else(|| account.to_string()))
            .with_endpoint(c.blob_endpoint.unwrap_or_else(|| endpoint.to_string()));
        if let Some(key) = c.account_key {
            b = b.with_access_key(key);
        } else if let Some(sas) = c.sas {
            b = b.with_sas_authorization(sas_pairs(&sas));
        }
        return Ok((b, None));
    }
    let mut b = base.with_account(account);
    if let Some(credential) = options.azure_credential {
        let kind = match credential {
            AzureCredential::AzureCli => "azure_cli",
            AzureCredential::ManagedIdentity => "managed_identity",
            AzureCredential::Default => "auto",
        };
        return Ok((from_azure_env(b, options).with_credential_type(kind), None));
    }
    if let Some(c) = connection {
        if let Some(endpoint) = c.blob_endpoint {
            b = b.with_endpoint(endpoint);
        }
        if let Some(key) = c.account_key {
            return Ok((b.with_access_key(key), None));
        }
        if let Some(sas) = c.sas {
            return Ok((b.with_sas_authorization(sas_pairs(&sas)), None));
        }
    }
    if let Some(sas) = env("AZURE_STORAGE_SAS_TOKEN") {
        return Ok((b.with_sas_authorization(sas_pairs(&sas)), None));
    }
    if let Some(key) = env("AZURE_STORAGE_KEY") {
        return Ok((b.with_access_key(key), None));
    }
    // object_store's chain (`resolve_credential_auto`): workload identity, then a client
    // secret, else the managed identity endpoint, our fallback.
    let has = |name: &str| env(name).is_some();
    let principal = has("AZURE_CLIENT_ID")
        && has("AZURE_TENANT_ID")
        && (has("AZURE_FEDERATED_TOKEN_FILE") || has("AZURE_CLIENT_SECRET"));
    let fallback = (!principal).then(|| {
        "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_KEY, \
         AZURE_CLIENT_ID and AZURE_TENANT_ID with AZURE_FEDERATED_TOKEN_FILE or \
         AZURE_CLIENT_SECRET, the managed identity endpoint at http://169.254.169.254"
            .to_string()
    });
    Ok((from_azure_env(b, options), fallback))
}

/// The default chain's inputs: service principal, workload identity.
fn from_azure_env(mut b: MicrosoftAzureBuilder, options: &StorageOptions) -> MicrosoftAzureBuilder {
    for (var, key) in [
        ("AZURE_CLIENT_ID", AzureConfigKey::ClientId),
        ("AZURE_TENANT_ID", AzureConfigKey::AuthorityId),
        ("AZURE_CLIENT_SECRET", AzureConfigKey::ClientSecret),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            AzureConfigKey::FederatedTokenFile,
        ),
        ("AZURE_AUTHORITY_HOST", AzureConfigKey::AuthorityHost),
    ] {
        if let Some(value) = options.var(var) {
            b = b.with_config(key, value);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_string_fields() {
        let c = parse_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;",
        );
        assert_eq!(c.account_name.as_deref(), Some("devstoreaccount1"));
        assert_eq!(c.account_key.as_deref(), Some("a2V5"));
        assert_eq!(
            c.blob_endpoint.as_deref(),
            Some("http://127.0.0.1:1/devstoreaccount1")
        );
    }

    #[test]
    fn sas_tokens_split_into_pairs() {
        let pairs = sas_pairs("?sv=2020&sig=a%2Bb");
        assert_eq!(
            pairs,
            vec![("sv".into(), "2020".into()), ("sig".into(), "a+b".into())]
        );
    }

    #[test]
    fn the_default_chain_reads_its_variables() {
        let options = StorageOptions {
            env: vec![
                ("AZURE_CLIENT_ID".into(), "client".into()),
                ("AZURE_TENANT_ID".into(), "tenant".into()),
            ],
            ..StorageOptions::default()
        };
        let b = from_azure_env(MicrosoftAzureBuilder::new(), &options);
        assert_eq!(
            b.get_config_value(&AzureConfigKey::ClientId).as_deref(),
            Some("client")
        );
        assert_eq!(
            b.get_config_value(&AzureConfigKey::AuthorityId).as_deref(),
            Some("tenant")
        );
    }
}
