//! The origin's members API (DESIGN.md "004") as typed calls: admission,
//! applications and their approval, a member's record, the tree, and
//! reserved content.

use reqwest::Method;
use tracecast_members::api::{
    AdmitRequest, Applied, ApplyRequest, ApproveRequest, AskReserved, Decided, MemberInfo,
    MemberView, Reservation, ReservedAnswer, ReservedDecided, SetReserved, TreeEntry,
};
use tracecast_share::url_segment;

use crate::delivery::json;
use crate::{ClientError, OriginClient};

impl OriginClient {
    /// A first-order member, after a face-to-face check (administrator).
    pub async fn admit_member(&self, request: &AdmitRequest) -> Result<MemberInfo, ClientError> {
        json(
            self.req(Method::POST, "/v1/members/admit")
                .json(request)
                .send()
                .await?,
        )
        .await
    }

    /// Asks to join through a member (user).
    /// Starts one's own first-order registration (user); an operator
    /// completes it after the face-to-face check.
    pub async fn register_membership(
        &self,
        request: &tracecast_members::api::RegisterRequest,
    ) -> Result<tracecast_members::api::Registered, ClientError> {
        json(
            self.req(Method::POST, "/v1/members/register")
                .json(request)
                .send()
                .await?,
        )
        .await
    }

    pub async fn apply_for_membership(
        &self,
        request: &ApplyRequest,
    ) -> Result<Applied, ClientError> {
        json(
            self.req(Method::POST, "/v1/members/apply")
                .json(request)
                .send()
                .await?,
        )
        .await
    }

    /// Approves an application with a rating from 0 to 1 (a member asked).
    pub async fn approve_application(
        &self,
        application: i64,
        rating: f64,
    ) -> Result<Decided, ClientError> {
        let path = format!("/v1/members/applications/{application}/approve");
        json(
            self.req(Method::POST, &path)
                .json(&ApproveRequest { rating })
                .send()
                .await?,
        )
        .await
    }

    /// Refuses an application (a member asked).
    pub async fn refuse_application(&self, application: i64) -> Result<Decided, ClientError> {
        let path = format!("/v1/members/applications/{application}/refuse");
        json(self.req(Method::POST, &path).send().await?).await
    }

    /// A member's record with their chain (the member or an administrator).
    pub async fn member(&self, name: &str) -> Result<MemberView, ClientError> {
        let path = format!("/v1/members/{}", url_segment(name));
        json(self.req(Method::GET, &path).send().await?).await
    }

    /// Every member, referrers first (administrator).
    pub async fn members(&self) -> Result<Vec<TreeEntry>, ClientError> {
        json(self.req(Method::GET, "/v1/members").send().await?).await
    }

    /// Asks for reserved content (user).
    pub async fn ask_reserved(&self, content: i64) -> Result<ReservedAnswer, ClientError> {
        json(
            self.req(Method::POST, "/v1/members/reserved")
                .json(&AskReserved { content })
                .send()
                .await?,
        )
        .await
    }

    /// Grants or denies a request for reserved content (a member asked).
    pub async fn decide_reserved(
        &self,
        request: i64,
        grant: bool,
    ) -> Result<ReservedDecided, ClientError> {
        let verb = if grant { "grant" } else { "deny" };
        let path = format!("/v1/members/reserved/{request}/{verb}");
        json(self.req(Method::POST, &path).send().await?).await
    }

    /// Reserves a content for members up to an order, or frees it (its
    /// provider or an administrator).
    pub async fn set_reserved(
        &self,
        content: i64,
        up_to_order: Option<i64>,
    ) -> Result<Reservation, ClientError> {
        let path = format!("/v1/contents/{content}/reserved");
        json(
            self.req(Method::PUT, &path)
                .json(&SetReserved { up_to_order })
                .send()
                .await?,
        )
        .await
    }
}
