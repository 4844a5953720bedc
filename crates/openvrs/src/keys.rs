//! `openvrs keys ...`: the deployment's keys. Certificate signing keys (private parts sealed
//! under the master key; public parts published, retired ones too), a municipality's data key
//! and the master key itself.

use std::fs;

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use openvrs_crypto::MasterKey;
use openvrs_domain::audit::Actor;
use openvrs_service::certificate::{self as certs, NewKey};
use openvrs_store::{Store, StoreError};

use crate::config::{self, DataDir};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyKind {
    /// The SMART Health Card key.
    Shc,
    /// The development CSCA (and, with it, new VDS-NC and EU DCC signers).
    Csca,
    /// The ICAO VDS-NC document signer.
    Vds,
    /// The EU DCC document signer.
    Dcc,
    /// The key the resident app seals its applications to (not a signing key; applications
    /// sealed to the old one are refused once it is replaced).
    Intake,
    /// A municipality's data key (--municipality): every person's sealed fields are re-sealed
    /// in batches while the server runs; the old key is destroyed at the end. Run it again
    /// after an interruption to resume.
    Data,
    /// The master key: every municipality key and signing key is rewrapped under a new one in
    /// one transaction (the data is not touched), then the key file is replaced. Stop the
    /// server first. Run it again after an interruption to finish.
    Master,
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create the SMART Health Card key, a development CSCA, the VDS-NC and EU DCC signers it
    /// certifies and the resident app's intake key (those that do not exist yet).
    Init,
    /// A new key of a kind. Signing keys: the old one is retired and stays published.
    Rotate {
        #[arg(value_enum)]
        kind: KeyKind,
        /// The municipality whose data key to rotate (`data` only).
        #[arg(long)]
        municipality: Option<String>,
        /// Persons re-sealed per transaction (`data` only).
        #[arg(long, default_value_t = 1000)]
        batch: u32,
    },
    /// The public JWKS (`/.well-known/jwks.json`): every key, retired ones too.
    Jwks,
    /// The CSCA and the VDS-NC and EU DCC signer certificates, as PEM (retired ones too).
    Certs,
}

fn print(made: &[NewKey]) {
    for k in made {
        println!("作成しました / created: {} kid {}", k.kind, k.kid);
    }
}

pub fn run(dir: &DataDir, cmd: &KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::Rotate {
            kind: KeyKind::Master,
            ..
        } => return rotate_master(dir),
        KeysCmd::Rotate {
            kind: KeyKind::Data,
            municipality,
            batch,
        } => {
            let Some(code) = municipality else {
                bail!(
                    "--municipality を指定してください / --municipality is needed for the data key"
                );
            };
            return rotate_data(&*dir.open_store(false)?, crate::municipality(code)?, *batch);
        }
        _ => {}
    }
    let store = &*dir.open_store(false)?;
    match cmd {
        KeysCmd::Init => {
            let made = certs::init_keys(store, &Actor::console())?;
            if made.is_empty() {
                anyhow::bail!(
                    "署名鍵はすべて作成済みです(更新は openvrs keys rotate) / every signing key exists already (to replace one: openvrs keys rotate)"
                );
            }
            print(&made);
        }
        KeysCmd::Rotate { kind, .. } => {
            let kind = match kind {
                KeyKind::Shc => certs::SHC,
                KeyKind::Csca => certs::CSCA,
                KeyKind::Vds => certs::VDS,
                KeyKind::Dcc => certs::DCC,
                KeyKind::Intake => openvrs_service::application::INTAKE,
                KeyKind::Data | KeyKind::Master => unreachable!("handled above"),
            };
            print(&certs::rotate(store, kind, &Actor::console())?);
            println!("旧鍵は公開を継続します / retired keys stay published");
        }
        KeysCmd::Jwks => println!("{}", serde_json::to_string_pretty(&certs::jwks(store)?)?),
        KeysCmd::Certs => {
            for (kind, pem) in certs::certificates_pem(store)? {
                println!("# {kind}");
                print!("{pem}");
            }
        }
    }
    Ok(())
}

