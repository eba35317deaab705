//! The live web dashboard: its data endpoint (`GET
//! /api/performance/dashboard`, behind the API's auth, in `data.rs`) and
//! its single page, served without auth from files embedded in the binary
//! (`assets/`; uPlot is vendored from npm under `assets/vendor/`). The page
//! asks for an API key and calls the API with it; nothing is loaded from
//! elsewhere.

mod data;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::ApiState;

pub use data::SERIES_MINUTES;

/// Where the page lives.
pub const DASHBOARD_PATH: &str = "/dashboard/";

/// Routes to nest under `/api/performance` (they get the API's layers).
pub(crate) fn api_routes() -> Router<ApiState> {
    Router::new().route("/dashboard", get(data::dashboard))
}

/// One embedded file: its path under `/dashboard/`, type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:literal, $file:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $file)),
        }
    };
}

const ASSETS: [Asset; 5] = [
    asset!("/dashboard/", "text/html; charset=utf-8", "index.html"),
    asset!(
        "/dashboard/app.js",
        "text/javascript; charset=utf-8",
        "app.js"
    ),
    asset!("/dashboard/app.css", "text/css; charset=utf-8", "app.css"),
    asset!(
        "/dashboard/vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        "vendor/uPlot.iife.min.js"
    ),
    asset!(
        "/dashboard/vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        "vendor/uPlot.min.css"
    ),
];

/// Scripts only from the page's own origin (server data never becomes
/// code); inline styles are allowed because reports are self-contained HTML
/// pages with their own `<style>`, shown from a blob URL.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; connect-src 'self'; frame-src blob:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn serve(asset: &'static Asset) -> Response {
    let mut resp = asset.body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Embedded files change only with the binary; revalidate cheaply.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

/// The page's routes (no auth): `/` and `/dashboard` redirect to
/// `/dashboard/`, which serves the page, and its scripts and styles.
pub(crate) fn page_routes() -> Router<ApiState> {
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::to(DASHBOARD_PATH) }))
        .route("/dashboard", get(|| async { Redirect::to(DASHBOARD_PATH) }));
    for asset in &ASSETS {
        r = r.route(asset.path, get(move || async move { serve(asset) }));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_the_page_names_them() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap_or_default();
        for a in &ASSETS[1..] {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            let rel = a.path.trim_start_matches(DASHBOARD_PATH);
            assert!(page.contains(rel), "index.html does not load {rel}");
        }
    }
}
