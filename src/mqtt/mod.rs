//! The MQTT side of the agent: connection options, reconnect back-off and
//! the session that pumps the durable outbox.

pub mod backoff;
pub mod options;
pub mod session;

pub use session::MqttHandle;
