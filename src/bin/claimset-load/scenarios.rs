//! The scenarios' workers and the setup they need (users, tokens).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use claimset::dataset::{GENERATED_PASSWORD, generated_email, generated_user_id};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, LOCATION};
use serde_json::Value;

use crate::driver::{Failure, Stop, Worker};
use crate::http::{self, Tenant};

/// The password of every user the tool makes (meets the `fair` policy);
/// the same as generated users', so logins cost the same either way.
pub const PASSWORD: &str = GENERATED_PASSWORD;

/// A tiny deterministic generator (splitmix64) so workers pick users
/// without a random-number dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn seeded(worker: usize) -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_nanos() as u64)
            .unwrap_or(0);
        Rng(nanos ^ (worker as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// A user the tool can log in as.
#[derive(Debug, Clone)]
pub struct KnownUser {
    pub email: String,
    pub user_id: String,
}

/// Where the users come from: `claimset users generate` (addressed by
/// index) or the tool's own setup signups.
#[derive(Debug, Clone)]
pub enum Users {
    Generated(u64),
    Pool(Arc<Vec<KnownUser>>),
}

impl Users {
    pub fn len(&self) -> u64 {
        match self {
            Users::Generated(count) => *count,
            Users::Pool(users) => users.len() as u64,
        }
    }

    pub fn get(&self, index: u64) -> KnownUser {
        match self {
            Users::Generated(count) => {
                let index = index % (*count).max(1);
                KnownUser {
                    email: generated_email(index),
                    user_id: generated_user_id(index),
                }
            }
            Users::Pool(users) => {
                let len = users.len().max(1);
                users
                    .get(index as usize % len)
                    .cloned()
                    .unwrap_or_else(|| KnownUser {
                        email: String::new(),
                        user_id: String::new(),
                    })
            }
        }
    }

    pub fn random(&self, rng: &mut Rng) -> KnownUser {
        self.get(rng.below(self.len()))
    }
}

/// Runs `count` jobs with at most `concurrency` in flight; stops at the
/// first failure (or on Ctrl-C) and returns the results in job order.
pub async fn run_jobs<T, F, Fut>(
    count: usize,
    concurrency: usize,
    stop: &Stop,
    label: &str,
    job: F,
) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, Failure>> + Send + 'static,
{
    let started = Instant::now();
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    let mut done = 0;
    let mut last_report = Instant::now();
    while done < count {
        while next < count && tasks.len() < concurrency.max(1) {
            let future = job(next);
            let index = next;
            tasks.spawn(async move { (index, future.await) });
            next += 1;
        }
        let joined = tokio::select! {
            joined = tasks.join_next() => joined,
            () = stop.wait() => return Err(format!("{label}: interrupted")),
        };
        let Some(joined) = joined else { break };
        let (index, result) = joined.map_err(|err| format!("{label}: task failed: {err}"))?;
        let value = result.map_err(|failure| format!("{label}: {failure}"))?;
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(value);
        }
        done += 1;
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "  {label}: {done}/{count} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    results
        .into_iter()
        .collect::<Option<Vec<T>>>()
        .ok_or_else(|| format!("{label}: some jobs did not finish"))
}

/// A unique prefix for this run's emails, so runs never collide.
pub fn run_tag() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis())
        .unwrap_or(0);
    format!("{millis:x}{:x}", std::process::id())
}

/// Names for the tool's own users: about one in four starts with "jo", so
/// the search scenario finds something without a generated data set.
const NAMES: &[&str] = &[
    "John Smith",
    "Mary Jones",
    "Joanna Brown",
    "Peter Miller",
    "Jose Garcia",
    "Linda Davis",
    "Ann Wilson",
    "Jonathan Moore",
];

/// Signs up `count` users (`pool-<tag>-<i>@load.claimset.test`).
pub async fn make_pool(
    tenant: &Arc<Tenant>,
    client: &reqwest::Client,
    count: usize,
    concurrency: usize,
    stop: &Stop,
) -> Result<Vec<KnownUser>, String> {
    let tag = run_tag();
    run_jobs(count, concurrency, stop, "setup signups", |index| {
        let tenant = tenant.clone();
        let client = client.clone();
        let email = format!("pool-{tag}-{index}@load.claimset.test");
        let name = NAMES.get(index % NAMES.len()).copied().unwrap_or("Jo");
        let name = format!("{name} {index}");
        async move {
            let user_id = http::signup(&client, &tenant, &email, PASSWORD, Some(&name)).await?;
            Ok(KnownUser { email, user_id })
        }
    })
    .await
}

