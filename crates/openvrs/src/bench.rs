//! `openvrs bench`: measurements with the ceiling measured in the same run.

use std::time::Instant;

use anyhow::Result;
use clap::Subcommand;
use openvrs_crypto::MasterKey;
use openvrs_domain::{audit::Actor, ids::MunicipalityCode, person::Person};
use openvrs_store::{
    Location,
    bench::{PgScratch, plain_sqlite_insert},
};
use openvrs_synth::Generator;

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Rows per second of `openvrs import targets` (validate the file, then seal, index and
    /// write it in one transaction) next to a plain SQLite insert of the same persons.
    Import {
        #[arg(long, default_value_t = 300_000)]
        count: u64,
        /// Also import into PostgreSQL at this URL (a scratch schema, dropped afterwards).
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Streams a targets file from standard input through the whole check of an import (every
    /// cell, repeats anywhere) and reports bytes per second and this process's peak memory:
    /// `openvrs gen residents --count 8000000 | openvrs bench check` (about 1 GB, never stored).
    Check,
    /// A bulk inquiry of ROWS rows (90% found) across MUNICIPALITIES municipalities holding
    /// RESIDENTS residents in all, and the latency of single inquiries.
    Inquiry {
        #[arg(long, default_value_t = 1741)]
        municipalities: usize,
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        /// Single inquiries to time one by one.
        #[arg(long, default_value_t = 2_000)]
        singles: usize,
        /// Also run it on PostgreSQL at this URL (a scratch schema, dropped afterwards).
        #[arg(long)]
        postgres: Option<String>,
    },
    /// SMART Health Cards per second on one core: issue (bundle, DEFLATE, ES256 JWS), QR
    /// images (PNG), verification; next to the bare ES256 signature and verification.
    Cert {
        #[arg(long, default_value_t = 20_000)]
        count: usize,
    },
    /// Residents per second into the store (sealed fields, keyed index, audit) next to a plain
    /// SQLite insert of the same rows.
    Store {
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        /// Persons per transaction.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        /// Also measure the store on PostgreSQL at this URL (in a scratch schema, dropped
        /// afterwards).
        #[arg(long)]
        postgres: Option<String>,
    },
}

/// Peak resident memory of this process so far, from /proc (Linux).
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn check() -> Result<()> {
    struct Counting<R>(R, std::sync::Arc<std::sync::atomic::AtomicU64>);
    impl<R: std::io::Read> std::io::Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            Ok(n)
        }
    }
    let m = MunicipalityCode::parse("472131")?;
    let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stream = Counting(std::io::stdin(), bytes.clone());
    let before = peak_rss_mb();
    let started = Instant::now();
    let result = openvrs_csv::validate_targets(
        stream,
        openvrs_csv::Encoding::Auto,
        m,
        time::macros::date!(2026 - 11 - 27),
    );
    let secs = started.elapsed().as_secs_f64();
    let read = bytes.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "openvrs bench check: {:.2} GB streamed in {secs:.1}s ({:.0} MB/s), {}; \
         peak RSS {} MB (before: {} MB)",
        read as f64 / 1e9,
        read as f64 / 1e6 / secs,
        match &result {
            Ok(n) => format!("{n} persons, no errors"),
            Err(e) => format!("{} errors", e.len()),
        },
        peak_rss_mb().unwrap_or(0),
        before.unwrap_or(0),
    );
    Ok(())
}

fn rate(n: usize, secs: f64) -> String {
    format!("{:>12.0} residents/s  ({n} in {secs:.3}s)", n as f64 / secs)
}

