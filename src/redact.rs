//! Keeping credentials out of everything we print.
//!
//! Our own messages never format a credential, but text we pass on can quote one: an SDK
//! error names the request URL (an Azure SAS token lives in its query string), and a server's
//! error body may quote that URL again, XML-escaped (`&amp;sig=...`). So every line we print
//! goes through [`redact`], which removes:
//! - every registered secret in each encoding it may take on the way: as given, URL-decoded,
//!   URL-encoded (either hex case), and each of those XML- or JSON-escaped;
//! - of a SAS token, also its signature on its own, since the token's other fields are
//!   public and the whole token rarely appears in one piece;
//! - the query string of any URL, where presigned and SAS credentials travel.
//!
//! Secrets are registered by whoever reads them ([`register_from_env`] for the variables the
//! providers read, [`register`] for credentials an embedding program hands the storage
//! client), once per process.

use std::sync::RwLock;

/// Every form of every registered secret, longest first so that a secret containing another
/// is replaced whole.
static NEEDLES: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// What replaces a secret.
const MASK: &str = "***";

/// Shorter values are not treated as secrets: masking them would garble ordinary text, and
/// no credential we read is that short.
const MIN_SECRET_LEN: usize = 8;

/// The variables whose whole value is a credential.
const SECRET_VARS: [&str; 6] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
];

/// Registers the credentials in the process environment's provider variables.
pub fn register_from_env() {
    for var in SECRET_VARS {
        if let Ok(value) = std::env::var(var) {
            register(&value);
        }
    }
}

/// Whether `name` is a variable [`register_from_env`] treats as a credential.
pub fn is_secret_var(name: &str) -> bool {
    SECRET_VARS.contains(&name)
}

/// Registers one credential: a key, a token, a SAS token or a connection string (whose
/// `AccountKey` and `SharedAccessSignature` are registered on their own too).
pub fn register(value: &str) {
    let mut pieces = vec![value.to_string()];
    for part in value.split(';') {
        if let Some((k, v)) = part.split_once('=') {
            if matches!(k.trim(), "AccountKey" | "SharedAccessSignature") {
                pieces.push(v.trim().to_string());
            }
        }
    }
    let signatures: Vec<String> = pieces.iter().filter_map(|p| sas_signature(p)).collect();
    pieces.extend(signatures);
    let mut forms: Vec<String> = pieces
        .iter()
        .filter(|p| p.len() >= MIN_SECRET_LEN)
        .flat_map(|p| encodings(p))
        .filter(|f| f.len() >= MIN_SECRET_LEN)
        .collect();
    let Ok(mut needles) = NEEDLES.write() else {
        return;
    };
    needles.append(&mut forms);
    needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    needles.dedup();
}

/// The `sig` value of a SAS token, if `value` is one.
fn sas_signature(value: &str) -> Option<String> {
    url::form_urlencoded::parse(value.trim_start_matches('?').as_bytes())
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.into_owned())
}

/// The forms a secret may take in text we print.
fn encodings(secret: &str) -> Vec<String> {
    let decoded = percent_decode(secret);
    let mut plain = vec![secret.to_string(), decoded.clone()];
    for form in [secret, decoded.as_str()] {
        for hex_upper in [true, false] {
            plain.push(percent_encode(form, hex_upper));
        }
    }
    let mut all = plain.clone();
    for p in &plain {
        all.push(escape(p, XML));
        all.push(escape(p, JSON));
    }
    all
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Every byte but RFC 3986's unreserved set, as `%XX`.
fn percent_encode(s: &str, hex_upper: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else if hex_upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// XML's five escapes.
const XML: &[(char, &str)] = &[
    ('&', "&amp;"),
    ('<', "&lt;"),
    ('>', "&gt;"),
    ('"', "&quot;"),
    ('\'', "&apos;"),
];

/// JSON's mandatory escapes and those some writers add (Go's encoder escapes `&`, `<` and
/// `>`; some escape `/`).
const JSON: &[(char, &str)] = &[
    ('\\', "\\\\"),
    ('"', "\\\""),
    ('/', "\\/"),
    ('&', "\\u0026"),
    ('<', "\\u003c"),
    ('>', "\\u003e"),
];

fn escape(s: &str, table: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match table.iter().find(|(from, _)| *from == c) {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
    out
}

/// `text` without any registered secret and without URL query strings.
pub fn redact(text: &str) -> String {
    let mut out = strip_url_queries(text);
    if let Ok(needles) = NEEDLES.read() {
        for needle in needles.iter() {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
    }
    out
}

/// Replaces the query string of every `scheme://` URL in `text` with `?***`.
fn strip_url_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, url) = rest.split_at(start);
        out.push_str(before);
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')'))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push('?');
                out.push_str(MASK);
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_of_a_sas_signature_is_masked() {
        let sas = "sv=2026-01-01&ss=b&sp=rwdl&sig=Unit%2BTest%2FSignature0123%3D";
        register(sas);
        let raw = "Unit+Test/Signature0123=";
        for text in [
            format!("token {sas}"),
            format!("body <Resource>/c/k?x=1&amp;sig={raw}</Resource>"),
            "sig=Unit%2bTest%2fSignature0123%3d in lower case".to_string(),
            "{\"url\":\"sig=Unit+Test\\/Signature0123=\"}".to_string(),
            format!("decoded {raw}"),
            escape(sas, XML),
        ] {
            let out = redact(&text);
            assert!(!out.contains("Signature0123"), "{text} -> {out}");
        }
    }

    #[test]
    fn connection_string_parts_are_masked_on_their_own() {
        register("AccountName=a;AccountKey=UnitKey0123456789+/=;BlobEndpoint=http://x");
        let out = redact("key UnitKey0123456789%2B%2F%3D leaked");
        assert_eq!(out, "key *** leaked");
    }

    #[test]
    fn url_queries_are_dropped_and_the_rest_kept() {
        assert_eq!(
            redact("GET https://h/c/k?sv=1&sig=abc failed: (status 500)"),
            "GET https://h/c/k?*** failed: (status 500)"
        );
        assert_eq!(
            redact("plain s3://bucket/path text"),
            "plain s3://bucket/path text"
        );
    }
}
