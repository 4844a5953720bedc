//! `openvrs import` and `openvrs stats`.

use std::{fs::File, path::Path, time::Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use openvrs_csv::{Encoding, RowError, read_targets, validate_targets};
use openvrs_domain::{audit::Actor, ids::MunicipalityCode};
use openvrs_store::{Store, StoreError};

pub(crate) fn open(path: &Path) -> Result<File> {
    File::open(path).with_context(|| {
        format!(
            "{} を開けません / cannot open {}",
            path.display(),
            path.display()
        )
    })
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(openvrs_domain::date::JST)
        .date()
}

/// A progress bar over the bytes of `path` on standard error: drawn only on a terminal.
pub(crate) fn progress(path: &Path, label: &'static str) -> Result<ProgressBar> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} 残り/eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(label);
    Ok(bar)
}

/// Prints every rejected row and returns the error that says nothing was written.
pub(crate) fn report_rejected(rows: &[openvrs_store::RowFinding]) -> anyhow::Error {
    for r in rows {
        eprintln!("{r}");
    }
    anyhow::anyhow!(
        "{} 件の誤りがあるため何も取り込んでいません / nothing imported: {} errors",
        rows.len(),
        rows.len()
    )
}

/// Two passes over the file: validate every row (nothing written if any is bad), then write all
/// of it in one transaction.
pub fn targets(
    store: &dyn Store,
    path: &Path,
    m: MunicipalityCode,
    encoding: Encoding,
) -> Result<()> {
    let started = Instant::now();
    let bar = progress(path, "検査 / checking")?;
    let checked = validate_targets(bar.wrap_read(open(path)?), encoding, m, today());
    bar.finish_and_clear();
    if let Err(errors) = checked {
        for e in &errors {
            eprintln!("{e}");
        }
        bail!(
            "{} 件の誤りがあるため何も取り込んでいません / nothing imported: {} errors",
            errors.len(),
            errors.len()
        );
    }
    let bar = progress(path, "取込 / importing")?;
    let reader = read_targets(bar.wrap_read(open(path)?), encoding, m, today())?;
    // Parsing runs on its own thread, ahead of the writer: the two cores share the work.
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let parser = std::thread::spawn(move || {
        for r in reader {
            let r = r.map_err(|e| match e {
                // The file changed between the passes.
                RowError::Cells(_) | RowError::File(_) => {
                    StoreError::Corrupt("the file changed while importing")
                }
            });
            if tx.send(r).is_err() {
                break; // the writer stopped
            }
        }
    });
    let s = store.import_persons(m, &mut rx.into_iter(), &Actor::console());
    let _ = parser.join();
    bar.finish_and_clear();
    let s = s?;
    println!(
        "取り込みました / imported into {m}: 新規 {} 人 / {} new, 更新 {} / {} updated, 変更なし {} / {} unchanged, 券 {} 件追加・更新 / {} vouchers added or changed ({:.2}s)",
        s.inserted,
        s.inserted,
        s.updated,
        s.updated,
        s.unchanged,
        s.unchanged,
        s.vouchers_written,
        s.vouchers_written,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn stats(store: &dyn Store, m: MunicipalityCode, json: bool) -> Result<()> {
    let s = store.stats(m)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "municipality": m.to_string(),
                "persons": s.persons,
                "vouchers": s.vouchers,
                "doses_by_number": s.doses_by_number.iter().map(|(n, c)| (n.to_string(), *c)).collect::<std::collections::BTreeMap<_, _>>(),
                "moved_out": s.moved_out,
                "deceased": s.deceased,
                "use_suspended": s.use_suspended,
            }))?
        );
    } else {
        println!(
            "{m}: 住民 {} / persons, 券 {} / vouchers, 転出 {} / moved out, 死亡 {} / deceased, 利用停止 {} / suspended",
            s.persons, s.vouchers, s.moved_out, s.deceased, s.use_suspended
        );
        for (n, c) in &s.doses_by_number {
            println!("  {n}回目 / dose {n}: {c}");
        }
    }
    Ok(())
}
