//! `openvrs inquiry ...`: bulk inquiries to other municipalities and the provision records,
//! from the console.

use std::{io::Write, path::PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use openvrs_csv::Encoding;
use openvrs_domain::{audit::Actor, date::jst_from_micros, ids::MunicipalityCode};
use openvrs_service::inquiry;
use openvrs_store::Store;

use crate::{
    ImportEncoding,
    import::{failed, open},
    records::ExportEncoding,
};

#[derive(Debug, Subcommand)]
pub enum InquiryCmd {
    /// A bulk inquiry (一括照会): a CSV of 照会先自治体コード, 個人番号, 宛名番号; writes the result
    /// file (the ledger layout with 照会結果 per row, never a My Number).
    Bulk {
        file: PathBuf,
        /// The asking municipality.
        #[arg(long)]
        municipality: String,
        /// The legal basis, or the persons' consent.
        #[arg(long)]
        basis: String,
        #[arg(long, value_enum, default_value_t = ImportEncoding::Auto)]
        encoding: ImportEncoding,
        /// The result file.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = ExportEncoding::Sjis)]
        out_encoding: ExportEncoding,
        /// Also attach every found row's doses to the municipality's own persons.
        #[arg(long)]
        attach: bool,
    },
    /// The provision records (情報提供等の記録) of a municipality, as CSV.
    Provisions {
        #[arg(long)]
        municipality: String,
        /// Write here instead of standard output (UTF-8 with a BOM).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(store: &dyn Store, cmd: &InquiryCmd) -> Result<()> {
    match cmd {
        InquiryCmd::Bulk {
            file,
            municipality,
            basis,
            encoding,
            out,
            out_encoding,
            attach,
        } => bulk(
            store,
            file,
            MunicipalityCode::parse(municipality)?,
            basis,
            encoding.csv(),
            out,
            *out_encoding,
            *attach,
        ),
        InquiryCmd::Provisions { municipality, out } => provisions(
            store,
            MunicipalityCode::parse(municipality)?,
            out.as_deref(),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn bulk(
    store: &dyn Store,
    file: &std::path::Path,
    asker: MunicipalityCode,
    basis: &str,
    encoding: Encoding,
    out: &std::path::Path,
    out_encoding: ExportEncoding,
    attach: bool,
) -> Result<()> {
    let started = std::time::Instant::now();
    let rows = inquiry::read_bulk(open(file)?, encoding, basis).map_err(failed)?;
    let actor = Actor::console();
    let job = store.create_inquiry_job(asker, rows.len() as u64, &actor)?;
    let bar = ProgressBar::with_draw_target(Some(rows.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("照会 / inquiring [{bar:40}] {pos}/{len} 残り/eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let alert = inquiry::run_bulk(store, asker, job, &rows, &actor, &mut |done, _| {
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let encoding = match out_encoding {
        ExportEncoding::Sjis => Encoding::ShiftJis,
        ExportEncoding::Utf8 => Encoding::Utf8,
    };
    crate::output::to_file(out, |writer| {
        inquiry::bulk_result(store, asker, job, encoding, writer)
            .map_err(failed)
            .context("--out-encoding utf8 で書き出せます / --out-encoding utf8 writes any text")
    })?;
    let j = store.inquiry_job(asker, job)?.context("job vanished")?;
    if let Some(alert) = alert {
        let who = Some(actor.user.clone());
        openvrs_service::security_event(store, alert.kind, Some(asker), who, None, alert.detail)?;
        eprintln!(
            "注意: 自団体の住民でない宛名番号の行を照会不可としました(セキュリティ担当に記録しました) / note: rows naming non-residents were refused (recorded for the security officers)"
        );
    }
    println!(
        "一括照会 {job}: {} 行 / rows ({}) {:.2}s -> {}",
        j.done_rows,
        inquiry::summary(&j.counts),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    if attach {
        let done = store.attach_inquiries(asker, &[], Some(job), &actor)?;
        println!(
            "取り込みました / attached: {} 件の照会, 接種記録 {} 件 (既存と同一 {} 件) / {} inquiries, {} doses ({} already recorded)",
            done.inquiries, done.doses, done.unchanged, done.inquiries, done.doses, done.unchanged
        );
    }
    Ok(())
}

fn provisions(store: &dyn Store, m: MunicipalityCode, out: Option<&std::path::Path>) -> Result<()> {
    crate::output::to(out, |sink| provisions_csv(store, m, sink))
}

fn provisions_csv(store: &dyn Store, m: MunicipalityCode, sink: &mut dyn Write) -> Result<()> {
    sink.write_all(b"\xEF\xBB\xBF")?;
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(sink);
    csv.write_record([
        "提供番号",
        "提供日時",
        "照会元自治体コード",
        "照会者",
        "照会番号",
        "宛名番号",
        "結果",
        "提供件数",
        "根拠",
    ])?;
    for p in store.provisions(m, None)? {
        csv.write_record([
            p.id.to_string(),
            jst_from_micros(p.at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            p.asked_by_municipality.to_string(),
            p.asked_by,
            p.inquiry_id.to_string(),
            p.address.to_string(),
            p.status.label().to_owned(),
            p.record_count.to_string(),
            p.basis,
        ])?;
    }
    csv.flush()?;
    Ok(())
}

/// `openvrs bench inquiry`: see [`crate::bench::BenchCmd::Inquiry`].
pub fn bench(
    municipalities: usize,
    residents: usize,
    rows: usize,
    singles: usize,
    postgres: Option<&str>,
) -> Result<()> {
    use openvrs_store::{BulkRow, InquiryRequest, Location, bench::PgScratch};
    use rand::{Rng, SeedableRng, seq::SliceRandom};
    if cfg!(debug_assertions) {
        eprintln!(
            "注意: デバッグビルドです(--release で測定してください) / warning: debug build; measure with --release"
        );
    }
    // Municipality codes as the country has them: prefecture, then 201, 202, ... (check digit).
    let codes: Vec<MunicipalityCode> = (1..=47u32)
        .flat_map(|pref| (201..260u32).map(move |n| pref * 1000 + n))
        .filter_map(|five| MunicipalityCode::from_five(five).ok())
        .take(municipalities)
        .collect();
    anyhow::ensure!(
        codes.len() == municipalities,
        "not enough municipality codes"
    );
    let per_town = residents / municipalities;
    println!(
        "openvrs bench inquiry: {municipalities} municipalities, {} residents, bulk of {rows} rows (90% found), {singles} single inquiries",
        per_town * municipalities
    );
    let tmp = tempfile::tempdir()?;
    let mut targets = vec![(
        "SQLite",
        Location::Sqlite {
            path: tmp.path().join("store.sqlite"),
            create: true,
        },
    )];
    let scratch = postgres.map(PgScratch::create).transpose()?;
    if let Some(s) = &scratch {
        targets.push((
            "PostgreSQL",
            Location::Postgres {
                url: s.url(),
                max_connections: openvrs_store::DEFAULT_MAX_CONNECTIONS,
            },
        ));
    }
    let console = Actor::console();
    for (label, location) in targets {
        let store = openvrs_store::open(&location, openvrs_crypto::MasterKey::generate())?;
        let started = std::time::Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1741);
        // Every town's residents; the persons to be asked for get two doses each.
        let mut asked = Vec::new();
        for (i, &m) in codes.iter().enumerate() {
            store.add_municipality(m, &format!("自治体{i}"), &console)?;
            let people: Vec<_> = openvrs_synth::Generator::new(m, i as u64 + 1)
                .take(per_town)
                .collect();
            store.put_persons(m, &people, &console)?;
            if i > 0 {
                asked.extend(
                    people
                        .into_iter()
                        .filter(|p| p.my_number.is_some())
                        .map(|p| (m, p)),
                );
            }
        }
        asked.shuffle(&mut rng);
        let found = rows * 9 / 10;
        asked.truncate(found.max(singles).min(asked.len()));
        let dose = |n: u32, date: &str| -> Result<openvrs_domain::dose::Dose> {
            Ok(openvrs_domain::dose::Dose {
                number: openvrs_domain::dose::DoseNumber::new(n)?,
                status: openvrs_domain::dose::DoseStatus::Given,
                date: openvrs_domain::date::parse_date(date)?,
                product: openvrs_domain::dose::Short::parse("comirnaty")?,
                lot: openvrs_domain::dose::Short::parse("FA1234")?,
                venue: openvrs_domain::dose::Short::default(),
                doctor: openvrs_domain::dose::Short::default(),
                source: openvrs_domain::dose::DoseSource::Staff,
                voucher: None,
                given_in: None,
            })
        };
        for (m, p) in &asked {
            if p.flags.deceased_on.is_none_or(|d| d.year() > 2021) {
                let _ = store.add_dose(*m, &p.address_number, &dose(1, "2021-07-01")?, &console);
                let _ = store.add_dose(*m, &p.address_number, &dose(2, "2021-07-22")?, &console);
            }
        }
        println!(
            "  [{label}] loaded in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let asker = codes[0];
        let ours = openvrs_synth::Generator::new(asker, 1)
            .take(per_town)
            .map(|p| p.address_number)
            .collect::<Vec<_>>();
        let request = |(m, p): &(MunicipalityCode, openvrs_domain::person::Person), i: usize| {
            InquiryRequest {
                source: *m,
                my_number: p
                    .my_number
                    .clone()
                    .expect("synthetic persons have a My Number"),
                address: ours[i % ours.len()].clone(),
                basis: "番号法第19条第16号".into(),
            }
        };
        // The bulk: 90% of rows name a person where they live, 10% a municipality they do not.
        let mut bulk: Vec<BulkRow> = Vec::with_capacity(rows);
        for i in 0..rows {
            let mut q = request(&asked[i % asked.len()], i);
            if i >= found {
                q.source = codes[1 + rng.gen_range(0..codes.len() - 1)];
                if q.source == asked[i % asked.len()].0 {
                    q.source = codes[1
                        + (codes.iter().position(|c| *c == q.source).unwrap_or(0)
                            % (codes.len() - 1))];
                }
            }
            bulk.push(BulkRow {
                row: i as u64 + 2,
                input: Ok(q),
            });
        }
        // Ceiling: read the same found persons' doses by their own 宛名番号 (no index, no
        // provision, no inquiry, no audit).
        let t = std::time::Instant::now();
        for (m, p) in asked.iter().take(found) {
            store.doses(*m, &p.address_number)?;
        }
        let ceiling = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let job = store.create_inquiry_job(asker, rows as u64, &console)?;
        inquiry::run_bulk(&*store, asker, job, &bulk, &console, &mut |_, _| {})?;
        let answered = t.elapsed().as_secs_f64();
        let mut out = Vec::new();
        inquiry::bulk_result(&*store, asker, job, Encoding::ShiftJis, &mut out).map_err(failed)?;
        let total = t.elapsed().as_secs_f64();
        let j = store.inquiry_job(asker, job)?.context("job")?;
        println!(
            "  [{label}] ceiling: doses of the {found} found persons read by 宛名番号: {ceiling:.2}s"
        );
        println!(
            "  [{label}] bulk inquiry of {rows} rows: answered in {answered:.2}s, with the result file ({} KB) {total:.2}s; {}",
            out.len() >> 10,
            inquiry::summary(&j.counts)
        );
        // Single inquiries, as the API makes them: the guard rails, then the inquiry.
        let limits = inquiry::Limits {
            per_user_per_hour: u64::MAX,
            per_municipality_per_hour: u64::MAX,
            sources_per_person_per_day: u64::MAX,
        };
        let staff = Actor {
            user: "bench-staff".into(),
            role: openvrs_domain::audit::Role::MunicipalStaff,
            zone: openvrs_domain::audit::Zone::Lgwan,
        };
        let mut latencies = Vec::with_capacity(singles);
        for (i, person) in asked.iter().take(singles).enumerate() {
            let q = request(person, i);
            let t = std::time::Instant::now();
            inquiry::ask(&*store, asker, &q, &staff, &limits)?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
        println!(
            "  [{label}] single inquiry (guard + inquiry): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            at(0.5),
            at(0.99),
            at(1.0)
        );
        for m in [asker, asked[0].0] {
            store.verify_audit(m)?;
        }
    }
    Ok(())
}
