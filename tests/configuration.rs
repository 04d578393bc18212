//! The configuration documents itself: README.md's variable tables, the config table in
//! `src/config/table.rs` and what `graphql-firewall check` prints list the same variables with the
//! same defaults.

use std::collections::BTreeMap;
use std::process::Command;

use graphql_firewall::config::VARIABLES;

const README: &str = include_str!("../README.md");

/// `| `GRAPHQL_FIREWALL_X` | default | meaning |` rows: name → default (`None` for `—`).
fn readme_defaults() -> BTreeMap<String, Option<String>> {
    README
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            if !name.starts_with("GRAPHQL_FIREWALL_") {
                return None;
            }
            let default = cells.get(2)?.replace('`', "");
            let default = (!default.starts_with('—')).then(|| default.trim().to_owned());
            Some((name.to_owned(), default))
        })
        .collect()
}

fn table_defaults() -> BTreeMap<String, Option<String>> {
    VARIABLES
        .iter()
        .map(|v| (v.name.to_owned(), v.default.map(str::to_owned)))
        .collect()
}

/// `  GRAPHQL_FIREWALL_X  value  (default)` lines of `check`: name → (value, is default).
fn check_listing() -> BTreeMap<String, (String, bool)> {
    let output = Command::new(env!("CARGO_BIN_EXE_graphql-firewall"))
        .arg("check")
        .env_clear()
        .env(
            "GRAPHQL_FIREWALL_UPSTREAM_URL",
            "http://127.0.0.1:4000/graphql",
        )
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let (name, rest) = line.split_once(char::is_whitespace)?;
            if !name.starts_with("GRAPHQL_FIREWALL_") {
                return None;
            }
            let rest = rest.trim();
            let (value, default) = match rest.strip_suffix("(default)") {
                Some(value) => (value.trim(), true),
                None => (rest, false),
            };
            // `auto (= 8)`: the default as written, then what it resolved to here.
            let value = value
                .split_once(" (= ")
                .map_or(value, |(written, _)| written);
            Some((name.to_owned(), (value.to_owned(), default)))
        })
        .collect()
}

#[test]
fn readme_documents_every_variable_with_the_tables_default() {
    let readme = readme_defaults();
    let table = table_defaults();
    let missing: Vec<&String> = table.keys().filter(|n| !readme.contains_key(*n)).collect();
    let unknown: Vec<&String> = readme.keys().filter(|n| !table.contains_key(*n)).collect();
    assert!(missing.is_empty(), "not in README: {missing:?}");
    assert!(
        unknown.is_empty(),
        "in README but not a variable: {unknown:?}"
    );
    for (name, default) in &table {
        assert_eq!(&readme[name], default, "README's default of {name}");
    }
}

#[test]
fn check_lists_every_variable_with_its_default() {
    let listing = check_listing();
    let table = table_defaults();
    assert_eq!(
        listing.keys().collect::<Vec<_>>(),
        table.keys().collect::<Vec<_>>(),
        "check lists exactly the table's variables"
    );
    for (name, default) in &table {
        let (value, is_default) = &listing[name];
        if name == "GRAPHQL_FIREWALL_UPSTREAM_URL" {
            assert!(!is_default);
            continue;
        }
        assert!(
            *is_default,
            "{name} was not set, so its default is in force"
        );
        assert_eq!(
            value,
            default.as_deref().unwrap_or("(unset)"),
            "check's value of {name}"
        );
    }
}
