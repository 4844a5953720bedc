//! `openvrs user`: accounts are issued by the national administrator, here at the console or
//! on the national administrator's page or through the LGWAN API (`POST /api/accounts`); all go
//! through `openvrs_service::accounts::issue`.

use anyhow::{Result, bail};
use clap::Subcommand;
use openvrs_domain::{account::UserId, audit::Actor};
use openvrs_service::accounts::{self, Request};
use openvrs_store::Store;

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Issue an account. People get a password (generated and printed once unless
    /// --password-stdin); venue devices and the issuance center get a token, printed once.
    Add {
        #[arg(long)]
        id: String,
        /// national, prefecture, staff, venue or center
        #[arg(long)]
        role: String,
        /// For staff and venue accounts.
        #[arg(long)]
        municipality: Option<String>,
        /// For prefecture viewers: 1-47.
        #[arg(long)]
        prefecture: Option<u8>,
        /// For venue devices: the venue's name.
        #[arg(long)]
        venue: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Disable an account: its sessions end and its token stops working.
    Disable {
        #[arg(long)]
        id: String,
    },
}

/// Issues an account; returns the secret to show once (generated password or token).
pub fn add(store: &dyn Store, req: Request) -> Result<Option<String>> {
    Ok(accounts::issue(store, req, &Actor::console())?.shown_once)
}

pub fn run(store: &dyn Store, cmd: &UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add {
            id,
            role,
            municipality,
            prefecture,
            venue,
            password_stdin,
        } => {
            let password = if *password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let secret = add(
                store,
                Request {
                    user: id.clone(),
                    role: role.clone(),
                    municipality: municipality.clone(),
                    prefecture: *prefecture,
                    venue: venue.clone(),
                    password,
                },
            )?;
            println!("発行しました / issued {id} ({role})");
            if let Some(secret) = secret {
                println!("一度だけ表示します / shown once: {secret}");
            }
        }
        UserCmd::List => {
            for a in store.accounts()? {
                let bound = a
                    .binding
                    .municipality()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                let state = if a.disabled { "disabled" } else { "active" };
                println!("{}\t{}\t{}\t{}", a.id, a.binding.role(), bound, state);
            }
        }
        UserCmd::Disable { id } => {
            let Ok(id) = UserId::parse(id) else {
                bail!("ユーザIDが不正です / invalid user id");
            };
            store.disable_account(&id, &Actor::console())?;
            println!("無効にしました / disabled {id}");
        }
    }
    Ok(())
}
