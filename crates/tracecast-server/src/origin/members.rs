//! Members (DESIGN.md "004") at the origin, the copyright management
//! server: operators admit first-order members after a face-to-face
//! identity check; applicants ask through a member, and the request is
//! relayed through the mailbox to that member and up the chain for the
//! policy's levels; each approves with a rating (or refuses); when every
//! level has approved, the origin checks the approvals with
//! `tracecast-members` and admits the applicant with their final trust.
//!
//! Content reserved for the first orders is asked for through the same
//! chain (all or any of the upstream members approve, by policy), and a
//! leak traced to a member suspends them and lowers the standing of their
//! referrers ([`account_for_leak`]).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tracecast_delivery::api::{Accountability, TrustChange};
use tracecast_members::api::{
    AdmitRequest, ApplicationStatus, Applied, ApplyRequest, ApproveRequest, AskReserved, ChainLink,
    Decided, MemberInfo, MemberView, RegisterRequest, Registered, Reservation, ReservedAnswer,
    ReservedDecided, SetReserved, TreeEntry,
};
use tracecast_members::{
    admit_first, admit_referred, Approval, Approvals, Attributes, Member, Outcome, Status,
};
use tracecast_store::{AccountId, AccountKind, LeakChanges, MemberRecord, UserId};

use super::{Caller, Origin};
use crate::openapi::{ErrorBody, Refusals};
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

/// Origin → applicant: their application for referred membership was
/// decided (DESIGN.md "004": the applicant hears the outcome, and when
/// admitted their final trust and the best quality it receives).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MembershipDecision {
    /// The application through a referrer; none for a first-order
    /// admission at the registration desk.
    pub application: Option<i64>,
    pub status: ApplicationStatus,
    /// Admitted: the member's order, final trust and best tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_audio: Option<tracecast_delivery::Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_picture: Option<tracecast_delivery::Tier>,
    /// Refused: by whom (their user name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_by: Option<String>,
}

impl MembershipDecision {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.membership-decision+json";
}

/// Origin → member: their request for reserved content was decided.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservedDecision {
    pub request: i64,
    pub content: i64,
    pub title: String,
    pub status: Outcome,
    pub granted_by: u32,
    pub denied_by: u32,
    pub asked: u32,
    pub rule: Approvals,
}

impl ReservedDecision {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.reserved-decision+json";
}

/// What an admitted applicant is told: their order, final trust and the
/// best tiers it receives.
fn admitted(o: &Origin, application: Option<i64>, m: &MemberRecord) -> MembershipDecision {
    let best = |kind| o.config.members.quality.tier(m.trust, kind);
    MembershipDecision {
        application,
        status: ApplicationStatus::Admitted,
        order: Some(m.order),
        trust: Some(m.trust),
        best_audio: best(tracecast_delivery::ContentKind::Audio),
        best_picture: best(tracecast_delivery::ContentKind::Picture),
        refused_by: None,
    }
}

/// Tells a user an outcome through their box, once (`key`).
async fn tell(
    o: &Origin,
    user: UserId,
    media_type: &str,
    body: &impl Serialize,
    key: String,
) -> Result<(), ApiError> {
    let Some(acct) = o.store.account(AccountId::User(user)).await? else {
        return Ok(());
    };
    o.mailbox
        .send(
            acct.box_id,
            media_type,
            serde_json::to_vec(body).expect("serialises"),
            Some(key),
        )
        .await?;
    Ok(())
}

/// A stored member as the API shows them.
pub(super) fn member_info(m: &MemberRecord) -> MemberInfo {
    MemberInfo {
        user_id: m.user_id.get(),
        order: m.order,
        referrer_id: m.referrer_id.map(UserId::get),
        attribute_trust: m.attribute_trust,
        rating: m.rating,
        trust: m.trust,
        status: m.status,
        // Written by this origin from an `Attributes`; an unreadable
        // record shows empty attributes rather than failing the page.
        attributes: serde_json::from_str(&m.attributes).unwrap_or_default(),
        admitted_at: m.admitted_at,
        standing: m.standing,
    }
}

