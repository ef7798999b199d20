//! `tracecast members`: admission by referral with trust (DESIGN.md "004").

use std::collections::BTreeMap;
use std::process::ExitCode;

use tracecast_members::api::{AdmitRequest, ApplicationStatus, ApplyRequest, TreeEntry};
use tracecast_members::{Attributes, Outcome};

use crate::cli::{AttributeArgs, MembersCommand};
use crate::terminal::{origin, runtime};

fn attrs(a: &AttributeArgs) -> Attributes {
    Attributes {
        occupation: a.occupation.clone(),
        place: a.place.clone(),
        history: a.history.clone(),
    }
}

fn tier_name(t: Option<tracecast_delivery::Tier>) -> String {
    t.map_or_else(|| "none".to_owned(), |t| t.to_string())
}

/// Grants or denies a request for reserved content.
async fn decide_reserved(
    conn: &crate::cli::Connection,
    request: i64,
    grant: bool,
) -> anyhow::Result<()> {
    let r = origin(conn)?.decide_reserved(request, grant).await?;
    println!(
        "request {request}: {} ({} of {} asked granted, {} denied; {} must grant)",
        r.status.as_str(),
        r.granted_by,
        r.asked,
        r.denied_by,
        r.rule.as_str()
    );
    Ok(())
}

pub fn run(cmd: MembersCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            MembersCommand::Admit {
                user,
                operator,
                document,
                attributes,
                conn,
            } => {
                let m = origin(&conn)?
                    .admit_member(&AdmitRequest {
                        user: user.clone(),
                        attributes: attrs(&attributes),
                        operator: operator.clone(),
                        document,
                    })
                    .await?;
                println!(
                    "{user}: first-order member, trust {:.3} (checked by {operator})",
                    m.trust
                );
            }
            MembersCommand::Register {
                document,
                attributes,
                conn,
            } => {
                let r = origin(&conn)?
                    .register_membership(&tracecast_members::api::RegisterRequest {
                        attributes: attrs(&attributes),
                        document,
                    })
                    .await?;
                println!(
                    "registered {} (attribute trust {:.3}); show the document at the registration desk to be admitted",
                    r.user, r.attribute_trust
                );
            }
            MembersCommand::Apply {
                referrer,
                attributes,
                conn,
            } => {
                let r = origin(&conn)?
                    .apply_for_membership(&ApplyRequest {
                        referrer: referrer.clone(),
                        attributes: attrs(&attributes),
                    })
                    .await?;
                println!(
                    "application {} sent through {referrer}: {} level(s) must approve; they find it in their mailbox",
                    r.application, r.levels
                );
            }
            MembersCommand::Approve {
                application,
                rating,
                conn,
            } => {
                let r = origin(&conn)?
                    .approve_application(application, rating)
                    .await?;
                match (r.status, &r.member) {
                    (ApplicationStatus::Admitted, Some(m)) => println!(
                        "application {application}: admitted as order {} with trust {:.3}",
                        m.order, m.trust
                    ),
                    _ => println!(
                        "application {application}: approved; {} of {} level(s) so far",
                        r.approved_levels.unwrap_or(0),
                        r.levels.unwrap_or(0)
                    ),
                }
            }
            MembersCommand::Refuse { application, conn } => {
                origin(&conn)?.refuse_application(application).await?;
                println!("application {application}: refused");
            }
            MembersCommand::Show { user, conn } => {
                let r = origin(&conn)?.member(&user).await?;
                let m = &r.member;
                println!(
                    "{user}: order {}, trust {:.3} (attributes {:.3} x referrer x ratings {:.3}), {}",
                    m.order,
                    m.trust,
                    m.attribute_trust,
                    m.rating,
                    m.status.as_str()
                );
                println!(
                    "  best quality: audio {}, pictures {}",
                    tier_name(r.best_audio),
                    tier_name(r.best_picture)
                );
                for c in &r.chain {
                    println!(
                        "  referred by {} (order {}, trust {:.3}, {})",
                        c.name,
                        c.order,
                        c.trust,
                        c.status.as_str()
                    );
                }
            }
            MembersCommand::Ask { content, conn } => {
                let r = origin(&conn)?.ask_reserved(content).await?;
                match (r.status, r.asked.is_empty()) {
                    (Outcome::Granted, true) => println!(
                        "content {content}: granted ({})",
                        r.why.as_deref().unwrap_or("")
                    ),
                    (status, _) => println!(
                        "content {content}: request {} {}; asked {} ({} must grant)",
                        r.request.map_or_else(|| "?".to_owned(), |n| n.to_string()),
                        status.as_str(),
                        r.asked.join(", "),
                        r.rule.unwrap_or_default().as_str()
                    ),
                }
            }
            MembersCommand::Grant { request, conn } => {
                decide_reserved(&conn, request, true).await?
            }
            MembersCommand::Deny { request, conn } => {
                decide_reserved(&conn, request, false).await?
            }
            MembersCommand::Tree { json: as_json, conn } => {
                let all = origin(&conn)?.members().await?;
                if as_json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                    return Ok(ExitCode::SUCCESS);
                }
                let mut children: BTreeMap<Option<i64>, Vec<&TreeEntry>> = BTreeMap::new();
                for m in &all {
                    children.entry(m.referrer).or_default().push(m);
                }
                fn walk(
                    children: &BTreeMap<Option<i64>, Vec<&TreeEntry>>,
                    at: Option<i64>,
                    depth: usize,
                ) {
                    for m in children.get(&at).into_iter().flatten() {
                        println!(
                            "{}{} (order {}, trust {:.3}{}{}{})",
                            "  ".repeat(depth),
                            m.name,
                            m.order,
                            m.trust,
                            if m.standing < 1.0 {
                                format!(", standing {:.3}", m.standing)
                            } else {
                                String::new()
                            },
                            if m.leaks > 0 {
                                format!(", {} leak(s)", m.leaks)
                            } else {
                                String::new()
                            },
                            if m.status == tracecast_members::Status::Active { "" } else { ", SUSPENDED" }
                        );
                        walk(children, Some(m.id), depth + 1);
                    }
                }
                walk(&children, None, 0);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
