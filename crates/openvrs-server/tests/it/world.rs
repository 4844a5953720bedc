//! A small world for server tests: three towns, residents, one account of every kind, and a
//! clock the test moves.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use openvrs_crypto::{
    MasterKey,
    credentials::{hash_password, new_secret, secret_digest},
};
use openvrs_domain::date::{ManualClock, UnixMicros};
use openvrs_domain::{
    account::{Account, Binding, UserId},
    audit::Actor as AuditActor,
    dose::Short,
    ids::MunicipalityCode,
    person::Person,
    prefecture::Prefecture,
};
use openvrs_server::{AppState, Zone, internet_router, lgwan_router};
use openvrs_store::{Credential, Location, Session};
use tower::ServiceExt;

/// Everything every test of this binary logged, at debug level and above.
static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();

struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
    .clone()
}

/// The host the test requests are addressed to.
pub const HOST: &str = "lgwan.test";

pub const PASSWORD: &str = "correct horse battery staple";
pub const RESIDENTS: u64 = 5;

/// The kinds of caller the access matrix tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Anonymous,
    National,
    Pref47,
    Pref13,
    StaffOwn,
    StaffForeign,
    Venue,
    Center,
}

impl Actor {
    pub const ALL: [Actor; 8] = [
        Actor::Anonymous,
        Actor::National,
        Actor::Pref47,
        Actor::Pref13,
        Actor::StaffOwn,
        Actor::StaffForeign,
        Actor::Venue,
        Actor::Center,
    ];
}

/// How a request identifies itself.
#[derive(Debug, Clone)]
pub enum Who {
    Anonymous,
    /// A `Cookie` header value and the CSRF token to send with state changes.
    Raw {
        cookie: String,
        csrf: Option<String>,
    },
    Token(String),
}

pub struct World {
    pub state: AppState,
    pub uruma: MunicipalityCode,
    pub uruma_people: Vec<Person>,
    pub naha_people: Vec<Person>,
    clock: Arc<ManualClock>,
    venue_token: String,
    center_token: String,
    _dir: tempfile::TempDir,
}

fn code(s: &str) -> MunicipalityCode {
    MunicipalityCode::parse(s).unwrap()
}

impl World {
    pub async fn new() -> Self {
        capture_logs();
        let dir = tempfile::tempdir().unwrap();
        // One clock for the store, the service and the server, which the test moves.
        let clock = Arc::new(ManualClock::at(UnixMicros(1_800_000_000_000_000)));
        let store = openvrs_store::open_with_clock(
            &Location::Sqlite {
                path: dir.path().join("db.sqlite"),
                create: true,
            },
            MasterKey::generate(),
            clock.clone(),
        )
        .unwrap();
        let console = AuditActor::console();
        for (c, n) in [
            ("472131", "うるま市"),
            ("472018", "那覇市"),
            ("131016", "千代田区"),
        ] {
            store.add_municipality(code(c), n, &console).unwrap();
        }
        let uruma_people: Vec<Person> = openvrs_synth::Generator::new(code("472131"), 1)
            .take(RESIDENTS as usize)
            .collect();
        let naha_people: Vec<Person> = openvrs_synth::Generator::new(code("472018"), 1)
            .take(RESIDENTS as usize)
            .collect();
        store
            .put_persons(code("472131"), &uruma_people, &console)
            .unwrap();
        store
            .put_persons(code("472018"), &naha_people, &console)
            .unwrap();
        store
            .put_persons(
                code("131016"),
                &openvrs_synth::Generator::new(code("131016"), 1)
                    .take(2)
                    .collect::<Vec<_>>(),
                &console,
            )
            .unwrap();
        let hash = Credential::PasswordHash(hash_password(PASSWORD));
        let venue_token = new_secret();
        let center_token = new_secret();
        let accounts = [
            ("kuni", Binding::National, hash.clone()),
            (
                "pref-okinawa",
                Binding::Prefecture(Prefecture::from_number(47).unwrap()),
                hash.clone(),
            ),
            (
                "pref-tokyo",
                Binding::Prefecture(Prefecture::from_number(13).unwrap()),
                hash.clone(),
            ),
            (
                "staff-uruma",
                Binding::Municipality(code("472131")),
                hash.clone(),
            ),
            (
                "staff-naha",
                Binding::Municipality(code("472018")),
                hash.clone(),
            ),
            (
                "venue-uruma",
                Binding::Venue {
                    municipality: code("472131"),
                    venue: Short::parse("会場A").unwrap(),
                },
                Credential::TokenDigest(secret_digest(&venue_token)),
            ),
            (
                "center",
                Binding::Center,
                Credential::TokenDigest(secret_digest(&center_token)),
            ),
        ];
        for (id, binding, credential) in accounts {
            let account = Account {
                id: UserId::parse(id).unwrap(),
                binding,
                disabled: false,
            };
            store.add_account(&account, &credential, &console).unwrap();
        }
        openvrs_service::certificate::init_keys(&*store, &openvrs_domain::audit::Actor::console())
            .unwrap();
        let state = AppState::new(store);
        Self {
            state,
            uruma: code("472131"),
            uruma_people,
            naha_people,
            clock,
            venue_token,
            center_token,
            _dir: dir,
        }
    }

    pub fn advance_minutes(&self, minutes: i64) {
        self.clock.advance_micros(minutes * 60_000_000);
    }

