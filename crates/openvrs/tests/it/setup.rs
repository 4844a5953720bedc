//! Setting up a deployment: `init` and its data directory, the config file, the master key's
//! file, synthetic residents (`gen`) and the signing keys (`keys`).

use crate::common::{fails, ok};

#[test]
fn init_add_verify_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("openvrs-data/master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    fails(d, &["init"]);
    assert!(
        ok(
            d,
            &[
                "municipality",
                "add",
                "--code",
                "472131",
                "--name",
                "うるま市"
            ]
        )
        .contains("沖縄県")
    );
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "011002",
            "--name",
            "札幌市",
        ],
    );
    let err = fails(
        d,
        &["municipality", "add", "--code", "472132", "--name", "x"],
    );
    assert!(
        err.contains("検査数字") && err.contains("check digit"),
        "{err}"
    );
    fails(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    assert_eq!(ok(d, &["municipality", "list"]).lines().count(), 2);
    assert!(ok(d, &["audit", "verify", "--municipality", "472131"]).contains("1 entries"));
    fails(d, &["audit", "verify", "--municipality", "472018"]);
    fails(d, &["--data-dir", "typo", "municipality", "list"]);
    assert!(!d.join("typo").exists(), "a typo creates nothing");
}

#[test]
fn key_file_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("openvrs-data/master.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = fails(d, &["municipality", "list"]);
        assert!(err.contains("chmod 600"), "{err}");
    }
}

#[test]
fn config_default_is_the_config_init_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let printed = ok(d, &["config", "default"]);
    ok(d, &["init"]);
    let written = std::fs::read_to_string(d.join("openvrs-data/config.toml")).unwrap();
    assert_eq!(printed, written);
    assert!(printed.contains("OPENVRS_DATABASE_URL"));
    // A typo in the config is an error, not a silent default.
    std::fs::write(
        d.join("openvrs-data/config.toml"),
        written.replace("internet =", "internett ="),
    )
    .unwrap();
    fails(d, &["municipality", "list"]);
}

#[test]
fn gen_residents_is_deterministic_in_both_encodings() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let args = [
        "gen",
        "residents",
        "--municipality",
        "472131",
        "--count",
        "200",
        "--seed",
        "5",
    ];
    let a = ok(d, &args);
    assert_eq!(a, ok(d, &args));
    assert_ne!(
        a,
        ok(
            d,
            &[
                "gen",
                "residents",
                "--municipality",
                "472131",
                "--count",
                "200",
                "--seed",
                "6"
            ]
        )
    );
    assert!(a.starts_with("自治体コード,宛名番号,券番号,券種,接種回,氏名,氏名カナ,生年月日,性別,個人番号,発行日,転出日,死亡日\r\n"));
    assert!(a.lines().count() > 200);
    ok(
        d,
        &[&args[..], &["--encoding", "sjis", "--out", "r.csv"]].concat(),
    );
    let sjis = std::fs::read(d.join("r.csv")).unwrap();
    let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&sjis);
    assert!(!bad);
    assert_eq!(decoded, a);
    fails(
        d,
        &[
            "gen",
            "residents",
            "--municipality",
            "47213",
            "--count",
            "1",
        ],
    );
}

#[test]
fn signing_keys_are_made_once_rotated_and_published() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["init"]);
    let made = ok(dir.path(), &["keys", "init"]);
    assert!(made.contains("kid "), "{made}");
    fails(dir.path(), &["keys", "init"]);
    ok(dir.path(), &["keys", "rotate", "shc"]);
    let jwks: serde_json::Value = serde_json::from_str(&ok(dir.path(), &["keys", "jwks"])).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the retired key stays published");
    for k in keys {
        assert_eq!(
            (k["kty"].as_str(), k["alg"].as_str()),
            (Some("EC"), Some("ES256"))
        );
        assert!(k.get("d").is_none(), "never a private part");
    }
}
