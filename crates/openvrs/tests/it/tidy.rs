//! Rules of the code that test themselves (as rust-analyzer's tidy test does): the layering as
//! `cargo metadata` declares it, no IO and no clock in the domain, a `//!` doc on every file,
//! and every dependency declared once, in the workspace. Each rule is a function over what it
//! reads, so that a planted violation of each is shown to fail it. (The SQLite and PostgreSQL
//! migrations are held to one schema by the store's own suite, on real databases.)

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// Workspace crates and the dependencies they declare (normal ones), from `cargo metadata`.
type Packages = BTreeMap<String, Vec<String>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn packages() -> Packages {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

/// Who may use what. HTTP belongs to the server, the command line to the CLI; dependencies
/// point inward (ARCHITECTURE.md's code map). Templates (askama) are not HTTP: the server's
/// pages and the service's documents (the disclosure, the open-data chart) both use them.
fn layering(packages: &Packages) -> Vec<String> {
    const ONLY: &[(&str, &[&str])] = &[
        (
            "openvrs-server",
            &[
                "axum",
                "axum-server",
                "ureq",
                "cookie",
                "tokio-rustls",
                "utoipa",
                "prometheus-client",
            ],
        ),
        ("openvrs", &["clap", "indicatif"]),
    ];
    // The workspace crates each may depend on.
    const INWARD: &[(&str, &[&str])] = &[
        ("openvrs-domain", &[]),
        ("openvrs-crypto", &[]),
        ("openvrs-cert", &[]),
        ("openvrs-csv", &["openvrs-domain"]),
        ("openvrs-synth", &["openvrs-domain"]),
        ("openvrs-store", &["openvrs-domain", "openvrs-crypto"]),
        (
            "openvrs-service",
            &[
                "openvrs-domain",
                "openvrs-crypto",
                "openvrs-csv",
                "openvrs-store",
                "openvrs-cert",
            ],
        ),
        (
            "openvrs-server",
            &[
                "openvrs-domain",
                "openvrs-crypto",
                "openvrs-csv",
                "openvrs-store",
                "openvrs-cert",
                "openvrs-service",
            ],
        ),
    ];
    let mut out = Vec::new();
    for (name, deps) in packages {
        for dep in deps {
            if let Some((owner, _)) = ONLY.iter().find(|(_, ds)| ds.contains(&dep.as_str()))
                && owner != name
            {
                out.push(format!("{name} uses {dep}, which only {owner} may use"));
            }
            if dep.starts_with("openvrs")
                && let Some((_, allowed)) = INWARD.iter().find(|(n, _)| n == name)
                && !allowed.contains(&dep.as_str())
            {
                out.push(format!(
                    "{name} depends on {dep}: dependencies point inward"
                ));
            }
        }
    }
    out
}

/// What a file's code (its test module aside) says, for the source rules.
struct Source {
    path: String,
    text: String,
}

fn sources() -> Vec<Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        for dir in ["src", "tests"] {
            if krate.path().join(dir).is_dir() {
                walk(&krate.path().join(dir), &mut files);
            }
        }
    }
    files
        .into_iter()
        .map(|p| Source {
            text: std::fs::read_to_string(&p).unwrap(),
            path: p.strip_prefix(root()).unwrap_or(&p).display().to_string(),
        })
        .collect()
}

/// Every file opens with its `//!` doc.
fn documented(sources: &[Source]) -> Vec<String> {
    sources
        .iter()
        .filter(|s| !s.text.trim_start().starts_with("//!"))
        .map(|s| format!("{} has no //! doc at its top", s.path))
        .collect()
}

/// The domain does no IO and reads no clock: whoever calls it passes the time in.
fn pure_domain(sources: &[Source]) -> Vec<String> {
    const IO: [&str; 11] = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "std::io::std",
        "SystemTime",
        "Instant::now",
        "now_utc",
        "now_local",
        "File::",
        "thread::sleep",
    ];
    let mut out = Vec::new();
    for s in sources
        .iter()
        .filter(|s| s.path.contains("openvrs-domain/src/"))
    {
        let code = s.text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            for word in IO.iter().filter(|w| line.contains(*w)) {
                out.push(format!("{}:{}: the domain uses {word}", s.path, n + 1));
            }
        }
    }
    out
}

