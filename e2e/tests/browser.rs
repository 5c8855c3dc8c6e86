//! The end-to-end test: the whole stack in one process and the web client driven in a real,
//! headless Chromium.
//!
//! In this test's tokio runtime, on port 0 with state of their own: an embedded CQL engine (own
//! keyspace), the user service (own PostgreSQL database, own signing key), the player (its job
//! worker on, so uploads are transcoded with ffmpeg; media in a temporary directory), the reviews
//! service (own database) — each with its own Redis key prefix — and the proxy in front of the
//! three, serving `web/`. `chromedriver` runs on a free port and drives Chromium through the proxy:
//! sign up → upload a generated MP3 → wait until it is processed → play it (the `<audio>` clock
//! advances) → seek by clicking the waveform at 75 % → like → review → sign out. Screenshots of
//! the upload, song, user and home pages go to `target/e2e-screenshots/` (and `failure.png` when
//! a step fails).
//!
//! Needs what the services' own tests need (PostgreSQL, Redis, ffmpeg) and Debian's `chromium`
//! and `chromium-driver` (`$CHROMIUM` / `$CHROMEDRIVER` override `/usr/bin/chromium` and
//! `/usr/bin/chromedriver`). Missing, the test fails saying so: it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use anyhow::{Context as _, anyhow, bail, ensure};
use cql_engine::RunningEngine;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use shared::test_support::{TestDatabase, redis_prefix};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const APT_PACKAGES: &str = "apt-get install -y chromium chromium-driver";
/// The whole browser part (chromedriver up to sign-out) must finish within this.
const FLOW_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an ordinary UI step (an element appearing, a count changing) may take.
const STEP: Duration = Duration::from_secs(10);
/// Upload, probe and ffmpeg transcode of the 20 s file.
const PROCESSING: Duration = Duration::from_secs(60);
const SONG_SECONDS: f64 = 20.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_signs_up_uploads_plays_seeks_likes_reviews_and_signs_out() {
    let started = Instant::now();
    let chromium = binary("CHROMIUM", "/usr/bin/chromium", "chromium");
    let chromedriver = binary("CHROMEDRIVER", "/usr/bin/chromedriver", "chromium-driver");

    let shots = workspace_root().join("target").join("e2e-screenshots");
    std::fs::create_dir_all(&shots).expect("create target/e2e-screenshots");
    let _ = std::fs::remove_file(shots.join("failure.png"));
    let audio_dir = tempfile::tempdir().unwrap();
    let mp3 = make_mp3(audio_dir.path()).await;

    let stack = Stack::start().await;
    let driver = ChromeDriver::start(&chromedriver);

    let outcome = tokio::time::timeout(FLOW_TIMEOUT, async {
        let browser = connect(&driver, &chromium).await?;
        let result = flow(&browser, &stack.url, &mp3, &shots).await;
        if let Err(e) = &result {
            report_failure(&browser, &shots, e).await;
        }
        // Closing the session quits Chromium; chromedriver itself is killed by its guard.
        let _ = tokio::time::timeout(Duration::from_secs(10), browser.close()).await;
        result
    })
    .await;

    drop(driver);
    stack.shut_down().await;
    match outcome {
        Ok(Ok(())) => eprintln!(
            "e2e passed in {:.1} s; screenshots in {}",
            started.elapsed().as_secs_f64(),
            shots.display()
        ),
        Ok(Err(e)) => panic!("the end-to-end flow failed: {e:#}"),
        Err(_) => panic!("the end-to-end flow did not finish within {FLOW_TIMEOUT:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The flow

async fn flow(c: &Client, base: &str, mp3: &Path, shots: &Path) -> anyhow::Result<()> {
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let username = format!("e2e_{tag}");

    // Sign up: the client signs in right after and lands on "/".
    c.goto(&format!("{base}/signup")).await?;
    fill(c, "signup-display-name", &format!("E2E Listener {tag}")).await?;
    fill(c, "signup-username", &username).await?;
    fill(c, "signup-email", &format!("{username}@example.com")).await?;
    fill(c, "signup-password", "correct-horse-battery-staple").await?;
    click(c, "signup-submit").await?;
    find(c, "user-menu")
        .await
        .context("signed in after sign-up")?;
    wait_for_path(c, "/").await?;

    // Upload through the header's link, then wait for processing (uploading → processing → ready).
    click_css(c, ".mainnav a[data-nav=upload]").await?;
    let input = find(c, "upload-input").await?;
    input
        .send_keys(&mp3.display().to_string())
        .await
        .context("set the file on upload-input")?;
    let status = css("upload-status");
    eventually("the upload to be processed", PROCESSING, || async {
        let el = c.find(Locator::Css(&status)).await?;
        match el.attr("data-status").await?.as_deref() {
            Some("ready") => Ok(Some(())),
            Some("error") => bail!("the upload failed: {}", el.text().await?),
            _ => Ok(None),
        }
    })
    .await?;
    screenshot(c, shots, "upload").await?;

    // The song page.
    click(c, "upload-song-link").await?;
    let song_path = eventually("the song page", STEP, || async {
        let path = c.current_url().await?.path().to_owned();
        Ok(path.starts_with("/song/").then_some(path))
    })
    .await?;
    let title = text(c, "song-title").await?;
    ensure!(title.starts_with("e2e-tone-"), "song title {title:?}");
    find_css(c, ".waveform.has-data")
        .await
        .context("the waveform is drawn from waveform.json")?;

    // Play: the <audio> clock advances.
    click(c, "song-play").await?;
    let t = eventually("currentTime to advance past 1 s", STEP, || async {
        let a = audio(c).await?;
        Ok((a.time >= 1.0 && !a.paused).then_some(a.time))
    })
    .await?;
    eventually("currentTime to keep advancing", STEP, || async {
        Ok((audio(c).await?.time > t + 0.5).then_some(()))
    })
    .await?;
    let elapsed = text(c, "elapsed").await?;
    ensure!(elapsed != "0:00", "the elapsed time shows {elapsed:?}");

    // Seek: a click on the waveform at 75 % of its width.
    let before = audio(c).await?;
    ensure!(
        (before.duration - SONG_SECONDS).abs() < 1.0,
        "the stream is {} s long, expected ~{SONG_SECONDS} s",
        before.duration
    );
    let wave = find(c, "waveform").await?;
    scroll_to(c, &wave).await?;
    let (_, _, width, _) = wave.rectangle().await?;
    ensure!(width > 100.0, "the waveform is {width} px wide");
    // Pointer offsets are from the element's centre.
    c.perform_actions(
        MouseActions::new("mouse".to_owned())
            .then(PointerAction::MoveToElement {
                element: wave.clone(),
                duration: None,
                x: (0.75 - 0.5) * width,
                y: 0.0,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            }),
    )
    .await?;
    let target = 0.75 * before.duration;
    let after = eventually("currentTime to jump to ~75 %", STEP, || async {
        let a = audio(c).await?;
        Ok((a.time >= target - 0.75 && a.time <= target + 2.5).then_some(a))
    })
    .await
    .with_context(|| format!("was at {:.2} s of {:.2} s", before.time, before.duration))?;
    ensure!(!after.paused, "playback stopped after the seek");

    // Like: pressed, and the count goes up by one.
    let likes: u64 = text(c, "like-count").await?.trim().parse()?;
    click(c, "like-button").await?;
    let like = css("like-button");
    eventually("the like to register", STEP, || async {
        let pressed = c
            .find(Locator::Css(&like))
            .await?
            .attr("aria-pressed")
            .await?;
        let count = text_now(c, "like-count").await?;
        Ok((pressed.as_deref() == Some("true") && count == (likes + 1).to_string()).then_some(()))
    })
    .await?;

    // Review: 4 stars, recommended; the summary shows it.
    wait_text(c, "review-total", "0").await?;
    click(c, "write-review").await?;
    find(c, "review-form").await?;
    click(c, "review-rating-4").await?;
    click(c, "review-recommend-yes").await?;
    // Characteristics exist only for songs that have them (not a fresh upload); rate any "3".
    for group in c
        .find_all(Locator::Css(
            "[data-testid=review-characteristics] fieldset",
        ))
        .await?
    {
        let option = group.find(Locator::Css("label[data-testid$='-3']")).await?;
        scroll_to(c, &option).await?;
        option.click().await?;
    }
    fill(c, "review-summary-input", "A clean, steady tone").await?;
    fill(
        c,
        "review-body-input",
        "Twenty seconds of a pure 440 Hz sine: a perfect A, great for tuning a guitar before a gig.",
    )
    .await?;
    let email = css("review-email-input");
    eventually("the email to be prefilled", STEP, || async {
        let v = c.find(Locator::Css(&email)).await?.prop("value").await?;
        Ok(v.filter(|v| v.contains('@')))
    })
    .await?;
    click(c, "review-submit").await?;
    wait_text(c, "review-total", "1").await?;
    wait_text(c, "review-average", "4.0").await?;
    let items = c.find_all(Locator::Css(&css("review-item"))).await?.len();
    ensure!(items == 1, "{items} review items listed");
    let section = find(c, "reviews").await?;
    scroll_to(c, &section).await?;
    screenshot(c, shots, "song-reviews").await?;
    scroll_top(c).await?;
    screenshot(c, shots, "song").await?;

    // The user page, through the account menu; the uploaded track is listed.
    click(c, "user-menu").await?;
    click(c, "menu-profile").await?;
    wait_for_path(c, &format!("/user/{username}")).await?;
    find(c, "profile-name").await?;
    let song_id = song_path.trim_start_matches("/song/").to_owned();
    let card = format!("[data-testid=user-tracks] [data-song-id=\"{song_id}\"]");
    find_css(c, &card)
        .await
        .context("the track on the user page")?;
    screenshot(c, shots, "user").await?;

    // The home page lists it too.
    click_css(c, "a.brand").await?;
    wait_for_path(c, "/").await?;
    find_css(
        c,
        &format!("[data-testid=song-card][data-song-id=\"{song_id}\"]"),
    )
    .await
    .context("the track on the home page")?;
    screenshot(c, shots, "home").await?;

    // Sign out: the signed-out header.
    click(c, "user-menu").await?;
    click(c, "signout").await?;
    find(c, "nav-signin").await?;
    find(c, "nav-signup").await?;
    ensure!(
        c.find_all(Locator::Css(&css("user-menu")))
            .await?
            .is_empty(),
        "the account menu is still shown after signing out"
    );
    Ok(())
}

/// The `<audio>` element's clock.
#[derive(Debug, Clone, Copy)]
struct AudioClock {
    time: f64,
    duration: f64,
    paused: bool,
}

async fn audio(c: &Client) -> anyhow::Result<AudioClock> {
    let v = c
        .execute(
            "const a = document.getElementById('audio');
             return [a.currentTime, Number.isFinite(a.duration) ? a.duration : 0, a.paused];",
            vec![],
        )
        .await?;
    let clock = (|| {
        Some(AudioClock {
            time: v.get(0)?.as_f64()?,
            duration: v.get(1)?.as_f64()?,
            paused: v.get(2)?.as_bool()?,
        })
    })();
    clock.ok_or_else(|| anyhow!("unexpected audio state {v}"))
}

// ---------------------------------------------------------------------------------------------
// Browser helpers: every lookup waits (polling) instead of sleeping.

fn css(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}

/// Polls `probe` every 100 ms until it yields a value, failing after `within` with the last
/// error (a stale or missing element is just "not yet").
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    let mut last = None;
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = Some(e),
        }
        if Instant::now() >= deadline {
            let why = last.map_or_else(|| "still not so".to_owned(), |e| format!("{e:#}"));
            bail!("timed out after {within:?} waiting for {what}: {why}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn find_css(c: &Client, selector: &str) -> anyhow::Result<Element> {
    eventually(selector, STEP, || async {
        Ok(Some(c.find(Locator::Css(selector)).await?))
    })
    .await
}

async fn find(c: &Client, testid: &str) -> anyhow::Result<Element> {
    find_css(c, &css(testid)).await
}

/// Scrolls the page (only the page: `scrollIntoView` would also scroll `overflow: hidden` boxes,
/// which no user can) so the element is in the middle of the viewport, where neither the sticky
/// header nor the player bar covers it.
async fn scroll_to(c: &Client, el: &Element) -> anyhow::Result<()> {
    c.execute(
        "const r = arguments[0].getBoundingClientRect();
         window.scrollBy({top: r.top + r.height / 2 - innerHeight / 2, behavior: 'instant'});",
        vec![serde_json::to_value(el)?],
    )
    .await?;
    Ok(())
}

async fn scroll_top(c: &Client) -> anyhow::Result<()> {
    c.execute("window.scrollTo({top: 0, behavior: 'instant'});", vec![])
        .await?;
    Ok(())
}

/// Clicks the element once it is there, visible and enabled (retrying while, say, a toast or a
/// re-render is in the way).
async fn click_css(c: &Client, selector: &str) -> anyhow::Result<()> {
    eventually(&format!("{selector} to be clickable"), STEP, || async {
        let el = c.find(Locator::Css(selector)).await?;
        if !el.is_displayed().await? || !el.is_enabled().await? {
            return Ok(None);
        }
        scroll_to(c, &el).await?;
        el.click().await?;
        Ok(Some(()))
    })
    .await
}

async fn click(c: &Client, testid: &str) -> anyhow::Result<()> {
    click_css(c, &css(testid)).await
}

async fn fill(c: &Client, testid: &str, value: &str) -> anyhow::Result<()> {
    let el = find(c, testid).await?;
    scroll_to(c, &el).await?;
    el.clear().await?;
    el.send_keys(value)
        .await
        .with_context(|| format!("type into {testid}"))?;
    Ok(())
}

async fn text_now(c: &Client, testid: &str) -> anyhow::Result<String> {
    Ok(c.find(Locator::Css(&css(testid))).await?.text().await?)
}

/// The element's rendered text, once it has some (a page fades in: until then it reads "").
async fn text(c: &Client, testid: &str) -> anyhow::Result<String> {
    eventually(&format!("{testid} to show text"), STEP, || async {
        let t = text_now(c, testid).await?;
        Ok((!t.trim().is_empty()).then_some(t))
    })
    .await
}

async fn wait_text(c: &Client, testid: &str, expected: &str) -> anyhow::Result<()> {
    eventually(&format!("{testid} to read {expected:?}"), STEP, || async {
        Ok((text_now(c, testid).await?.trim() == expected).then_some(()))
    })
    .await
}

async fn wait_for_path(c: &Client, path: &str) -> anyhow::Result<()> {
    eventually(&format!("the page {path}"), STEP, || async {
        Ok((c.current_url().await?.path() == path).then_some(()))
    })
    .await
}

async fn screenshot(c: &Client, dir: &Path, name: &str) -> anyhow::Result<()> {
    // Let the page's fade-in (and any other finite animation) end and a frame be drawn, so the
    // picture shows the page as it settles, not half transparent. Looping animations (spinners,
    // the hero's equaliser) are left alone; 2 s at most.
    c.execute(
        "const done = document.getAnimations()
           .filter((a) => a.effect && a.effect.getComputedTiming().endTime !== Infinity)
           .map((a) => a.finished.catch(() => null));
         await Promise.race([Promise.all(done), new Promise((r) => setTimeout(r, 2000))]);
         await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
         return true;",
        vec![],
    )
    .await?;
    let png = c.screenshot().await?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// On a failure: a screenshot and what the page said, to see why without re-running.
async fn report_failure(c: &Client, shots: &Path, error: &anyhow::Error) {
    let _ = screenshot(c, shots, "failure").await;
    let url = c
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let page = c
        .execute(
            "return document.body ? document.body.innerText.slice(0, 2000) : ''",
            vec![],
        )
        .await
        .unwrap_or(Value::Null);
    eprintln!(
        "e2e failed at {url}: {error:#}\nscreenshot: {}\npage text:\n{}",
        shots.join("failure.png").display(),
        page.as_str().unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------------------------
// Chromium and chromedriver

/// `$VAR` or the Debian path; missing, the test fails naming the packages.
fn binary(var: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "the end-to-end test needs {} (package `{package}`; set ${var} to use another path). \
         Install Chromium and its WebDriver with: {APT_PACKAGES}",
        path.display()
    );
    path
}

/// A running chromedriver, killed (with the browser it started) on drop.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start(bin: &Path) -> Self {
        let port = free_port();
        let mut command = Command::new(bin);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // A process group of its own, so the guard can end Chromium along with chromedriver.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e} ({APT_PACKAGES})", bin.display()));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A WebDriver session on headless Chromium, once chromedriver answers.
async fn connect(driver: &ChromeDriver, chromium: &Path) -> anyhow::Result<Client> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium.display().to_string(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required",
                "--window-size=1280,900",
            ],
        }),
    );
    let addr: SocketAddr = driver.url.trim_start_matches("http://").parse()?;
    eventually("chromedriver to listen", STEP, || async {
        Ok(
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .is_ok()
                .then_some(()),
        )
    })
    .await?;
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .with_context(|| format!("start a Chromium session ({})", chromium.display()))
}

// ---------------------------------------------------------------------------------------------
// The stack

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// A unique 20 s MP3 (the comment makes its bytes differ from any other run's).
async fn make_mp3(dir: &Path) -> PathBuf {
    let path = dir.join(format!(
        "e2e-tone-{}.mp3",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=20"])
        .args(["-metadata", &format!("comment={}", uuid::Uuid::new_v4())])
        .arg(&path)
        .output()
        .await
        .expect("run ffmpeg (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Every service and the proxy, in-process.
struct Stack {
    /// The proxy: the web client and every API on one origin.
    url: String,
    proxy_stop: Option<oneshot::Sender<()>>,
    proxy_task: Option<JoinHandle<()>>,
    servers: Vec<ServerHandle>,
    player_worker: JoinHandle<()>,
    engine: Option<RunningEngine>,
    // Dropped after the servers stop (see `Drop`): the databases are dropped like the services'
    // own tests drop theirs, then the directories are removed.
    _databases: Vec<TestDatabase>,
    _dirs: Vec<tempfile::TempDir>,
}

fn settings<T: serde::de::DeserializeOwned>(defaults: &str) -> T {
    shared::config::load_from(defaults, None, Vec::new()).expect("the defaults load")
}

fn spawn(server: actix_web::dev::Server) -> ServerHandle {
    let handle = server.handle();
    tokio::spawn(server);
    handle
}

impl Stack {
    async fn start() -> Self {
        shared::telemetry::init_for_tests();
        let local = |port: u16| format!("127.0.0.1:{port}");

        let engine = cql_engine::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("the CQL engine starts");

        // User: its own database and development signing key.
        let key_dir = tempfile::tempdir().unwrap();
        let mut us: user::config::Settings = settings(&user::config::defaults());
        us.server.port = 0;
        us.server.workers = 1;
        us.server.shutdown_timeout_secs = 2;
        us.redis.key_prefix = redis_prefix();
        us.auth.dev_key_path = key_dir.path().join("key.pem").display().to_string();
        let user_db = TestDatabase::create(&us.postgres).await;
        us.postgres = user_db.settings.clone();
        let app = user::startup::Application::build(us)
            .await
            .expect("the user service builds");
        let user_addr = local(app.port());
        let user = spawn(app.into_server());
        let jwks_url = format!("http://{user_addr}/.well-known/jwks.json");

        // Player: the engine above (own keyspace), media in temporary directories, jobs polled
        // often so the upload is processed promptly.
        let media = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let mut ps: player::config::Settings = settings(&player::config::defaults());
        ps.server.port = 0;
        ps.server.workers = 1;
        ps.server.shutdown_timeout_secs = 2;
        ps.redis.key_prefix = redis_prefix();
        ps.auth.jwks_url = jwks_url.clone();
        ps.cql.contact_points = engine.local_addr().to_string();
        ps.cql.await_schema_agreement = false;
        ps.cql.keyspace = format!("e2e_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        ps.media.local_dir = media.path().display().to_string();
        ps.media.work_dir = work.path().display().to_string();
        ps.media.job_poll_ms = 200;
        let app = player::startup::Application::build(ps)
            .await
            .expect("the player builds");
        let player_addr = local(app.port());
        let (server, _embedded, player_worker) = app.into_parts();
        let player = spawn(server);

        // Reviews: its own database.
        let mut rs: reviews::config::Settings = settings(&reviews::config::defaults());
        rs.server.port = 0;
        rs.server.workers = 1;
        rs.server.shutdown_timeout_secs = 2;
        rs.redis.key_prefix = redis_prefix();
        rs.auth.jwks_url = jwks_url;
        let reviews_db = TestDatabase::create(&rs.postgres).await;
        rs.postgres = reviews_db.settings.clone();
        let app = reviews::startup::Application::build(rs)
            .await
            .expect("the reviews service builds");
        let reviews_addr = local(app.port());
        let reviews = spawn(app.into_server());

        // The proxy: one replica per pool, the real web client, quick health probes.
        let mut xs: proxy::config::Settings = settings(&proxy::config::defaults());
        xs.server.host = "127.0.0.1".into();
        xs.server.port = 0;
        xs.server.workers = 2;
        xs.server.shutdown_timeout_secs = 2;
        xs.health.interval_ms = 250;
        xs.static_files.dir = workspace_root().join("web").display().to_string();
        xs.pools = [
            ("user", user_addr),
            ("player", player_addr),
            ("reviews", reviews_addr),
        ]
        .into_iter()
        .map(|(pool, addr)| (pool.to_owned(), proxy::config::List(vec![addr])))
        .collect();
        let app = proxy::startup::Application::build(xs)
            .await
            .expect("the proxy builds");
        let url = format!("http://127.0.0.1:{}", app.port());
        let (proxy_stop, stopped) = oneshot::channel::<()>();
        let proxy_task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));

        Self {
            url,
            proxy_stop: Some(proxy_stop),
            proxy_task: Some(proxy_task),
            servers: vec![user, player, reviews],
            player_worker,
            engine: Some(engine),
            _databases: vec![user_db, reviews_db],
            _dirs: vec![key_dir, media, work],
        }
    }

    /// Stops the proxy (draining), the services and the engine; the databases and directories
    /// go when `self` is dropped at the end.
    async fn shut_down(mut self) {
        if let Some(stop) = self.proxy_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.proxy_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.player_worker.abort();
        for server in std::mem::take(&mut self.servers) {
            let _ = tokio::time::timeout(Duration::from_secs(10), server.stop(true)).await;
        }
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Reached directly only when the test panics before `shut_down`.
        if let Some(stop) = self.proxy_stop.take() {
            let _ = stop.send(());
        }
        self.player_worker.abort();
        for server in self.servers.drain(..) {
            drop(server.stop(false));
        }
    }
}
