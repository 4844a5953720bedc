//! `openvrs keys ...`: the deployment's certificate signing keys. Private parts are stored
//! sealed under the master key; public parts are published, retired ones too.

use anyhow::{Result, bail};
use clap::Subcommand;
use openvrs_cert::shc::SigningKeyPair;
use openvrs_store::Store;

/// The SMART Health Card key's kind in the store.
pub const SHC: &str = "shc";

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create the SMART Health Card signing key (once).
    Init,
    /// A new SMART Health Card signing key; the old one is retired and stays published.
    Rotate,
    /// The public JWKS (`/.well-known/jwks.json`): every key, retired ones too.
    Jwks,
}

fn add(store: &dyn Store) -> Result<String> {
    let key = SigningKeyPair::generate();
    store.add_signing_key(
        SHC,
        &key.kid(),
        &key.public_jwk().to_string(),
        &openvrs_crypto::Zeroizing::new(key.to_bytes()),
    )?;
    Ok(key.kid())
}

/// The public JWKS of the deployment's SMART Health Card keys.
pub fn jwks(store: &dyn Store) -> Result<serde_json::Value> {
    let keys = store
        .signing_keys(SHC)?
        .iter()
        .map(|k| serde_json::from_str(&k.public_jwk))
        .collect::<Result<Vec<serde_json::Value>, _>>()?;
    Ok(serde_json::json!({ "keys": keys }))
}

pub fn run(store: &dyn Store, cmd: &KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::Init => {
            if store.active_signing_key(SHC)?.is_some() {
                bail!(
                    "署名鍵は作成済みです(更新は openvrs keys rotate) / the signing key exists already (to replace it: openvrs keys rotate)"
                );
            }
            let kid = add(store)?;
            println!(
                "SMART Health Card 署名鍵を作成しました / created the SMART Health Card signing key: kid {kid}"
            );
        }
        KeysCmd::Rotate => {
            let kid = add(store)?;
            println!(
                "新しい署名鍵 / new signing key: kid {kid} (旧鍵は公開を継続 / retired keys stay published)"
            );
        }
        KeysCmd::Jwks => println!("{}", serde_json::to_string_pretty(&jwks(store)?)?),
    }
    Ok(())
}
