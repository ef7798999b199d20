//! The mailbox from the command line, as docs/mailbox.md shows it: serve,
//! create a box, send, fetch into an inbox with room limits, list, read,
//! protect; and clear errors with exit status 2.

use std::path::Path;
use std::process::{Command, Output};

use crate::mailbox_crash::Server;
use crate::p;

fn run(server: &Server, token: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(args)
        .env("TRACECAST_SERVER", server.base())
        .env("TRACECAST_TOKEN_FILE", token)
        .env_remove("TRACECAST_TOKEN")
        .output()
        .expect("tracecast runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_send_fetch_list_read_protect() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);
    server.wait_ready().await;
    let admin = dir.path().join("data/admin.token");
    let alice_token = dir.path().join("alice.token");
    let out = run(
        &server,
        &admin,
        &[
            "mailbox",
            "create-box",
            "user:alice",
            "--token-out",
            p(&alice_token),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&alice_token)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let bill = dir.path().join("bill.txt");
    std::fs::write(&bill, "your invoice\n").unwrap();
    for extra in [&[][..], &["--protect"][..], &[][..]] {
        let mut args = vec!["mailbox", "send", "--to", "user:alice"];
        args.extend_from_slice(extra);
        args.push(p(&bill));
        let out = run(&server, &admin, &args);
        assert!(out.status.success(), "{}", text(&out));
    }
    // Room for two: fetch stops full (exit 3) and leaves the third.
    let inbox = dir.path().join("inbox");
    let fetch = |extra: &[&str]| {
        let mut args = vec!["inbox", "fetch", "--dir", p(&inbox), "--max-count", "2"];
        args.extend_from_slice(extra);
        run(&server, &alice_token, &args)
    };
    let out = fetch(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("inbox full"), "{}", text(&out));

    let out = run(
        &server,
        &alice_token,
        &["inbox", "list", "--dir", p(&inbox), "--json"],
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["protected"], true);
    let first = lines[0]["id"].to_string();
    let out = run(
        &server,
        &alice_token,
        &["inbox", "read", "--dir", p(&inbox), &first],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "your invoice\n");

    // The read one is overwritten to make room for the third.
    let out = fetch(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        &server,
        &alice_token,
        &["inbox", "list", "--dir", p(&inbox)],
    );
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!listing.contains(&format!("\n{first:>10} ")), "{listing}");
    assert_eq!(listing.lines().count(), 3, "{listing}");

    // Errors: unknown box, unknown message, missing token, bad box name.
    let out = run(
        &server,
        &admin,
        &["mailbox", "send", "--to", "user:nobody", p(&bill)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no box named"), "{}", text(&out));
    let out = run(
        &server,
        &alice_token,
        &["inbox", "read", "--dir", p(&inbox), "999"],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &server,
        Path::new("/nonexistent/token"),
        &["mailbox", "status"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("reading the token"), "{}", text(&out));
    let out = run(&server, &admin, &["mailbox", "create-box", "Bad Name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("box name"), "{}", text(&out));
}
