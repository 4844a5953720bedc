//! `openvrs import` and `openvrs stats`.

use std::{fs::File, io::Read, path::Path, time::Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use openvrs_csv::Encoding;
use openvrs_domain::{audit::Actor, ids::MunicipalityCode};
use openvrs_service::Failure;
use openvrs_store::Store;

pub(crate) fn open(path: &Path) -> Result<File> {
    File::open(path).with_context(|| {
        format!(
            "{} を開けません / cannot open {}",
            path.display(),
            path.display()
        )
    })
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

/// Opens `path` for each pass of an import, showing progress on a terminal.
pub(crate) fn opener(path: &Path) -> Result<impl Fn() -> std::io::Result<Box<dyn Read + Send>>> {
    open(path)?;
    let bar = progress(path, "取込 / importing")?;
    let path = path.to_owned();
    Ok(move || {
        bar.reset();
        let file = File::open(&path)?;
        Ok(Box::new(bar.wrap_read(file)) as Box<dyn Read + Send>)
    })
}

/// Prints every bad row to standard error and returns the one-line error.
pub(crate) fn failed(f: Failure) -> anyhow::Error {
    if let Failure::Rows(rows) = &f {
        for r in rows {
            eprintln!("{r}");
        }
    }
    anyhow::Error::new(f)
}

pub fn targets(
    store: &dyn Store,
    path: &Path,
    m: MunicipalityCode,
    encoding: Encoding,
) -> Result<()> {
    let started = Instant::now();
    let s = openvrs_service::import_targets(store, &opener(path)?, m, encoding, &Actor::console())
        .map_err(failed)?;
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
                "persons_by_key_version": s.persons_by_key_version.iter().map(|(v, c)| (v.to_string(), *c)).collect::<std::collections::BTreeMap<_, _>>(),
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
        if s.persons_by_key_version.len() > 1 {
            for (v, c) in &s.persons_by_key_version {
                println!("  データ鍵 v{v} / data key v{v}: {c}");
            }
        }
    }
    Ok(())
}
