//! A device without its own uplink (DESIGN.md "000"), from the device's
//! side: set up once with a gateway (service request, then the account and
//! its set-up code), keep the gateway and token in a 0600 state file, then
//! share files through it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tracecast_share::gateway::{SendReceipt, ServiceRequest};

use crate::mailbox::ClientError;
use crate::{GatewayClient, Narrator, SendOptions};

/// What a device keeps after set-up; its token is a secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceState {
    /// The gateway's address.
    pub gateway: String,
    pub gateway_name: String,
    pub account: String,
    pub token: String,
    /// Larger files travel as a download link.
    pub attachment_limit: u64,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceState")
            .field("gateway", &self.gateway)
            .field("gateway_name", &self.gateway_name)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// Why a device's state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceStateError {
    #[error("reading {0}: set the device up first (tracecast device setup)")]
    Missing(String, #[source] std::io::Error),
    #[error("{0} is not a device's state: {1}")]
    Malformed(String, serde_json::Error),
    #[error(transparent)]
    Write(#[from] tracecast_secrets::SecretFileError),
}

impl DeviceState {
    pub fn load(path: &Path) -> Result<Self, DeviceStateError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| DeviceStateError::Missing(name.clone(), e))?;
        serde_json::from_slice(&bytes).map_err(|e| DeviceStateError::Malformed(name, e))
    }

    /// Replaces the state file atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), DeviceStateError> {
        let text = serde_json::to_string_pretty(self).expect("plain fields serialise");
        Ok(tracecast_secrets::replace(path, text.as_bytes())?)
    }
}

/// The device's side of set-up with the gateway at `gateway`.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    pub gateway: &'a str,
    pub account: &'a str,
    pub code: &'a str,
    pub model: &'a str,
    pub hardware: &'a str,
}

/// Set-up steps 2-9: asks the gateway for service with the device's model
/// and hardware, then confirms with the account and its set-up code. Returns
/// the state to keep and the gateway's closing message.
pub async fn set_up(
    s: &Setup<'_>,
    say: &dyn Narrator,
) -> Result<(DeviceState, String), ClientError> {
    let client = GatewayClient::new(s.gateway, None)?;
    let offer = client
        .request_service(&ServiceRequest {
            account: s.account.to_owned(),
            model: s.model.to_owned(),
            hardware: s.hardware.to_owned(),
        })
        .await?;
    say.say(offer.message.clone());
    let on = client.confirm(&offer, s.account, s.code).await?;
    let state = DeviceState {
        gateway: s.gateway.to_owned(),
        gateway_name: on.gateway.clone(),
        account: on.account.clone(),
        token: on.token.clone(),
        attachment_limit: on.attachment_limit,
    };
    Ok((state, on.message))
}

/// What to share and with whom (suggestions for the gateway's user, who
/// composes the message).
#[derive(Debug, Clone, Default)]
pub struct Share<'a> {
    pub to: Option<&'a str>,
    pub text: Option<&'a str>,
    /// Guessed from the file's name when absent.
    pub media_type: Option<&'a str>,
}

/// Shares `file` through the device's gateway; the narrator hears the bytes
/// sent.
pub async fn share_file(
    state: &DeviceState,
    file: &Path,
    share: &Share<'_>,
    say: std::sync::Arc<dyn Narrator + Send + Sync>,
) -> Result<SendReceipt, ClientError> {
    let client = GatewayClient::new(&state.gateway, Some(&state.token))?;
    let filename = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("shared.bin");
    let media_type = share
        .media_type
        .unwrap_or_else(|| tracecast_share::message::guess_media_type(file));
    let total = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    say.say(format!(
        "sending {} to gateway {}: its user composes the message…",
        file.display(),
        state.gateway_name
    ));
    let ticks = say.clone();
    let receipt = client
        .send(
            file,
            &SendOptions {
                filename,
                media_type,
                to: share.to,
                text: share.text,
            },
            move |n| ticks.bytes("send", n, total),
        )
        .await;
    say.transfer_ended();
    receipt
}