/// Logs in `count` distinct users of `users` (spread over the whole range);
/// returns each token response.
pub async fn log_in_many(
    tenant: &Arc<Tenant>,
    client: &reqwest::Client,
    users: &Users,
    count: usize,
    concurrency: usize,
    stop: &Stop,
    label: &str,
) -> Result<Vec<Value>, String> {
    let total = users.len().max(1);
    let stride = (total / count.max(1) as u64).max(1);
    run_jobs(count, concurrency, stop, label, |index| {
        let tenant = tenant.clone();
        let client = client.clone();
        let user = users.get(index as u64 * stride);
        async move { http::password_login(&client, &tenant, &user.email, PASSWORD).await }
    })
    .await
}

// ---------------------------------------------------------------------------
// Workers.
// ---------------------------------------------------------------------------

/// `GET` of a fixed URL (discovery, JWKS, the trivial handler, search),
/// optionally with a bearer token.
pub struct FixedGet {
    pub client: reqwest::Client,
    pub url: String,
    pub bearer: Option<String>,
    pub what: &'static str,
}

impl Worker for FixedGet {
    async fn step(&mut self) -> Result<(), Failure> {
        let mut request = self.client.get(&self.url);
        if let Some(token) = &self.bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = http::send_expect(request, StatusCode::OK, self.what).await?;
        http::drain(response, self.what).await.map(drop)
    }
}

/// `POST /dbconnections/signup` with a new email each time.
pub struct Signup {
    pub client: reqwest::Client,
    pub tenant: Arc<Tenant>,
    pub prefix: String,
    pub counter: Arc<AtomicU64>,
}

impl Worker for Signup {
    async fn step(&mut self) -> Result<(), Failure> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let email = format!("{}-{n}@load.claimset.test", self.prefix);
        http::signup(&self.client, &self.tenant, &email, PASSWORD, None)
            .await
            .map(drop)
    }
}

/// The password-realm grant for a random user.
pub struct Login {
    pub client: reqwest::Client,
    pub tenant: Arc<Tenant>,
    pub users: Users,
    pub rng: Rng,
}

impl Worker for Login {
    async fn step(&mut self) -> Result<(), Failure> {
        let user = self.users.random(&mut self.rng);
        let body = http::password_login(&self.client, &self.tenant, &user.email, PASSWORD).await?;
        http::member(&body, "access_token", "token").map(drop)
    }
}

/// One refresh-token chain: each refresh uses the newest token.
pub struct Refresh {
    pub client: reqwest::Client,
    pub tenant: Arc<Tenant>,
    pub token: String,
}

impl Worker for Refresh {
    async fn step(&mut self) -> Result<(), Failure> {
        let body = http::refresh(&self.client, &self.tenant, &self.token).await?;
        self.token = http::member(&body, "refresh_token", "refresh")?;
        Ok(())
    }
}

/// `GET /userinfo` with the access tokens of many users, round-robin over
/// all workers.
pub struct Userinfo {
    pub client: reqwest::Client,
    pub url: String,
    pub tokens: Arc<Vec<String>>,
    pub next: Arc<AtomicUsize>,
}

impl Worker for Userinfo {
    async fn step(&mut self) -> Result<(), Failure> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.tokens.len().max(1);
        let token = self.tokens.get(index).map(String::as_str).unwrap_or("");
        let request = self
            .client
            .get(&self.url)
            .header(AUTHORIZATION, format!("Bearer {token}"));
        let response = http::send_expect(request, StatusCode::OK, "userinfo").await?;
        http::drain(response, "userinfo").await.map(drop)
    }
}

/// Which Management API read a [`Management`] worker makes.
#[derive(Debug, Clone, Copy)]
pub enum ManagementRead {
    UserById,
    UserByEmail,
}

/// A Management API read of a random user.
pub struct Management {
    pub client: reqwest::Client,
    pub tenant: Arc<Tenant>,
    pub token: String,
    pub users: Users,
    pub rng: Rng,
    pub read: ManagementRead,
}