fn to_rules(m: &MemberRecord) -> Member {
    Member {
        id: m.user_id.get(),
        order: m.order as u32,
        referrer: m.referrer_id.map(UserId::get),
        attribute_trust: m.attribute_trust,
        rating: m.rating,
        trust: m.trust,
        status: m.status,
    }
}

fn rule_error(e: tracecast_members::MembersError) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", e.to_string())
}

async fn user_named(o: &Origin, name: &str) -> Result<(UserId, i64), ApiError> {
    o.store.user_by_name(name).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_user",
            format!("there is no user named {name:?}"),
        )
    })
}

async fn name_of(o: &Origin, user: UserId) -> Result<String, ApiError> {
    Ok(o.store
        .account(AccountId::User(user))
        .await?
        .map(|a| a.name)
        .unwrap_or_else(|| format!("user {user}")))
}

/// Admits a first-order member after a face-to-face identity check (administrators).
///
/// The operator who checked and the document checked are recorded.
#[utoipa::path(post, path = "/v1/members/admit", tag = "members", security(("bearer" = [])),
    request_body = AdmitRequest,
    responses(
        (status = 201, description = "Admitted.", body = MemberInfo),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape, or the policy refuses the member.", body = ErrorBody),
        Refusals))]
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
    let Json(req) = body?;
    if req.operator.trim().is_empty() || req.document.trim().is_empty() {
        return Err(ApiError::bad_request(
            "name the operator who checked and the document checked",
        ));
    }
    let (user, _) = user_named(&o, &req.user).await?;
    // A registration the applicant started themselves (claims 5 and 10):
    // the document shown must be the one they declared, and their declared
    // attributes stand unless the operator corrects them.
    let registration = o.store.member_registration(user).await?;
    let attributes = match &registration {
        Some(r) => {
            if document_hash(&req.document) != r.document_sha256 {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "document_mismatch",
                    "the document checked is not the one the applicant registered with; nothing was admitted",
                ));
            }
            if req.attributes == Attributes::default() {
                serde_json::from_str(&r.attributes).unwrap_or_default()
            } else {
                req.attributes.clone()
            }
        }
        None => req.attributes.clone(),
    };
    let a = admit_first(o.config.attributes.trust(&attributes)).map_err(rule_error)?;
    let m = o
        .store
        .add_member(
            user,
            1,
            None,
            a.attribute_trust,
            a.rating,
            a.trust,
            &serde_json::to_string(&attributes).expect("serialises"),
            Some((req.operator.trim(), req.document.trim())),
        )
        .await?;
    tracing::info!(user = %req.user, trust = m.trust, operator = %req.operator, "first-order member admitted");
    if registration.is_some() {
        o.store.drop_member_registration(user).await?;
        // The applicant's client hears the registration is granted.
        let said = admitted(&o, None, &m);
        let key = format!("membership-decision-first-{}", user.get());
        tell(&o, user, MembershipDecision::MEDIA_TYPE, &said, key).await?;
    }
    Ok((StatusCode::CREATED, Json(member_info(&m))).into_response())
}

/// A document reference as kept before its check: SHA-256 of its
/// trimmed, lower-case text (hex).
fn document_hash(document: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        document.trim().to_lowercase().as_bytes(),
    ))
}

/// Starts one's own first-order registration (users).
///
/// The attributes declared and the identity document to be shown (kept
/// as a hash); an operator completes it after the face-to-face check
/// (`POST /v1/members/admit`), and the applicant hears the outcome in
/// their box. Registering again replaces the registration.
#[utoipa::path(post, path = "/v1/members/register", tag = "members", security(("bearer" = [])),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered; waiting for the face-to-face check.", body = Registered),
        (status = 409, description = "Already a member.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
pub(super) async fn register(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<RegisterRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (me_id, me) = caller.user()?;
    let me = me.clone();
    let Json(req) = body?;
    let document = req.document.trim();
    if document.is_empty() || document.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "name the document you will show: a kind and a short reference, at most 200 characters",
        ));
    }
    if o.store.member(me_id).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_member",
            "you are a member already",
        ));
    }
    let trust = o.config.attributes.trust(&req.attributes);
    let r = o
        .store
        .register_member(
            me_id,
            &serde_json::to_string(&req.attributes).expect("serialises"),
            &document_hash(document),
        )
        .await?;
    tracing::info!(user = %me.name, "first-order registration started");
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            user: me.name,
            attributes: req.attributes,
            attribute_trust: trust,
            registered_at: r.registered_at,
        }),
    )
        .into_response())
}

