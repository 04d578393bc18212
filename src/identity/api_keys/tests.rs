use super::*;
use http::HeaderValue;

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn tiers() -> Tiers {
    "free:rate=10/s;pro:rate=100/s".parse().unwrap()
}

fn table(text: &str) -> Result<KeyTable, ApiKeysFileError> {
    KeyTable::parse(text, &tiers(), Path::new("keys.txt"))
}

#[test]
fn a_listed_key_proves_its_name_tier_and_scopes() {
    let text = format!(
        "# comment\n\n{}  billing-app  pro  orders:read,orders:write\n{}\treporting\t-\n",
        digest("k-billing"),
        digest("k-reporting"),
    );
    let table = table(&text).unwrap();
    assert_eq!(table.len(), 2);
    let billing = table.verify("k-billing").unwrap();
    assert_eq!(billing.method, AuthMethod::ApiKey);
    assert_eq!(billing.subject.unwrap().as_str(), "billing-app");
    assert_eq!(billing.tier.unwrap().as_str(), "pro");
    assert!(billing.scopes.contains("orders:write"));
    let reporting = table.verify("k-reporting").unwrap();
    assert_eq!(reporting.tier, None);
    assert!(reporting.scopes.is_empty());
}

#[test]
fn an_unknown_or_near_miss_key_is_refused() {
    let table = table(&format!("{} app -", digest("secret-key"))).unwrap();
    assert_eq!(table.verify("secret-kez"), Err(ApiKeyError::Unknown));
    assert_eq!(table.verify("secret-key "), Err(ApiKeyError::Unknown));
    assert_eq!(table.verify(""), Err(ApiKeyError::Unknown));
    // The digest itself is not a key.
    assert_eq!(
        table.verify(&digest("secret-key")),
        Err(ApiKeyError::Unknown)
    );
}

#[test]
fn upper_case_digests_are_accepted() {
    let table = table(&format!("{} app -", digest("k").to_uppercase())).unwrap();
    assert!(table.verify("k").is_ok());
}

#[test]
fn two_keys_may_share_a_name_during_a_rotation() {
    let text = format!("{} app pro\n{} app pro\n", digest("old"), digest("new"));
    let table = table(&text).unwrap();
    assert_eq!(
        table.verify("old").unwrap().subject,
        table.verify("new").unwrap().subject
    );
}

#[test]
fn bad_lines_are_refused_naming_the_line_and_what_is_accepted() {
    let d = digest("k");
    let table_rows: &[(String, &str)] = &[
        ("k app -".to_owned(), "64 hex digits, never the key itself"),
        (format!("{} app -", &d[..63]), "64 hex digits"),
        (format!("{}x app -", &d[..63]), "64 hex digits"),
        (format!("{d} app"), "too few fields"),
        (format!("{d} app - read write"), "too many fields"),
        (
            format!("{d} app gold"),
            "tier \"gold\" is not in TIERS (known: free, pro",
        ),
        (format!("{d} app/x -"), "name \"app/x\""),
        (format!("{d} app -\n{d} other -"), "listed twice"),
    ];
    for (text, needle) in table_rows {
        let error = table(text).unwrap_err().to_string();
        assert!(error.contains(needle), "{text}: {error}");
        assert!(error.contains("keys.txt line "), "{error}");
    }
    let error = table(&format!("# c\n{d} app -\n{d} b -")).unwrap_err();
    assert!(error.to_string().contains("line 3"), "{error}");
}

#[test]
fn the_key_header_is_read_once_and_must_be_visible_ascii() {
    let source = ApiKeySource::new(HeaderName::from_static("x-api-key"));
    let mut headers = HeaderMap::new();
    assert_eq!(source.extract(&headers), Ok(None));
    headers.insert("x-api-key", HeaderValue::from_static(" abc "));
    assert_eq!(source.extract(&headers), Ok(Some("abc")));
    headers.append("x-api-key", HeaderValue::from_static("def"));
    assert_eq!(source.extract(&headers), Err(ApiKeyError::Malformed));
    for bad in ["", "a b", &"k".repeat(MAX_KEY_LEN + 1)] {
        headers.insert("x-api-key", HeaderValue::from_str(bad).unwrap());
        assert_eq!(
            source.extract(&headers),
            Err(ApiKeyError::Malformed),
            "{bad:?}"
        );
    }
}

#[test]
fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_previous_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.txt");
    std::fs::write(&path, format!("{} app -\n", digest("one"))).unwrap();
    let keys = ApiKeys::load(path.clone(), Arc::new(tiers())).unwrap();
    assert!(keys.verify("one").is_ok());
    assert_eq!(keys.reload_if_changed().unwrap(), Reloaded::Unchanged);

    std::fs::write(&path, format!("{} app -\n", digest("two"))).unwrap();
    assert_eq!(
        keys.reload_if_changed().unwrap(),
        Reloaded::Replaced { keys: 1 }
    );
    assert_eq!(keys.verify("one"), Err(ApiKeyError::Unknown));
    assert!(keys.verify("two").is_ok());

    std::fs::write(&path, "not a digest\n").unwrap();
    assert!(keys.reload_if_changed().is_err());
    assert!(
        keys.verify("two").is_ok(),
        "the previous keys stay in force"
    );
}

#[cfg(unix)]
#[test]
fn a_configmap_style_symlink_swap_is_seen() {
    // Kubernetes: keys.txt -> ..data/keys.txt, ..data -> ..v1; an update creates ..v2 and
    // renames a new ..data symlink over the old one.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (version, key) in [("..v1", "one"), ("..v2", "two")] {
        std::fs::create_dir(root.join(version)).unwrap();
        std::fs::write(
            root.join(version).join("keys.txt"),
            format!("{} app -\n", digest(key)),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("..v1", root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/keys.txt", root.join("keys.txt")).unwrap();
    let keys = ApiKeys::load(root.join("keys.txt"), Arc::new(tiers())).unwrap();
    assert!(keys.verify("one").is_ok());

    std::os::unix::fs::symlink("..v2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    assert_eq!(
        keys.reload_if_changed().unwrap(),
        Reloaded::Replaced { keys: 1 }
    );
    assert!(keys.verify("two").is_ok());
    assert_eq!(keys.verify("one"), Err(ApiKeyError::Unknown));
}

#[test]
fn a_missing_file_is_a_start_up_error_naming_it() {
    let error = ApiKeys::load(PathBuf::from("/nonexistent/keys.txt"), Arc::new(tiers()))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("API_KEYS_FILE /nonexistent/keys.txt"),
        "{error}"
    );
}
