//! `openvrs keys ...`: the deployment's certificate signing keys. Private parts are stored
//! sealed under the master key; public parts are published, retired ones too.

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use openvrs_service::certificate::{self as certs, NewKey};
use openvrs_store::Store;

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
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create the SMART Health Card key, a development CSCA, the VDS-NC and EU DCC signers it
    /// certifies and the resident app's intake key (those that do not exist yet).
    Init,
    /// A new key of a kind; the old one is retired and stays published.
    Rotate {
        #[arg(value_enum)]
        kind: KeyKind,
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

pub fn run(store: &dyn Store, cmd: &KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::Init => {
            let made = certs::init_keys(store)?;
            if made.is_empty() {
                anyhow::bail!(
                    "署名鍵はすべて作成済みです(更新は openvrs keys rotate) / every signing key exists already (to replace one: openvrs keys rotate)"
                );
            }
            print(&made);
        }
        KeysCmd::Rotate { kind } => {
            let kind = match kind {
                KeyKind::Shc => certs::SHC,
                KeyKind::Csca => certs::CSCA,
                KeyKind::Vds => certs::VDS,
                KeyKind::Dcc => certs::DCC,
                KeyKind::Intake => openvrs_service::application::INTAKE,
            };
            print(&certs::rotate(store, kind)?);
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
