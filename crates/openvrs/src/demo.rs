//! `openvrs serve` and `openvrs demo`.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Instant};

use anyhow::{Context, Result};
use openvrs_domain::{audit::Actor, ids::MunicipalityCode};
use openvrs_server::{AppState, Listeners, notify::Notifier};
use openvrs_store::Store;
use openvrs_synth::Generator;

use crate::{DemoArgs, config::DataDir, initialised};

/// Prints a line to stdout; a closed stdout (`openvrs demo | head`) must not stop the server.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Called once the listeners are bound: (LGWAN address, internet address, URL scheme).
type AfterBind<'a> = dyn Fn(SocketAddr, SocketAddr, &str) + 'a;

/// Binds both listeners, prints where they are, and serves until Ctrl-C or SIGTERM.
pub fn serve(
    dir: &DataDir,
    store: Arc<dyn Store>,
    lgwan: Option<SocketAddr>,
    internet: Option<SocketAddr>,
    after_bind: Option<&AfterBind<'_>>,
) -> Result<()> {
    let lgwan = lgwan.unwrap_or(dir.config.server.lgwan);
    let internet = internet.unwrap_or(dir.config.server.internet);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut listeners = Listeners::bind(lgwan, internet).await.with_context(|| {
            format!("{lgwan} または {internet} で待ち受けできません / cannot listen on {lgwan} or {internet}")
        })?;
        let metrics = &dir.config.server.metrics;
        if !metrics.is_empty() {
            let addr: std::net::SocketAddr = metrics.parse().with_context(|| {
                format!("[server] metrics のアドレスが不正です / [server] metrics is not an address: {metrics}")
            })?;
            listeners = listeners.with_metrics(addr).await.with_context(|| {
                format!("{addr} で待ち受けできません / cannot listen on {addr}")
            })?;
            let bound = listeners.metrics.as_ref().map(|l| l.local_addr()).transpose()?;
            if let Some(bound) = bound {
                say!("metrics  http://{bound}/metrics  Prometheus(LGWAN側) / Prometheus, LGWAN side");
            }
        }
        let (lgwan, internet) = listeners.addrs()?;
        let tls = dir.tls()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        if tls.is_none() {
            say!("注意: 暗号化されていない HTTP です / warning: plain HTTP, without TLS");
        }
        say!("LGWAN    {scheme}://{lgwan}/  職員・国・都道府県・自治体間 / staff, national, prefectures, inter-municipality");
        say!("internet {scheme}://{internet}/  接種会場・住民アプリ・検証・オープンデータ / venues, resident app, verification, open data");
        if let Some(f) = after_bind {
            f(lgwan, internet, scheme);
        }
        say!("停止するには Ctrl-C / press Ctrl-C to stop");
        let mut state = AppState::new(store);
        state.security = dir.config.security.server(tls.is_some());
        state.opendata_suppress_below = dir.config.opendata.suppress_below;
        let c = &dir.config.certificates;
        state.issuer = openvrs_service::certificate::Issuer::new(&c.issuer, &c.authority)?;
        if dir.path.join(&dir.config.cards.issuer_certificate).exists() {
            state.card_issuers = std::sync::Arc::new(crate::card::trusted_issuers(dir)?);
        } else {
            say!(
                "注意: カード発行者の証明書がないため、アプリとコンビニの申請は受け付けません / warning: no card-issuer certificate, so app and kiosk applications are refused"
            );
        }
        crate::backup::schedule(dir.clone());
        if !dir.config.notify.webhook_url.is_empty() {
            state.notifier = Some(Notifier::start(dir.config.notify.webhook_url.clone()));
        }
        openvrs_server::serve(listeners, state, tls, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

const TOWNS: [(&str, &str, u64); 2] = [("472131", "うるま市", 1), ("472018", "那覇市", 2)];

pub fn run(path: &Path, database_url: Option<&str>, args: &DemoArgs) -> Result<()> {
    if !initialised(path) {
        DataDir::init(path, database_url)?;
        say!(
            "デモ用データディレクトリを作成しました / created demo data directory {}",
            path.display()
        );
    }
    let mut dir = DataDir::load(path)?;
    if let Some(url) = database_url {
        dir.config.database.url = url.to_owned();
    }
    // The demo speaks plain HTTP so that curl and a browser work without trusting a CA, but only
    // on loopback.
    let lgwan = args.serve.lgwan.unwrap_or(dir.config.server.lgwan);
    let internet = args.serve.internet.unwrap_or(dir.config.server.internet);
    dir.config.tls.plain_http |=
        args.serve.plain_http || (lgwan.ip().is_loopback() && internet.ip().is_loopback());
    let store = dir.open_store(false)?;
    let registered = store.municipalities()?;
    // A vaccinated resident of the first town, for the certificate example.
    let first = Generator::new(MunicipalityCode::parse(TOWNS[0].0)?, TOWNS[0].2);
    let example_person = Generator::new(MunicipalityCode::parse(TOWNS[0].0)?, TOWNS[0].2)
        .take(args.residents as usize)
        .find(|p| {
            p.flags == openvrs_domain::person::Flags::default()
                && p.my_number.is_some()
                && !first.doses(p).is_empty()
        });
    let example = example_person.as_ref().map_or_else(
        || "ADDRESS".to_owned(),
        |p| p.address_number.as_str().to_owned(),
    );
    for (code, name, seed) in TOWNS {
        let code = MunicipalityCode::parse(code)?;
        if registered.iter().any(|m| m.code == code) {
            continue;
        }
        let started = Instant::now();
        store.add_municipality(code, name, &Actor::console())?;
        let generator = Generator::new(code, seed);
        let people: Vec<_> = Generator::new(code, seed)
            .take(args.residents as usize)
            .collect();
        for chunk in people.chunks(1000) {
            store.put_persons(code, chunk, &Actor::console())?;
        }
        // Their vaccination histories, so that certificates can be issued.
        let mut histories = people.iter().enumerate().filter_map(|(i, p)| {
            let doses = generator.doses(p);
            (!doses.is_empty()).then(|| {
                Ok(openvrs_store::LedgerRecord {
                    row: i as u64 + 2,
                    address: p.address_number.clone(),
                    doses: doses.into_iter().map(|d| (d, None)).collect(),
                })
            })
        });
        store.import_ledger(code, &mut histories, &Actor::console())?;
        say!(
            "{code} {name}: 住民 {} 人を登録 / {} synthetic residents loaded in {:.2}s",
            people.len(),
            people.len(),
            started.elapsed().as_secs_f64()
        );
    }
    // The certificate signing keys (SHC, a development CSCA, the VDS-NC and EU DCC signers).
    openvrs_service::certificate::init_keys(&*store, &openvrs_domain::audit::Actor::console())?;
    // A test card issuer and one resident's card (PIN 1234) for the app and the kiosk; the
    // first town issues at kiosks.
    let card = path.join(DEMO_CARD);
    if !path.join(&dir.config.cards.issuer_certificate).exists() {
        crate::card::run(&dir, &crate::card::CardCmd::IssuerInit)?;
    }
    if let (false, Some(p)) = (card.exists(), &example_person) {
        crate::card::run(
            &dir,
            &crate::card::CardCmd::New {
                my_number: p.my_number.as_ref().map(|n| n.expose()).unwrap_or_default(),
                name: p.name.as_str().to_owned(),
                birth_date: p.birth_date.0.to_string(),
                address: String::new(),
                sex: p.sex.iso5218().to_string(),
                pin: "1234".into(),
                out: card.clone(),
            },
        )?;
        store.set_kiosk(
            MunicipalityCode::parse(TOWNS[0].0)?,
            true,
            &Actor::console(),
        )?;
    }
    let accounts = demo_accounts(path, &*store)?;
    let exe = std::env::args().next().unwrap_or_else(|| "openvrs".into());
    let data = path.display();
    let next = move |lgwan: SocketAddr, internet: SocketAddr, scheme: &str| {
        say!();
        say!("デモ用アカウント / demo accounts (also in {data}/{DEMO_ACCOUNTS}):");
        for line in accounts.lines() {
            say!("  {line}");
        }
        say!();
        say!("次に試すこと / what to try next:");
        say!(
            "  職員・国・都道府県の画面 / the staff, state and prefecture pages: {scheme}://{lgwan}/ (staff-uruma, kuni, pref-okinawa)"
        );
        if let Some(token) = accounts
            .lines()
            .find(|l| l.starts_with("venue "))
            .and_then(|l| l.split_whitespace().last())
        {
            say!(
                "  接種会場タブレット / venue tablet page: {scheme}://{internet}/venue/#token={token}"
            );
        }
        say!("  curl {scheme}://{lgwan}/version");
        say!(
            "  curl -c jar -H 'content-type: application/json' -d '{{\"user\":\"staff-uruma\",\"password\":\"PASSWORD\"}}' {scheme}://{lgwan}/api/login"
        );
        say!("  curl -b jar {scheme}://{lgwan}/api/me");
        say!("  curl -H 'authorization: Bearer TOKEN' {scheme}://{internet}/api/venue/me");
        say!("  curl {scheme}://{internet}/healthz");
        say!("  証明書の検証 / verify a certificate: {scheme}://{internet}/verify/");
        say!("  curl {scheme}://{internet}/.well-known/jwks.json");
        say!(
            "  電子交付アプリ / resident app page: {scheme}://{internet}/app/ (カード / card {data}/{DEMO_CARD}, 暗証番号 / PIN 1234, 472131)"
        );
        say!(
            "  {exe} app request --server {scheme}://{internet} --card {data}/{DEMO_CARD} --pin 1234 --municipality 472131 --out mine.smart-health-card"
        );
        say!(
            "  {exe} --data-dir {data} certificate issue --municipality 472131 --address-number {example} --kind domestic --format pdf --out certificate.pdf"
        );
        say!("  {exe} --data-dir {data} certificate list --municipality 472131");
        say!("  {exe} --data-dir {data} municipality list");
        say!("  {exe} --data-dir {data} audit verify --municipality 472131");
        say!("  {exe} gen residents --municipality 472131 --count 10 --seed 7");
        say!();
    };
    serve(
        &dir,
        store,
        args.serve.lgwan,
        args.serve.internet,
        Some(&next),
    )
}

const DEMO_ACCOUNTS: &str = "demo-accounts.txt";
/// A resident's simulated My Number card (PIN 1234), made once per demo data directory.
const DEMO_CARD: &str = "demo-card.json";

/// One account of every role, made once per demo data directory; their secrets are kept in a
/// 0600 file there (a demo convenience: a real installation never stores them).
fn demo_accounts(path: &Path, store: &dyn Store) -> Result<String> {
    let file = path.join(DEMO_ACCOUNTS);
    if let Ok(text) = std::fs::read_to_string(&file) {
        return Ok(text);
    }
    let password = openvrs_crypto::credentials::new_secret()[..20].to_owned();
    let mut text = String::new();
    let account = |id: &str,
                   role: &str,
                   municipality: Option<&str>,
                   prefecture: Option<u8>,
                   venue: Option<&str>| {
        openvrs_service::accounts::Request {
            user: id.into(),
            role: role.into(),
            municipality: municipality.map(Into::into),
            prefecture,
            venue: venue.map(Into::into),
            password: matches!(role, "national" | "prefecture" | "staff").then(|| password.clone()),
        }
    };
    let specs = [
        account("kuni", "national", None, None, None),
        account("pref-okinawa", "prefecture", None, Some(47), None),
        account("staff-uruma", "staff", Some("472131"), None, None),
        account("staff-naha", "staff", Some("472018"), None, None),
        account(
            "venue-uruma",
            "venue",
            Some("472131"),
            None,
            Some("うるま市民体育館"),
        ),
        account("center", "center", None, None, None),
    ];
    for spec in specs {
        let (id, role) = (spec.user.clone(), spec.role.clone());
        let (listener, credential) = match (role.as_str(), crate::user::add(store, spec)?) {
            ("venue", Some(token)) => ("internet", format!("token {token}")),
            (_, Some(token)) => ("LGWAN", format!("token {token}")),
            _ => ("LGWAN", format!("password {password}")),
        };
        text.push_str(&format!("{role:<10} {id:<13} {listener:<8} {credential}\n"));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&file)?, text.as_bytes())?;
    Ok(text)
}
