//! The deployment files: `Dockerfile` and `deploy/kubernetes/`, checked as far as a machine
//! without a container engine or a cluster allows.
//!
//! - `kubernetes_manifests_validate_against_the_api_schema`: every manifest validates, with
//!   unknown fields refused, against the Kubernetes OpenAPI schemas of the oldest and newest
//!   versions kmsload targets (1.29, the first with `backoffLimitPerIndex` on by default, and
//!   1.37), as shipped in the `kubernetes-validate` package from PyPI. Without the validator
//!   the test prints one `skipped:` line and passes, except under `CI=true` (`.ci/run`
//!   installs it).
//! - `the_indexed_job_has_one_pod_per_shard`: what the schema cannot say: the Job is Indexed
//!   with completions = parallelism = `--shards`, the merge reads exactly those shards, every
//!   ConfigMap key the pods read exists, and the image's user is the pods' user.
//! - `the_dockerfile_copies_what_the_build_reads`: every file the release build embeds and
//!   every target the manifest declares is inside a directory the build stage copies.
//!
//! `docker build` itself does not run here (no engine on the development and CI machines).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Kubernetes versions the manifests are validated against: the oldest supported, the newest.
const KUBE_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn kube_dir() -> PathBuf {
    Path::new(ROOT).join("deploy/kubernetes")
}

fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(kube_dir())
        .expect("deploy/kubernetes exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/kubernetes");
    files
}

/// Every document of every manifest, as JSON values.
fn documents() -> Vec<Value> {
    let mut docs = Vec::new();
    for file in manifest_files() {
        let text = fs::read_to_string(&file).expect("read manifest");
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
            docs.push(value);
        }
    }
    docs
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// The value after `flag` in an argument list.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