pub fn run(cmd: &BenchCmd) -> Result<()> {
    let (count, batch, postgres) = match cmd {
        BenchCmd::Store {
            count,
            batch,
            postgres,
        } => (count, batch, postgres),
        BenchCmd::Import { count, postgres } => return import(*count, postgres.as_deref()),
        BenchCmd::Check => return check(),
        BenchCmd::Cert { count } => return cert(*count),
        BenchCmd::Inquiry {
            municipalities,
            residents,
            rows,
            singles,
            postgres,
        } => {
            return crate::inquiry::bench(
                *municipalities,
                *residents,
                *rows,
                *singles,
                postgres.as_deref(),
            );
        }
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "注意: デバッグビルドです(--release で測定してください) / warning: debug build; measure with --release"
        );
    }
    let m = MunicipalityCode::parse("472131")?;
    let people: Vec<Person> = Generator::new(m, 42).take(*count).collect();
    let vouchers: usize = people.iter().map(|p| p.vouchers.len()).sum();
    println!(
        "openvrs bench store: {count} residents ({vouchers} vouchers), {batch} per transaction"
    );
    let tmp = tempfile::tempdir()?;

    let started = Instant::now();
    plain_sqlite_insert(&tmp.path().join("plain.sqlite"), m, &people, *batch)?;
    let plain = started.elapsed().as_secs_f64();
    println!(
        "  plain SQLite insert (ceiling)      {}",
        rate(*count, plain)
    );

    let mut targets = vec![(
        "openvrs store, SQLite",
        Location::Sqlite {
            path: tmp.path().join("store.sqlite"),
            create: true,
        },
    )];
    let scratch = postgres.as_deref().map(PgScratch::create).transpose()?;
    if let Some(s) = &scratch {
        targets.push((
            "openvrs store, PostgreSQL",
            Location::Postgres {
                url: s.url(),
                max_connections: openvrs_store::DEFAULT_MAX_CONNECTIONS,
            },
        ));
    }
    for (label, location) in targets {
        let store = openvrs_store::open(&location, MasterKey::generate())?;
        store.add_municipality(m, "うるま市", &Actor::console())?;
        let started = Instant::now();
        for chunk in people.chunks((*batch).max(1)) {
            store.put_persons(m, chunk, &Actor::console())?;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  {label:<34} {}  = {:.0}% of the ceiling",
            rate(*count, secs),
            100.0 * plain / secs
        );
        anyhow::ensure!(store.count_persons(m)? == *count as u64, "count mismatch");
    }
    Ok(())
}

fn import(count: u64, postgres: Option<&str>) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "注意: デバッグビルドです(--release で測定してください) / warning: debug build; measure with --release"
        );
    }
    let m = MunicipalityCode::parse("472131")?;
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("targets.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
    openvrs_synth::write_targets_csv(
        &mut Generator::new(m, 42),
        count,
        openvrs_synth::Encoding::ShiftJis,
        &mut out,
    )?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    let rows = std::fs::read(&file)?.split(|b| *b == b'\n').count() as u64 - 2;
    println!(
        "openvrs bench import: {count} residents, {rows} rows (Shift_JIS, {} MB)",
        std::fs::metadata(&file)?.len() >> 20
    );
    let per_s =
        |n: u64, secs: f64| format!("{:>10.0} rows/s ({n} rows in {secs:.2}s)", n as f64 / secs);

    let people: Vec<Person> = Generator::new(m, 42).take(count as usize).collect();
    let started = Instant::now();
    plain_sqlite_insert(&tmp.path().join("plain.sqlite"), m, &people, 10_000)?;
    let ceiling = started.elapsed().as_secs_f64();
    drop(people);
    println!(
        "  plain SQLite insert, no validation or encryption (ceiling)  {}",
        per_s(rows, ceiling)
    );

    let mut targets = vec![(
        "import into SQLite",
        Location::Sqlite {
            path: tmp.path().join("store.sqlite"),
            create: true,
        },
    )];
    let scratch = postgres.map(PgScratch::create).transpose()?;
    if let Some(s) = &scratch {
        targets.push((
            "import into PostgreSQL",
            Location::Postgres {
                url: s.url(),
                max_connections: openvrs_store::DEFAULT_MAX_CONNECTIONS,
            },
        ));
    }
    for (label, location) in targets {
        let store = openvrs_store::open(&location, MasterKey::generate())?;
        store.add_municipality(m, "うるま市", &Actor::console())?;
        let started = Instant::now();
        crate::import::targets(&*store, &file, m, openvrs_csv::Encoding::Auto)?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  {label:<59} {}  = {:.0}% of the ceiling",
            per_s(rows, secs),
            100.0 * ceiling / secs
        );
        anyhow::ensure!(store.count_persons(m)? == count, "count mismatch");
    }
    Ok(())
}

