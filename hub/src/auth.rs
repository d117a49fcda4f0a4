//! Who is asking: passwords, session tokens and the request extractor.
//!
//! Passwords are stored as argon2id PHC strings (parameters inside, so
//! changing them later keeps old hashes valid). A session is a random
//! 32-byte token handed to the device once, as the `spoolcast_session`
//! cookie (HttpOnly, SameSite=Strict, Secure unless `insecure_cookies`) and
//! in the login answer for `Authorization: Bearer` use; only its SHA-256 is
//! stored. Sessions expire; logout ends one session.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::hub::Hub;

/// The session cookie's name.
pub const COOKIE: &str = "spoolcast_session";

/// Hashes a password with argon2id's default (OWASP) parameters.
pub fn hash_password(password: &str) -> Result<String> {
    hash_password_with(password, Params::DEFAULT_M_COST, Params::DEFAULT_T_COST)
}

/// Hashes with explicit memory (KiB) and time cost. Tests use small ones
/// because argon2 is slow in debug builds; verification reads the
/// parameters from the hash.
pub fn hash_password_with(password: &str, m_kib: u32, t: u32) -> Result<String> {
    let params = Params::new(m_kib, t, 1, None).map_err(|e| Error::Password(e.to_string()))?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Password(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Password(e.to_string()))
}

/// Whether `password` matches the stored hash (a malformed hash never matches).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password matches, with the default parameters, verified in
/// place of a real one when the user name is unknown (same work, same time).
pub fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        hash_password(&hex::encode(random)).unwrap_or_default()
    })
}

/// A new session token: 32 random bytes, base64url without padding.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The `Set-Cookie` value that logs a device in.
pub fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// The token a request carries: a Bearer header wins over the cookie.
pub fn request_token(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let t = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        return Some(t.trim().to_owned());
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The logged-in user of a request; rejects with 401 otherwise.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user_id: String,
    pub user_name: String,
    pub device: String,
    pub token_hash: String,
    pub expires_at: i64,
}

impl FromRequestParts<Arc<Hub>> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Error> {
        let token = request_token(parts).ok_or_else(|| {
            Error::Unauthorized("not logged in: POST /api/login first".to_owned())
        })?;
        let hash = token_hash(&token);
        let session = hub
            .store
            .session(&hash, crate::store::now_ms())
            .await?
            .ok_or_else(|| {
                Error::Unauthorized("session expired or logged out: log in again".to_owned())
            })?;
        Ok(CurrentUser {
            user_id: session.user_id,
            user_name: session.user_name,
            device: session.device,
            token_hash: hash,
            expires_at: session.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password_with("correct horse", 64, 1).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct hors", &h));
        assert!(!verify_password("", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        // Two hashes of one password differ (random salt).
        assert_ne!(h, hash_password_with("correct horse", 64, 1).unwrap());
    }

    #[test]
    fn tokens() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token());
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn cookies() {
        let c = session_cookie("T", 60, true);
        assert_eq!(
            c,
            "spoolcast_session=T; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        assert!(!session_cookie("T", 60, false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn token_from_header_or_cookie() {
        let parts = |name: &str, value: &str| {
            let (p, _) = axum::http::Request::builder()
                .header(name, value)
                .body(())
                .unwrap()
                .into_parts();
            p
        };
        assert_eq!(
            request_token(&parts("authorization", "Bearer abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            request_token(&parts("cookie", "a=b; spoolcast_session=xyz")).as_deref(),
            Some("xyz")
        );
        assert_eq!(request_token(&parts("cookie", "a=b")), None);
        assert_eq!(request_token(&parts("authorization", "Basic abc")), None);
    }
}
