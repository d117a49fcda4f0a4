//! The SNMP IO shell: walks a printer's MIB subtrees with `snmp2` and hands
//! the raw values to `decode`.
//!
//! snmp2 gives single requests and nothing more, so the walk loop, the
//! per-request time limit and recovery are here. After a timeout the
//! session is thrown away: a late answer to the old request would otherwise
//! sit in the socket and make every following request fail with a request
//! ID mismatch. Credentials come from the config's `Secret`s and never
//! reach a log line or an error message.

use std::time::Duration;

use snmp2::v3::{Auth, AuthProtocol, Cipher, Security};
use snmp2::{AsyncSession, Oid, Value as SnmpValue};

use super::decode::{Value, Walk};
use super::oids;
use crate::config::{SnmpAuth, SnmpConfig};

/// Rows asked for per GETBULK.
const BULK: u32 = 24;
/// A walk that returns more than this is not a printer MIB; stop.
const MAX_VALUES: usize = 20_000;

/// Why a reading failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SnmpError {
    #[error("no SNMP answer from {0} within the time limit")]
    Timeout(String),
    #[error("SNMP to {host}: {problem}")]
    Failed { host: String, problem: String },
}

/// A printer's SNMP agent, with a session kept between readings.
pub struct SnmpClient {
    cfg: SnmpConfig,
    session: Option<Box<AsyncSession>>,
    next_request_id: i32,
}

fn to_arcs(oid: &Oid<'_>) -> Option<Vec<u32>> {
    oid.iter()?.map(|a| u32::try_from(a).ok()).collect()
}

fn to_oid(arcs: &[u32]) -> Oid<'static> {
    let wide: Vec<u64> = arcs.iter().map(|&a| u64::from(a)).collect();
    Oid::from(&wide).expect("OIDs built from our constants and walk results are valid")
}

fn to_value(v: &SnmpValue<'_>) -> Option<Value> {
    Some(match v {
        SnmpValue::Integer(i) => Value::Int(*i),
        SnmpValue::OctetString(b) | SnmpValue::Opaque(b) => Value::Octets(b.to_vec()),
        SnmpValue::ObjectIdentifier(o) => Value::Oid(to_arcs(o)?),
        SnmpValue::Counter32(n) | SnmpValue::Unsigned32(n) => Value::Unsigned(u64::from(*n)),
        SnmpValue::Counter64(n) => Value::Unsigned(*n),
        SnmpValue::Timeticks(t) => Value::Ticks(u64::from(*t)),
        SnmpValue::EndOfMibView | SnmpValue::NoSuchObject | SnmpValue::NoSuchInstance => {
            return None
        }
        _ => Value::Other,
    })
}

/// A response's varbinds as walk entries, `None` where the agent says the
/// OID has no value (end of view, no such object or instance). Kept apart
/// from the IO so the fuzz targets can feed it responses parsed from raw
/// bytes, exactly as a session hands them over.
pub fn varbinds(varbinds: snmp2::Varbinds<'_>) -> Vec<(Vec<u32>, Option<Value>)> {
    varbinds
        .filter_map(|(o, v)| Some((to_arcs(&o)?, to_value(&v))))
        .collect()
}

impl SnmpClient {
    pub fn new(cfg: SnmpConfig) -> SnmpClient {
        SnmpClient {
            cfg,
            session: None,
            next_request_id: rand::random::<u16>() as i32,
        }
    }

    /// Where the readings come from, for messages.
    pub fn target(&self) -> String {
        format!("{}:{}", self.cfg.host, self.cfg.port)
    }

    fn failed(&self, problem: impl std::fmt::Display) -> SnmpError {
        SnmpError::Failed {
            host: self.target(),
            problem: problem.to_string(),
        }
    }

