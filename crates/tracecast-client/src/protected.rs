//! Opening a protected copy (DESIGN.md "002") on the buyer's side: the
//! licence is checked against the keys the origin publishes (its own and
//! its roaming server's), for the caller, now; the content key is taken
//! out with the user's secret; the copy is decrypted whole or by range,
//! through a temporary file so a failure leaves no half copy.

use std::io::Write;
use std::path::{Path, PathBuf};

use tracecast_protect::{Decryptor, Header, Licence, Secret, SignedLicence, System, Trusted};

use crate::{ClientError, OriginClient};

/// A protected copy to open.
#[derive(Debug, Clone)]
pub struct OpenCopy {
    /// The licence file (`tracecast licence get`).
    pub licence: PathBuf,
    /// The protected copy as the edge delivered it.
    pub file: PathBuf,
    /// Where the clear copy goes.
    pub out: PathBuf,
    /// The user's key file (an age identity or a device key); a ClearKey
    /// licence needs none.
    pub identity: Option<PathBuf>,
    /// Clear bytes `start..=end` only (a seek), or the whole copy.
    pub range: Option<(u64, u64)>,
}

/// What [`OriginClient::open_protected_copy`] wrote.
#[derive(Debug, Clone)]
pub struct Opened {
    pub bytes: u64,
    pub licence: Licence,
}

fn local(path: &Path, e: impl std::fmt::Display) -> ClientError {
    ClientError::Local(format!("{}: {e}", path.display()))
}

fn refused(what: &str, e: tracecast_protect::ProtectError) -> ClientError {
    ClientError::Local(format!("{what}: {e}"))
}

impl OriginClient {
    /// Opens a protected copy with its licence (see the module's docs).
    pub async fn open_protected_copy(&self, req: &OpenCopy) -> Result<Opened, ClientError> {
        let raw = tokio::fs::read(&req.licence)
            .await
            .map_err(|e| local(&req.licence, e))?;
        let signed = SignedLicence::parse(&raw)
            .map_err(|e| refused(&req.licence.display().to_string(), e))?;
        let issuer = self.licence_issuer().await?;
        let me = self.account().await?.name;
        let key = |k: &tracecast_protect::api::PublishedKey, whose: &str| {
            k.verifying_key()
                .map_err(|e| ClientError::Malformed(format!("{whose} licence key: {e}")))
        };
        let mut trusted =
            Trusted::new().with(&issuer.signer.name, key(&issuer.signer, "the origin's")?);
        // Licences converted by the origin's roaming server are trusted too.
        if let Some(r) = &issuer.roaming {
            trusted.add(&r.name, key(r, "the roaming server's")?);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let licence = signed
            .verify(&trusted, &me, now)
            .map_err(|e| refused("the licence does not verify", e))?;
        let secret = match (licence.system, &req.identity) {
            (System::Clearkey, _) => Secret::None,
            (_, Some(path)) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| local(path, e))?;
                Secret::from_key_file(&text).map_err(|e| local(path, e))?
            }
            (s, None) => {
                return Err(ClientError::Local(format!(
                    "a {s} licence opens with your key: give its key file"
                )))
            }
        };
        let req = req.clone();
        tokio::task::spawn_blocking(move || decrypt(&req, licence, &secret))
            .await
            .map_err(|e| ClientError::Local(format!("decrypting: {e}")))?
    }
}

fn decrypt(req: &OpenCopy, licence: Licence, secret: &Secret) -> Result<Opened, ClientError> {
    let content_key = licence
        .content_key(secret)
        .map_err(|e| refused("the licence's key does not open with this secret", e))?;
    let mut file = std::fs::File::open(&req.file).map_err(|e| local(&req.file, e))?;
    let mut head = [0u8; tracecast_protect::container::HEADER_LEN];
    std::io::Read::read_exact(&mut file, &mut head).map_err(|_| {
        local(
            &req.file,
            "shorter than a protected file's header: not a protected copy",
        )
    })?;
    let header = Header::parse(&head).map_err(|e| local(&req.file, e))?;
    let d = Decryptor::new(header, licence.key_id, &content_key)
        .map_err(|e| refused("this licence is for another content", e))?;
    let tmp = req.out.with_extension("partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| local(&tmp, e))?);
    let written = match req.range {
        None => d.decrypt_stream(&mut std::io::BufReader::new(&mut file), &mut out),
        Some((a, b)) if a <= b => d.decrypt_range(&mut file, a, b + 1, &mut out),
        Some((a, b)) => {
            return Err(ClientError::Local(format!(
                "range {a}-{b}: the start is past the end"
            )))
        }
    };
    let finished = written.map_err(|e| refused("decrypting", e)).and_then(|n| {
        out.flush().map_err(|e| local(&tmp, e))?;
        out.get_ref().sync_all().map_err(|e| local(&tmp, e))?;
        Ok(n)
    });
    drop(out);
    match finished {
        Ok(bytes) => {
            std::fs::rename(&tmp, &req.out).map_err(|e| local(&req.out, e))?;
            Ok(Opened { bytes, licence })
        }
        Err(e) => {
            // A failure leaves no half copy under any name.
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
