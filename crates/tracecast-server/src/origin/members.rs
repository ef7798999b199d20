//! Members (DESIGN.md "004") at the origin, the copyright management
//! server: operators admit first-order members after a face-to-face
//! identity check; applicants ask through a member, and the request is
//! relayed through the mailbox to that member and up the chain for the
//! policy's levels; each approves with a rating (or refuses); when every
//! level has approved, the origin checks the approvals with
//! `tracecast-members` and admits the applicant with their final trust.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tracecast_members::{admit_first, admit_referred, Approval, Attributes, Member, Status};
use tracecast_store::{AccountKind, MemberRecord};

use super::{json_body, Caller, Origin};
use crate::ApiError;

/// The message a referrer (and each level above) receives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberApplication {
    pub application: i64,
    pub applicant: String,
    pub referrer: String,
    /// 1: you are the referrer; 2: the referrer's referrer; ….
    pub level: u32,
    pub attributes: Attributes,
    pub attribute_trust: f64,
}

impl MemberApplication {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.member-application+json";
}

#[derive(Debug, Deserialize)]
pub(super) struct AdmitRequest {
    user: String,
    #[serde(default)]
    attributes: Attributes,
    /// Who checked the identity, face to face.
    operator: String,
    /// What document was checked (a kind and a short reference, not a
    /// full number).
    document: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ApplyRequest {
    referrer: String,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Debug, Deserialize)]
pub(super) struct ApproveRequest {
    /// How far the approver trusts the applicant, 0 to 1.
    rating: f64,
}

fn to_rules(m: &MemberRecord) -> Member {
    Member {
        id: m.user_id,
        order: m.order as u32,
        referrer: m.referrer_id,
        attribute_trust: m.attribute_trust,
        rating: m.rating,
        trust: m.trust,
        status: if m.status == "active" {
            Status::Active
        } else {
            Status::Suspended
        },
    }
}

fn rule_error(e: tracecast_members::MembersError) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", e.to_string())
}

async fn user_named(o: &Origin, name: &str) -> Result<(i64, i64), ApiError> {
    o.store.user_by_name(name).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_user",
            format!("there is no user named {name:?}"),
        )
    })
}

async fn name_of(o: &Origin, user: i64) -> Result<String, ApiError> {
    Ok(o.store
        .account(AccountKind::User, user)
        .await?
        .map(|a| a.name)
        .unwrap_or_else(|| format!("user {user}")))
}

/// `POST /v1/members/admit` (administrator): a first-order member.
pub(super) async fn admit(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<AdmitRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    if !matches!(o.caller(&headers).await?, Caller::Admin) {
        return Err(ApiError::forbidden(
            "first-order members are admitted by an operator after a face-to-face check",
        ));
    }
    let req = json_body(body)?;
    if req.operator.trim().is_empty() || req.document.trim().is_empty() {
        return Err(ApiError::bad_request(
            "name the operator who checked and the document checked",
        ));
    }
    let (user, _) = user_named(&o, &req.user).await?;
    let a = admit_first(o.config.attributes.trust(&req.attributes)).map_err(rule_error)?;
    let m = o
        .store
        .add_member(
            user,
            1,
            None,
            a.attribute_trust,
            a.rating,
            a.trust,
            &serde_json::to_string(&req.attributes).expect("serialises"),
            Some((req.operator.trim(), req.document.trim())),
        )
        .await?;
    tracing::info!(user = %req.user, trust = m.trust, operator = %req.operator, "first-order member admitted");
    Ok((StatusCode::CREATED, Json(m)).into_response())
}

/// `POST /v1/members/apply` (user): ask through a member.
pub(super) async fn apply(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<ApplyRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let me = caller.expect(AccountKind::User)?.clone();
    let req = json_body(body)?;
    if o.store.member(me.id).await?.is_some() {
        return Err(ApiError::bad_request("you are a member already"));
    }
    let (referrer_id, _) = user_named(&o, &req.referrer).await?;
    if referrer_id == me.id {
        return Err(rule_error(tracecast_members::MembersError::SelfApproval));
    }
    let referrer = o.store.member(referrer_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_member",
            format!("{} is not a member and cannot refer", req.referrer),
        )
    })?;
    if referrer.status != "active" {
        return Err(rule_error(tracecast_members::MembersError::Suspended(
            referrer_id,
        )));
    }
    let policy = &o.config.members;
    let mut chain = vec![referrer];
    chain.extend(
        o.store
            .member_chain(referrer_id, policy.relay_levels as usize)
            .await?,
    );
    let levels = policy.levels_for(chain.len());
    let trust = o.config.attributes.trust(&req.attributes);
    let attrs = serde_json::to_string(&req.attributes).expect("serialises");
    let id = o
        .store
        .add_application(me.id, referrer_id, &attrs, trust, i64::from(levels))
        .await?;
    // The request goes to the referrer and up the chain, each through
    // their box.
    for (k, m) in chain.iter().take(levels as usize).enumerate() {
        let level = k as u32 + 1;
        let Some(acct) = o.store.account(AccountKind::User, m.user_id).await? else {
            continue;
        };
        let msg = MemberApplication {
            application: id,
            applicant: me.name.clone(),
            referrer: req.referrer.clone(),
            level,
            attributes: req.attributes.clone(),
            attribute_trust: trust,
        };
        o.mailbox
            .send(
                acct.box_id,
                MemberApplication::MEDIA_TYPE,
                serde_json::to_vec(&msg).expect("serialises"),
                "origin",
                Some(format!("member-application-{id}-{level}")),
            )
            .await?;
    }
    tracing::info!(application = id, applicant = %me.name, referrer = %req.referrer, levels, "membership application relayed");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "application": id, "referrer": req.referrer, "levels": levels,
            "attribute_trust": trust, "status": "pending",
        })),
    )
        .into_response())
}

