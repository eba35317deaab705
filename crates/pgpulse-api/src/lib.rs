//! The pgpulse admin REST API (`/api/performance/*`), its authentication and
//! rate limiting, `/healthz`, `/readyz` and `/metrics`.
//!
//! ```text
//! request ─► request id (x-request-id; renders ApiError bodies)
//!            ├─ /healthz, /readyz, /metrics (own token)
//!            └─ /api/performance/* ─► per-address limit ─► auth (API key | JWT)
//!                                      ─► per-credential limit ─► admin? ─► handler
//! ```
//!
//! Wiring (the binary): build [`ApiOptions`] around the store (and the same
//! store as `keys`), the live handles and the settings, make the state with
//! [`ApiState::new`], the router with [`app`] (or [`app_with`] to add routes
//! that get the same protection), and run [`serve`]. The same router serves
//! the dashboard page at [`DASHBOARD_PATH`] (`/` redirects there).
#![warn(missing_docs)]

mod auth;
mod dashboard;
mod error;
mod forwarded;
mod keys;
mod metrics;
mod middleware;
mod query;
mod ratelimit;
mod routes;
mod state;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

pub use auth::{ApiSetupError, AuthOptions, Credential, JwtKey, JwtOptions};
pub use dashboard::{DASHBOARD_PATH, SERIES_MINUTES};
pub use error::ApiError;
pub use forwarded::{Network, NetworkError, client_ip};
pub use keys::{KEY_PREFIX, KeyError, create_api_key, generate_key, hash_key, key_id, verify_key};
pub use middleware::{REQUEST_ID, RequestId};
pub use query::{ApiQuery, DEFAULT_LIMIT, Listing, MAX_LIMIT};
pub use ratelimit::{Budget, RateLimitOptions};
pub use routes::{IndexFlags, audit, flag_indexes, json_body};
pub use state::{AdvisorOptions, ApiHooks, ApiOptions, ApiState, CleanupOptions, GenerateReportFn};

/// The whole HTTP application.
pub fn app(state: ApiState) -> Router {
    app_with(state, Router::new())
}

/// The application plus `extra` routes nested under `/api/performance`
/// with the same authentication, rate limits and admin check (handlers get
/// [`Credential`] and [`RequestId`] as extensions, and should call
/// [`audit`] when they change something).
pub fn app_with(state: ApiState, extra: Router<ApiState>) -> Router {
    let api = routes::routes()
        .merge(dashboard::api_routes())
        .merge(extra)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::admin_only,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::address_limit,
        ));
    Router::new()
        .nest("/api/performance", api)
        .route("/healthz", get(routes::status::healthz))
        .route("/readyz", get(routes::status::readyz))
        .route("/metrics", get(metrics::metrics))
        .merge(dashboard::page_routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(middleware::request_id))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets
/// running requests finish. Client addresses reach the rate limiter.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