    /// A fresh signed-in session of `user`, made directly in the store.
    pub fn session_of(&self, user: &str) -> Who {
        let secret = new_secret();
        let csrf = new_secret();
        let now = self.state.now();
        self.state
            .store
            .create_session(
                &secret_digest(&secret),
                &Session {
                    user: UserId::parse(user).unwrap(),
                    csrf_token: csrf.clone(),
                    created_at: now,
                    last_seen: now,
                },
            )
            .unwrap();
        Who::Raw {
            cookie: format!("openvrs_session={secret}"),
            csrf: Some(csrf),
        }
    }

    pub fn who(&self, actor: Actor) -> Who {
        match actor {
            Actor::Anonymous => Who::Anonymous,
            Actor::National => self.session_of("kuni"),
            Actor::Pref47 => self.session_of("pref-okinawa"),
            Actor::Pref13 => self.session_of("pref-tokyo"),
            Actor::StaffOwn => self.session_of("staff-uruma"),
            Actor::StaffForeign => self.session_of("staff-naha"),
            Actor::Venue => Who::Token(self.venue_token.clone()),
            Actor::Center => Who::Token(self.center_token.clone()),
        }
    }

    pub async fn call(
        &self,
        zone: Zone,
        method: &str,
        path: &str,
        who: Who,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        let (status, text, _) = self.call_full(zone, method, path, who, body).await;
        (status, text)
    }

    /// Status, body and `Set-Cookie` of one request through the zone's router.
    pub async fn call_full(
        &self,
        zone: Zone,
        method: &str,
        path: &str,
        who: Who,
        body: Option<&str>,
    ) -> (StatusCode, String, Option<String>) {
        let (status, bytes, cookie) = self.call_bytes(zone, method, path, who, body).await;
        (status, String::from_utf8_lossy(&bytes).into_owned(), cookie)
    }

    /// The same, the body as the bytes sent (a Shift_JIS download, say).
    pub async fn call_bytes(
        &self,
        zone: Zone,
        method: &str,
        path: &str,
        who: Who,
        body: Option<&str>,
    ) -> (StatusCode, Vec<u8>, Option<String>) {
        let (status, headers, bytes) = self.call_raw(zone, method, path, who, body, &[]).await;
        let cookie = headers
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        (status, bytes, cookie)
    }

    /// One request with extra headers; the status, headers and body of the answer. A page's
    /// form is sent as a browser sends it: with the `Origin` of the page it came from (this
    /// host), unless `extra` names another.
    pub async fn call_raw(
        &self,
        zone: Zone,
        method: &str,
        path: &str,
        who: Who,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST);
        match &who {
            Who::Anonymous => {}
            Who::Raw { cookie, csrf } => {
                req = req.header(header::COOKIE, cookie);
                if let Some(csrf) = csrf {
                    req = req.header("x-csrf-token", csrf);
                }
            }
            Who::Token(t) => req = req.header(header::AUTHORIZATION, format!("Bearer {t}")),
        }
        if let Some(b) = body {
            // A page's form, or JSON (CSV uploads are read whatever the type says).
            let form = !b.starts_with('{') && !b.contains('\n') && b.contains('=');
            let kind = if form {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            };
            req = req.header(header::CONTENT_TYPE, kind);
        }
        // A page's form comes from our own page, and a browser says so (the API proves itself
        // with its token instead).
        let page_form = zone == Zone::Lgwan && !path.starts_with("/api/") && method != "GET";
        if page_form && !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("origin")) {
            req = req.header(header::ORIGIN, format!("http://{HOST}"));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        let router = match zone {
            Zone::Lgwan => lgwan_router(self.state.clone()),
            Zone::Internet => internet_router(self.state.clone()),
        };
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap()
            .to_vec();
        if zone == Zone::Internet {
            self.assert_no_personal_data(&String::from_utf8_lossy(&bytes));
        }
        (status, headers, bytes)
    }

    /// Every internet response passes through here: no seeded My Number, name or birth date.
    pub fn assert_no_personal_data(&self, text: &str) {
        self.assert_absent(text, "the internet listener");
    }

    /// No seeded My Number, name, kana name or birth date appears in `text`.
    fn assert_absent(&self, text: &str, place: &str) {
        for p in self.uruma_people.iter().chain(&self.naha_people) {
            let values = [
                ("a My Number", p.my_number.as_ref().map(|n| n.expose())),
                ("a name", Some(p.name.as_str().to_owned())),
                ("a kana name", Some(p.name_kana.as_str().to_owned())),
                ("a birth date", Some(p.birth_date.0.to_string())),
            ];
            for (what, value) in values {
                if let Some(v) = value {
                    assert!(!text.contains(&v), "{what} in {place}");
                }
            }
        }
    }

    pub async fn login(&self, user: &str, password: &str) -> (StatusCode, String, Option<String>) {
        let body = serde_json::json!({ "user": user, "password": password }).to_string();
        self.call_full(
            Zone::Lgwan,
            "POST",
            "/api/login",
            Who::Anonymous,
            Some(&body),
        )
        .await
    }
}

impl Drop for World {
    /// The logs of every test so far hold no personal data of the (identical) seeded residents.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let logs = String::from_utf8_lossy(&capture_logs().lock().unwrap()).into_owned();
        assert!(
            logs.contains("route="),
            "requests are logged with their route template"
        );
        self.assert_absent(&logs, "the logs");
    }
}