#[test]
fn kubernetes_manifests_validate_against_the_api_schema() {
    let probe = Command::new("kubernetes-validate")
        .arg("--version")
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = "kubernetes-validate is not installed (`pip install kubernetes-validate`)";
        assert!(!in_ci(), "{why} (CI=true: the schema check is required)");
        println!("skipped: kubernetes manifests schema check: {why}");
        return;
    }
    let files = manifest_files();
    for version in KUBE_VERSIONS {
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", version])
            .args(&files)
            .output()
            .expect("run kubernetes-validate");
        assert!(
            out.status.success(),
            "manifests do not validate against Kubernetes {version}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The check can fail: a field the API does not have is refused.
    let bad = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kmsload-bad-job.yaml");
    let text = fs::read_to_string(kube_dir().join("shards-job.yaml")).expect("read");
    fs::write(&bad, text.replace("completionMode:", "completionModes:")).expect("write");
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", KUBE_VERSIONS[0]])
        .arg(&bad)
        .output()
        .expect("run kubernetes-validate");
    assert!(!out.status.success(), "a misspelt field passed validation");
}

#[test]
fn the_indexed_job_has_one_pod_per_shard() {
    let docs = documents();
    let shards = find(&docs, "Job", "kmsload-shards");
    let spec = &shards["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().expect("completions");
    assert_eq!(
        spec["parallelism"].as_u64(),
        Some(n),
        "parallelism = completions"
    );
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(strings(&container["command"]), ["kmsload"]);
    let args = strings(&container["args"]);
    assert_eq!(args[0], "run");
    assert_eq!(flag(&args, "--shards"), Some(n.to_string().as_str()));
    assert_eq!(
        flag(&args, "--out"),
        Some("/results/$(RUN_ID)/shard-$(JOB_COMPLETION_INDEX)")
    );
    // The scenario the pods run is the ConfigMap's key, where the volume mounts it.
    let scenario_path = Path::new(&args[1]);
    let mount = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| scenario_path.starts_with(m["mountPath"].as_str().expect("path")))
        .expect("the scenario's directory is mounted");
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mount's volume");
    let scenario_map = find(
        &docs,
        "ConfigMap",
        volume["configMap"]["name"].as_str().unwrap(),
    );
    let key = scenario_path.file_name().unwrap().to_str().unwrap();
    assert!(
        scenario_map["data"][key].is_string(),
        "the scenario ConfigMap has no key {key}"
    );

    // Every ConfigMap key a pod reads exists; the index comes from the Job's annotation.
    let merge = find(&docs, "Job", "kmsload-merge");
    for job in [shards, merge] {
        for c in job["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
        {
            for env in c["env"].as_array().unwrap() {
                let from = &env["valueFrom"];
                if let Some(r) = from.get("configMapKeyRef") {
                    let map = find(&docs, "ConfigMap", r["name"].as_str().unwrap());
                    assert!(map["data"][r["key"].as_str().unwrap()].is_string(), "{r}");
                } else if env["name"] == "JOB_COMPLETION_INDEX" {
                    assert_eq!(
                        from["fieldRef"]["fieldPath"],
                        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    );
                }
            }
        }
    }

    // The merge reads shard-0 .. shard-(N-1) of the same run, from the same claim.
    let margs = strings(&merge["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert_eq!(margs[0], "merge");
    let inputs: Vec<&String> = margs[1..]
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .collect();
    let expected: Vec<String> = (0..n)
        .map(|i| format!("/results/$(RUN_ID)/shard-{i}"))
        .collect();
    assert_eq!(inputs, expected.iter().collect::<Vec<_>>());
    let claim = |job: &Value| -> BTreeSet<String> {
        job["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(claim(shards), claim(merge));
    let pvc = claim(shards).into_iter().next().expect("a results claim");
    let pvc = find(&docs, "PersistentVolumeClaim", &pvc);
    assert!(
        strings(&pvc["spec"]["accessModes"]).contains(&"ReadWriteMany".to_owned()),
        "shard pods on different nodes share the results volume"
    );

    // The pods run as the image's user.
    let dockerfile = fs::read_to_string(Path::new(ROOT).join("Dockerfile")).expect("Dockerfile");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the image names a USER");
    let uid: u64 = user
        .split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("numeric USER");
    assert_ne!(uid, 0, "the image runs as a non-root user");
    for doc in &docs {
        let Some(sc) = doc["spec"]["template"]["spec"].get("securityContext") else {
            continue;
        };
        assert_eq!(
            sc["runAsUser"].as_u64(),
            Some(uid),
            "{}",
            doc["metadata"]["name"]
        );
        assert_eq!(sc["runAsNonRoot"], true);
    }
}

/// Paths named by `include_str!`/`include_bytes!` in `file`'s code outside its test module.
fn embedded_files(file: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string(file).expect("read source");
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = Vec::new();
    for macro_name in ["include_str!(", "include_bytes!("] {
        for part in code.split(macro_name).skip(1) {
            let quoted = part.trim_start().strip_prefix('"').expect("a literal path");
            let rel = &quoted[..quoted.find('"').expect("closing quote")];
            found.push(file.parent().unwrap().join(rel));
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_dockerfile_copies_what_the_build_reads() {
    let root = Path::new(ROOT);
    let dockerfile = fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    // What precedes the first FROM is comments; then the build stage and the runtime stage.
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let copied = |stage: &str| -> Vec<PathBuf> {
        stage
            .lines()
            .filter_map(|l| l.strip_prefix("COPY "))
            .filter(|l| !l.starts_with("--from"))
            .flat_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words[..words.len() - 1]
                    .iter()
                    .map(|w| root.join(w))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let build = copied(stages[0]);
    for source in build.iter().chain(&copied(stages[1])) {
        assert!(
            source.exists(),
            "COPY of a missing path {}",
            source.display()
        );
    }
    let is_copied = |p: &Path| {
        let p = p.canonicalize().unwrap_or_else(|_| p.to_owned());
        build
            .iter()
            .any(|c| p.starts_with(c.canonicalize().unwrap()))
    };
    let mut sources = Vec::new();
    rust_files(&root.join("src"), &mut sources);
    let mut embedded = 0;
    for file in &sources {
        for path in embedded_files(file) {
            embedded += 1;
            assert!(
                is_copied(&path),
                "{} embeds {}, which the build stage does not copy",
                file.display(),
                path.display()
            );
        }
    }
    assert!(embedded > 0, "the catalog's data files are embedded");
    let manifest: toml::Value =
        toml::from_str(&fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    for bench in manifest["bench"].as_array().into_iter().flatten() {
        let path = root.join(format!("benches/{}.rs", bench["name"].as_str().unwrap()));
        assert!(
            is_copied(&path),
            "bench target {} not copied",
            path.display()
        );
    }
    assert!(
        stages[1].contains("COPY scenarios "),
        "the runtime image carries the ready scenarios"
    );
}
