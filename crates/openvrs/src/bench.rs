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

fn rate(n: usize, secs: f64) -> String {
    format!("{:>12.0} residents/s  ({n} in {secs:.3}s)", n as f64 / secs)
}

pub fn run(cmd: &BenchCmd) -> Result<()> {
    let BenchCmd::Store {
        count,
        batch,
        postgres,
    } = cmd;
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
            Location::Postgres { url: s.url() },
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
