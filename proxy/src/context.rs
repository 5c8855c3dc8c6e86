//! What identifies a request across services: the `X-Request-Id` and the W3C trace context.
//!
//! The proxy is the edge, so it always takes part in the trace: the context it sends upstream names
//! the proxy's own span as the parent — a child of the caller's `traceparent` when one came in, the
//! root of a new trace otherwise. With an OTLP endpoint configured that span is the recorded
//! `proxy.request` span and is exported; without one it is only an id (a fresh span id under the
//! caller's trace id), so the services' spans and logs still share one trace id per request.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, global};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::forward::{has, remove};

/// The request-id header: the caller's when sane, generated otherwise, echoed on every response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The caller's request id if it is sane (1–128 visible ASCII characters), else a new UUID.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    has(headers, &REQUEST_ID)
        .then(|| headers.get(&REQUEST_ID))
        .flatten()
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// Ids, request and trace ones, need to be unique, not secret: a fast thread-local generator
/// (wyrand, seeded per thread from the OS) rather than the cryptographic `rand::random`, whose
/// block refills showed in every request's profile. OpenTelemetry's SDK makes its ids the same way.
///
/// The value is sent upstream and echoed to the caller, so it is cloned: its bytes live in one
/// shared allocation from the start (`Bytes::from_owner`), rather than a copy that the first clone
/// moves into a second one.
fn new_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut buf);
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The caller's trace context (empty when none or malformed), made the parent of `span`. Call it
/// before the span is first entered: a span's parent is fixed once it starts.
pub fn caller_context(incoming: &HeaderMap, span: &Span) -> Context {
    if !has(incoming, &TRACEPARENT) {
        return Context::new();
    }
    let caller = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(incoming)));
    if !span.is_disabled() {
        // Fails when no OpenTelemetry layer records the span; `upstream_context` then makes an id.
        let _ = span.set_parent(caller.clone());
    }
    caller
}

/// The trace context to send upstream: `span`'s own when it is recorded, else a fresh span id
/// under the caller's trace (or a new trace): see the module comment.
pub fn upstream_context(caller: &Context, span: &Span) -> SpanContext {
    if !span.is_disabled() {
        let own = span.context();
        let own = own.span().span_context().clone();
        if own.is_valid() {
            return own;
        }
    }
    let caller = caller.span();
    let caller = caller.span_context();
    let (trace_id, flags, state) = if caller.is_valid() {
        (
            caller.trace_id(),
            caller.trace_flags(),
            caller.trace_state().clone(),
        )
    } else {
        (
            TraceId::from(random_nonzero_u128()),
            TraceFlags::SAMPLED,
            TraceState::default(),
        )
    };
    SpanContext::new(
        trace_id,
        SpanId::from(random_nonzero_u64()),
        flags,
        true,
        state,
    )
}

/// Replaces any `traceparent`/`tracestate` in `headers` with `sc`'s, in the W3C format (what the
/// trace-context propagator writes, without its string formatting per request).
pub fn inject(sc: &SpanContext, headers: &mut HeaderMap) {
    if !sc.is_valid() {
        remove(headers, &TRACEPARENT);
        remove(headers, &TRACESTATE);
        return;
    }
    // `insert` replaces every earlier value.
    headers.insert(&TRACEPARENT, traceparent(sc));
    let state = sc.trace_state().header();
    match HeaderValue::from_str(&state) {
        Ok(v) if !state.is_empty() => {
            headers.insert(&TRACESTATE, v);
        }
        _ => remove(headers, &TRACESTATE),
    }
}

/// `00-{trace id}-{span id}-{flags}`, lower-case hex.
fn traceparent(sc: &SpanContext) -> HeaderValue {
    fn hex(dst: &mut [u8], bytes: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (pair, b) in dst.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xf)];
        }
    }
    let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex(&mut buf[3..35], &sc.trace_id().to_bytes());
    hex(&mut buf[36..52], &sc.span_id().to_bytes());
    hex(&mut buf[53..55], &[sc.trace_flags().to_u8()]);
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn random_nonzero_u64() -> u64 {
    fastrand::u64(1..)
}

fn random_nonzero_u128() -> u128 {
    fastrand::u128(1..)
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_written_as_the_w3c_propagator_writes_it() {
        use opentelemetry::propagation::{Injector, TextMapPropagator as _};
        struct Map(std::collections::HashMap<String, String>);
        impl Injector for Map {
            fn set(&mut self, key: &str, value: String) {
                self.0.insert(key.to_owned(), value);
            }
        }
        let sc = SpanContext::new(
            TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c),
            SpanId::from(0x00f0_67aa_0ba9_02b7),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "x")]).unwrap(),
        );
        let cx = Context::new().with_remote_span_context(sc.clone());
        let mut theirs = Map(Default::default());
        opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .inject_context(&cx, &mut theirs);
        let mut ours = HeaderMap::new();
        ours.insert(&TRACEPARENT, HeaderValue::from_static("00-stale"));
        inject(&sc, &mut ours);
        assert_eq!(ours[&TRACEPARENT], theirs.0["traceparent"].as_str());
        assert_eq!(
            ours[&TRACEPARENT],
            "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
        );
        assert_eq!(ours[&TRACESTATE], theirs.0["tracestate"].as_str());
        inject(&SpanContext::empty_context(), &mut ours);
        assert!(ours.get(&TRACEPARENT).is_none(), "no context, no header");
    }

    #[test]
    fn a_sane_request_id_is_kept() {
        let mut h = HeaderMap::new();
        h.insert(&REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
    }

    #[test]
    fn a_missing_or_odd_request_id_is_replaced_by_a_uuid() {
        let mut h = HeaderMap::new();
        let generated = request_id(&h);
        assert_eq!(generated.len(), 36);
        assert_ne!(generated, request_id(&h), "each one is new");
        h.insert(&REQUEST_ID, HeaderValue::from_static("has space"));
        assert_eq!(request_id(&h).len(), 36);
        h.insert(
            &REQUEST_ID,
            HeaderValue::from_str(&"x".repeat(129)).unwrap(),
        );
        assert_eq!(request_id(&h).len(), 36);
    }
}