/// One clock: below the command line, only the store's `SystemClock` reads the wall clock;
/// everything else asks the clock it was given (so tests can set the time).
fn one_clock(sources: &[Source]) -> Vec<String> {
    const WALL: [&str; 3] = ["SystemTime::now", "now_utc()", "now_local()"];
    let mut out = Vec::new();
    for s in sources.iter().filter(|s| {
        s.path.contains("/src/")
            && !s.path.starts_with("crates/openvrs/")
            && !s.path.ends_with("bench.rs")
    }) {
        let code = s.text.split("#[cfg(test)]").next().unwrap_or_default();
        let clock_impl = code.find("impl Clock for SystemClock");
        for (n, line) in code.lines().enumerate() {
            let at = code.lines().take(n).map(|l| l.len() + 1).sum::<usize>();
            let in_system_clock = clock_impl.is_some_and(|c| at > c && at < c + 400);
            for word in WALL.iter().filter(|w| line.contains(*w)) {
                if !in_system_clock {
                    out.push(format!(
                        "{}:{}: reads the wall clock ({word})",
                        s.path,
                        n + 1
                    ));
                }
            }
        }
    }
    out
}

/// Every crate names its dependencies by `workspace = true`; versions live in the root
/// manifest, once.
fn declared_once(manifests: &[(String, toml::Table)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, manifest) in manifests {
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) else {
                continue;
            };
            for (name, spec) in deps {
                let workspace = spec
                    .as_table()
                    .and_then(|t| t.get("workspace"))
                    .and_then(toml::Value::as_bool)
                    == Some(true);
                if !workspace {
                    out.push(format!(
                        "{path} [{section}] {name}: declare it in the workspace"
                    ));
                }
            }
        }
    }
    out
}

fn manifests() -> Vec<(String, toml::Table)> {
    std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .map(|k| k.path().join("Cargo.toml"))
        .filter(|p| p.is_file())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.strip_prefix(root()).unwrap().display().to_string(),
                text.parse::<toml::Table>().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_tree_keeps_its_rules() {
    let (packages, sources, manifests) = (packages(), sources(), manifests());
    assert!(packages.len() >= 9 && sources.len() > 80 && manifests.len() >= 9);
    let broken: Vec<String> = [
        layering(&packages),
        documented(&sources),
        pure_domain(&sources),
        one_clock(&sources),
        declared_once(&manifests),
    ]
    .concat();
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn each_rule_fails_on_a_planted_violation() {
    let mut packages = packages();
    packages
        .get_mut("openvrs-store")
        .unwrap()
        .push("axum".into());
    packages
        .get_mut("openvrs-service")
        .unwrap()
        .push("clap".into());
    packages
        .get_mut("openvrs-domain")
        .unwrap()
        .push("openvrs-store".into());
    assert_eq!(
        layering(&packages),
        [
            "openvrs-domain depends on openvrs-store: dependencies point inward",
            "openvrs-service uses clap, which only openvrs may use",
            "openvrs-store uses axum, which only openvrs-server may use",
        ]
    );

    let plant = |path: &str, text: &str| Source {
        path: path.into(),
        text: text.into(),
    };
    assert_eq!(
        documented(&[
            plant("crates/x/src/a.rs", "use std::fmt;\n"),
            plant("crates/x/src/b.rs", "//! B.\n")
        ]),
        ["crates/x/src/a.rs has no //! doc at its top"]
    );
    let domain = "//! Dates.\nfn today() -> Date {\n    OffsetDateTime::now_utc().date() // the clock\n}\nfn read() { std::fs::read(\"x\"); }\n#[cfg(test)]\nmod tests { fn t() { std::fs::read(\"ok in tests\"); } }\n";
    assert_eq!(
        pure_domain(&[plant("crates/openvrs-domain/src/date.rs", domain)]),
        [
            "crates/openvrs-domain/src/date.rs:3: the domain uses now_utc",
            "crates/openvrs-domain/src/date.rs:5: the domain uses std::fs",
        ]
    );
    let service = "//! Issuing.\nfn issue() {\n    let now = time::OffsetDateTime::now_utc();\n}\n";
    assert_eq!(
        one_clock(&[plant("crates/openvrs-service/src/certificate.rs", service)]),
        ["crates/openvrs-service/src/certificate.rs:3: reads the wall clock (now_utc())"]
    );
    let manifest: toml::Table = "[dependencies]\nserde.workspace = true\nrand = { workspace = true, features = [\"std\"] }\n[dev-dependencies]\ninsta = \"1\"\n"
        .parse()
        .unwrap();
    assert_eq!(
        declared_once(&[("crates/x/Cargo.toml".into(), manifest)]),
        ["crates/x/Cargo.toml [dev-dependencies] insta: declare it in the workspace"]
    );
}