/// Applies for membership through a member, the referrer (users).
///
/// The application goes to the referrer and up their chain, each level
/// through its box, for the policy's number of levels.
#[utoipa::path(post, path = "/v1/members/apply", tag = "members", security(("bearer" = [])),
    request_body = ApplyRequest,
    responses(
        (status = 201, description = "Relayed to the chain.", body = Applied),
        (status = 404, description = "No user of the referrer's name.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape; or the referrer is not a member, is suspended, or is the applicant.", body = ErrorBody),
        Refusals))]
pub(super) async fn apply(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<ApplyRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (me_id, me) = caller.user()?;
    let me = me.clone();
    let Json(req) = body?;
    if o.store.member(me_id).await?.is_some() {
        return Err(ApiError::bad_request("you are a member already"));
    }
    let (referrer_id, _) = user_named(&o, &req.referrer).await?;
    if referrer_id == me_id {
        return Err(rule_error(tracecast_members::MembersError::SelfApproval));
    }
    let referrer = o.store.member(referrer_id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_member",
            format!("{} is not a member and cannot refer", req.referrer),
        )
    })?;
    if referrer.status != Status::Active {
        return Err(rule_error(tracecast_members::MembersError::Suspended(
            referrer_id.get(),
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
        .add_application(me_id, referrer_id, &attrs, trust, i64::from(levels))
        .await?;
    // The request goes to the referrer and up the chain, each through
    // their box.
    for (k, m) in chain.iter().take(levels as usize).enumerate() {
        let level = k as u32 + 1;
        let Some(acct) = o.store.account(AccountId::User(m.user_id)).await? else {
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
                Some(format!("member-application-{id}-{level}")),
            )
            .await?;
    }
    tracing::info!(application = id, applicant = %me.name, referrer = %req.referrer, levels, "membership application relayed");
    Ok((
        StatusCode::CREATED,
        Json(Applied {
            application: id,
            referrer: req.referrer,
            levels,
            attribute_trust: trust,
            status: ApplicationStatus::Pending,
        }),
    )
        .into_response())
}

/// A member of the chain approves (with a rating) or refuses an application.
///
/// One refusal closes it; once every level approved, the applicant is
/// admitted with their final trust.
#[utoipa::path(post, path = "/v1/members/applications/{id}/{verb}", tag = "members", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The application."),
        ("verb" = String, Path, pattern = "^(approve|refuse)$", description = "`approve` or `refuse`.")),
    request_body(content = Option<ApproveRequest>, description = "With `approve`: the rating, 0 to 1. `refuse` takes no body."),
    responses(
        (status = 200, description = "The application after the caller's word: pending, admitted or refused.", body = Decided),
        (status = 404, description = "No pending application of that id, or a verb other than approve and refuse.", body = ErrorBody),
        (status = 409, description = "The referrer is no longer a member.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape; or the rating is out of range, the caller is suspended or the applicant, or the policy refuses the admission.", body = ErrorBody),
        Refusals))]
