//! Graceful shutdown: on SIGTERM or SIGINT stop accepting, then let in-flight requests finish
//! within the server's `shutdown_timeout`.
//!
//! actix-web's own signal handling treats SIGINT as a *forced* stop, so services build their server
//! with `.disable_signals()` and run it through [`run_until_stopped`], which stops it gracefully on
//! either signal.

use actix_web::dev::Server;

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, draining"),
        () = term => tracing::info!("SIGTERM received, draining"),
    }
}

/// Runs `server` until it stops by itself or a signal arrives; on a signal, stops accepting and
/// waits for in-flight requests (bounded by the server's `shutdown_timeout`).
pub async fn run_until_stopped(server: Server) -> std::io::Result<()> {
    let handle = server.handle();
    // The stop command is answered by the server future itself, so it must keep being polled
    // while the stop is requested: ask from a task of its own.
    let stopper = tokio::spawn(async move {
        signal().await;
        handle.stop(true).await;
    });
    let result = server.await;
    stopper.abort();
    result
}
