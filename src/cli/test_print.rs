//! `spoolcast-agent test-print`: prints a file through the broker, exactly
//! as the hub would send it, and follows the job to its final state.
//!
//! It goes through the broker on purpose: a success proves the whole path
//! (broker ACL, the daemon's subscription, the printer), not just the
//! printer.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use rumqttc::{Event, Packet, QoS};
use sha2::{Digest, Sha256};
use spoolcast_agent::config::Config;
use spoolcast_protocol::{JobId, JobStateMsg, PrinterId};

/// Guesses a MIME type from a file extension.
pub fn guess_format(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pdf") => "application/pdf",
        Some("txt") | Some("text") => "text/plain",
        Some("ps") => "application/postscript",
        Some("pwg") => "image/pwg-raster",
        Some("urf") => "image/urf",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// Publishes the offer and prints each state; exit 0 only on `completed`.
pub async fn test_print(
    config: &Config,
    printer: &str,
    format: Option<String>,
    timeout: Duration,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let printer: PrinterId = printer.parse().context("--printer")?;
    if !config.printers.iter().any(|p| p.id == printer) {
        bail!("printer {printer} is not in the config");
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let format = format.unwrap_or_else(|| guess_format(file).to_string());
    let job_id: JobId = format!("test-{}", uuid::Uuid::new_v4().simple())
        .parse()
        .expect("valid job id");
    let offer = serde_json::json!({
        "v": 1,
        "job_id": job_id,
        "owner": "installer",
        "title": file.file_name().map(|n| n.to_string_lossy().into_owned()),
        "document": {
            "format": format,
            "size": bytes.len(),
            "sha256": hex::encode(Sha256::digest(&bytes)),
            "data": base64::engine::general_purpose::STANDARD.encode(&bytes),
        },
    });
    let topics = &config.mqtt.topics;
    let (client, mut eventloop) =
        super::connect(config, "test-print", Duration::from_secs(10)).await?;
    let state_topic = topics.job_state(&printer, &job_id);
    let availability = topics.availability(&config.agent.id);
    client.try_subscribe(state_topic.clone(), QoS::AtLeastOnce)?;
    client.try_subscribe(availability.clone(), QoS::AtLeastOnce)?;
    println!(
        "job {job_id}: {} bytes of {format} to printer {printer}",
        bytes.len()
    );

    let follow = async {
        let mut offered = false;
        let mut last_seq = 0;
        loop {
            match eventloop.poll().await? {
                Event::Incoming(Packet::Publish(p)) if p.topic == availability && !offered => {
                    // Offer only once the agent is online (its retained
                    // availability says so): before its first start the
                    // broker has no session to queue the job in.
                    let online = spoolcast_protocol::Availability::from_slice(&p.payload)
                        .is_ok_and(|a| a.state == spoolcast_protocol::AvailabilityState::Online);
                    if online {
                        // try_: never await the client in the task that polls it.
                        let payload = serde_json::to_vec(&offer)?;
                        client.try_publish(
                            topics.jobs(&printer),
                            QoS::AtLeastOnce,
                            false,
                            payload,
                        )?;
                        offered = true;
                    } else {
                        println!("    agent {} is offline; waiting for it", config.agent.id);
                    }
                }
                Event::Incoming(Packet::Publish(p)) if p.topic == state_topic => {
                    let msg = JobStateMsg::from_slice(&p.payload)
                        .context("the agent sent an invalid state")?;
                    if msg.seq <= last_seq {
                        continue;
                    }
                    last_seq = msg.seq;
                    let reasons = if msg.reasons.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", msg.reasons.join(", "))
                    };
                    let evidence = msg
                        .evidence
                        .map(|e| {
                            format!(" evidence={}", serde_json::to_value(e).unwrap_or_default())
                        })
                        .unwrap_or_default();
                    let message = msg
                        .message
                        .as_deref()
                        .map(|m| format!(" - {m}"))
                        .unwrap_or_default();
                    println!("{:>3} {}{reasons}{evidence}{message}", msg.seq, msg.state);
                    if msg.state.is_final() {
                        return anyhow::Ok(
                            msg.state == spoolcast_protocol::JobStateKind::Completed,
                        );
                    }
                }
                _ => {}
            }
        }
    };
    let completed = tokio::time::timeout(timeout, follow)
        .await
        .with_context(|| {
            format!(
                "no final state within {}; is the agent running?",
                humantime::format_duration(timeout)
            )
        })??;
    let _ = client.try_disconnect();
    Ok(if completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_extensions() {
        assert_eq!(guess_format(Path::new("a.PDF")), "application/pdf");
        assert_eq!(guess_format(Path::new("notes.txt")), "text/plain");
        assert_eq!(guess_format(Path::new("noext")), "application/octet-stream");
    }
}