pub(super) async fn decide(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path((id, verb)): Path<(i64, String)>,
    body: Result<Json<ApproveRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (me_id, me) = caller.user()?;
    let me = me.clone();
    let app = o
        .store
        .application(id)
        .await?
        .filter(|a| a.status == ApplicationStatus::Pending)
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
        .position(|m| m.user_id == me_id)
        .ok_or_else(|| ApiError::forbidden("you are not asked to approve this application"))?
        as u32
        + 1;
    if me_id == app.user_id {
        return Err(rule_error(tracecast_members::MembersError::SelfApproval));
    }
    match verb.as_str() {
        "refuse" => {
            o.store
                .close_application(id, ApplicationStatus::Refused)
                .await?;
            tracing::info!(application = id, by = %me.name, "membership application refused");
            let said = MembershipDecision {
                application: Some(id),
                status: ApplicationStatus::Refused,
                order: None,
                trust: None,
                best_audio: None,
                best_picture: None,
                refused_by: Some(me.name.clone()),
            };
            let key = format!("membership-decision-{id}");
            tell(&o, app.user_id, MembershipDecision::MEDIA_TYPE, &said, key).await?;
            return Ok(Json(Decided {
                application: id,
                status: ApplicationStatus::Refused,
                approved_levels: None,
                levels: None,
                member: None,
            })
            .into_response());
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
    let Json(req) = body?;
    let rating = req.rating;
    if !(rating.is_finite() && (0.0..=1.0).contains(&rating)) {
        return Err(rule_error(tracecast_members::MembersError::OutOfRange(
            rating,
        )));
    }
    if chain[level as usize - 1].status != Status::Active {
        return Err(rule_error(tracecast_members::MembersError::Suspended(
            me_id.get(),
        )));
    }
    o.store
        .add_approval(id, i64::from(level), me_id, rating)
        .await?;
    let approvals: Vec<Approval> = o
        .store
        .approvals(id)
        .await?
        .into_iter()
        .map(|(level, approver, rating)| Approval {
            approver: approver.get(),
            level: level as u32,
            rating,
        })
        .collect();
    if approvals.len() < app.levels as usize {
        return Ok(Json(Decided {
            application: id,
            status: ApplicationStatus::Pending,
            approved_levels: Some(approvals.len() as u32),
            levels: Some(app.levels as u32),
            member: None,
        })
        .into_response());
    }
    let rules: Vec<Member> = chain.iter().map(to_rules).collect();
    let mut policy = o.config.members.clone();
    policy.relay_levels = app.levels as u32;
    let a = admit_referred(
        app.user_id.get(),
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
            a.referrer.map(UserId),
            a.attribute_trust,
            a.rating,
            a.trust,
            &app.attributes,
            None,
        )
        .await?;
    o.store
        .close_application(id, ApplicationStatus::Admitted)
        .await?;
    tracing::info!(
        application = id,
        user = %app.user_id,
        order = m.order,
        trust = m.trust,
        "member admitted by referral"
    );
    let said = admitted(&o, Some(id), &m);
    let key = format!("membership-decision-{id}");
    tell(&o, app.user_id, MembershipDecision::MEDIA_TYPE, &said, key).await?;
    Ok(Json(Decided {
        application: id,
        status: ApplicationStatus::Admitted,
        approved_levels: None,
        levels: None,
        member: Some(member_info(&m)),
    })
    .into_response())
}

/// A member with their chain of referrers and the best tiers their trust receives (the member, or an administrator).
#[utoipa::path(get, path = "/v1/members/{name}", tag = "members", security(("bearer" = [])),
    params(("name" = String, Path, description = "The member's user name.")),
    responses(
        (status = 200, description = "The member.", body = MemberView),
        (status = 404, description = "No such user, or the user is not a member.", body = ErrorBody),
        Refusals))]
