//! The HTTP defaults every service installs: body limits, extractor errors, health routes, a JSON
//! 404, and a last-resort middleware that gives any non-JSON error response the shared shape.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::config::ServerSettings;
use crate::error::{ErrorBody, HttpError};
use crate::health::{self, ReadyCheck};

/// Registers body limits, extractor error handlers, the health routes and the JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig, server: &ServerSettings, ready: ReadyCheck) {
    cfg.app_data(web::PayloadConfig::new(server.max_body_bytes))
        .app_data(crate::extract::query_config())
        .app_data(crate::extract::path_config())
        .default_service(web::to(crate::error::not_found));
    health::configure(cfg, ready);
}

/// Middleware: an error response (4xx/5xx) without a JSON body, such as actix's own 405 or a
/// panic-free internal failure, is replaced by the shared error shape.
pub async fn json_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Ok(res.map_into_boxed_body());
    }
    let code = match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "too_many_requests",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    };
    let message = status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase();
    let (req, res) = res.into_parts();
    let mut new = ErrorBody::new(code, message).respond(status);
    for (name, value) in res.headers() {
        if name != CONTENT_TYPE && name != actix_web::http::header::CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    new.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(ServiceResponse::new(req, new))
}

/// The base URL clients reach this service at: the configured `public_url`, else the scheme and
/// host of the request (honouring `Forwarded` / `X-Forwarded-*` from the proxy).
pub fn base_url(req: &HttpRequest, server: &ServerSettings) -> String {
    if !server.public_url.is_empty() {
        return server.public_url.trim_end_matches('/').to_owned();
    }
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// A 200 response whose body is JSON text already serialised (e.g. straight from a cache).
pub fn json_text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .body(body)
}

impl From<crate::auth::AuthError> for actix_web::Error {
    fn from(e: crate::auth::AuthError) -> Self {
        HttpError::from(e).into()
    }
}

/// Binds `server.host:server.port` (port 0 picks a free one); the error names the address.
pub fn listen(settings: &ServerSettings) -> Result<std::net::TcpListener, String> {
    std::net::TcpListener::bind((settings.host.as_str(), settings.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", settings.host, settings.port))
}

/// Builds the HTTP server every service runs, with the same middleware stack (metrics, request
/// tracing, request-id header, JSON errors), body limits, extractor errors, health routes and JSON
/// 404; `configure` adds the service's own app data and routes. Signals are left to
/// [`crate::shutdown::run_until_stopped`], which stops gracefully on SIGTERM and SIGINT alike.
pub fn server<F>(
    listener: std::net::TcpListener,
    service: &str,
    settings: &ServerSettings,
    ready: ReadyCheck,
    configure: F,
) -> Result<actix_web::dev::Server, String>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    use actix_web::middleware::from_fn;
    let metrics = crate::metrics::middleware(service)?;
    let server_settings = settings.clone();
    let mut server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(from_fn(json_errors))
            .wrap(from_fn(crate::telemetry::request_context))
            .wrap(crate::telemetry::request_tracing())
            .wrap(metrics.clone())
            .configure(|cfg| self::configure(cfg, &server_settings, ready.clone()))
            .configure(configure.clone())
    })
    .listen(listener)
    .map_err(|e| format!("cannot serve: {e}"))?
    .disable_signals()
    .shutdown_timeout(settings.shutdown_timeout_secs);
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    Ok(server.run())
}
