//! Every JSON example in docs/protocol.md must be accepted by this crate, so
//! the document and the code cannot drift apart unnoticed.

use serde_json::Value;
use spoolcast_protocol::{
    parse_offer, Availability, CancelRequest, JobStateMsg, OfferRules, PrinterStatus, Reject,
    StatusGetRequest,
};

const DOC: &str = include_str!("../../docs/protocol.md");

fn json_blocks() -> Vec<&'static str> {
    DOC.split("```json\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect()
}

#[test]
fn every_example_parses() {
    let blocks = json_blocks();
    assert!(blocks.len() >= 8, "found {} examples", blocks.len());
    for block in blocks {
        let v: Value = serde_json::from_str(block).unwrap_or_else(|e| panic!("{e}: {block}"));
        let b = block.as_bytes();
        let result = if v.get("document").is_some() {
            parse_offer(b, &OfferRules::default())
                .map(drop)
                .map_err(|e| e.to_string())
        } else if v.get("seq").is_some() {
            JobStateMsg::from_slice(b)
                .map(drop)
                .map_err(|e| e.to_string())
        } else if v.get("queued_jobs").is_some() {
            PrinterStatus::from_slice(b)
                .map(drop)
                .map_err(|e| e.to_string())
        } else if v.get("reply_to").is_some() {
            StatusGetRequest::from_slice(b)
                .map(drop)
                .map_err(|e| e.to_string())
        } else if v.get("connection").is_some() {
            Availability::from_slice(b)
                .map(drop)
                .map_err(|e| e.to_string())
        } else if v.get("payload_sha256").is_some() {
            Reject::from_slice(b).map(drop).map_err(|e| e.to_string())
        } else if v.get("job_id").is_some() {
            CancelRequest::from_slice(b)
                .map(drop)
                .map_err(|e| e.to_string())
        } else {
            Err("example matches no message".to_owned())
        };
        if let Err(e) = result {
            panic!("{e}\n{block}");
        }
    }
}