/// `POST /v1/members/applications/{id}/approve` or `/refuse` (a member of
/// the chain): their word on the applicant.
pub(super) async fn decide(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path((id, verb)): Path<(i64, String)>,
    body: Result<Json<ApproveRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let me = caller.expect(AccountKind::User)?.clone();
    let app = o
        .store
        .application(id)
        .await?
        .filter(|a| a.status == "pending")
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_application",
                format!("no pending application {id}"),
            )
        })?;
    let referrer = o.store.member(app.referrer_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "referrer_gone",
            "the referrer is no longer a member",
        )
    })?;
    let mut chain = vec![referrer];
    chain.extend(
        o.store
            .member_chain(app.referrer_id, app.levels.max(1) as usize)
            .await?,
    );
    chain.truncate(app.levels.max(1) as usize);
    let level = chain
        .iter()
        .position(|m| m.user_id == me.id)
        .ok_or_else(|| ApiError::forbidden("you are not asked to approve this application"))?
        as u32
        + 1;
    if me.id == app.user_id {
        return Err(rule_error(tracecast_members::MembersError::SelfApproval));
    }
    match verb.as_str() {
        "refuse" => {
            o.store.close_application(id, "refused").await?;
            tracing::info!(application = id, by = %me.name, "membership application refused");
            return Ok(
                Json(serde_json::json!({"application": id, "status": "refused"})).into_response(),
            );
        }
        "approve" => {}
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                "approve or refuse",
            ))
        }
    }
    let req = json_body(body)?;
    let rating = req.rating;
    if !(rating.is_finite() && (0.0..=1.0).contains(&rating)) {
        return Err(rule_error(tracecast_members::MembersError::OutOfRange(
            rating,
        )));
    }
    if chain[level as usize - 1].status != "active" {
        return Err(rule_error(tracecast_members::MembersError::Suspended(
            me.id,
        )));
    }
    o.store
        .add_approval(id, i64::from(level), me.id, rating)
        .await?;
    let approvals: Vec<Approval> = o
        .store
        .approvals(id)
        .await?
        .into_iter()
        .map(|(level, approver, rating)| Approval {
            approver,
            level: level as u32,
            rating,
        })
        .collect();
    if approvals.len() < app.levels as usize {
        return Ok(Json(serde_json::json!({
            "application": id, "status": "pending", "approved_levels": approvals.len(),
            "levels": app.levels,
        }))
        .into_response());
    }
    let rules: Vec<Member> = chain.iter().map(to_rules).collect();
    let mut policy = o.config.members.clone();
    policy.relay_levels = app.levels as u32;
    let a = admit_referred(
        app.user_id,
        app.attribute_trust,
        &rules,
        &approvals,
        &policy,
    )
    .map_err(rule_error)?;
    let m = o
        .store
        .add_member(
            app.user_id,
            i64::from(a.order),
            a.referrer,
            a.attribute_trust,
            a.rating,
            a.trust,
            &app.attributes,
            None,
        )
        .await?;
    o.store.close_application(id, "admitted").await?;
    tracing::info!(
        application = id,
        user = app.user_id,
        order = m.order,
        trust = m.trust,
        "member admitted by referral"
    );
    Ok(
        Json(serde_json::json!({"application": id, "status": "admitted", "member": m}))
            .into_response(),
    )
}

/// `GET /v1/members/{name}`: a member with their chain (administrators,
/// or the member themselves).
pub(super) async fn show(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (user, _) = user_named(&o, &name).await?;
    match &caller {
        Caller::Admin => {}
        Caller::Account(a) if a.kind == AccountKind::User && a.id == user => {}
        _ => {
            return Err(ApiError::forbidden(
                "a member's record is for them and administrators",
            ))
        }
    }
    let m = o.store.member(user).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_a_member",
            format!("{name} is not a member"),
        )
    })?;
    let mut chain = Vec::new();
    for c in o.store.member_chain(user, 64).await? {
        chain.push(serde_json::json!({
            "name": name_of(&o, c.user_id).await?, "order": c.order, "trust": c.trust,
            "status": c.status,
        }));
    }
    let best = |kind| o.config.members.quality.tier(m.trust, kind);
    Ok(Json(serde_json::json!({
        "name": name, "member": m, "chain": chain,
        "best_audio": best(tracecast_delivery::ContentKind::Audio),
        "best_picture": best(tracecast_delivery::ContentKind::Picture),
    }))
    .into_response())
}

/// `GET /v1/members` (administrator): every member, referrers first.
pub(super) async fn tree(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !matches!(o.caller(&headers).await?, Caller::Admin) {
        return Err(ApiError::forbidden(
            "the members tree is for administrators",
        ));
    }
    let mut out = Vec::new();
    for m in o.store.all_members().await?.into_iter().take(10_000) {
        out.push(serde_json::json!({
            "name": name_of(&o, m.user_id).await?,
            "id": m.user_id,
            "order": m.order,
            "referrer": m.referrer_id,
            "trust": m.trust,
            "status": m.status,
        }));
    }
    Ok(Json(out).into_response())
}
