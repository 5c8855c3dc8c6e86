//! Telemetry in one call: structured logs, a root span with a request id per request, OpenTelemetry
//! traces exported over OTLP/HTTP when an endpoint is configured, and W3C `traceparent` taken from
//! incoming requests and injected into outgoing ones.

use std::sync::Once;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use opentelemetry::propagation::Injector;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder, TracingLogger};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetrySettings};

/// The request-id header: taken from the caller when it sends a sane one, generated otherwise, and
/// always echoed on the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Keeps the trace exporter alive; dropping it flushes pending spans.
#[must_use = "dropping the guard stops trace export"]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("trace exporter shutdown: {e}");
        }
    }
}

/// Installs the global subscriber and propagator. Call once at the top of `main`.
pub fn init(service: &str, settings: &TelemetrySettings) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_new(&settings.log_level)
        .map_err(|e| format!("telemetry.log_level `{}`: {e}", settings.log_level))?;
    let fmt = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    };
    let provider = tracer_provider(service, &settings.otlp_endpoint)?;
    // With an OTLP endpoint, spans for traces are recorded at INFO whatever the log level, so a quiet
    // log does not break traces. Without one, nothing would read them: no span is recorded beyond
    // what the log level asks for, and the caller's `traceparent` is passed on unchanged (W3C's
    // rule for a hop that does not take part in the trace) — see [`inject_trace_context`].
    let otel = (!settings.otlp_endpoint.is_empty()).then(|| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service.to_owned()))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .map_err(|e| format!("telemetry: {e}"))?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(Telemetry { provider })
}

/// The tracer provider; spans leave the process only when an OTLP endpoint is configured.
fn tracer_provider(service: &str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if !endpoint.is_empty() {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()
            .map_err(|e| format!("telemetry.otlp_endpoint `{endpoint}`: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// For tests: logs at `TEST_LOG` level (nothing when unset), once per process.
pub fn init_for_tests() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        if let Ok(level) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::new(level))
                .with_test_writer()
                .try_init();
        }
    });
}

/// The request id of this request, as taken from the caller or generated.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Root span per request, with the request id and the caller's `traceparent` as parent.
pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let incoming = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        let id = incoming.unwrap_or_else(|| {
            tracing_actix_web::root_span_macro::private::get_request_id(request).to_string()
        });
        request.extensions_mut().insert(RequestId(id.clone()));
        tracing_actix_web::root_span!(request, x_request_id = %id)
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The tracing middleware: `.wrap(shared::telemetry::request_tracing())`.
pub fn request_tracing() -> TracingLogger<RootSpan> {
    TracingLogger::<RootSpan>::new()
}

tokio::task_local! {
    /// The caller's trace headers, for [`inject_trace_context`] when no span of ours is recorded.
    static INCOMING_TRACE: IncomingTrace;
}

#[derive(Clone, Default)]
struct IncomingTrace {
    traceparent: Option<reqwest::header::HeaderValue>,
    tracestate: Option<reqwest::header::HeaderValue>,
}

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Middleware echoing the request id as `X-Request-Id` on every response and keeping the caller's
/// trace headers for outgoing calls made while handling the request:
/// `.wrap(actix_web::middleware::from_fn(shared::telemetry::request_context))`, inside
/// [`request_tracing`] (i.e. wrapped *before* it).
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| reqwest::header::HeaderValue::from_bytes(v.as_bytes()).ok())
    };
    let trace = IncomingTrace {
        traceparent: header(TRACEPARENT),
        tracestate: header(TRACESTATE),
    };
    let mut res = INCOMING_TRACE.scope(trace, next.call(req)).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

/// Adds W3C `traceparent` (and `tracestate`) to outgoing request headers: the current span's when
/// spans are recorded for export, otherwise the caller's, unchanged.
pub fn inject_trace_context(headers: &mut reqwest::header::HeaderMap) {
    struct HeaderInjector<'a>(&'a mut reqwest::header::HeaderMap);
    impl Injector for HeaderInjector<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(key.as_bytes()),
                reqwest::header::HeaderValue::from_str(&value),
            ) {
                self.0.insert(name, value);
            }
        }
    }
    let context = Span::current().context();
    if context.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&context, &mut HeaderInjector(headers));
        });
        return;
    }
    let _ = INCOMING_TRACE.try_with(|trace| {
        for (name, value) in [
            (TRACEPARENT, &trace.traceparent),
            (TRACESTATE, &trace.tracestate),
        ] {
            if let Some(value) = value {
                headers.insert(
                    reqwest::header::HeaderName::from_static(name),
                    value.clone(),
                );
            }
        }
    });
}
