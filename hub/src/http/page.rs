//! The web page: `GET /`, `/app.js` and `/app.css`, compiled into the binary
//! from `hub/web/` so an installed hub is one file, with no asset directory
//! that could drift from the API it talks to.
//!
//! Every answer carries a strict Content-Security-Policy: script, style and
//! connections from this origin only, no inline script or style, no plugins,
//! no framing. The page is written to run under it (no inline handlers, no
//! `eval`, no style attributes), so an injected `<script>` in, say, a job
//! title could not run even if escaping ever failed. `Cache-Control:
//! no-cache` makes browsers check back on every load, so an upgraded hub is
//! never paired with a stale script.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const APP_CSS: &str = include_str!("../../web/app.css");

/// The policy for the page and its files. `img-src data:` is for the empty
/// favicon (no request for one); `connect-src 'self'` covers fetch and the
/// event stream.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}

/// `GET /`
pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /app.js`
pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /app.css`
pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", APP_CSS)
}
