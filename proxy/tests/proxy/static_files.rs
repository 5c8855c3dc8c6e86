//! The web client's files: ETags and 304s, caching headers, compression, HEAD, ranges.

use std::io::Read as _;

use hyper::Method;

use crate::helpers::{Backend, TestProxy, empty, web_dir};

async fn proxy() -> (TestProxy, Backend) {
    let player = Backend::echo("player").await;
    (TestProxy::player(&[&player]).await, player)
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", web_dir())).unwrap()
}

const APP_JS: &str = "/assets/app.3f9a1c2b.js";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_has_a_strong_etag_and_a_matching_if_none_match_gets_304() {
    let (proxy, _) = proxy().await;
    let first = proxy.get("/style.css", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body, fixture("style.css"));
    assert_eq!(
        first.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    let etag = first.header("etag").unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );

    let again = proxy.get("/style.css", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    let weak = proxy
        .get(
            "/style.css",
            &[("if-none-match", &format!("\"old\", W/{etag}"))],
        )
        .await;
    assert_eq!(weak.status, 304, "If-None-Match compares weakly");

    let changed = proxy
        .get("/style.css", &[("if-none-match", "\"old\"")])
        .await;
    assert_eq!(changed.status, 200);

    // Each encoding is its own representation with its own tag.
    let gz = proxy
        .get("/style.css", &[("accept-encoding", "gzip")])
        .await;
    let gz_tag = gz.header("etag").unwrap().to_owned();
    assert_ne!(gz_tag, etag);
    let gz_again = proxy
        .get(
            "/style.css",
            &[("accept-encoding", "gzip"), ("if-none-match", &gz_tag)],
        )
        .await;
    assert_eq!(gz_again.status, 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprinted_assets_are_immutable_and_everything_else_is_revalidated() {
    let (proxy, _) = proxy().await;
    let js = proxy.get(APP_JS, &[]).await;
    assert_eq!(
        js.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    for path in ["/", "/index.html", "/style.css", "/robots.txt"] {
        let reply = proxy.get(path, &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
    }
    assert_eq!(proxy.get("/", &[]).await.body, fixture("index.html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_is_sent_with_brotli_or_gzip_as_the_client_accepts() {
    let (proxy, _) = proxy().await;
    let original = fixture(&APP_JS[1..]);

    let br = proxy
        .get(APP_JS, &[("accept-encoding", "gzip, deflate, br, zstd")])
        .await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("vary"), Some("accept-encoding"));
    assert_eq!(
        br.header("content-length"),
        Some(br.body.len().to_string().as_str())
    );
    assert!(br.body.len() < original.len() / 2);
    let mut decoded = Vec::new();
    brotli::Decompressor::new(&br.body[..], 4096)
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, original);

    for accept in ["gzip", "br;q=0, gzip", "gzip;q=1, br;q=0.5", "x-gzip"] {
        let gz = proxy.get(APP_JS, &[("accept-encoding", accept)]).await;
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{accept}");
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz.body[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, original);
    }
    for accept in ["*", "gzip;q=0.5, br;q=0.8"] {
        let reply = proxy.get(APP_JS, &[("accept-encoding", accept)]).await;
        assert_eq!(reply.header("content-encoding"), Some("br"), "{accept}");
    }
    for accept in ["identity", "gzip;q=0, br;q=0", "deflate"] {
        let plain = proxy.get(APP_JS, &[("accept-encoding", accept)]).await;
        assert_eq!(plain.header("content-encoding"), None, "{accept}");
        assert_eq!(plain.body, original);
    }

    // Images are not compressed again, and a percent-encoded name is found.
    let png = proxy
        .get(
            "/images/cover%20art.png",
            &[("accept-encoding", "br, gzip")],
        )
        .await;
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(png.header("content-encoding"), None);
    assert_eq!(png.header("vary"), None);
    assert_eq!(png.body, fixture("images/cover art.png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_gets_the_headers_of_get_without_the_body() {
    let (proxy, _) = proxy().await;
    let original = fixture(&APP_JS[1..]);
    let head = proxy.send(Method::HEAD, APP_JS, &[], empty()).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(original.len().to_string().as_str())
    );
    let get = proxy.get(APP_JS, &[]).await;
    assert_eq!(head.header("etag"), get.header("etag"));

    let post = proxy.send(Method::POST, APP_JS, &[], empty()).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_gets_206_with_the_bytes_asked_for() {
    let (proxy, _) = proxy().await;
    let original = fixture(&APP_JS[1..]);
    let len = original.len();

    let part = proxy
        .get(
            APP_JS,
            &[("range", "bytes=10-19"), ("accept-encoding", "br, gzip")],
        )
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 10-19/{len}").as_str())
    );
    assert_eq!(
        part.header("content-encoding"),
        None,
        "ranges are of the plain bytes"
    );
    assert_eq!(part.body, original[10..20]);

    let tail = proxy.get(APP_JS, &[("range", "bytes=-5")]).await;
    assert_eq!(tail.body, original[len - 5..]);

    let beyond = proxy.get(APP_JS, &[("range", "bytes=99999999-")]).await;
    assert_eq!(beyond.status, 416);
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );

    let etag = proxy
        .get(APP_JS, &[])
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let current = proxy
        .get(APP_JS, &[("range", "bytes=0-3"), ("if-range", &etag)])
        .await;
    assert_eq!(current.status, 206);
    let stale = proxy
        .get(APP_JS, &[("range", "bytes=0-3"), ("if-range", "\"stale\"")])
        .await;
    assert_eq!(stale.status, 200, "a changed file is sent whole");
    assert_eq!(stale.body.len(), len);

    let several = proxy.get(APP_JS, &[("range", "bytes=0-1,4-5")]).await;
    assert_eq!(several.status, 200, "several ranges: the whole file");
}