impl Worker for Management {
    async fn step(&mut self) -> Result<(), Failure> {
        let user = self.users.random(&mut self.rng);
        let (url, what) = match self.read {
            ManagementRead::UserById => (
                self.tenant
                    .url(&format!("/api/v2/users/{}", http::encode(&user.user_id))),
                "mgmt-get",
            ),
            ManagementRead::UserByEmail => (
                self.tenant.url(&format!(
                    "/api/v2/users-by-email?email={}",
                    http::encode(&user.email)
                )),
                "users-by-email",
            ),
        };
        let request = self
            .client
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token));
        let response = http::send_expect(request, StatusCode::OK, what).await?;
        match self.read {
            ManagementRead::UserById => http::drain(response, what).await.map(drop),
            ManagementRead::UserByEmail => {
                let body = http::json_body(response, what).await?;
                match body.as_array().map(Vec::len) {
                    Some(1) => Ok(()),
                    _ => Err(Failure::new(
                        format!("{what}: not exactly one user"),
                        format!("{} → {}", user.email, http::snippet(&body.to_string(), 200)),
                    )),
                }
            }
        }
    }
}

/// The whole browser flow: `/authorize` → login page → form POST → 302
/// with a code → code exchange with the PKCE verifier. Each flow starts
/// without cookies (a new browser), so each one checks a password.
pub struct Authcode {
    pub client: reqwest::Client,
    pub tenant: Arc<Tenant>,
    pub users: Users,
    pub rng: Rng,
}

impl Worker for Authcode {
    async fn step(&mut self) -> Result<(), Failure> {
        let tenant = &self.tenant;
        let user = self.users.random(&mut self.rng);
        let verifier = http::random_b64(32)?;
        let state = http::random_b64(12)?;
        let challenge = http::pkce_challenge(&verifier);
        let request = self.client.get(tenant.url("/authorize")).query(&[
            ("response_type", "code"),
            ("client_id", tenant.spa_client_id.as_str()),
            ("redirect_uri", tenant.redirect_uri.as_str()),
            ("scope", "openid"),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let page = http::send_expect(request, StatusCode::OK, "authorize").await?;
        let cookies = http::cookie_header(page.headers());
        let html = page
            .text()
            .await
            .map_err(|err| http::transport("authorize", &err))?;
        let form = (|| {
            Some((
                http::form_action(&html)?,
                http::input_value(&html, "tx")?,
                http::input_value(&html, "csrf")?,
            ))
        })();
        let Some((action, tx, csrf)) = form else {
            return Err(Failure::new(
                "authorize: no login form",
                http::snippet(&html, 300),
            ));
        };
        let action = if action.starts_with('/') {
            tenant.url(&action)
        } else {
            action
        };
        let mut request = self.client.post(action).form(&[
            ("tx", tx.as_str()),
            ("csrf", csrf.as_str()),
            ("username", user.email.as_str()),
            ("password", PASSWORD),
        ]);
        if !cookies.is_empty() {
            request = request.header(COOKIE, cookies);
        }
        let answer = http::send_expect(request, StatusCode::FOUND, "login form").await?;
        let location = answer
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| url::Url::parse(value).ok());
        http::drain(answer, "login form").await?;
        let Some(location) = location else {
            return Err(Failure::new(
                "login form: no usable Location",
                "the 302 has no absolute Location",
            ));
        };
        let mut code = None;
        let mut returned_state = None;
        for (name, value) in location.query_pairs() {
            match name.as_ref() {
                "code" => code = Some(value.into_owned()),
                "state" => returned_state = Some(value.into_owned()),
                _ => {}
            }
        }
        let Some(code) = code else {
            return Err(Failure::new("login form: no code", location.to_string()));
        };
        if returned_state.as_deref() != Some(state.as_str()) {
            return Err(Failure::new(
                "login form: state mismatch",
                location.to_string(),
            ));
        }
        let request = self.client.post(tenant.url("/oauth/token")).form(&[
            ("grant_type", "authorization_code"),
            ("client_id", tenant.spa_client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", tenant.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ]);
        let response = http::send_expect(request, StatusCode::OK, "code exchange").await?;
        let body = http::json_body(response, "code exchange").await?;
        http::member(&body, "access_token", "code exchange").map(drop)
    }
}
