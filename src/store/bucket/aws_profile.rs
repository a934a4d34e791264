//! Credentials and region from the AWS shared credentials and config files
//! (`AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`), which
//! object_store's S3 builder does not read itself.

/// Sets the S3 builder's keys from the profile's credentials and, when no
/// `AWS_REGION`/`AWS_DEFAULT_REGION` is set, its region; nothing when
/// `AWS_ACCESS_KEY_ID` is set (the environment wins).
pub(super) fn aws_profile_credentials(
    mut b: object_store::aws::AmazonS3Builder,
) -> object_store::aws::AmazonS3Builder {
    use object_store::aws::AmazonS3ConfigKey as K;
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return b;
    }
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let creds = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config = std::env::var_os("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let section = |path: Option<std::path::PathBuf>, names: &[String]| -> Vec<(String, String)> {
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| entries(&text, names))
            .unwrap_or_default()
    };
    for (k, v) in section(creds, std::slice::from_ref(&profile)) {
        match k.as_str() {
            "aws_access_key_id" => b = b.with_config(K::AccessKeyId, v),
            "aws_secret_access_key" => b = b.with_config(K::SecretAccessKey, v),
            "aws_session_token" => b = b.with_config(K::Token, v),
            _ => {}
        }
    }
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        for (k, v) in section(config, &[format!("profile {profile}"), profile.clone()]) {
            if k == "region" {
                b = b.with_config(K::Region, v);
            }
        }
    }
    b
}

/// The `key = value` lines of the INI sections named by any of `names`
/// (`[default]`, `[profile prod]`), in file order, keys and values trimmed.
fn entries(text: &str, names: &[String]) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            let name = line.trim_matches(|c| c == '[' || c == ']').trim();
            inside = names.iter().any(|n| n == name);
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::entries;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_the_named_sections_are_read() {
        let text = "\
[default]
aws_access_key_id = AKIDEFAULT
[ prod ]
  aws_access_key_id=AKIPROD
aws_secret_access_key = s3cr=t
not a key line
[profile prod]
region = eu-west-1
";
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            entries(text, &names(&["prod"])),
            [
                pair("aws_access_key_id", "AKIPROD"),
                pair("aws_secret_access_key", "s3cr=t"),
            ]
        );
        assert_eq!(
            entries(text, &names(&["profile prod", "prod"])),
            [
                pair("aws_access_key_id", "AKIPROD"),
                pair("aws_secret_access_key", "s3cr=t"),
                pair("region", "eu-west-1"),
            ]
        );
        assert_eq!(
            entries(text, &names(&["default"])),
            [pair("aws_access_key_id", "AKIDEFAULT")]
        );
        assert!(entries(text, &names(&["staging"])).is_empty());
        assert!(entries("", &names(&["default"])).is_empty());
    }
}
