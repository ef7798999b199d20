//! `tracecast members`: admission by referral with trust (DESIGN.md "004").

use std::collections::BTreeMap;
use std::process::ExitCode;

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{AttributeArgs, MembersCommand};
use crate::delivery::{origin, runtime};

fn attrs(a: &AttributeArgs) -> Value {
    json!({"occupation": a.occupation, "place": a.place, "history": a.history})
}

/// Grants or denies a request for reserved content.
async fn decide_reserved(
    conn: &crate::cli::Connection,
    request: i64,
    verb: &str,
) -> anyhow::Result<()> {
    let r = origin(conn)?
        .call(
            Method::POST,
            &format!("/v1/members/reserved/{request}/{verb}"),
            None,
        )
        .await?;
    println!(
        "request {request}: {} ({} of {} asked granted, {} denied; {} must grant)",
        r["status"].as_str().unwrap_or("?"),
        r["granted_by"],
        r["asked"],
        r["denied_by"],
        r["rule"].as_str().unwrap_or("all")
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
                    .call(
                        Method::POST,
                        "/v1/members/admit",
                        Some(&json!({
                            "user": user, "operator": operator, "document": document,
                            "attributes": attrs(&attributes),
                        })),
                    )
                    .await?;
                println!(
                    "{user}: first-order member, trust {:.3} (checked by {operator})",
                    m["trust"].as_f64().unwrap_or(0.0)
                );
            }
            MembersCommand::Apply {
                referrer,
                attributes,
                conn,
            } => {
                let r = origin(&conn)?
                    .call(
                        Method::POST,
                        "/v1/members/apply",
                        Some(&json!({"referrer": referrer, "attributes": attrs(&attributes)})),
                    )
                    .await?;
                println!(
                    "application {} sent through {referrer}: {} level(s) must approve; they find it in their mailbox",
                    r["application"], r["levels"]
                );
            }
            MembersCommand::Approve {
                application,
                rating,
                conn,
            } => {
                let r = origin(&conn)?
                    .call(
                        Method::POST,
                        &format!("/v1/members/applications/{application}/approve"),
                        Some(&json!({"rating": rating})),
                    )
                    .await?;
                match r["status"].as_str() {
                    Some("admitted") => println!(
                        "application {application}: admitted as order {} with trust {:.3}",
                        r["member"]["order"],
                        r["member"]["trust"].as_f64().unwrap_or(0.0)
                    ),
                    _ => println!(
                        "application {application}: approved; {} of {} level(s) so far",
                        r["approved_levels"], r["levels"]
                    ),
                }
            }
            MembersCommand::Refuse { application, conn } => {
                origin(&conn)?
                    .call(
                        Method::POST,
                        &format!("/v1/members/applications/{application}/refuse"),
                        None,
                    )
                    .await?;
                println!("application {application}: refused");
            }
            MembersCommand::Show { user, conn } => {
                let r = origin(&conn)?
                    .call(Method::GET, &format!("/v1/members/{user}"), None)
                    .await?;
                let m = &r["member"];
                println!(
                    "{user}: order {}, trust {:.3} (attributes {:.3} x referrer x ratings {:.3}), {}",
                    m["order"],
                    m["trust"].as_f64().unwrap_or(0.0),
                    m["attribute_trust"].as_f64().unwrap_or(0.0),
                    m["rating"].as_f64().unwrap_or(0.0),
                    m["status"].as_str().unwrap_or("")
                );
                println!(
                    "  best quality: audio {}, pictures {}",
                    r["best_audio"].as_str().unwrap_or("none"),
                    r["best_picture"].as_str().unwrap_or("none")
                );
                for c in r["chain"].as_array().into_iter().flatten() {
                    println!(
                        "  referred by {} (order {}, trust {:.3}, {})",
                        c["name"].as_str().unwrap_or("?"),
                        c["order"],
                        c["trust"].as_f64().unwrap_or(0.0),
                        c["status"].as_str().unwrap_or("")
                    );
                }
            }
            MembersCommand::Ask { content, conn } => {
                let r = origin(&conn)?
                    .call(
                        Method::POST,
                        "/v1/members/reserved",
                        Some(&json!({ "content": content })),
                    )
                    .await?;
                let asked: Vec<&str> = r["asked"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                match r["status"].as_str() {
                    Some("granted") if asked.is_empty() => println!(
                        "content {content}: granted ({})",
                        r["why"].as_str().unwrap_or("")
                    ),
                    Some(status) => println!(
                        "content {content}: request {} {status}; asked {} ({} must grant)",
                        r["request"],
                        asked.join(", "),
                        r["rule"].as_str().unwrap_or("all")
                    ),
                    None => println!("content {content}: {r}"),
                }
            }
            MembersCommand::Grant { request, conn } => {
                decide_reserved(&conn, request, "grant").await?
            }
            MembersCommand::Deny { request, conn } => {
                decide_reserved(&conn, request, "deny").await?
            }
            MembersCommand::Tree { json: as_json, conn } => {
                let all = origin(&conn)?.call(Method::GET, "/v1/members", None).await?;
                if as_json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                    return Ok(ExitCode::SUCCESS);
                }
                let list = all.as_array().cloned().unwrap_or_default();
                let mut children: BTreeMap<Option<i64>, Vec<&Value>> = BTreeMap::new();
                for m in &list {
                    children.entry(m["referrer"].as_i64()).or_default().push(m);
                }
                fn walk(
                    children: &BTreeMap<Option<i64>, Vec<&Value>>,
                    at: Option<i64>,
                    depth: usize,
                ) {
                    for m in children.get(&at).into_iter().flatten() {
                        let standing = m["standing"].as_f64().unwrap_or(1.0);
                        let leaks = m["leaks"].as_i64().unwrap_or(0);
                        println!(
                            "{}{} (order {}, trust {:.3}{}{}{})",
                            "  ".repeat(depth),
                            m["name"].as_str().unwrap_or("?"),
                            m["order"],
                            m["trust"].as_f64().unwrap_or(0.0),
                            if standing < 1.0 {
                                format!(", standing {standing:.3}")
                            } else {
                                String::new()
                            },
                            if leaks > 0 {
                                format!(", {leaks} leak(s)")
                            } else {
                                String::new()
                            },
                            if m["status"] == "active" { "" } else { ", SUSPENDED" }
                        );
                        walk(children, m["id"].as_i64(), depth + 1);
                    }
                }
                walk(&children, None, 0);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