/// Re-seals every person of `m` under a new data key, batch by batch, then destroys the old key.
/// An interrupted run is taken up where the database says it stands.
fn rotate_data(
    store: &dyn Store,
    m: openvrs_domain::ids::MunicipalityCode,
    batch: u32,
) -> Result<()> {
    if batch == 0 {
        bail!("--batch は1以上にしてください / --batch must be at least 1");
    }
    let actor = Actor::console();
    let began = store.begin_data_key_rotation(m, &actor)?;
    if began.resumed {
        println!(
            "中断したデータ鍵 v{} への更新を再開します / resuming the interrupted rotation to data key v{}",
            began.version, began.version
        );
    } else {
        println!(
            "データ鍵 v{} を作成しました / created data key v{}",
            began.version, began.version
        );
    }
    let (mut resealed, mut batches) = (0u64, 0u64);
    loop {
        let mut after = String::new();
        loop {
            let done = store.reseal_batch(m, &after, batch)?;
            resealed += done.resealed;
            batches += 1;
            crate::crash_point(&format!("data-key-batch-{batches}"));
            match done.next {
                Some(next) => after = next,
                None => break,
            }
        }
        // Rows written meanwhile by a process that had not yet seen the new key: another pass.
        if store.finish_data_key_rotation(m, &actor)? {
            break;
        }
    }
    println!(
        "{m}: {resealed} 人をデータ鍵 v{v} で暗号化し直し、旧鍵を破棄しました / re-sealed {resealed} persons under data key v{v} and destroyed the old key",
        v = began.version
    );
    Ok(())
}

/// Rewraps every key under a new master key. The new key is written next to the old one
/// (`master.key.next`) before the database changes, and replaces it after: a crash at any point
/// leaves either the old key opening an untouched database, or both files, which the next run
/// (and every other command's refusal) resolves.
fn rotate_master(dir: &DataDir) -> Result<()> {
    if config::env("OPENVRS_MASTER_KEY").is_some() {
        bail!(
            "OPENVRS_MASTER_KEY で鍵を渡している場合は更新できません(鍵ファイルを使ってください) / the master key comes from OPENVRS_MASTER_KEY: rotation needs the key file"
        );
    }
    let (file, next) = (dir.master_key_file(), dir.next_master_key_file());
    let old = dir.master_key()?;
    let location = dir.location(false)?;
    let store = openvrs_store::open(&location, old)?;
    if next.exists() {
        let new = config::read_key(&next)?;
        match store.check_master_key() {
            Ok(()) => {
                // The database was never rewrapped: begin again with a fresh key.
                fs::remove_file(&next)?;
                println!(
                    "中断した更新はデータベースを変更していませんでした。やり直します / the interrupted rotation had not changed the database: starting again"
                );
            }
            Err(StoreError::Crypto(_)) => {
                openvrs_store::open(&location, new)?
                    .check_master_key()
                    .context("新旧どちらの鍵でも開けません / neither the old nor the new key opens the database")?;
                replace(&next, &file)?;
                println!(
                    "中断したマスター鍵の更新を完了しました / finished the interrupted master key rotation"
                );
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
    store.check_master_key()?;
    let new = MasterKey::generate();
    config::write_private(&next, new.to_hex().as_bytes())?;
    crate::crash_point("master-key-written");
    let rewrapped = store.rewrap_master_key(&new, &Actor::console())?;
    crate::crash_point("master-key-rewrapped");
    replace(&next, &file)?;
    println!(
        "マスター鍵を更新しました({rewrapped} 個の鍵を包み直しました)。サーバーを再起動してください。以前のバックアップの復元には旧鍵が必要です / rotated the master key ({rewrapped} keys rewrapped). Restart the server. Backups made before now need the previous key to restore"
    );
    Ok(())
}

/// Moves `from` over `to` and makes the rename durable.
fn replace(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    fs::rename(from, to).with_context(|| {
        format!(
            "{} を置き換えられません / cannot replace {}",
            to.display(),
            to.display()
        )
    })?;
    if let Some(parent) = to.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
