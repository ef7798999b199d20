//! The licence and roaming APIs as typed calls: the origin's licence
//! issuer, a user's consent to a partner, and a roaming server's
//! conversions and package orders.

use std::path::{Path, PathBuf};

use reqwest::Method;
use tracecast_delivery::api::{Consent, ConsentRequest};
use tracecast_protect::api::{
    ConversionRequest, Conversions, IssuedLicence, LicenceIssuer, Package, PackageOrder,
};
use tracecast_protect::SignedLicence;
use tracecast_share::url_segment;

use crate::delivery::json;
use crate::mailbox::refused;
use crate::{ClientError, Downloaded, EdgeClient, OriginClient};

/// One item of a package order as it ended at the buyer.
#[derive(Debug)]
pub enum PackageItemOutcome {
    /// The copy marked for the buyer is on disk with its licence beside it.
    Delivered {
        label: String,
        delivery: i64,
        copy: Downloaded,
        licence: PathBuf,
    },
    Refused {
        label: String,
        reason: String,
    },
}

/// A package order's copies fetched and its licences written.
#[derive(Debug)]
pub struct PackageReceived {
    pub ordered: usize,
    pub charged_cents: i64,
    pub items: Vec<PackageItemOutcome>,
}

/// One licence file's conversion: where the converted licence was written,
/// or why it was refused.
#[derive(Debug)]
pub struct ConvertedFile {
    pub source: PathBuf,
    pub outcome: Result<PathBuf, String>,
}

/// A batch of converted licence files and what it cost.
#[derive(Debug)]
pub struct ConvertedFiles {
    pub converted: usize,
    pub charged_cents: i64,
    pub files: Vec<ConvertedFile>,
}

/// The protection system a recipient (`SYSTEM:KEY`) names, for file names.
fn system_of(recipient: &str) -> &str {
    recipient.split(':').next().unwrap_or("licence")
}

fn write_licence(path: &Path, licence: &SignedLicence) -> Result<(), ClientError> {
    let text = serde_json::to_string_pretty(licence).expect("a licence serialises") + "\n";
    std::fs::write(path, text)
        .map_err(|e| ClientError::Local(format!("writing {}: {e}", path.display())))
}

fn create_dir(dir: &Path) -> Result<(), ClientError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ClientError::Local(format!("creating {}: {e}", dir.display())))
}

impl OriginClient {
    /// Who signs this origin's licences, in which systems
    /// (`GET /v1/licences/issuer`).
    pub async fn licence_issuer(&self) -> Result<LicenceIssuer, ClientError> {
        json(self.req(Method::GET, "/v1/licences/issuer").send().await?).await
    }

    /// The licences issued to the caller (user; `GET /v1/licences`).
    pub async fn licences(&self) -> Result<Vec<IssuedLicence>, ClientError> {
        json(self.req(Method::GET, "/v1/licences").send().await?).await
    }

    /// Lets a partner buy for the caller up to `limit_cents` in all (user).
    pub async fn give_consent(
        &self,
        partner: &str,
        limit_cents: i64,
    ) -> Result<Consent, ClientError> {
        json(
            self.req(Method::PUT, &consent_path(partner))
                .json(&ConsentRequest { limit_cents })
                .send()
                .await?,
        )
        .await
    }

    /// The caller's consent to a partner: the limit and what was spent.
    pub async fn consent(&self, partner: &str) -> Result<Consent, ClientError> {
        json(self.req(Method::GET, &consent_path(partner)).send().await?).await
    }

    /// Takes a consent back (user).
    pub async fn revoke_consent(&self, partner: &str) -> Result<(), ClientError> {
        let resp = self
            .req(Method::DELETE, &consent_path(partner))
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        Ok(())
    }

    /// Converts licences into the caller's system at a roaming server
    /// (`POST /roaming/v1/conversions`; this client's base is the roaming
    /// server's).
    pub async fn convert_licences(
        &self,
        request: &ConversionRequest,
    ) -> Result<Conversions, ClientError> {
        json(
            self.req(Method::POST, "/roaming/v1/conversions")
                .json(request)
                .send()
                .await?,
        )
        .await
    }