pub(super) async fn show(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    // Who may look is settled before the name is looked up, so a user
    // cannot learn which names exist from 404 and 403.
    let refused = || ApiError::forbidden("a member's record is for them and administrators");
    match &caller {
        Caller::Admin => {}
        Caller::Account(a) if a.kind() == AccountKind::User && a.name == name => {}
        _ => return Err(refused()),
    }
    let (user, _) = user_named(&o, &name).await?;
    if let Caller::Account(a) = &caller {
        if a.id != AccountId::User(user) {
            return Err(refused());
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
        chain.push(ChainLink {
            name: name_of(&o, c.user_id).await?,
            order: c.order,
            trust: c.trust,
            status: c.status,
        });
    }
    let best = |kind| o.config.members.quality.tier(m.trust, kind);
    Ok(Json(MemberView {
        name,
        member: member_info(&m),
        chain,
        best_audio: best(tracecast_delivery::ContentKind::Audio),
        best_picture: best(tracecast_delivery::ContentKind::Picture),
    })
    .into_response())
}

/// Every member, referrers first, with the leaks traced to each (administrators).
#[utoipa::path(get, path = "/v1/members", tag = "members", security(("bearer" = [])),
    responses((status = 200, description = "The members tree (at most 10000).", body = Vec<TreeEntry>), Refusals))]
pub(super) async fn tree(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !matches!(o.caller(&headers).await?, Caller::Admin) {
        return Err(ApiError::forbidden(
            "the members tree is for administrators",
        ));
    }
    let leaks: std::collections::HashMap<i64, i64> =
        o.store.leak_counts().await?.into_iter().collect();
    let mut out = Vec::new();
    for m in o.store.all_members().await?.into_iter().take(10_000) {
        out.push(TreeEntry {
            name: name_of(&o, m.user_id).await?,
            id: m.user_id.get(),
            order: m.order,
            referrer: m.referrer_id.map(UserId::get),
            trust: m.trust,
            standing: m.standing,
            status: m.status,
            leaks: leaks.get(&m.user_id.get()).copied().unwrap_or(0),
        });
    }
    Ok(Json(out).into_response())
}

/// The message each upstream member receives when a member asks for
/// reserved content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservedContentRequest {
    pub request: i64,
    pub member: String,
    pub member_order: i64,
    pub content: i64,
    pub title: String,
    pub up_to_order: i64,
    /// Whether every member asked must grant it, or any one.
    pub rule: Approvals,
}

impl ReservedContentRequest {
    pub const MEDIA_TYPE: &'static str = "application/vnd.tracecast.reserved-request+json";
}

/// Granted outright, and why.
fn granted(content: i64, why: String) -> ReservedAnswer {
    ReservedAnswer {
        content,
        status: Outcome::Granted,
        request: None,
        why: Some(why),
        asked: Vec::new(),
        rule: None,
    }
}

/// A member's standing as the purchase decision reads it.
pub(super) fn member_fact(m: &MemberRecord) -> tracecast_purchase::Member {
    tracecast_purchase::Member {
        active: m.status == Status::Active,
        trust: m.trust,
        order: m.order,
    }
}

/// The member's open request to their upstream members for content `c`.
pub(super) async fn reserved_request(
    o: &Origin,
    user: UserId,
    content: i64,
) -> Result<tracecast_purchase::ReservedRequest, ApiError> {
    use tracecast_purchase::ReservedRequest;
    Ok(match o.store.open_reserved_request(user, content).await? {
        Some(r) if r.status == Outcome::Granted => ReservedRequest::Granted,
        Some(r) => ReservedRequest::Waiting(r.id),
        None => ReservedRequest::None,
    })
}

/// Asks the upstream members for a content reserved for lower orders (members).
///
/// Granted outright when the content is not reserved or the member's order
/// receives it; asking again answers the request already open.
#[utoipa::path(post, path = "/v1/members/reserved", tag = "members", security(("bearer" = [])),
    request_body = AskReserved,
    responses(
        (status = 201, description = "A request went up the chain.", body = ReservedAnswer),
        (status = 200, description = "Granted outright, or the request already open.", body = ReservedAnswer),
        (status = 404, description = "No such content.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape; or the caller is suspended, or no upstream member is active to approve.", body = ErrorBody),
        Refusals))]
