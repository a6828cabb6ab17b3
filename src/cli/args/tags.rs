//! `--tags` and `--tag`: the object tags of everything a command uploads.

use clap::Args;

/// `--tags`/`--tag`: object tags on everything a command uploads.
#[derive(Debug, Args, Default)]
pub struct TagArgs {
    /// Tags, each as KEY,VALUE, to be added to the uploaded objects (deprecated form; ends at
    /// the next option).
    #[arg(long, num_args = 0.., value_parser = parse_csv_tag, conflicts_with = "tag", value_name = "TAG")]
    pub tags: Option<Vec<(String, String)>>,
    /// A KEY,VALUE tag to be added to the uploaded objects (repeatable).
    #[arg(long, value_parser = parse_tag)]
    pub tag: Vec<(String, String)>,
}

impl TagArgs {
    /// Both forms merged.
    pub fn pairs(&self) -> Vec<(String, String)> {
        tags(self.tags.as_ref(), &self.tag)
    }
}

/// Merges `--tags` (deprecated form) and `--tag` into one list.
pub fn tags(
    csv: Option<&Vec<(String, String)>>,
    single: &[(String, String)],
) -> Vec<(String, String)> {
    csv.into_iter().flatten().chain(single).cloned().collect()
}

/// `--tag K,V`: split at the first comma; Barman's character rules for S3 tags.
pub fn parse_tag(s: &str) -> std::result::Result<(String, String), String> {
    let invalid = || format!("Invalid tag format: {s} (expected KEY,VALUE)");
    let (k, v) = s.split_once(',').ok_or_else(invalid)?;
    let (k, v) = (k.trim(), v.trim());
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    if k.is_empty() || k.chars().count() > 128 || k.to_ascii_lowercase().starts_with("aws:") {
        return Err(format!(
            "Invalid tag key '{k}': 1 to 128 characters, not starting with 'aws:'"
        ));
    }
    if v.chars().count() > 256 {
        return Err(format!(
            "Invalid tag value for '{k}': at most 256 characters"
        ));
    }
    if !k.chars().chain(v.chars()).all(allowed) {
        return Err(format!(
            "Invalid tag '{s}': use letters, digits, spaces and _ . : / = + - @"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `--tags K,V ...`: each value is one CSV record of exactly two fields (quotes allowed).
pub fn parse_csv_tag(s: &str) -> std::result::Result<(String, String), String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    match <[String; 2]>::try_from(fields) {
        Ok([k, v]) if !quoted => Ok((k, v)),
        _ => Err(format!("Invalid tag format: {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_like_barman() {
        assert_eq!(
            parse_tag(" env , test ").unwrap(),
            ("env".into(), "test".into())
        );
        assert!(parse_tag("novalue").is_err());
        assert!(parse_tag("aws:x,1").is_err());
        assert!(parse_tag("k,v!").is_err());
        assert_eq!(
            parse_csv_tag("\"a,b\",c").unwrap(),
            ("a,b".into(), "c".into())
        );
        assert!(parse_csv_tag("a,b,c").is_err());
        assert!(parse_csv_tag("s3://bucket/path").is_err());
    }
}
