//! Delivery through a CDN (DASH-IF server-side A/B watermarking), on
//! SQLite and PostgreSQL, with the reference CDN edge as it ships: Debian's
//! nginx with its njs module, running `deploy/cdn/tracecast-cdn.conf` and
//! `tracecast-wmt.js` over a folder `tracecast cdn publish` filled. A
//! purchase through the CDN is billed at once and answers a watermarking
//! token; nginx serves the buyer's copy by it (whole and by Range), ffmpeg
//! plays it, it traces to its buyer, a mix of two buyers' copies traces
//! to them; tampered, expired, foreign-key and other buyers' tokens are
//! refused, and tracecast's own edge serves the same token the same bytes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tracecast_client::ContentOptions;
use tracecast_delivery::api::PurchaseRequest;
use tracecast_delivery::wmt::{WmtClaims, WmtKey};
use tracecast_delivery::Tier;
use tracecast_server::origin::cdn::CdnConfig;
use tracecast_server::origin::OriginConfig;
use tracecast_store::testing::TestStore;

use crate::common::{refused, start_with, track};

/// nginx in one process (`master_process off`), stopped when dropped.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the shipped CDN edge on `port`, serving `variants` with the
/// origin's public key in `key_pem`.
async fn start_nginx(dir: &Path, port: u16, variants: &Path, key_pem: &Path) -> Nginx {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cdn");
    let conf = std::fs::read_to_string(shipped.join("tracecast-cdn.conf"))
        .unwrap()
        .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"))
        .replace("/srv/tracecast-cdn", variants.to_str().unwrap())
        .replace("/etc/tracecast/wmt-key.pem", key_pem.to_str().unwrap())
        .replace(
            "js_path /etc/tracecast/cdn;",
            &format!("js_path {};", shipped.canonicalize().unwrap().display()),
        );
    std::fs::write(dir.join("tracecast-cdn.conf"), conf).unwrap();
    let d = dir.display();
    let main = format!(
        "load_module /usr/lib/nginx/modules/ngx_http_js_module.so;\n\
         daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log;\n\
         events {{}}\n\
         http {{ access_log off; client_body_temp_path {d}/cb; proxy_temp_path {d}/px;\n\
         fastcgi_temp_path {d}/fc; uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;\n\
         include {d}/tracecast-cdn.conf; }}\n"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    let child = std::process::Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("apt-get install nginx-light libnginx-mod-http-js");
    let nginx = Nginx(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return nginx;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "nginx did not start: {} {}",
        std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default(),
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
}

fn decoded(path: &Path) -> tracecast_media::Pcm {
    tracecast_media::decode_file(path, None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cdn_serves_each_buyer_their_copy_by_token_and_it_traces_to_them() {
    for t in TestStore::both().await {
        let files = tempfile::tempdir().unwrap();
        let port = free_port();
        let cdn_url = format!("http://127.0.0.1:{port}");
        let rng = ring::rand::SystemRandom::new();
        let key = Arc::new(WmtKey::from_pkcs8(&WmtKey::generate(&rng).unwrap(), &rng).unwrap());
        let net = start_with(
            &t,
            &["tokyo"],
            OriginConfig {
                cdn: Some(CdnConfig {
                    edge: "cdn-1".into(),
                    url: cdn_url.clone(),
                    key: key.clone(),
                    token_secs: 3600,
                }),
                ..OriginConfig::default()
            },
        )
        .await;
        net.edges_alive().await;
        // The CDN is registered as an edge: its id goes into every mark it
        // serves, its operator is paid the edge's fee.
        let cdn_id = net
            .admin
            .add_account(&tracecast_delivery::api::NewAccount {
                address: Some(format!("{cdn_url}/edge")),
                operator: Some("fastcdn".into()),
                fee_cents: Some(20),
                ..tracecast_delivery::api::NewAccount::named(
                    tracecast_delivery::AccountKind::Edge,
                    "cdn-1",
                )
            })
            .await
            .unwrap()
            .id;
        let (_, provider, _) = net.account("provider", "aurora").await;
        let (alice_id, alice, _) = net.account("user", "alice").await;
        let (bob_id, bob, _) = net.account("user", "bob").await;
        let (carol_id, carol, _) = net.account("user", "carol").await;

        let c = provider
            .add_content_with(
                &track(files.path(), 120.0, 41),
                &ContentOptions {
                    title: "Through the CDN",
                    price_cents: 300,
                    marking: tracecast_delivery::ab::Marking::Ab,
                    ..ContentOptions::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();

        // The operator publishes the variants and the key where the CDN
        // reads them; the CDN edge starts on them.
        let variants = files.path().join("cdn");
        let folder = tracecast_client::cdn::publish(&net.admin, c.id, Tier::High, &variants)
            .await
            .unwrap();
        assert!(folder.join("a.flac").is_file() && folder.join("index").is_file());
        let (pem, kid) = tracecast_client::cdn::token_key(&net.admin).await.unwrap();
        assert_eq!(kid, key.verifier().kid());
        let pem_path = files.path().join("wmt-key.pem");
        std::fs::write(&pem_path, pem).unwrap();
        let nginx_dir = tempfile::tempdir().unwrap();
        let _nginx = start_nginx(nginx_dir.path(), port, &variants, &pem_path).await;

        // Alice buys through the CDN: no ticket, a token, billed at once
        // (no edge will ever report this copy).
        let through_cdn = PurchaseRequest {
            cdn: true,
            ..PurchaseRequest::download(c.id, Some(Tier::High))
        };
        let p = alice
            .order_once(&through_cdn, Some("alice-1"))
            .await
            .unwrap();
        let copy = p.cdn.clone().expect("a CDN copy");
        assert!(p.ticket.is_empty());
        assert_eq!(p.edge_id, cdn_id);
        assert_eq!(
            copy.url,
            format!("{cdn_url}/{}/high/{}.flac", c.id, p.delivery)
        );
        assert_eq!(alice.invoice(None).await.unwrap().balance_cents, 300);
        // The same key again: the same delivery, a fresh token, no second
        // charge.
        let again = alice
            .order_once(&through_cdn, Some("alice-1"))
            .await
            .unwrap();
        assert_eq!(again.delivery, p.delivery);
        assert_eq!(again.cdn.as_ref().unwrap().bytes, copy.bytes);
        assert_eq!(alice.invoice(None).await.unwrap().balance_cents, 300);

        // nginx serves it: a FLAC stream flac and ffmpeg take whole.
        let http = reqwest::Client::new();
        let alice_out = files.path().join("alice.flac");
        let n = tracecast_client::cdn::download(&http, &copy, &alice_out)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{e}: {}",
                    std::fs::read_to_string(nginx_dir.path().join("error.log")).unwrap_or_default()
                )
            });
        assert_eq!(n, copy.bytes);
        let t_ok = std::process::Command::new("flac")
            .args(["-t", "-s"])
            .arg(&alice_out)
            .output()
            .expect("apt-get install flac");
        assert!(
            t_ok.status.success(),
            "{}",
            String::from_utf8_lossy(&t_ok.stderr)
        );
        let ff = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&alice_out)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(ff.status.success() && ff.stderr.is_empty(), "{ff:?}");
        let alice_bytes = std::fs::read(&alice_out).unwrap();

        // Ranges (and the token in the query), the same bytes.
        for (a, b) in [
            (0u64, 99u64),
            (1000, 300_000),
            (copy.bytes - 10, copy.bytes - 1),
        ] {
            let r = http
                .get(format!("{}?wmt={}", copy.url, copy.token))
                .header("range", format!("bytes={a}-{b}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
            assert_eq!(
                r.headers()["content-range"],
                format!("bytes {a}-{b}/{}", copy.bytes).as_str()
            );
            assert_eq!(
                r.bytes().await.unwrap(),
                alice_bytes[a as usize..=b as usize]
            );
        }

        // tracecast's own edge serves the same token the same bytes.
        let tokyo = &net.edges[0].1;
        let r = http
            .get(format!(
                "{}/cdn/{}/high/{}.flac",
                tokyo.trim_end_matches("/edge"),
                c.id,
                p.delivery
            ))
            .bearer_auth(&copy.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap(), alice_bytes);

        // Alice's copy traces to her delivery through the CDN.
        let r = provider.trace_as(&alice_out, None).await.unwrap();
        assert_eq!(r.mark.as_ref().map(|m| i64::from(m.user)), Some(alice_id));
        assert_eq!(r.mark.as_ref().map(|m| i64::from(m.edge)), Some(cdn_id));
        assert_eq!(r.deliveries[0].delivery, p.delivery);

        // The same token opens the copy as MP3 at nginx and at the edge:
        // the same bytes, every frame decodes, and it traces to alice.
        assert!(folder.join("a.mp3").is_file() && folder.join("mp3-index").is_file());
        let form = copy.mp3.clone().expect("an MP3 form");
        assert_eq!(
            form.url,
            format!("{cdn_url}/{}/high/{}.mp3", c.id, p.delivery)
        );
        let mp3_copy = tracecast_delivery::api::CdnCopy {
            url: form.url.clone(),
            bytes: form.bytes,
            media_type: form.media_type.clone(),
            mp3: None,
            ..copy.clone()
        };
        let alice_mp3 = files.path().join("alice.mp3");
        let n = tracecast_client::cdn::download(&http, &mp3_copy, &alice_mp3)
            .await
            .unwrap();
        assert_eq!(n, form.bytes);
        let mp3_bytes = std::fs::read(&alice_mp3).unwrap();
        assert!(tracecast_media::mp3::frame_sizes(&mp3_bytes).is_ok());
        let ff = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&alice_mp3)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(ff.status.success() && ff.stderr.is_empty(), "{ff:?}");
        let r = http
            .get(format!(
                "{}/cdn/{}/high/{}.mp3",
                tokyo.trim_end_matches("/edge"),
                c.id,
                p.delivery
            ))
            .bearer_auth(&copy.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "audio/mpeg");
        assert_eq!(r.bytes().await.unwrap(), mp3_bytes);
        let r = provider.trace_as(&alice_mp3, None).await.unwrap();
        assert_eq!(r.mark.as_ref().map(|m| i64::from(m.user)), Some(alice_id));
        // A token that names no MP3 index opens the FLAC, not the MP3.
        let flac_only = key
            .sign(
                &WmtClaims {
                    tcmx: None,
                    ..key.verifier().verify(&copy.token, 0).unwrap()
                },
                &rng,
            )
            .unwrap();
        for url in [
            form.url.clone(),
            format!(
                "{}/cdn/{}/high/{}.mp3",
                tokyo.trim_end_matches("/edge"),
                c.id,
                p.delivery
            ),
        ] {
            let r = http.get(&url).bearer_auth(&flac_only).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{url}");
        }
        let r = http
            .get(&copy.url)
            .bearer_auth(&flac_only)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        // Bob buys too; the two mix their decoded copies unit by unit:
        // one of them is accused, carol (a buyer too) never.
        let pb = bob.order_once(&through_cdn, Some("bob-1")).await.unwrap();
        let bob_copy = pb.cdn.clone().unwrap();
        let bob_out = files.path().join("bob.flac");
        tracecast_client::cdn::download(&http, &bob_copy, &bob_out)
            .await
            .unwrap();
        carol
            .order_once(&through_cdn, Some("carol-1"))
            .await
            .unwrap();
        let (a, b) = (decoded(&alice_out), decoded(&bob_out));
        let units = c
            .renditions
            .iter()
            .find(|r| r.tier == Tier::High)
            .and_then(|r| r.ab.clone())
            .unwrap()
            .geometry
            .units as usize;
        let mut mixed = a.clone();
        for u in (1..units).step_by(2) {
            use tracecast_mark::audio::ab::unit_start;
            let (s, e) = (unit_start(u), unit_start(u + 1).min(a.frames()));
            for (m, bch) in mixed.channels.iter_mut().zip(&b.channels) {
                m[s..e].copy_from_slice(&bch[s..e]);
            }
        }
        let mixed_path = files.path().join("mixed.wav");
        tracecast_media::encode_file(&mixed, &mixed_path).unwrap();
        let r = provider.trace_as(&mixed_path, None).await.unwrap();
        let f = r.fingerprint.expect("the mix traces");
        let accused: Vec<i64> = f.accused.iter().map(|s| s.user_id).collect();
        assert!(!accused.is_empty(), "nobody accused: {f:?}");
        assert!(
            accused.iter().all(|u| *u == alice_id || *u == bob_id),
            "{accused:?}"
        );
        assert!(!accused.contains(&carol_id));

        // Tokens that must not open alice's copy, at nginx and at the edge.
        let expired = key
            .sign(
                &WmtClaims {
                    exp: 1,
                    iat: 0,
                    ..key.verifier().verify(&copy.token, 0).unwrap()
                },
                &rng,
            )
            .unwrap();
        let other_key = WmtKey::from_pkcs8(&WmtKey::generate(&rng).unwrap(), &rng).unwrap();
        let foreign = other_key
            .sign(&key.verifier().verify(&copy.token, 0).unwrap(), &rng)
            .unwrap();
        let mut parts: Vec<String> = copy.token.split('.').map(str::to_owned).collect();
        // One pattern bit flipped: wmid is in the claims' middle.
        let mut claims =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
                .unwrap();
        let at = claims.windows(7).position(|w| w == b"\"wmid\":").unwrap() + 9;
        claims[at] = if claims[at] == b'A' { b'B' } else { b'A' };
        parts[1] =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &claims);
        let tampered = parts.join(".");
        let edge_url = format!(
            "{}/cdn/{}/high/{}.flac",
            tokyo.trim_end_matches("/edge"),
            c.id,
            p.delivery
        );
        for url in [&copy.url, &edge_url] {
            for (what, token, want) in [
                ("none", None, StatusCode::UNAUTHORIZED),
                ("tampered", Some(&tampered), StatusCode::UNAUTHORIZED),
                ("expired", Some(&expired), StatusCode::UNAUTHORIZED),
                ("another key's", Some(&foreign), StatusCode::UNAUTHORIZED),
                ("bob's", Some(&bob_copy.token), StatusCode::FORBIDDEN),
            ] {
                let mut req = http.get(url.as_str());
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), want, "{what} token at {url}");
            }
        }
        // The variants themselves are never served.
        for path in ["a.flac", "index", "a.mp3", "mp3-index"] {
            let r = http
                .get(format!("{cdn_url}/{}/high/{path}", c.id))
                .bearer_auth(&copy.token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        }

        // What a CDN cannot deliver is refused before a delivery opens.
        let direct = provider
            .add_content_with(
                &track(files.path(), 20.0, 42),
                &ContentOptions {
                    title: "Direct only",
                    price_cents: 100,
                    ..ContentOptions::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();
        let before = net
            .origin
            .store()
            .deliveries_of_user(tracecast_store::UserId(alice_id))
            .await
            .unwrap()
            .len();
        for (what, req, code) in [
            (
                "no variants",
                PurchaseRequest {
                    cdn: true,
                    ..PurchaseRequest::download(direct.id, None)
                },
                "cdn_not_ab",
            ),
            (
                "through a home",
                PurchaseRequest {
                    home: Some("den".into()),
                    ..through_cdn.clone()
                },
                "cdn_download_only",
            ),
            (
                "an ordinary purchase replacing a CDN copy",
                PurchaseRequest {
                    replaces: Some(p.delivery),
                    ..PurchaseRequest::download(c.id, Some(Tier::High))
                },
                "cdn_no_replacement",
            ),
            (
                "a replacement",
                PurchaseRequest {
                    replaces: Some(p.delivery),
                    ..through_cdn.clone()
                },
                "cdn_no_replacement",
            ),
        ] {
            let (status, got) = refused(alice.order(&req).await.unwrap_err());
            assert_eq!(
                (status, got.as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{what}"
            );
        }
        assert_eq!(
            net.origin
                .store()
                .deliveries_of_user(tracecast_store::UserId(alice_id))
                .await
                .unwrap()
                .len(),
            before
        );
        assert_eq!(alice.invoice(None).await.unwrap().balance_cents, 300);
    }
}
