//! Load generator for `POST /reviews` (used by `loadtest/reviews/bench.sh`): starts the reviews
//! binary as a child process that trusts a token issuer of this process's own, then sends reviews
//! at a fixed rate, each by a distinct user about a random song, and prints the achieved rate,
//! p50/p99 (measured from each request's scheduled start, so a stall counts in full) and errors.
//!
//! `cargo run --release -p reviews --example post_load -- BIN PORT RATE SECONDS SONGS`
//! (the child inherits the environment: database, Redis prefix, log level).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use shared::test_support::TestIssuer;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin, port, rate, secs, songs] =
        <[String; 5]>::try_from(args).expect("usage: post_load BIN PORT RATE SECONDS SONGS");
    let (port, rate, secs, songs): (u16, u64, u64, i64) = (
        port.parse().unwrap(),
        rate.parse().unwrap(),
        secs.parse().unwrap(),
        songs.parse().unwrap(),
    );
    let issuer = TestIssuer::start().await;
    let mut child = std::process::Command::new(&bin)
        .env("APP__AUTH__JWKS_URL", &issuer.jwks_url)
        .env("APP__SERVER__PORT", port.to_string())
        .spawn()
        .expect("start the reviews binary");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    for _ in 0..100 {
        if http
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let total = rate * secs;
    // Tokens signed up front, so signing does not compete with the requests being measured.
    let user_base = 1_000_000_000 + i64::from(rand::random::<u16>()) * 1_000_000;
    let tokens: Vec<String> = (0..total as i64)
        .map(|i| issuer.token(user_base + i, "bench"))
        .collect();
    let mut rng = rand::thread_rng();
    let bodies: Vec<String> = (0..total)
        .map(|i| {
            serde_json::json!({
                "song_id": rng.gen_range(1..=songs),
                "rating": 1 + i % 5,
                "summary": "Load test review",
                "body": "A review written by the load generator, long enough for the API's rules.",
                "recommend": i % 3 != 0,
                "email": "bench@example.com",
                "photos": ["https://img.example.com/bench.jpg"],
            })
            .to_string()
        })
        .collect();

    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for (i, (token, body)) in tokens.into_iter().zip(bodies).enumerate() {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (http, url) = (http.clone(), format!("{base}/reviews"));
        let (latencies, errors) = (latencies.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let outcome = match res {
                Ok(r) if r.status() == reqwest::StatusCode::CREATED => None,
                Ok(r) => Some(r.status().to_string()),
                Err(e) => Some(e.to_string()),
            };
            latencies.lock().unwrap().push(scheduled.elapsed());
            if let Some(e) = outcome {
                *errors.lock().unwrap().entry(e).or_default() += 1;
            }
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();

    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    println!(
        "POST /reviews: {} requests in {:.2}s = {:.0} req/s (target {rate}/s); p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; errors: {:?}",
        l.len(),
        elapsed.as_secs_f64(),
        l.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        l.last().unwrap().as_secs_f64() * 1e3,
        errors.lock().unwrap()
    );
}
