//! `/health/live` (the process answers) and `/health/ready` (its dependencies answer).

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use futures::future::BoxFuture;
use serde_json::json;

/// A readiness probe: `Ok` when the service's database answers, `Err(reason)` otherwise.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Registers the two health routes; `check` decides readiness.
pub fn configure(cfg: &mut web::ServiceConfig, check: ReadyCheck) {
    cfg.app_data(web::Data::new(check))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn ready(check: web::Data<ReadyCheck>) -> HttpResponse {
    match tokio::time::timeout(std::time::Duration::from_secs(2), (check.get_ref())()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Ok(Err(reason)) => {
            tracing::warn!(%reason, "not ready");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "code": "not_ready", "message": reason}))
        }
        Err(_) => HttpResponse::ServiceUnavailable().json(
            json!({"status": "unavailable", "code": "not_ready", "message": "readiness check timed out"}),
        ),
    }
}