fn cert(count: usize) -> Result<()> {
    use openvrs_cert::{qr, shc};
    if cfg!(debug_assertions) {
        eprintln!(
            "注意: デバッグビルドです(--release で測定してください) / warning: debug build; measure with --release"
        );
    }
    let key = shc::SigningKeyPair::generate();
    let keys = vec![key.public_key()];
    let patient = shc::Patient {
        family: "ウルマ".into(),
        given: vec!["タロウ".into()],
        birth_date: "1980-01-01".into(),
    };
    let shot = |date: &str, lot: &str| shc::Shot {
        cvx: "208".into(),
        date: date.into(),
        lot: lot.into(),
        performer: "MHLW_Gov_of_JAPAN".into(),
    };
    let card = |i: usize| shc::Card {
        iss: "https://openvrs.example/issuer".into(),
        nbf: 1_764_201_600.0 + i as f64,
        exp: None,
        types: vec!["https://smarthealth.cards#health-card".into()],
        bundle: shc::immunization_bundle(
            &patient,
            &[
                shot("2021-06-01", "FA1234"),
                shot("2021-06-22", "FA5678"),
                shot("2022-01-10", "FK0001"),
            ],
        ),
        rid: Some(shc::rid(b"bench", &key.kid(), &i.to_string())),
    };
    println!("openvrs bench cert: {count} SMART Health Cards (3 doses each), one core");
    let per_s = |n: usize, secs: f64| format!("{:>9.0}/s ({n} in {secs:.2}s)", n as f64 / secs);
    // Ceiling: the bare ES256 signature and verification of a JWS-sized input.
    let sample = shc::sign(&card(0), &key)?;
    let started = Instant::now();
    for i in 0..count {
        std::hint::black_box(key.sign_raw(format!("{sample}{i}").as_bytes()));
    }
    println!(
        "  bare ES256 signature (ceiling)        {}",
        per_s(count, started.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    let mut jws = Vec::with_capacity(count);
    for i in 0..count {
        jws.push(shc::sign(&card(i), &key)?);
    }
    println!(
        "  issue SHC (bundle, DEFLATE, ES256)    {}",
        per_s(count, started.elapsed().as_secs_f64())
    );
    let images = (count / 10).max(1);
    let started = Instant::now();
    for i in 0..images {
        let j = shc::sign(&card(i), &key)?;
        std::hint::black_box(qr::png(&qr::shc(&shc::qr_numeric(&j))?, 4)?);
    }
    println!(
        "  issued as a QR image (shc:/, PNG)     {}",
        per_s(images, started.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    for j in &jws {
        shc::decode(j)?.verify(&keys)?;
    }
    println!(
        "  verify SHC (inflate, ES256)           {}",
        per_s(count, started.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    for j in jws.iter().take(images) {
        let png = qr::png(&qr::shc(&shc::qr_numeric(j))?, 4)?;
        let texts = qr::read_png(&png)?;
        anyhow::ensure!(shc::jws_from_qr(&[&texts[0]])? == *j, "QR round trip");
    }
    println!(
        "  QR image made and read back (rqrr)    {}",
        per_s(images, started.elapsed().as_secs_f64())
    );
    let issue_shc =
        |i: usize| -> Result<String> { Ok(shc::qr_numeric(&shc::sign(&card(i), &key)?)) };
    seals(count, images, &issue_shc)
}

/// The overseas formats: EU DCC and ICAO VDS-NC, issued and verified, with their QR images;
/// then the paper certificate, whose SHC `issue_shc` issues.
fn seals(count: usize, images: usize, issue_shc: &dyn Fn(usize) -> Result<String>) -> Result<()> {
    use openvrs_cert::{dcc, pki, qr, vds};
    let per_s = |n: usize, secs: f64| format!("{:>9.0}/s ({n} in {secs:.2}s)", n as f64 / secs);
    let now = 1_764_201_600;
    let csca = pki::make_csca("JP", "bench CSCA", now, 3650)?;
    let dcc_signer = pki::make_signer(&csca, pki::Role::DccSigner, "JP", "bench DCC", now, 730)?;
    let vds_signer = pki::make_signer(&csca, pki::Role::VdsSigner, "JP", "bench VDS", now, 730)?;
    let dcc_trust = vec![pki::Certificate::parse(&dcc_signer.der)?];
    let csca_trust = vec![pki::Certificate::parse(&csca.der)?];
    let dcc_json = |i: usize| {
        serde_json::json!({
            "ver": "1.3.0",
            "nam": {"fn": "URUMA", "fnt": "URUMA", "gn": "TARO", "gnt": "TARO"},
            "dob": "1980-01-01",
            "v": [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
                   "dn": 3, "sd": 3, "dt": "2022-01-10", "co": "JP", "is": "openvrs",
                   "ci": dcc::uvci(&format!("{i:012}"))}],
        })
    };
    let started = Instant::now();
    let mut texts = Vec::with_capacity(count);
    for i in 0..count {
        texts.push(dcc::sign(
            &dcc_json(i),
            "JP",
            now,
            now + 31_536_000,
            &dcc_signer,
        )?);
    }
    println!(
        "  issue EU DCC (CBOR, COSE, zlib, B45)  {}",
        per_s(count, started.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    for t in &texts {
        let signed = dcc::decode(t)?;
        let cert = signed.verify(&dcc_trust)?;
        let json = signed.dcc_json()?;
        dcc::check_schema(&json)?;
        dcc::check_key_usage(cert, &json)?;
    }
    println!(
        "  verify EU DCC (+ schema, key usage)   {}",
        per_s(count, started.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    for i in 0..images {
        let t = dcc::sign(&dcc_json(i), "JP", now, now + 31_536_000, &dcc_signer)?;
        std::hint::black_box(qr::png(&qr::dcc(&t)?, 4)?);
    }
    println!(
        "  issued as a QR image (HC1:, PNG)      {}",
        per_s(images, started.elapsed().as_secs_f64())
    );
    let content = |i: usize| vds::Vaccination {
        issuing_country: "JPN".into(),
        uvci: format!("{i:012}"),
        name: "URUMA TARO".into(),
        birth_date: "1980-01-01".into(),
        sex: None,
        passport: "TR1234567".into(),
        products: vec![vds::Product {
            des: "XM0GQ8".into(),
            name: "COMIRNATY".into(),
            disease: "RA01.0".into(),
            doses: (1..=3)
                .map(|seq| vds::Dose {
                    date: format!("2021-0{}-01", seq + 5),
                    seq,
                    country: "JPN".into(),
                    administered_by: "openvrs".into(),
                    lot: "FA1234".into(),
                })
                .collect(),
        }],
    };
    let started = Instant::now();
    let mut seals = Vec::with_capacity(count);
    for i in 0..count {
        seals.push(vds::sign(&vds::document(&content(i)), &vds_signer)?);
    }
    println!(
        "  issue VDS-NC (RFC 8785 JSON, ES256)   {}",
        per_s(count, started.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    for t in &seals {
        let seal = vds::parse(t)?;
        seal.verify_signature()?;
        seal.verify_chain(&csca_trust)?;
    }
    println!(
        "  verify VDS-NC (+ chain to the CSCA)   {}",
        per_s(count, started.elapsed().as_secs_f64())
    );
    let started = Instant::now();
    for i in 0..images {
        let t = vds::sign(&vds::document(&content(i)), &vds_signer)?;
        std::hint::black_box(qr::png(&qr::bytes(&t)?, 4)?);
    }
    println!(
        "  issued as a QR image (VDS-NC, PNG)    {}",
        per_s(images, started.elapsed().as_secs_f64())
    );
    // The paper certificate, overseas (the heavier one): an SHC and a VDS-NC issued, their two
    // QR codes drawn, the font subset made and embedded, compressed.
    let pdfs = (count / 20).max(1);
    let started = Instant::now();
    let mut bytes = 0;
    for i in 0..pdfs {
        let shc_text = issue_shc(i)?;
        let seal = vds::sign(&vds::document(&content(i)), &vds_signer)?;
        let doc = openvrs_cert::pdf::Document {
            fields: vec![
                ("氏名".into(), "Name".into(), "URUMA TARO".into()),
                (
                    "生年月日".into(),
                    "Date of birth".into(),
                    "1980-01-01".into(),
                ),
                ("旅券番号".into(), "Passport No.".into(), "TR1234567".into()),
                ("国籍".into(), "Nationality".into(), "JPN".into()),
            ],
            doses: (1..=3)
                .map(|n| {
                    [
                        n.to_string(),
                        format!("2021-0{}-01", n + 5),
                        "コミナティ筋注 / COMIRNATY".into(),
                        "FA1234".into(),
                        "日本 / JPN".into(),
                    ]
                })
                .collect(),
            codes: vec![
                ("SMART Health Card".into(), qr::shc(&shc_text)?),
                ("ICAO VDS-NC".into(), qr::bytes(&seal)?),
            ],
            certificate_id: format!("{i:012}"),
            issued_on: "2026-11-28".into(),
            issuer: "うるま市長".into(),
        };
        bytes += openvrs_cert::pdf::certificate(&doc)?.len();
    }
    println!(
        "  issued as a paper PDF (2 QR codes)    {}  {} KB each",
        per_s(pdfs, started.elapsed().as_secs_f64()),
        bytes / pdfs / 1024
    );
    Ok(())
}
