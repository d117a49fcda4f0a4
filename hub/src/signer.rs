//! Signed document URLs: `GET /documents/{job_id}?expires=UNIX&sig=HEX`.
//!
//! Large documents are not sent inline; the offer carries a URL the agent
//! fetches. The URL works for one job and until `expires`: the signature is
//! HMAC-SHA256 over `"{job_id}\n{expires}"` with the hub's secret, so it
//! cannot be moved to another job or extended. Several hub instances must
//! share the secret (`url_secret_file`); without one each process makes a
//! random key and URLs die with the process.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::{Error, Result};

/// Signs and checks document URLs.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    pub fn new(key: Vec<u8>) -> Signer {
        Signer { key }
    }

    /// A random key, for a single instance without a secret file.
    pub fn random() -> Signer {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Signer { key }
    }

    /// Reads the key from a file (its bytes, trailing newline removed; at
    /// least 16 bytes).
    pub fn from_file(path: &std::path::Path) -> Result<Signer> {
        let mut key = spoolcast_tls::read_secret(path).map_err(|e| {
            Error::Config(format!(
                "hub.url_secret_file: cannot read {}: {e}",
                path.display()
            ))
        })?;
        while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            key.pop();
        }
        if key.len() < 16 {
            return Err(Error::Config(
                "hub.url_secret_file: the secret must be at least 16 bytes (e.g. head -c 32 /dev/urandom | base64)".into(),
            ));
        }
        Ok(Signer { key })
    }

    fn mac(&self, job_id: &str, expires: i64) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(job_id.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The signature for a job's URL valid until `expires` (Unix seconds).
    pub fn sign(&self, job_id: &str, expires: i64) -> String {
        hex::encode(self.mac(job_id, expires).finalize().into_bytes())
    }

    /// Checks a URL's signature and expiry at `now` (Unix seconds).
    pub fn verify(&self, job_id: &str, expires: i64, sig: &str, now: i64) -> Result<()> {
        let forbidden = || Error::Forbidden("invalid or expired document link".to_owned());
        let sig = hex::decode(sig).map_err(|_| forbidden())?;
        self.mac(job_id, expires)
            .verify_slice(&sig)
            .map_err(|_| forbidden())?;
        if now > expires {
            return Err(forbidden());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = Signer::new(b"0123456789abcdef".to_vec());
        let sig = s.sign("job-1", 1000);
        assert_eq!(sig.len(), 64);
        let cases: &[(&str, i64, &str, i64, bool)] = &[
            ("job-1", 1000, &sig, 999, true),
            ("job-1", 1000, &sig, 1000, true),
            ("job-1", 1000, &sig, 1001, false), // expired
            ("job-2", 1000, &sig, 999, false),  // another job
            ("job-1", 2000, &sig, 999, false),  // extended
            ("job-1", 1000, "zz", 999, false),  // not hex
            ("job-1", 1000, "", 999, false),
        ];
        for (job, exp, sig, now, ok) in cases {
            assert_eq!(
                s.verify(job, *exp, sig, *now).is_ok(),
                *ok,
                "{job} {exp} {now}"
            );
        }
        let other = Signer::new(b"fedcba9876543210".to_vec());
        assert!(other.verify("job-1", 1000, &sig, 999).is_err());
        let mut tampered = sig.clone().into_bytes();
        tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
        assert!(s
            .verify("job-1", 1000, std::str::from_utf8(&tampered).unwrap(), 999)
            .is_err());
    }
}