pub(super) async fn ask_reserved(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    body: Result<Json<AskReserved>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (me_id, me) = caller.user()?;
    let me = me.clone();
    let Json(req) = body?;
    let c = o.content_or_404(req.content).await?;
    let Some(up_to) = c.reserved_up_to_order else {
        return Ok(Json(granted(c.id, "the content is not reserved".into())).into_response());
    };
    let m = o.store.member(me_id).await?;
    if let Some(m) = &m {
        if m.status != Status::Active {
            return Err(rule_error(tracecast_members::MembersError::Suspended(
                me_id.get(),
            )));
        }
    }
    // A store failure is an error of its own; only the rule's refusal
    // goes on to asking upstream (and a non-member cannot ask).
    let request = match &m {
        Some(_) => reserved_request(&o, me_id, c.id).await?,
        None => tracecast_purchase::ReservedRequest::None,
    };
    let decision =
        tracecast_purchase::reserved(c.id, up_to, m.as_ref().map(member_fact).as_ref(), request);
    let m = match (decision, m) {
        (Ok(()), _) => {
            let why = match o.store.open_reserved_request(me_id, c.id).await? {
                Some(r) => format!("request {} was granted", r.id),
                None => format!("members of order {up_to} or above receive it freely"),
            };
            return Ok(Json(granted(c.id, why)).into_response());
        }
        (Err(refusal), None) => return Err(refusal.into()),
        (Err(_), Some(m)) => m,
    };
    let names = |ids: Vec<UserId>| {
        let o = o.clone();
        async move {
            let mut out = Vec::new();
            for id in ids {
                out.push(name_of(&o, id).await?);
            }
            Ok::<_, ApiError>(out)
        }
    };
    if let Some(r) = o.store.open_reserved_request(me_id, c.id).await? {
        return Ok(Json(ReservedAnswer {
            content: c.id,
            status: r.status,
            request: Some(r.id),
            why: None,
            asked: names(r.asked).await?,
            rule: Some(r.rule),
        })
        .into_response());
    }
    let policy = &o.config.members;
    // DESIGN.md "004" claim 8: every upstream member from the content's
    // order up to the member's own order less one is asked (the chain,
    // referrer first, has one member per order).
    let depth = (m.order - up_to).clamp(1, 64) as usize;
    let chain = o.store.member_chain(me_id, depth).await?;
    // A suspended member cannot approve: asking them would wait forever.
    let asked: Vec<&MemberRecord> = chain
        .iter()
        .filter(|a| a.order >= up_to && a.status == Status::Active)
        .collect();
    if asked.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_upstream_member",
            "no upstream member can approve this request (none is active)",
        ));
    }
    let ids: Vec<UserId> = asked.iter().map(|a| a.user_id).collect();
    let rule = policy.reserved;
    let id = o
        .store
        .add_reserved_request(me_id, c.id, &ids, rule)
        .await?;
    for a in &asked {
        let Some(acct) = o.store.account(AccountId::User(a.user_id)).await? else {
            continue;
        };
        let msg = ReservedContentRequest {
            request: id,
            member: me.name.clone(),
            member_order: m.order,
            content: c.id,
            title: c.title.clone(),
            up_to_order: up_to,
            rule: policy.reserved,
        };
        o.mailbox
            .send(
                acct.box_id,
                ReservedContentRequest::MEDIA_TYPE,
                serde_json::to_vec(&msg).expect("serialises"),
                Some(format!("reserved-request-{id}-{}", a.user_id)),
            )
            .await?;
    }
    tracing::info!(request = id, member = %me.name, content = c.id, asked = ids.len(), rule = rule.as_str(), "reserved content asked for");
    Ok((
        StatusCode::CREATED,
        Json(ReservedAnswer {
            content: c.id,
            status: Outcome::Pending,
            request: Some(id),
            why: None,
            asked: names(ids).await?,
            rule: Some(policy.reserved),
        }),
    )
        .into_response())
}