    async fn open(&mut self) -> Result<Box<AsyncSession>, SnmpError> {
        let target = (self.cfg.host.as_str(), self.cfg.port);
        self.next_request_id = self.next_request_id.wrapping_add(1000);
        let id = self.next_request_id;
        let mut session = match &self.cfg.auth {
            SnmpAuth::V1 { community } => {
                AsyncSession::new_v1(target, community.expose().as_bytes(), id).await
            }
            SnmpAuth::V2c { community } => {
                AsyncSession::new_v2c(target, community.expose().as_bytes(), id).await
            }
            SnmpAuth::V3 {
                user,
                auth_protocol,
                auth_key,
                priv_protocol,
                priv_key,
                context,
            } => {
                let protocol = match auth_protocol.as_str() {
                    "sha1" => AuthProtocol::Sha1,
                    "sha512" => AuthProtocol::Sha512,
                    _ => AuthProtocol::Sha256,
                };
                let auth = match (priv_protocol.as_deref(), priv_key) {
                    (Some(p), Some(key)) => Auth::AuthPriv {
                        cipher: if p == "aes256" {
                            Cipher::Aes256
                        } else {
                            Cipher::Aes128
                        },
                        privacy_password: key.expose().as_bytes().to_vec(),
                    },
                    _ => Auth::AuthNoPriv,
                };
                let security = Security::new(user.as_bytes(), auth_key.expose().as_bytes())
                    .with_auth_protocol(protocol)
                    .with_auth(auth)
                    .with_context_name(context);
                AsyncSession::new_v3(target, id, security).await
            }
        }
        .map(Box::new)
        .map_err(|e| self.failed(e))?;
        if matches!(self.cfg.auth, SnmpAuth::V3 { .. }) {
            // Engine discovery; failing here usually means wrong keys.
            match tokio::time::timeout(self.cfg.timeout, session.init()).await {
                Err(_) => return Err(SnmpError::Timeout(self.target())),
                Ok(Err(e)) => {
                    return Err(self.failed(format!(
                        "SNMPv3 handshake failed ({e:?}); check user and keys"
                    )))
                }
                Ok(Ok(())) => {}
            }
        }
        Ok(session)
    }

    /// One request (GET or GETBULK/GETNEXT from `oid`), retried on a fresh
    /// session after a timeout.
    async fn request(
        &mut self,
        oid: &[u32],
        bulk: bool,
    ) -> Result<Vec<(Vec<u32>, Option<Value>)>, SnmpError> {
        let mut attempt = 0;
        loop {
            let mut session = match self.session.take() {
                Some(s) => s,
                None => self.open().await?,
            };
            let target = to_oid(oid);
            let v1 = matches!(self.cfg.auth, SnmpAuth::V1 { .. });
            let timeout = self.cfg.timeout;
            let answer = tokio::time::timeout(timeout, async {
                let pdu = match (bulk, v1) {
                    (false, _) => session.get(&target).await,
                    (true, true) => session.getnext(&target).await,
                    (true, false) => session.getbulk(&[&target], 0, BULK).await,
                }?;
                Ok::<_, snmp2::Error>(varbinds(pdu.varbinds))
            })
            .await;
            match answer {
                Ok(Ok(rows)) => {
                    self.session = Some(session);
                    return Ok(rows);
                }
                // The agent updated our v3 time window: simply ask again.
                Ok(Err(snmp2::Error::AuthUpdated)) if attempt == 0 => {
                    self.session = Some(session);
                }
                Ok(Err(e)) if !matches!(e, snmp2::Error::RequestIdMismatch) => {
                    return Err(self.failed(format!("{e:?}")));
                }
                // Timeout or a stale answer: a fresh session, maybe a retry.
                _ => {
                    if attempt >= self.cfg.retries {
                        return Err(SnmpError::Timeout(self.target()));
                    }
                }
            }
            attempt += 1;
        }
    }

    /// Reads everything `decode` needs: the scalars in `oids::GET` and the
    /// subtrees in `oids::WALK_ROOTS`.
    pub async fn read(&mut self) -> Result<Walk, SnmpError> {
        let mut walk = Walk::new();
        for oid in oids::GET {
            for (o, v) in self.request(oid, false).await? {
                if let Some(v) = v {
                    walk.insert(o, v);
                }
            }
        }
        for root in oids::WALK_ROOTS {
            let mut cursor = root.to_vec();
            'subtree: loop {
                let rows = self.request(&cursor, true).await?;
                if rows.is_empty() {
                    break;
                }
                for (o, v) in rows {
                    if !o.starts_with(root) || v.is_none() {
                        break 'subtree;
                    }
                    // A broken agent that does not move forward would make
                    // this loop forever.
                    if o <= cursor {
                        return Err(self.failed("the agent's walk does not advance"));
                    }
                    cursor = o.clone();
                    walk.insert(o, v.expect("checked above"));
                    if walk.len() > MAX_VALUES {
                        return Err(self.failed("the walk is too large for a printer"));
                    }
                }
            }
        }
        Ok(walk)
    }

    /// Total time a reading may take, for callers that must answer in time.
    pub fn time_limit(&self) -> Duration {
        self.cfg.timeout * (self.cfg.retries + 1) * 8
    }
}
