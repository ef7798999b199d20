//! Sharing from a device as a user would run it: the service server (with
//! the origin and mailbox) and a phone's gateway as separate `tracecast
//! serve` processes, the gateway's compose prompt answered on its terminal
//! (standard input), a device set up by mDNS discovery on loopback, a
//! malformed account refused, a small photo attached and a large file sent
//! as a link, and the recipient's `tracecast inbox fetch --save` bringing
//! both down.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::delivery::{cli, free_port, http_ok, ok, Proc};
use crate::p;

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn device(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .arg("device")
        .args(args)
        .output()
        .expect("tracecast runs")
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed)
        .collect()
}

#[test]
fn a_camera_shares_through_a_phone_gateway_process() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server_data = dir.path().join("server");
    let _server = Proc::start(
        dir.path().join("server.log"),
        vec![
            "--role".into(),
            "origin,service".into(),
            "--data".into(),
            p(&server_data).into(),
        ],
        Vec::new(),
        port,
        "/v1/health",
    );
    let base = format!("http://127.0.0.1:{port}");
    let admin = server_data.join("admin.token");
    let gw_token = dir.path().join("gateway.token");
    let bob_token = dir.path().join("bob.token");
    ok(cli(
        &[
            "account",
            "add",
            "gateway",
            "kenji-phone",
            "--token-out",
            p(&gw_token),
        ],
        &admin,
        &base,
    ));
    ok(cli(
        &[
            "account",
            "add",
            "user",
            "bob",
            "--token-out",
            p(&bob_token),
        ],
        &admin,
        &base,
    ));
    let code_file = dir.path().join("camera.code");
    let account = ok(cli(
        &[
            "service",
            "account",
            "issue",
            "Kenji's camera",
            "--code-out",
            p(&code_file),
        ],
        &admin,
        &base,
    ))
    .trim()
    .to_owned();
    assert!(account.starts_with("TCA-"), "{account}");
    assert!(std::fs::read_to_string(&code_file).unwrap().trim().len() >= 32);
    ok(cli(
        &["service", "number", "+1 555 0100", "bob"],
        &admin,
        &base,
    ));

    // The phone: its gateway, its terminal on our pipe.
    let gport = free_port();
    let glog = dir.path().join("gateway.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(["serve", "--role", "gateway", "--data"])
        .arg(dir.path().join("phone"))
        .args(["--service", &base, "--gateway-token-file", p(&gw_token)])
        .args(["--listen", &format!("127.0.0.1:{gport}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&glog).unwrap())
        .spawn()
        .unwrap();
    let mut terminal = child.stdin.take().unwrap();
    let _gateway = Gateway(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http_ok(gport, "/gateway/v1") {
        assert!(Instant::now() < deadline, "the gateway did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A mistyped account: refused at the gateway.
    let state = dir.path().join("camera.json");
    let typo = account
        .parse::<tracecast_share::ServiceAccount>()
        .unwrap()
        .mistyped();
    let gurl = format!("http://127.0.0.1:{gport}");
    let out = device(&[
        "setup",
        "--account",
        &typo,
        "--code-file",
        p(&code_file),
        "--model",
        "Lumix G9",
        "--hardware",
        "wifi",
        "--gateway",
        &gurl,
        "--state",
        p(&state),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("check digit"), "{err}");
    assert!(err.contains("did not contact the service server"), "{err}");
    assert!(!state.exists());

    // Set-up, the gateway found by mDNS on loopback.
    let out = ok(device(&[
        "setup",
        "--account",
        &account,
        "--code-file",
        p(&code_file),
        "--model",
        "Lumix G9",
        "--hardware",
        "wifi, 64 GB",
        "--loopback",
        "--discover-secs",
        "10",
        "--state",
        p(&state),
    ]));
    assert!(out.contains("the service is on"), "{out}");

    // A small photo: the gateway's user takes the suggested number and
    // types the text.
    let files = dir.path().join("camera-files");
    std::fs::create_dir_all(&files).unwrap();
    let photo = files.join("IMG_0042.jpg");
    std::fs::write(&photo, data(150_000, 3)).unwrap();
    writeln!(terminal).unwrap();
    writeln!(terminal, "Look at this one").unwrap();
    let out = ok(device(&[
        "send",
        p(&photo),
        "--to",
        "+1 555 0100",
        "--state",
        p(&state),
    ]));
    assert!(out.contains("as attachment"), "{out}");
    // A large file: typed recipient and text, sent as a link.
    let clip = files.join("clip.bin");
    std::fs::write(&clip, data(2_500_000, 4)).unwrap();
    writeln!(terminal, "bob").unwrap();
    writeln!(terminal, "The whole clip").unwrap();
    let out = ok(device(&["send", p(&clip), "--state", p(&state)]));
    assert!(out.contains("as link"), "{out}");

    // Bob fetches and saves both.
    let saved = dir.path().join("bob-saved");
    let out = ok(cli(
        &[
            "inbox",
            "fetch",
            "--dir",
            p(&dir.path().join("bob-inbox")),
            "--save",
            p(&saved),
        ],
        &bob_token,
        &base,
    ));
    assert!(out.contains("IMG_0042.jpg"), "{out}");
    assert_eq!(
        std::fs::read(saved.join("IMG_0042.jpg")).unwrap(),
        data(150_000, 3)
    );
    assert_eq!(
        std::fs::read(saved.join("clip.bin")).unwrap(),
        data(2_500_000, 4)
    );
    let texts: String = std::fs::read_dir(&saved)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "txt"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(texts.contains("Look at this one"), "{texts}");
    assert!(texts.contains("The whole clip"), "{texts}");
    assert!(texts.contains("kenji-phone"), "{texts}");

    // No token in either log.
    let secret = std::fs::read_to_string(&gw_token).unwrap();
    for log in [dir.path().join("server.log"), glog] {
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            !text.contains(secret.trim()),
            "{} shows the token",
            log.display()
        );
    }
}