/// An upstream member asked grants or denies a request for reserved content.
///
/// The request is decided by the policy's rule (all or any of those asked).
#[utoipa::path(post, path = "/v1/members/reserved/{id}/{verb}", tag = "members", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The request."),
        ("verb" = String, Path, pattern = "^(grant|deny)$", description = "`grant` or `deny`.")),
    responses(
        (status = 200, description = "The request after the caller's word.", body = ReservedDecided),
        (status = 404, description = "No pending request of that id, or a verb other than grant and deny.", body = ErrorBody),
        (status = 409, description = "The caller answered this request already.", body = ErrorBody),
        (status = 422, description = "The caller asked for it themself, or is suspended or not a member.", body = ErrorBody),
        Refusals))]
pub(super) async fn decide_reserved(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path((id, verb)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let (me_id, _) = caller.user()?;
    let approve = match verb.as_str() {
        "grant" => true,
        "deny" => false,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                "grant or deny",
            ))
        }
    };
    let r = o
        .store
        .reserved_request(id)
        .await?
        .filter(|r| r.status == Outcome::Pending)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_request",
                format!("no pending request {id}"),
            )
        })?;
    if me_id == r.user_id {
        return Err(rule_error(tracecast_members::MembersError::SelfApproval));
    }
    if !r.asked.contains(&me_id) {
        return Err(ApiError::forbidden("you are not asked about this request"));
    }
    if o.store
        .member(me_id)
        .await?
        .is_none_or(|m| m.status != Status::Active)
    {
        return Err(rule_error(tracecast_members::MembersError::Suspended(
            me_id.get(),
        )));
    }
    let decisions = o
        .store
        .add_reserved_decision(id, me_id, approve)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "already_answered",
                format!("you have already answered request {id}"),
            )
        })?;
    let yes: Vec<i64> = decisions
        .iter()
        .filter(|d| d.1)
        .map(|d| d.0.get())
        .collect();
    let no: Vec<i64> = decisions
        .iter()
        .filter(|d| !d.1)
        .map(|d| d.0.get())
        .collect();
    let asked: Vec<i64> = r.asked.iter().map(|a| a.get()).collect();
    let policy = tracecast_members::Policy {
        reserved: r.rule,
        ..o.config.members.clone()
    };
    let outcome = policy.reserved_outcome(&asked, &yes, &no);
    if outcome != Outcome::Pending && o.store.close_reserved_request(id, outcome).await? {
        tracing::info!(
            request = id,
            outcome = outcome.as_str(),
            "reserved content request decided"
        );
        let title = o
            .store
            .content(r.content_id)
            .await?
            .map(|c| c.title)
            .unwrap_or_default();
        let said = ReservedDecision {
            request: id,
            content: r.content_id,
            title,
            status: outcome,
            granted_by: yes.len() as u32,
            denied_by: no.len() as u32,
            asked: r.asked.len() as u32,
            rule: policy.reserved,
        };
        let key = format!("reserved-decision-{id}");
        tell(&o, r.user_id, ReservedDecision::MEDIA_TYPE, &said, key).await?;
    }
    Ok(Json(ReservedDecided {
        request: id,
        status: outcome,
        granted_by: yes.len() as u32,
        denied_by: no.len() as u32,
        asked: r.asked.len() as u32,
        rule: policy.reserved,
    })
    .into_response())
}

/// Reserves a content for members up to an order, or frees it (the content's provider, or an administrator).
///
/// `{"up_to_order": N}` reserves it, `null` frees it.
#[utoipa::path(put, path = "/v1/contents/{id}/reserved", tag = "contents", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The content.")),
    request_body = SetReserved,
    responses(
        (status = 200, description = "The reservation as set.", body = Reservation),
        (status = 404, description = "No such content.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 422, description = "The body is JSON of the wrong shape.", body = ErrorBody),
        Refusals))]
pub(super) async fn set_reserved(
    State(o): State<Arc<Origin>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<SetReserved>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = o.caller(&headers).await?;
    let c = o.content_or_404(id).await?;
    match &caller {
        Caller::Admin => {}
        Caller::Account(a) if a.id == AccountId::Provider(c.provider_id) => {}
        _ => {
            return Err(ApiError::forbidden(
                "only the content's provider or an administrator reserves it",
            ))
        }
    }
    let Json(req) = body?;
    if req.up_to_order.is_some_and(|n| n < 1) {
        return Err(ApiError::bad_request("orders start at 1"));
    }
    o.store.set_content_reserved(id, req.up_to_order).await?;
    tracing::info!(content = id, up_to_order = ?req.up_to_order, "content reservation set");
    Ok(Json(Reservation {
        content: id,
        reserved_up_to_order: req.up_to_order,
    })
    .into_response())
}

