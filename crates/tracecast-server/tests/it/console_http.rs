//! The web console over HTTP, on SQLite and PostgreSQL: sign-in with API
//! tokens, a page per role, and no page showing another account's data.
//! (The same flows in a real browser are in `tracecast/tests/it`.)

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use tracecast_client::ContentOptions;
use tracecast_store::testing::TestStore;

use crate::common;
use crate::common::{start, track};

struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, resp.text().await.unwrap(), headers)
    }

    /// Signs in; the status of the answer.
    async fn sign_in(&mut self, token: &str) -> StatusCode {
        let resp = self
            .http
            .post(format!("{}/console/login", self.base))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        if let Some(c) = resp.headers().get(SET_COOKIE) {
            let c = c.to_str().unwrap();
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict"),
                "{c}"
            );
            self.cookie = Some(c.split(';').next().unwrap().to_owned());
        }
        resp.status()
    }

    /// The page a GET is sent on to.
    async fn lands_on(&self, path: &str) -> String {
        let (status, _, headers) = self.get(path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        headers[LOCATION].to_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_role_sees_its_own_pages_and_nobody_elses_data() {
    let files = tempfile::tempdir().unwrap();
    for t in TestStore::both().await {
        let net = start(&t, &["tokyo"]).await;
        let (_, lumen, lumen_token) = net.account("provider", "lumen").await;
        let (_, umbra, _) = net.account("provider", "umbra").await;
        let (_, alice, alice_token) = net.account("user", "alice").await;
        let (_, bob, bob_token) = net.account("user", "bob").await;
        net.edges_alive().await;
        // The console is served beside the origin, as `tracecast serve` does.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let _console = common::serve(
            listener,
            tracecast_console::router(tracecast_console::ConsoleConfig {
                origin: net.base.clone(),
                mailbox: net.base.clone(),
                secure_cookies: false,
            })
            .unwrap(),
        );

        let add = |client: &tracecast_client::OriginClient, title: &'static str, seed| {
            let client = client.clone();
            let src = track(files.path(), 6.0, seed);
            async move {
                client
                    .add_content_with(
                        &src,
                        &ContentOptions {
                            title,
                            price_cents: 150,
                            ..ContentOptions::default()
                        },
                        |_, _| {},
                    )
                    .await
                    .unwrap()
            }
        };
        let mine = add(&lumen, "Nocturne <b>in</b> blue", 1).await;
        let theirs = add(&umbra, "Umbra's secret", 2).await;
        let a = alice.purchase(mine.id, None, &[]).await.unwrap();
        let b = bob.purchase(theirs.id, None, &[]).await.unwrap();
        let sealed = lumen
            .add_content_with(
                &track(files.path(), 6.0, 4),
                &ContentOptions {
                    title: "Sealed",
                    price_cents: 100,
                    protected: true,
                    ..ContentOptions::default()
                },
                |_, _| {},
            )
            .await
            .unwrap();
        let s = alice.purchase(sealed.id, None, &[]).await.unwrap();
        // Her protected copy is made (and billed): a licence follows.
        tracecast_client::EdgeClient::new()
            .unwrap()
            .deliver(&s.edge_address, &s.ticket)
            .await
            .unwrap();

        // Signed out: every page sends you to sign in.
        let mut anon = Browser::new(&base);
        for page in [
            "/console",
            "/console/catalog",
            "/console/library",
            "/console/network",
        ] {
            assert_eq!(anon.lands_on(page).await, "/console/login");
        }
        let (status, login, headers) = anon.get("/console/login").await;
        assert_eq!(status, StatusCode::OK);
        assert!(login.contains("name=\"token\""), "{login}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(
            anon.sign_in("tc_not-a-token").await,
            StatusCode::UNAUTHORIZED
        );
        assert!(anon.cookie.is_none());
        // A form posted from another site is refused.
        let cross = anon
            .http
            .post(format!("{base}/console/login"))
            .header("sec-fetch-site", "cross-site")
            .form(&[("token", lumen_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), StatusCode::FORBIDDEN);
        assert!(cross.headers().get(SET_COOKIE).is_none());

        // A provider: their catalog, escaped, and only theirs.
        let mut p = Browser::new(&base);
        assert_eq!(p.sign_in(&lumen_token).await, StatusCode::SEE_OTHER);
        assert_eq!(p.lands_on("/console").await, "/console/catalog");
        lumen.sign_contract("tokyo").await.unwrap();
        let (status, page, _) = p.get("/console/catalog").await;
        assert_eq!(status, StatusCode::OK);
        // Its contracts with edge operators, with their fees.
        assert!(
            page.contains("id=\"contracts\"")
                && page.contains("<td>tokyo</td>")
                && page.contains("<td>op-tokyo</td>")
                && page.contains("in force"),
            "{page}"
        );
        assert!(
            page.contains("Nocturne &lt;b&gt;in&lt;&#x2f;b&gt; blue"),
            "{page}"
        );
        assert!(!page.contains("Umbra"), "{page}");
        assert!(page.contains("id=\"earned\""), "{page}");
        let (status, page, _) = p.get(&format!("/console/contents/{}", mine.id)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("id=\"ledger-revenue\""), "{page}");
        assert!(
            page.contains(&format!("data-delivery=\"{}\"", a.delivery)),
            "{page}"
        );
        assert!(!page.contains(&format!("data-delivery=\"{}\"", b.delivery)));
        // Another provider's content is as missing as an unknown one.
        let (s1, _, _) = p.get(&format!("/console/contents/{}", theirs.id)).await;
        let (s2, _, _) = p.get("/console/contents/999999").await;
        assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
        for page in [
            "/console/library",
            "/console/store",
            "/console/licences",
            "/console/members",
            "/console/network",
        ] {
            assert_eq!(p.get(page).await.0, StatusCode::FORBIDDEN, "{page}");
        }
        // Its statement: its own ledger account, nobody else's.
        let (status, page, _) = p.get("/console/invoices").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("Statement") && page.contains("provider:lumen"),
            "{page}"
        );
        assert!(!page.contains("umbra"), "{page}");

        // Uploads come from the console's script only, and from providers.
        let wav = std::fs::read(track(files.path(), 6.0, 3)).unwrap();
        let upload = |b: &Browser, with_header: bool| {
            // A fresh connection each time: a refused upload's body is not
            // read, and the server closes the connection under it.
            let mut req = reqwest::Client::new()
                .post(format!(
                    "{base}/console/contents?title=From%20the%20console&price=2.25&filename=a.wav"
                ))
                .body(wav.clone());
            if let Some(c) = &b.cookie {
                req = req.header(COOKIE, c);
            }
            if with_header {
                req = req.header("tracecast-console", "upload");
            }
            req.send()
        };
        assert_eq!(
            upload(&p, false).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        let made = upload(&p, true).await.unwrap();
        assert_eq!(made.status(), StatusCode::CREATED);
        let made: serde_json::Value = made.json().await.unwrap();
        assert_eq!(made["price_cents"], 225);
        let c = lumen.content(made["id"].as_i64().unwrap()).await.unwrap();
        assert_eq!(
            (c.title.as_str(), c.provider.as_str()),
            ("From the console", "lumen")
        );

        // A user: their library, and nobody else's.
        let mut u = Browser::new(&base);
        assert_eq!(u.sign_in(&alice_token).await, StatusCode::SEE_OTHER);
        assert_eq!(u.lands_on("/console").await, "/console/library");
        let (status, page, _) = u.get("/console/library").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains(&format!("data-delivery=\"{}\"", a.delivery)),
            "{page}"
        );
        assert!(!page.contains(&format!("data-delivery=\"{}\"", b.delivery)));
        assert!(!page.contains("Umbra"), "{page}");
        assert_eq!(
            upload(&u, true).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        let (status, page, _) = u.get("/console/store").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("Umbra&#x27;s secret") && page.contains("Nocturne"),
            "{page}"
        );
        let (status, page, _) = u.get("/console/messages").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("user:alice"), "{page}");
        let (status, page, _) = u.get("/console/invoices").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("id=\"balance\""), "{page}");
        for page in [
            "/console/catalog".to_owned(),
            "/console/trace".to_owned(),
            "/console/members".to_owned(),
            "/console/network".to_owned(),
            format!("/console/contents/{}", mine.id),
        ] {
            assert_eq!(u.get(&page).await.0, StatusCode::FORBIDDEN, "{page}");
        }
        // The edge's operator: its statement and its box, nothing else.
        let (_, _, operator_token) = net.account("operator", "op-tokyo").await;
        let mut op = Browser::new(&base);
        assert_eq!(op.sign_in(&operator_token).await, StatusCode::SEE_OTHER);
        assert_eq!(op.lands_on("/console").await, "/console/invoices");
        let (status, page, _) = op.get("/console/invoices").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("operator:op-tokyo") && page.contains("Statement"),
            "{page}"
        );
        let (status, page, _) = op.get("/console/messages").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("operator:op-tokyo"), "{page}");
        for page in ["/console/library", "/console/catalog", "/console/network"] {
            assert_eq!(op.get(page).await.0, StatusCode::FORBIDDEN, "{page}");
        }
        let mut other = Browser::new(&base);
        assert_eq!(other.sign_in(&bob_token).await, StatusCode::SEE_OTHER);
        let (_, page, _) = other.get("/console/library").await;
        assert!(!page.contains(&format!("data-delivery=\"{}\"", a.delivery)));
        assert!(page.contains(&format!("data-delivery=\"{}\"", b.delivery)));

        // The operator: the network and every catalog.
        let admin_token = net.admin_token.clone();
        let mut op = Browser::new(&base);
        assert_eq!(op.sign_in(&admin_token).await, StatusCode::SEE_OTHER);
        assert_eq!(op.lands_on("/console").await, "/console/network");
        let (status, page, _) = op.get("/console/network").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("tokyo") && page.contains("op-tokyo"),
            "{page}"
        );
        assert!(
            page.contains("renditions") && !page.contains("unreachable"),
            "{page}"
        );
        let (status, page, _) = op.get("/console/members").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("No member is suspended"), "{page}");
        let (_, page, _) = op.get("/console/catalog").await;
        assert!(
            page.contains("Umbra") && page.contains("Nocturne"),
            "{page}"
        );

        // Licences: Alice gets one for her protected copy, as a file;
        // Bob cannot get one for it.
        let (status, page, _) = u.get("/console/licences").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains(&format!("value=\"{}\"", s.delivery)),
            "{page}"
        );
        assert!(page.contains("no-licences"), "{page}");
        let ask = |b: &Browser, delivery: i64| {
            b.http
                .post(format!("{base}/console/licences"))
                .header(COOKIE, b.cookie.clone().unwrap())
                .form(&[
                    ("delivery", delivery.to_string()),
                    ("recipient", "clearkey".to_owned()),
                ])
                .send()
        };
        let got = ask(&u, s.delivery).await.unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert!(got.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
        let licence: serde_json::Value = got.json().await.unwrap();
        assert!(licence.is_object(), "{licence}");
        let (_, page, _) = u.get("/console/licences").await;
        assert!(
            page.contains("id=\"licences\"") && page.contains("clearkey"),
            "{page}"
        );
        assert_eq!(
            ask(&other, s.delivery).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );

        // Signing out forgets the session.
        let out = u
            .http
            .post(format!("{base}/console/logout"))
            .header(COOKIE, u.cookie.clone().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert!(out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }
}
