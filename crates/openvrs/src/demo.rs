//! `openvrs serve` and `openvrs demo`.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Instant};

use anyhow::{Context, Result};
use openvrs_domain::{audit::Actor, ids::MunicipalityCode};
use openvrs_server::{AppState, Listeners};
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

/// Binds both listeners, prints where they are, and serves until Ctrl-C or SIGTERM.
pub fn serve(
    dir: &DataDir,
    store: Arc<dyn Store>,
    lgwan: Option<SocketAddr>,
    internet: Option<SocketAddr>,
    after_bind: Option<&dyn Fn(SocketAddr, SocketAddr)>,
) -> Result<()> {
    let lgwan = lgwan.unwrap_or(dir.config.server.lgwan);
    let internet = internet.unwrap_or(dir.config.server.internet);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listeners = Listeners::bind(lgwan, internet).await.with_context(|| {
            format!("{lgwan} または {internet} で待ち受けできません / cannot listen on {lgwan} or {internet}")
        })?;
        let (lgwan, internet) = listeners.addrs()?;
        say!("LGWAN    http://{lgwan}/  職員・国・都道府県・自治体間 / staff, national, prefectures, inter-municipality");
        say!("internet http://{internet}/  接種会場・住民アプリ・検証・オープンデータ / venues, resident app, verification, open data");
        if let Some(f) = after_bind {
            f(lgwan, internet);
        }
        say!("停止するには Ctrl-C / press Ctrl-C to stop");
        openvrs_server::serve(listeners, AppState { store }, shutdown_signal()).await?;
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
    let store = dir.open_store(false)?;
    let registered = store.municipalities()?;
    for (code, name, seed) in TOWNS {
        let code = MunicipalityCode::parse(code)?;
        if registered.iter().any(|m| m.code == code) {
            continue;
        }
        let started = Instant::now();
        store.add_municipality(code, name, &Actor::console())?;
        let people: Vec<_> = Generator::new(code, seed)
            .take(args.residents as usize)
            .collect();
        for chunk in people.chunks(1000) {
            store.put_persons(code, chunk, &Actor::console())?;
        }
        say!(
            "{code} {name}: 住民 {} 人を登録 / {} synthetic residents loaded in {:.2}s",
            people.len(),
            people.len(),
            started.elapsed().as_secs_f64()
        );
    }
    let exe = std::env::args().next().unwrap_or_else(|| "openvrs".into());
    let data = path.display();
    let next = move |lgwan: SocketAddr, internet: SocketAddr| {
        say!();
        say!("次に試すこと / what to try next:");
        say!("  curl http://{lgwan}/version");
        say!("  curl http://{internet}/healthz");
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