/// A leak traced to `user` through `delivery`: the member is suspended, the
/// standing of their referrers drops by the policy's decaying penalty, and
/// the trust of everyone below them is recomputed; all in one transaction,
/// once per leaked delivery. `None` when the user is not a member.
pub(super) async fn account_for_leak(
    o: &Origin,
    delivery: i64,
    user: UserId,
    traced_by: &str,
) -> Result<Option<Accountability>, ApiError> {
    let Some(m) = o.store.member(user).await? else {
        return Ok(None);
    };
    let member = name_of(o, user).await?;
    // One recomputation at a time: each starts from the trusts the last
    // one wrote.
    let _one = o.members_lock.lock().await;
    if o.store.leak_recorded(delivery).await? {
        return Ok(Some(Accountability {
            member,
            delivery,
            suspended: o
                .store
                .member(user)
                .await?
                .is_some_and(|m| m.status != Status::Active),
            first_time: false,
            chain: Vec::new(),
            members_changed: 0,
        }));
    }
    let ancestors = o.store.member_chain(user, 64).await?;
    // A member already suspended answered for an earlier leak; their chain
    // is not punished again.
    let already = m.status != Status::Active;
    let penalties = if already {
        Vec::new()
    } else {
        o.config
            .members
            .leak(&ancestors.iter().map(to_rules).collect::<Vec<_>>())
    };
    let graph = o.store.member_graph().await?;
    let mut forest = graph.forest().map_err(rule_error)?;
    forest.compute();
    let wanted: std::collections::HashSet<i64> = ancestors
        .iter()
        .map(|a| a.user_id.get())
        .chain([user.get()])
        .collect();
    let at: std::collections::HashMap<i64, usize> = graph
        .user_ids
        .iter()
        .enumerate()
        .filter(|(_, id)| wanted.contains(id))
        .map(|(i, id)| (*id, i))
        .collect();
    let missing = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "members_changed",
            "the membership changed while tracing; trace again",
        )
    };
    if !already {
        forest.suspend(*at.get(&user.get()).ok_or_else(missing)?);
    }
    let mut standings = Vec::new();
    for (id, keep) in &penalties {
        let i = *at.get(id).ok_or_else(missing)?;
        forest.penalise(i, *keep);
        standings.push((*id, forest.node(i).standing));
    }
    let trusts: Vec<(i64, f64)> = forest
        .trust()
        .iter()
        .zip(&graph.trust)
        .zip(&graph.user_ids)
        .filter(|((new, old), _)| (*new - *old).abs() > 1e-12)
        .map(|((new, _), id)| (*id, *new))
        .collect();
    let first_time = o
        .store
        .record_leak(&LeakChanges {
            delivery_id: delivery,
            user_id: user,
            traced_by,
            suspend: !already,
            penalties: &penalties,
            standings: &standings,
            trusts: &trusts,
        })
        .await?;
    let mut chain = Vec::new();
    if first_time {
        for a in &ancestors {
            chain.push(TrustChange {
                member: name_of(o, a.user_id).await?,
                before: a.trust,
                after: at
                    .get(&a.user_id.get())
                    .map_or(a.trust, |i| forest.trust()[*i]),
            });
        }
        tracing::warn!(
            member = %member, delivery, traced_by, chain = ancestors.len(),
            changed = trusts.len(), "leak attributed: member suspended, chain penalised"
        );
    }
    Ok(Some(Accountability {
        member,
        delivery,
        suspended: true,
        first_time,
        chain,
        members_changed: if first_time { trusts.len() } else { 0 },
    }))
}
