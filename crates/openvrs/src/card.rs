//! `openvrs card ...`: a simulated My Number card for development and tests. A test card issuer
//! (key and certificate in the data directory) signs the card's face data; a card is a file that
//! gives that signed data only for its 4-digit PIN and locks after three wrong ones. The system
//! trusts card data only after checking the signature against `[cards] issuer_certificate`.
//! The card also keeps an authentication key, usable with the PIN only, that signs what the
//! holder applies for (the resident app, a kiosk).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use clap::Subcommand;
use openvrs_cert::{card, pki, shc::SigningKeyPair};
use openvrs_crypto::pin::{self, PinSealed};
use openvrs_domain::{date::parse_date, ids::MyNumber, name::Name, sex::Sex};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{config::DataDir, records::write_private};

const ISSUER_KEY: &str = "card-issuer.key";
const CARD_KIND: &str = "openvrs-simulated-my-number-card";

#[derive(Debug, Subcommand)]
pub enum CardCmd {
    /// Make a test card issuer (key and certificate) in the data directory.
    IssuerInit,
    /// Make a card: its face data signed by the test issuer, readable with the PIN only.
    New {
        #[arg(long)]
        my_number: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        birth_date: String,
        #[arg(long, default_value = "")]
        address: String,
        /// 1 (male) or 2 (female).
        #[arg(long, default_value = "1")]
        sex: String,
        /// 4 digits.
        #[arg(long)]
        pin: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Read a card with its PIN: writes the issuer-signed data (a wrong PIN counts; three lock it).
    Read {
        #[arg(long)]
        card: PathBuf,
        #[arg(long)]
        pin: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Check read card data against the configured card-issuer certificate.
    Verify {
        #[arg(long)]
        data: PathBuf,
    },
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "{} を読めません / cannot read {}",
            path.display(),
            path.display()
        )
    })
}

fn card_json(c: &PinSealed) -> Value {
    json!({
        "kind": CARD_KIND, "version": 1, "salt": B64.encode(c.salt), "nonce": B64.encode(c.nonce),
        "sealed": B64.encode(&c.sealed), "failures": c.failures,
    })
}

fn card_from_json(v: &Value) -> Option<PinSealed> {
    if v["kind"] != CARD_KIND {
        return None;
    }
    let bytes = |k: &str| B64.decode(v[k].as_str()?).ok();
    Some(PinSealed {
        salt: bytes("salt")?.try_into().ok()?,
        nonce: bytes("nonce")?.try_into().ok()?,
        sealed: bytes("sealed")?,
        failures: u32::try_from(v["failures"].as_u64()?).ok()?,
    })
}

/// Reads a card with its PIN, as the chip does: the issuer-signed data and the card's
/// authentication key. A wrong PIN counts on the card (the file); three lock it.
pub fn open_card(file: &Path, pin: &str) -> Result<(String, SigningKeyPair)> {
    let not_a_card = "カードのファイルではありません / not a card file";
    let doc: Value = serde_json::from_slice(&read(file)?)
        .ok()
        .filter(|v: &Value| v.is_object())
        .context(not_a_card)?;
    let mut sealed = card_from_json(&doc).context(not_a_card)?;
    let result = pin::open(&mut sealed, pin);
    // The failure count lives on the card, as in the chip.
    write_private(
        file,
        serde_json::to_string_pretty(&card_json(&sealed))?.as_bytes(),
    )?;
    let chip: Value = serde_json::from_slice(&result?).context(not_a_card)?;
    let signed = chip["card"].as_str().context(not_a_card)?.to_owned();
    let key = Zeroizing::new(
        B64.decode(chip["key"].as_str().context(not_a_card)?)
            .context(not_a_card)?,
    );
    Ok((signed, SigningKeyPair::from_bytes(&key)?))
}

/// The card issuer's certificates the system trusts.
pub fn trusted_issuers(dir: &DataDir) -> Result<Vec<pki::Certificate>> {
    let path = dir.path.join(&dir.config.cards.issuer_certificate);
    pki::read_certificates(&read(&path)?)?
        .iter()
        .map(|der| Ok(pki::Certificate::parse(der)?))
        .collect()
}

pub fn run(dir: &DataDir, cmd: &CardCmd) -> Result<()> {
    match cmd {
        CardCmd::IssuerInit => {
            let cert = dir.path.join(&dir.config.cards.issuer_certificate);
            let key = dir.path.join(ISSUER_KEY);
            if cert.exists() || key.exists() {
                bail!(
                    "カード発行者は作成済みです / the card issuer exists already ({})",
                    cert.display()
                );
            }
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let issuer = pki::make_csca("JP", "openvrs test card issuer", now, 3650)?;
            write_private(&key, &issuer.key.to_bytes())?;
            crate::output::bytes(&cert, issuer.pem().as_bytes())?;
            println!(
                "テスト用カード発行者を作成しました / created a test card issuer: {}",
                cert.display()
            );
        }
        CardCmd::New {
            my_number,
            name,
            birth_date,
            address,
            sex,
            pin,
            out,
        } => {
            let key = SigningKeyPair::from_bytes(&read(&dir.path.join(ISSUER_KEY)).context(
                "先に openvrs card issuer-init を実行してください / run openvrs card issuer-init first",
            )?)?;
            let cert = pki::read_certificates(&read(
                &dir.path.join(&dir.config.cards.issuer_certificate),
            )?)?;
            let issuer = pki::Issued {
                der: cert.into_iter().next().context("card issuer certificate")?,
                key,
            };
            let holder = SigningKeyPair::generate();
            let data = card::CardData {
                my_number: MyNumber::parse(my_number)?.expose(),
                name: Name::parse(name)?.as_str().to_owned(),
                address: address.clone(),
                birth_date: parse_date(birth_date)?.to_string(),
                sex: Sex::parse(sex)?.iso5218().to_string(),
                auth_key: card::auth_key(&holder),
            };
            let signed = card::sign(&data, &issuer)?;
            let chip = Zeroizing::new(serde_json::to_vec(
                &json!({ "card": signed, "key": B64.encode(holder.to_bytes()) }),
            )?);
            let sealed = pin::seal(&chip, pin)?;
            write_private(
                out,
                serde_json::to_string_pretty(&card_json(&sealed))?.as_bytes(),
            )?;
            println!("カードを作成しました / made a card: {}", out.display());
        }
        CardCmd::Read {
            card: file,
            pin,
            out,
        } => {
            let (signed, _) = open_card(file, pin)?;
            write_private(out, signed.as_bytes())?;
            println!("読み取りました / read the card: {}", out.display());
        }
        CardCmd::Verify { data } => {
            let text = String::from_utf8(read(data)?)
                .context("カードのデータではありません / not card data")?;
            card::verify(&text, &trusted_issuers(dir)?)?;
            println!("カード発行者の署名は正しい / the card issuer's signature verifies");
        }
    }
    Ok(())
}
