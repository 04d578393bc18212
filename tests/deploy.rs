//! The packaging examples hold what they promise: the Kubernetes example defines what it mounts,
//! runs under a numeric user, and starts (its settings and ConfigMaps, laid out as the kubelet
//! does, pass `check --offline`); the CI manifest workflow gates with the production limits of the
//! Deployment, and its gate fails on an operation over a limit; the image runs as a numeric user
//! and carries what `include_str!` needs.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const BIN: &str = env!("CARGO_BIN_EXE_graphql-firewall");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn documents(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn of_kind<'a>(documents: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    documents
        .iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn str_of(yaml: &Yaml) -> &str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("not a string: {yaml:?}"))
}

/// What the example's Secrets would hold (it documents the `kubectl create secret` commands).
const SECRETS: &[(&str, &str, &str)] = &[("graphql-firewall-redis", "url", "redis://redis:6379")];

/// The Deployment's container's environment, name → value (a Secret's value from [`SECRETS`]).
fn deployment_env(documents: &[Yaml]) -> BTreeMap<String, String> {
    let deployment = of_kind(documents, "Deployment")[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|var| {
            let name = str_of(&var["name"]).to_owned();
            let secret = &var["valueFrom"]["secretKeyRef"];
            let value = if secret.is_badvalue() {
                str_of(&var["value"]).to_owned()
            } else {
                let (secret, key) = (str_of(&secret["name"]), str_of(&secret["key"]));
                SECRETS
                    .iter()
                    .find(|(name, k, _)| *name == secret && *k == key)
                    .map(|(_, _, value)| (*value).to_owned())
                    .unwrap_or_else(|| panic!("{name}: an undocumented secret {secret}/{key}"))
            };
            (name, value)
        })
        .collect()
}

/// Runs the binary with exactly `vars`: status, stdout, stderr.
fn run(args: &[&str], vars: &BTreeMap<String, String>) -> (Option<i32>, String, String) {
    let output = Command::new(BIN)
        .current_dir(ROOT)
        .args(args)
        .env_clear()
        .envs(vars)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Writes a ConfigMap's data as the kubelet mounts it: a timestamped directory, `..data` linking
/// to it, and each key a link through `..data`.
fn mount_config_map(config_map: &Yaml, at: &Path) {
    std::fs::create_dir_all(at.join("..2026_12_01_00_00_00.1")).unwrap();
    for (key, value) in config_map["data"].as_hash().unwrap() {
        let key = str_of(key);
        std::fs::write(at.join("..2026_12_01_00_00_00.1").join(key), str_of(value)).unwrap();
        symlink(format!("..data/{key}"), at.join(key)).unwrap();
    }
    symlink("..2026_12_01_00_00_00.1", at.join("..data")).unwrap();
}

#[test]
fn the_kubernetes_example_defines_its_config_maps_runs_as_a_uid_and_starts() {
    let documents = documents("deploy/kubernetes.yaml");
    let deployment = of_kind(&documents, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod["securityContext"]["runAsUser"].as_i64(), Some(65532));

    let config_maps: BTreeMap<&str, &Yaml> = of_kind(&documents, "ConfigMap")
        .into_iter()
        .map(|c| (str_of(&c["metadata"]["name"]), c))
        .collect();
    let mounts: BTreeMap<&str, &str> = pod["containers"][0]["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|m| (str_of(&m["name"]), str_of(&m["mountPath"])))
        .collect();
    let volume_root = tempfile::tempdir().unwrap();
    let mut env = deployment_env(&documents);
    for volume in pod["volumes"].as_vec().unwrap() {
        let name = str_of(&volume["configMap"]["name"]);
        let config_map = config_maps
            .get(name)
            .unwrap_or_else(|| panic!("ConfigMap {name} is mounted but not defined"));
        let mount_path = mounts[str_of(&volume["name"])];
        let local = volume_root.path().join(str_of(&volume["name"]));
        mount_config_map(config_map, &local);
        // The container's paths, here.
        for value in env.values_mut() {
            if value == mount_path {
                *value = local.to_str().unwrap().to_owned();
            }
        }
    }
    for name in env.keys() {
        assert!(
            graphql_firewall::config::variable(name).is_some(),
            "{name} is not a known variable"
        );
    }
    let (code, stdout, stderr) = run(&["check", "--offline"], &env);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("persisted documents: 0"), "{stdout}");
}

#[test]
fn the_ci_workflow_gates_with_the_production_limits_and_its_gate_fails_an_operation_over_one() {
    let workflow = &documents("deploy/ci/persisted-queries.yml")[0];
    let deployment = deployment_env(&documents("deploy/kubernetes.yaml"));
    let limits: BTreeMap<String, String> = workflow["env"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| (str_of(k).to_owned(), str_of(v).to_owned()))
        .filter(|(k, _)| k.starts_with("GRAPHQL_FIREWALL_"))
        .collect();
    assert!(!limits.is_empty());
    for (name, value) in &limits {
        assert_eq!(
            deployment.get(name),
            Some(value),
            "{name}: the workflow and the Deployment disagree"
        );
    }
    let steps: Vec<&str> = workflow["jobs"]["manifest"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|step| step["run"].as_str())
        .collect();
    assert!(steps.iter().any(|s| s.contains("manifest build src --out")));
    assert!(steps.iter().any(|s| s.contains("check --offline")));

    // The workflow's two commands on the demo client: built, then gated.
    let out = tempfile::tempdir().unwrap();
    let manifest = out.path().join("manifest.json");
    let (code, _, stderr) = run(
        &[
            "manifest",
            "build",
            "persisted-queries/src",
            "--out",
            manifest.to_str().unwrap(),
        ],
        &BTreeMap::new(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let mut gate = limits.clone();
    gate.insert(
        "GRAPHQL_FIREWALL_SCHEMA".to_owned(),
        "schema/demo.graphql".to_owned(),
    );
    gate.insert(
        "GRAPHQL_FIREWALL_PERSISTED_QUERIES_DIR".to_owned(),
        out.path().to_str().unwrap().to_owned(),
    );
    let (code, stdout, stderr) = run(&["check", "--offline"], &gate);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("persisted documents: 7"), "{stdout}");

    gate.insert("GRAPHQL_FIREWALL_MAX_DEPTH".to_owned(), "2".to_owned());
    let (code, _, stderr) = run(&["check", "--offline"], &gate);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("depth 3 > limit 2"), "{stderr}");
}

#[test]
fn the_image_runs_as_a_numeric_user_with_a_small_build_context() {
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap();
    let user = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        user.split(':')
            .all(|id| id.parse::<u32>().is_ok_and(|id| id > 0)),
        "USER {user} must be numeric and not root"
    );
    // What include_str! compiles in must be in the build.
    for needed in ["COPY schema", "COPY persisted-queries"] {
        assert!(dockerfile.contains(needed), "{needed}");
    }
    assert!(dockerfile.contains("CARGO_PROFILE_RELEASE_DEBUG=false"));
    let ignore = std::fs::read_to_string(Path::new(ROOT).join(".dockerignore")).unwrap();
    let lines: Vec<&str> = ignore.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(lines.contains(&"*"), "everything is excluded first");
    assert!(
        !lines.iter().any(|l| l.contains("target")),
        "target/ stays out"
    );
}
