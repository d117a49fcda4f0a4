//! `GET /`: the web page. The web UI is written under `hub/web/` (a later
//! issue); until `hub/web/index.html` exists a one-line placeholder is
//! served. `build.rs` decides which, so the binary carries the page.

use axum::response::Html;

/// The page, compiled in.
const PAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/index.html"));

pub async fn index() -> Html<&'static str> {
    Html(PAGE)
}