    /// A package order at a roaming server (`POST /roaming/v1/orders`)
    /// under an idempotency key: asked again after a lost answer (as this
    /// does, up to three times), the order buys and charges nothing more.
    pub async fn package_order(
        &self,
        order: &PackageOrder,
        key: &str,
    ) -> Result<Package, ClientError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let post = self
                .req(Method::POST, "/roaming/v1/orders")
                .header("idempotency-key", key)
                .json(order);
            match async { json(post.send().await?).await }.await {
                Err(e) if e.is_transient() && tries < 3 => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    }
}

fn consent_path(partner: &str) -> String {
    format!("/v1/partners/{}/consent", url_segment(partner))
}

impl OriginClient {
    /// Reads licence files, converts them into `recipient`'s system at a
    /// roaming server, and writes each converted licence to `out_dir` as
    /// `STEM.SYSTEM.licence`.
    pub async fn convert_licence_files(
        &self,
        files: &[PathBuf],
        recipient: &str,
        out_dir: &Path,
    ) -> Result<ConvertedFiles, ClientError> {
        let mut licences = Vec::with_capacity(files.len());
        for path in files {
            let raw = std::fs::read(path)
                .map_err(|e| ClientError::Local(format!("reading {}: {e}", path.display())))?;
            licences.push(SignedLicence::parse(&raw).map_err(|e| {
                ClientError::Local(format!("{} is not a licence: {e}", path.display()))
            })?);
        }
        let answer = self
            .convert_licences(&ConversionRequest {
                licences,
                recipient: recipient.to_owned(),
            })
            .await?;
        create_dir(out_dir)?;
        let mut out = Vec::with_capacity(answer.results.len());
        for r in &answer.results {
            let Some(source) = files.get(r.index) else {
                return Err(ClientError::Malformed(format!(
                    "a conversion answers licence {} of {}",
                    r.index,
                    files.len()
                )));
            };
            let outcome = match (&r.licence, &r.error) {
                (Some(l), None) => {
                    let stem = source
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or("licence");
                    let path = out_dir.join(format!("{stem}.{}.licence", system_of(recipient)));
                    write_licence(&path, l)?;
                    Ok(path)
                }
                (_, e) => Err(e.clone().unwrap_or_else(|| "no reason given".into())),
            };
            out.push(ConvertedFile {
                source: source.clone(),
                outcome,
            });
        }
        Ok(ConvertedFiles {
            converted: answer.converted,
            charged_cents: answer.charged_cents,
            files: out,
        })
    }

    /// Orders a package at a roaming server under one fresh idempotency key
    /// (a retry after a lost answer buys nothing twice), fetches each copy
    /// marked for the buyer from its edge into `out_dir`, and writes its
    /// licence beside it as `delivery-N.SYSTEM.licence`.
    pub async fn order_package_into(
        &self,
        order: &PackageOrder,
        out_dir: &Path,
    ) -> Result<PackageReceived, ClientError> {
        create_dir(out_dir)?;
        let key = format!("order-{:032x}", rand::random::<u128>());
        let answer = self.package_order(order, &key).await?;
        let edges = EdgeClient::new()?;
        let mut items = Vec::with_capacity(answer.results.len());
        for r in &answer.results {
            let label = format!("{}:{}", r.issuer, r.content);
            let (Some(p), Some(licence)) = (&r.purchase, &r.licence) else {
                let reason = r.error.clone().unwrap_or_else(|| "no reason given".into());
                items.push(PackageItemOutcome::Refused { label, reason });
                continue;
            };
            let copy = edges.deliver(&p.edge_address, &p.ticket).await?;
            // The edge names the file: never a path out of `out_dir`.
            let name = tracecast_share::message::safe_filename(&copy.filename);
            let got = edges
                .download(&copy, &out_dir.join(name), &|_, _| {})
                .await?;
            let path = out_dir.join(format!(
                "delivery-{}.{}.licence",
                p.delivery,
                system_of(&order.recipient)
            ));
            write_licence(&path, licence)?;
            items.push(PackageItemOutcome::Delivered {
                label,
                delivery: p.delivery,
                copy: got,
                licence: path,
            });
        }
        Ok(PackageReceived {
            ordered: answer.ordered,
            charged_cents: answer.charged_cents,
            items,
        })
    }
}
