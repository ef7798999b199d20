//! The licence and roaming APIs as typed calls: the origin's licence
//! issuer, a user's consent to a partner, and a roaming server's
//! conversions and package orders.

use reqwest::Method;
use tracecast_delivery::api::{Consent, ConsentRequest};
use tracecast_protect::api::{
    ConversionRequest, Conversions, IssuedLicence, LicenceIssuer, Package, PackageOrder,
};
use tracecast_share::url_segment;

use crate::delivery::json;
use crate::mailbox::refused;
use crate::{ClientError, OriginClient};

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
