//! Running a deployment: the audit chain's verification, `doctor`, scheduled backups, key
//! rotations that survive a crash half-way, and a command whose reader went away.

use std::{collections::BTreeMap, path::Path, process::Command};

use crate::{
    common::{SERVE_PLAIN, command, fails, ok, on_postgres, openvrs, start},
    fixtures::{
        Residents, TabletLoad, disclosure, papers, stats, town, town_with_keys_on, venue_token,
    },
};

#[test]
fn audit_verify_names_the_tampered_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town(d, None, Residents::None);
    let db = rusqlite::Connection::open(d.join("openvrs-data/openvrs.sqlite")).unwrap();
    db.execute("UPDATE audit_log SET action = 'nothing' WHERE seq = 1", [])
        .unwrap();
    let err = fails(d, &["audit", "verify", "--municipality", "472131"]);
    assert!(err.contains("第1項") && err.contains("entry 1"), "{err}");
}

/// `doctor` passes a fresh installation with warnings (no keys yet, development TLS), passes
/// once the keys exist, and fails - naming the fix - on a key file others can read and on an
/// altered audit log.
#[test]
fn doctor_says_what_is_wrong_and_how_to_fix_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town(d, None, Residents::None);
    let fresh = ok(d, &["doctor"]);
    assert!(
        fresh.contains("WARN shc key") && fresh.contains("openvrs keys init"),
        "{fresh}"
    );
    assert!(fresh.contains("development certificate"), "{fresh}");
    // The development certificate is valid for about two years, not for ever (rcgen's default
    // had it end in the year 4096).
    let days: i64 = fresh
        .lines()
        .find(|l| l.contains("tls certificate") && l.contains("valid for"))
        .and_then(|l| l.split("valid for ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{fresh}"));
    assert!((800..=825).contains(&days), "{days}: {fresh}");
    assert!(!fresh.contains("FAIL"), "{fresh}");
    assert!(
        fresh.contains("OK   database") && fresh.contains("OK   audit logs"),
        "{fresh}"
    );
    ok(d, &["keys", "init"]);
    ok(d, &["card", "issuer-init"]);
    let ready = ok(d, &["doctor"]);
    for check in [
        "shc key",
        "vds key",
        "dcc key",
        "intake key",
        "card issuer certificate",
    ] {
        assert!(ready.contains(&format!("OK   {check}")), "{check}: {ready}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("openvrs-data/master.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = openvrs(d, &["doctor"]);
        assert!(!out.status.success());
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("FAIL master key") && said.contains("chmod 600"),
            "{said}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let db = rusqlite::Connection::open(d.join("openvrs-data/openvrs.sqlite")).unwrap();
    db.execute("UPDATE audit_log SET action = 'nothing' WHERE seq = 1", [])
        .unwrap();
    drop(db);
    let out = openvrs(d, &["doctor"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("FAIL audit logs") && said.contains("472131"),
        "{said}"
    );
}

/// `[backup] dir` set: `openvrs backup` and the running server write backups there and keep the
/// newest `keep`; the doctor tells their age. A config with several errors names them all.
#[test]
fn scheduled_backups_keep_the_newest_and_the_doctor_watches_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town(d, None, Residents::None);
    let e = fails(d, &["backup"]);
    assert!(e.contains("[backup] dir"), "{e}");
    let said = String::from_utf8(openvrs(d, &["doctor"]).stdout).unwrap();
    assert!(
        said.contains("WARN backup") && said.contains("[backup] dir"),
        "{said}"
    );

    let config = d.join("openvrs-data/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("dir = \"\"", "dir = \"backups\"")
            .replace("keep = 14", "keep = 2"),
    )
    .unwrap();
    let said = ok(d, &["doctor"]);
    assert!(
        said.contains("WARN backup") && said.contains("none yet"),
        "{said}"
    );
    let backups = d.join("openvrs-data/backups");
    let list = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&backups)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    ok(d, &["backup"]);
    let first = list();
    assert_eq!(first.len(), 1, "{first:?}");
    ok(d, &["backup"]);
    ok(d, &["backup"]);
    let kept = list();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(!kept.contains(&first[0]), "the oldest went: {kept:?}");
    assert!(ok(d, &["doctor"]).contains("OK   backup"));

    // The server makes one at once when there is none recent enough.
    std::fs::remove_dir_all(&backups).unwrap();
    let server = start(d, &SERVE_PLAIN);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !list().iter().any(|n| n.ends_with(".bak")) {
        assert!(std::time::Instant::now() < deadline, "no scheduled backup");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(server);
    let made = list();
    let file = backups.join(made.iter().find(|n| n.ends_with(".bak")).unwrap());
    let key = d.join("openvrs-data/master.key");
    ok(
        d,
        &[
            "--data-dir",
            "restored",
            "restore",
            file.to_str().unwrap(),
            "--master-key-file",
            key.to_str().unwrap(),
        ],
    );

    // Every error of a config file at once.
    std::fs::write(
        &config,
        text.replace("lgwan =", "lgwam =")
            .replace("keep = 14", "keep = 0")
            .replace(
                "requests_per_client_per_minute = 1200",
                "requests_per_client_per_minute = -1",
            ),
    )
    .unwrap();
    let out = openvrs(d, &["stats", "--municipality", "472131"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("3 errors"), "{err}");
    for what in ["[server]", "[security]", "[backup]"] {
        assert!(err.contains(what), "{what}: {err}");
    }
}

/// Runs `openvrs ARGS` with `OPENVRS_CRASH_AT=at`: it must die there, as in a power cut.
fn crashes(dir: &Path, at: &str, args: &[&str]) {
    let out = command(dir)
        .env("OPENVRS_CRASH_AT", at)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("aborting"),
        "{args:?} should have crashed at {at}: {err}"
    );
}

#[test]
fn key_rotations_survive_a_crash_half_way_sqlite() {
    key_rotations_survive_a_crash_half_way(None);
}

#[test]
fn key_rotations_survive_a_crash_half_way_postgres() {
    on_postgres(key_rotations_survive_a_crash_half_way);
}

/// The data key is rotated while tablets record doses (reading sealed birth dates), killed
/// half-way and resumed; the master key is rotated and killed before and after the database
/// changed. Every person reads the same throughout, the audit chain holds, certificates are
/// still signed, and the old keys are gone.
fn key_rotations_survive_a_crash_half_way(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (vaccinated, _) = town_with_keys_on(d, database_url);
    let mut addresses: Vec<String> = std::fs::read_to_string(d.join("t.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_owned())
        .collect();
    addresses.dedup();
    let addresses: Vec<String> = addresses.into_iter().step_by(5).collect();
    let identities = || -> Vec<serde_json::Value> {
        addresses
            .iter()
            .map(|a| disclosure(d, a)["person"].clone())
            .collect()
    };
    let before = identities();
    assert_eq!(stats(d).persons_by_key_version, BTreeMap::from([(1, 40)]));

    // Data key: killed after the second batch of ten, persons half under each key.
    let rotate_data = [
        "keys",
        "rotate",
        "data",
        "--municipality",
        "472131",
        "--batch",
        "10",
    ];
    crashes(d, "data-key-batch-2", &rotate_data);
    assert_eq!(
        stats(d).persons_by_key_version,
        BTreeMap::from([(1, 20), (2, 20)])
    );
    assert_eq!(identities(), before, "readable half-way");
    let doctor = openvrs(d, &["doctor"]);
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(said.contains("rotation of 472131 is unfinished"), "{said}");

    // Resumed while the server records doses.
    let (_server, _, internet, _) = start(d, &SERVE_PLAIN);
    let load = TabletLoad::start(internet, venue_token(d), papers(d));
    load.wait_for(5);
    let resumed = ok(d, &rotate_data);
    assert!(
        resumed.contains("resuming the interrupted rotation to data key v2"),
        "{resumed}"
    );
    assert!(resumed.contains("destroyed the old key"), "{resumed}");
    // Stopping joins the load, which panics on any record not acknowledged.
    load.stop();
    drop(_server);
    assert_eq!(stats(d).persons_by_key_version, BTreeMap::from([(2, 40)]));
    assert_eq!(identities(), before);
    ok(d, &["audit", "verify", "--municipality", "472131"]);

    // Master key: killed after the new key file was written, before the database changed.
    let old_key = std::fs::read_to_string(d.join("openvrs-data/master.key")).unwrap();
    crashes(d, "master-key-written", &["keys", "rotate", "master"]);
    let e = fails(d, &["stats", "--municipality", "472131"]);
    assert!(e.contains("run `openvrs keys rotate master` again"), "{e}");
    let again = ok(d, &["keys", "rotate", "master"]);
    assert!(
        again.contains("had not changed the database: starting again"),
        "{again}"
    );
    assert!(again.contains("rotated the master key"), "{again}");
    let second_key = std::fs::read_to_string(d.join("openvrs-data/master.key")).unwrap();
    assert_ne!(second_key, old_key);
    // Killed after the database was rewrapped, before the key file was replaced.
    crashes(d, "master-key-rewrapped", &["keys", "rotate", "master"]);
    fails(d, &["stats", "--municipality", "472131"]);
    let finished = ok(d, &["keys", "rotate", "master"]);
    assert!(
        finished.contains("finished the interrupted master key rotation"),
        "{finished}"
    );
    let third_key = std::fs::read_to_string(d.join("openvrs-data/master.key")).unwrap();
    assert_ne!(third_key, second_key);
    assert!(!d.join("openvrs-data/master.key.next").exists());
    assert_eq!(identities(), before);
    ok(d, &["audit", "verify", "--municipality", "472131"]);
    let doctor = ok(d, &["doctor"]);
    assert!(!doctor.contains("FAIL"), "{doctor}");
    // Certificates are still signed with the (rewrapped) signing keys.
    ok(
        d,
        &[
            "certificate",
            "issue",
            "--municipality",
            "472131",
            "--address-number",
            &vaccinated[0],
            "--kind",
            "domestic",
            "--format",
            "shc",
            "--out",
            "c.smart-health-card",
        ],
    );
    let jwks = ok(d, &["keys", "jwks"]);
    std::fs::write(d.join("jwks.json"), jwks).unwrap();
    ok(d, &["verify", "c.smart-health-card", "--jwks", "jwks.json"]);
    // The previous master key opens nothing any more.
    let out = command(d)
        .env("OPENVRS_MASTER_KEY", old_key.trim())
        .args([
            "person",
            "disclose",
            "--municipality",
            "472131",
            "--address-number",
        ])
        .arg(&addresses[0])
        .args(["--format", "json", "--out", "old.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot decrypt"));
}

/// `openvrs ... | head`: the reader goes away, and the command ends quietly with the status of
/// a process ended by SIGPIPE, as Unix tools do - whether it prints lines or writes a stream.
/// (The pipe's reading end is closed before the command starts, so every write meets it.)
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["openapi", "--zone", "lgwan"][..],
        &[
            "gen",
            "residents",
            "--municipality",
            "472131",
            "--count",
            "1000",
        ][..],
    ] {
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_openvrs"))
            .current_dir(tmp.path())
            .args(args)
            .stdout(std::process::Stdio::from(writer))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}
