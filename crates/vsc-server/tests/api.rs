//! Integration tests of the JSON API: the real server on port 0, on SQLite and on PostgreSQL.
// Helper functions outside #[test] are not covered by clippy.toml's test allowances; a
// failing fixture should panic in a test file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};
use vsc_client::{Client, ClientError};
use vsc_proto::{CreateOrganisationRequest, CreateUserRequest, ErrorCode, IssueCardRequest, UserView};
use vsc_testkit::{Backend, TestServer, on_both_backends};

on_both_backends!(
    walkthrough_issues_v2_cards_that_openssl_verifies,
    v1_cards_have_only_an_authentication_certificate,
    bad_input_gets_a_4xx_naming_the_field,
    failed_issuance_leaves_nothing,
    staff_see_only_their_organisations,
    revocation_records_time_and_reason,
    database_holds_no_private_key_in_clear,
    nodes_sharing_a_database_share_the_ca_and_refuse_another_kek,
    readiness_follows_the_database,
    rsa_profile_uses_the_key_pool,
    users_search_is_scoped_and_validated,
);

fn user_req(org: &str, email: &str) -> CreateUserRequest {
    CreateUserRequest {
        organisation: org.into(),
        forename: "Ann".into(),
        surname: "Other".into(),
        email: email.into(),
        mobile: None,
        subject_cn: None,
        directory_account: None,
    }
}

fn card_req(t: &str, roles: &[&str]) -> IssueCardRequest {
    IssueCardRequest { card_type: t.into(), roles: roles.iter().map(|r| r.to_string()).collect(), key_algorithm: None }
}

async fn new_user(c: &Client, email: &str) -> UserView {
    c.create_user(&user_req("ORG1", email)).await.expect("user created")
}

/// Run the real `openssl verify` on the given PEMs against the server's CA chain.
fn openssl_verify(dir: &Path, ca_pem: &str, certs: &[(&str, &str)]) -> String {
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(["verify", "-CAfile", "ca.pem"]);
    for (name, pem) in certs {
        std::fs::write(dir.join(name), pem).unwrap();
        cmd.arg(name);
    }
    let out = cmd.output().expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openssl verify failed: {text}");
    text
}

fn openssl_text(dir: &Path, pem: &str) -> String {
    std::fs::write(dir.join("x.pem"), pem).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(["x509", "-in", "x.pem", "-noout", "-text", "-nameopt", "utf8,sep_comma_plus"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn code(e: &ClientError) -> ErrorCode {
    e.code().unwrap_or_else(|| panic!("not an API error: {e}"))
}

async fn walkthrough_issues_v2_cards_that_openssl_verifies(b: Backend) {
    let ts = TestServer::start(b).await;
    let c = &ts.client;
    let org = c
        .create_organisation(&CreateOrganisationRequest {
            code: "rx9".into(),
            name: "St Elsewhere NHS Trust".into(),
            email_domains: vec!["Elsewhere.NHS.uk".into(), "nhs.net".into()],
        })
        .await
        .unwrap();
    assert_eq!(org.code, "RX9");
    assert_eq!(org.email_domains, ["elsewhere.nhs.uk", "nhs.net"]);
    assert!(c.organisations().await.unwrap().iter().any(|o| o.code == "RX9"));

    let long_surname = "O'Sullivan-Fitzgerald de la Montagne-Bartholomew Featherstonehaugh";
    assert!(long_surname.len() > 50);
    let user = c
        .create_user(&CreateUserRequest {
            organisation: "RX9".into(),
            forename: "Seán".into(),
            surname: long_surname.into(),
            email: "sean.o'sullivan@elsewhere.nhs.uk".into(),
            mobile: Some("+44 7700 900123".into()),
            subject_cn: None,
            directory_account: None,
        })
        .await
        .unwrap();
    assert_eq!(user.surname, long_surname);
    assert_eq!(user.mobile.as_deref(), Some("+447700900123"));
    assert_eq!(user.display_name, format!("SEÁN {} ({})", long_surname.to_uppercase(), user.subject_cn));

    let card = c.issue_card(&user.id.to_string(), &card_req("v2", &["R8000", "R8008"])).await.unwrap();
    assert!(card.serial.starts_with("150") && card.serial.len() == 16, "{}", card.serial);
    assert_eq!(card.card_type, "v2");
    assert_eq!(card.state, "issued");
    assert_eq!(card.roles, ["R8000", "R8008"]);
    assert!(card.expires_at > card.issued_at + time::Duration::days(365));
    let signing = card.certificates.signing.clone().expect("V2 has a signing certificate");

    let ca = ts.anon.ca_pem().await.unwrap();
    assert_eq!(ca.matches("BEGIN CERTIFICATE").count(), 2);
    let dir = tempfile::tempdir().unwrap();
    openssl_verify(dir.path(), &ca, &[("auth.pem", &card.certificates.authentication), ("sign.pem", &signing)]);

    let auth = openssl_text(dir.path(), &card.certificates.authentication);
    assert!(auth.contains("Digital Signature") && !auth.contains("Non Repudiation"), "{auth}");
    assert!(auth.contains("TLS Web Client Authentication"), "{auth}");
    assert!(auth.contains(&format!("CN={}", user.subject_cn)), "{auth}");
    assert!(auth.contains("GN=Seán") && auth.contains(&format!("SN={long_surname}")), "{auth}");
    assert!(auth.contains("email:sean.o'sullivan@elsewhere.nhs.uk"), "{auth}");
    let sign = openssl_text(dir.path(), &signing);
    assert!(sign.contains("Non Repudiation"), "{sign}");
    assert!(!sign.contains("TLS Web Client Authentication"), "{sign}");

    // Reading back: the card and the user's card list.
    assert_eq!(c.card(&card.serial).await.unwrap(), card);
    let again = c.user(&user.id.to_string()).await.unwrap();
    assert_eq!(again.cards, vec![card.clone()]);

    // Every change is audited, newest first.
    let events = c.audit(10).await.unwrap().events;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(&actions[..3], ["card.issued", "user.created", "organisation.created"]);
    assert!(events.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(events[0].target.as_deref(), Some(format!("card:{}", card.serial).as_str()));
    assert_eq!(events[0].actor, "staff:ra@example.nhs.uk");
    assert_eq!(events[0].organisation.as_deref(), Some("RX9"));
}

async fn v1_cards_have_only_an_authentication_certificate(b: Backend) {
    let ts = TestServer::start(b).await;
    let user = new_user(&ts.client, "v1@example.nhs.uk").await;
    let card = ts.client.issue_card(&user.id.to_string(), &card_req("V1", &["R8003"])).await.unwrap();
    assert!(!card.serial.starts_with("150"));
    assert!(card.certificates.signing.is_none());
    let dir = tempfile::tempdir().unwrap();
    openssl_verify(dir.path(), &ts.anon.ca_pem().await.unwrap(), &[("auth.pem", &card.certificates.authentication)]);
}

async fn bad_input_gets_a_4xx_naming_the_field(b: Backend) {
    let ts = TestServer::start(b).await;
    let c = &ts.client;
    // A field-level rule: (request, expected status, expected field).
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/api/v1/users",
            json!({"organisation":"ORG1","forename":"A","surname":"B","email":"a@gmail.com"}),
            422,
            "email",
        ),
        (
            "/api/v1/users",
            json!({"organisation":"ORG1","forename":"A","surname":"B","email":"not-an-email"}),
            422,
            "email",
        ),
        (
            "/api/v1/users",
            json!({"organisation":"ORG1","forename":"R2D2","surname":"B","email":"a@example.nhs.uk"}),
            422,
            "forename",
        ),
        (
            "/api/v1/users",
            json!({"organisation":"ORG1","forename":"A","surname":"","email":"a@example.nhs.uk"}),
            422,
            "surname",
        ),
        (
            "/api/v1/users",
            json!({"organisation":"ORG1","forename":"A","surname":"B","email":"a@example.nhs.uk","mobile":"12ab"}),
            422,
            "mobile",
        ),
        (
            "/api/v1/users",
            json!({"organisation":"NOPE","forename":"A","surname":"B","email":"a@example.nhs.uk"}),
            404,
            "organisation",
        ),
        ("/api/v1/users", json!({"organisation":"ORG1","forename":"A","email":"a@example.nhs.uk"}), 400, "surname"),
        (
            "/api/v1/users",
            json!({"organisation":"ORG1","forename":"A","surname":7,"email":"a@example.nhs.uk"}),
            400,
            "surname",
        ),
        ("/api/v1/organisations", json!({"code":"X","name":"N","email_domains":["a.b"]}), 422, "code"),
        ("/api/v1/organisations", json!({"code":"XY","name":"N","email_domains":[]}), 422, "email_domains"),
        ("/api/v1/organisations", json!({"code":"XY","name":"N","email_domains":["nodot"]}), 422, "email_domains"),
        ("/api/v1/organisations", json!({"code":"ORG1","name":"N","email_domains":["a.b"]}), 409, "code"),
    ];
    for (path, body, status, field) in cases {
        let (got, text) = c.raw(Method::POST, path, Some(&body)).await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path} {body}: not JSON: {text}"));
        assert_eq!(got, status, "{path} {body}: {text}");
        assert_eq!(v["error"]["field"], field, "{path} {body}: {text}");
        assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string(), "{text}");
    }

    // Apostrophes in the local part are fine; the same email in another case is a conflict.
    new_user(c, "o'neil@example.nhs.uk").await;
    let e = c.create_user(&user_req("ORG1", "O'Neil@EXAMPLE.nhs.uk")).await.unwrap_err();
    assert_eq!((e.status(), code(&e), e.field()), (Some(409), ErrorCode::Conflict, Some("email")));

    let user = new_user(c, "cards@example.nhs.uk").await;
    let id = user.id.to_string();
    for (req, field) in [
        (card_req("v3", &["R8000"]), "type"),
        (card_req("v2", &[]), "roles"),
        (card_req("v2", &["R8000", "r8000"]), "roles"),
        (IssueCardRequest { key_algorithm: Some("dsa".into()), ..card_req("v2", &["R8000"]) }, "key_algorithm"),
    ] {
        let e = c.issue_card(&id, &req).await.unwrap_err();
        assert_eq!((e.status(), e.field()), (Some(422), Some(field)), "{req:?}: {e}");
    }

    // Malformed bodies, paths and queries.
    let (status, text) = c.raw(Method::GET, "/api/v1/users/not-a-uuid", None).await.unwrap();
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("\"field\":\"id\""), "{text}");
    let e = c.card("123").await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("serial")));
    let e = c.card("1500000000000000").await.unwrap_err();
    assert_eq!((e.status(), code(&e)), (Some(404), ErrorCode::NotFound));
    let (status, text) = c.raw(Method::GET, "/api/v1/audit?limit=lots", None).await.unwrap();
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("\"field\":\"limit\""));
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/users", ts.url))
        .bearer_auth(&ts.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "IN0002MalformedRequest");
    let (status, text) = c.raw(Method::GET, "/api/v1/nowhere", None).await.unwrap();
    assert_eq!(status, 404);
    assert!(text.contains("NF0001NotFound"));
}

async fn failed_issuance_leaves_nothing(b: Backend) {
    let ts = TestServer::start(b).await;
    let user = new_user(&ts.client, "atomic@example.nhs.uk").await;
    // R8000 is inserted, keys are generated, then R9999 fails inside the transaction.
    let e = ts.client.issue_card(&user.id.to_string(), &card_req("v2", &["R8000", "R9999"])).await.unwrap_err();
    assert_eq!((e.status(), e.field()), (Some(422), Some("roles")));
    assert!(e.to_string().contains("R9999"));
    let mut conn = ts.vsc.store().conn().await.unwrap();
    assert_eq!(vsc_store::cards::count(&mut conn).await.unwrap(), 0);
    assert_eq!(vsc_store::cards::key_count(&mut conn).await.unwrap(), 0);
    assert!(ts.client.user(&user.id.to_string()).await.unwrap().cards.is_empty());
    let actions: Vec<String> = ts.client.audit(50).await.unwrap().events.into_iter().map(|e| e.action).collect();
    assert!(!actions.iter().any(|a| a == "card.issued"), "{actions:?}");
    // The same request without the bad role succeeds.
    ts.client.issue_card(&user.id.to_string(), &card_req("v2", &["R8000"])).await.unwrap();
    assert_eq!(vsc_store::cards::key_count(&mut conn).await.unwrap(), 2);
}

async fn staff_see_only_their_organisations(b: Backend) {
    let ts = TestServer::start(b).await;
    let (status, text) = ts.anon.raw(Method::GET, "/api/v1/organisations", None).await.unwrap();
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("AU0001Unauthenticated"));
    let e = ts.anon.with_token("vsc_forged").organisations().await.unwrap_err();
    assert_eq!(e.status(), Some(401));

    let other = ts
        .vsc
        .bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "boss@other.nhs.uk", "Olive Boss")
        .await
        .unwrap();
    let c2 = ts.anon.with_token(&other.token);
    let theirs = c2.create_user(&user_req("ORG2", "someone@other.nhs.uk")).await.unwrap();
    let card = c2.issue_card(&theirs.id.to_string(), &card_req("v1", &["R8000"])).await.unwrap();
    let mine = new_user(&ts.client, "me@example.nhs.uk").await;

    // Each manager sees their own organisation only.
    let codes: Vec<String> = ts.client.organisations().await.unwrap().into_iter().map(|o| o.code).collect();
    assert_eq!(codes, ["ORG1"]);
    for e in [
        ts.client.user(&theirs.id.to_string()).await.unwrap_err(),
        ts.client.card(&card.serial).await.unwrap_err(),
        ts.client.revoke_card(&card.serial, None).await.unwrap_err(),
        ts.client.issue_card(&theirs.id.to_string(), &card_req("v1", &["R8000"])).await.unwrap_err(),
        ts.client.create_user(&user_req("ORG2", "sneaky@other.nhs.uk")).await.unwrap_err(),
        c2.user(&mine.id.to_string()).await.unwrap_err(),
    ] {
        assert_eq!(e.status(), Some(404), "{e}");
    }
    let audit1 = ts.client.audit(100).await.unwrap().events;
    assert!(audit1.iter().all(|e| e.organisation.as_deref() == Some("ORG1")), "{audit1:?}");
    let audit2 = c2.audit(100).await.unwrap().events;
    assert!(audit2.iter().any(|e| e.action == "card.issued"));
    assert!(audit2.iter().all(|e| e.organisation.as_deref() == Some("ORG2")));
}

async fn revocation_records_time_and_reason(b: Backend) {
    let ts = TestServer::start(b).await;
    let user = new_user(&ts.client, "rev@example.nhs.uk").await;
    let card = ts.client.issue_card(&user.id.to_string(), &card_req("v2", &["R8000"])).await.unwrap();
    let revoked = ts.client.revoke_card(&card.serial, Some("left the trust")).await.unwrap();
    assert_eq!(revoked.state, "revoked");
    assert_eq!(revoked.revocation_reason.as_deref(), Some("left the trust"));
    assert!(revoked.revoked_at.is_some_and(|t| t >= card.issued_at));
    assert_eq!(ts.client.card(&card.serial).await.unwrap(), revoked);
    let e = ts.client.revoke_card(&card.serial, None).await.unwrap_err();
    assert_eq!((e.status(), code(&e)), (Some(409), ErrorCode::InvalidState));
    // An empty body is accepted too.
    let other = ts.client.issue_card(&user.id.to_string(), &card_req("v1", &["R8000"])).await.unwrap();
    let (status, _) =
        ts.client.raw(Method::POST, &format!("/api/v1/cards/{}/revoke", other.serial), None).await.unwrap();
    assert_eq!(status, 200);
    let events = ts.client.audit(5).await.unwrap().events;
    assert_eq!(events[0].action, "card.revoked");
    assert_eq!(events[2].action, "card.revoked");
    assert_eq!(events[2].detail["reason"], "left the trust");
}

async fn database_holds_no_private_key_in_clear(b: Backend) {
    let ts = TestServer::start(b).await;
    let user = new_user(&ts.client, "keys@example.nhs.uk").await;
    let card = ts.client.issue_card(&user.id.to_string(), &card_req("v2", &["R8000"])).await.unwrap();

    // Open the sealed keys with the node's KEK, as only the service can.
    let (kek, _) = vsc_crypto::Kek::load_or_create(&ts.config.kek_path()).unwrap();
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let row = vsc_store::cards::by_serial(&mut conn, &card.serial).await.unwrap().unwrap();
    let keys = vsc_store::cards::keys(&mut conn, &row.id).await.unwrap();
    assert_eq!(keys.len(), 2);
    let mut secrets = Vec::new();
    for k in &keys {
        let sealed = vsc_crypto::SealedKey(k.sealed_private_key.clone());
        let der = sealed.open(&kek, &format!("card:{}:{}", row.id, k.purpose)).unwrap();
        assert!(sealed.open(&kek, &format!("card:{}:other", row.id)).is_err());
        assert!(!k.sealed_private_key.windows(der.len()).any(|w| w == der.as_slice()));
        // The P-256 private scalar: ECPrivateKey { version 1, privateKey OCTET STRING (32) … }.
        let at = der.windows(5).position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20]).expect("EC private key") + 5;
        secrets.push(der[at..at + 32].to_vec());
        secrets.push(der.to_vec());
    }
    if b == Backend::Sqlite {
        drop(conn);
        ts.vsc.store().close().await;
        let mut bytes = Vec::new();
        for name in ["vsc.db", "vsc.db-wal"] {
            if let Ok(b) = std::fs::read(ts.data_dir.join(name)) {
                bytes.extend(b);
            }
        }
        assert!(bytes.len() > 10_000);
        assert!(!bytes.windows(11).any(|w| w == b"PRIVATE KEY"));
        for s in &secrets {
            assert!(!bytes.windows(s.len()).any(|w| w == s.as_slice()), "private key bytes found in the database file");
        }
    }
}

async fn nodes_sharing_a_database_share_the_ca_and_refuse_another_kek(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let config = vsc_testkit::test_config(b, dir.path()).await;
    let first = TestServer::start_with(config.clone(), tempfile::tempdir().unwrap()).await;
    let ca = first.anon.ca_pem().await.unwrap();

    // A second node: same database and key file (for SQLite, the same data dir after a restart).
    if b == Backend::Sqlite {
        first.stop().await;
    }
    let second = TestServer::start_with(config.clone(), tempfile::tempdir().unwrap()).await;
    assert_eq!(second.anon.ca_pem().await.unwrap(), ca, "a second CA was created");
    let user = new_user(&second.client, "shared@example.nhs.uk").await;
    let card = second.client.issue_card(&user.id.to_string(), &card_req("v1", &["R8000"])).await.unwrap();
    let d = tempfile::tempdir().unwrap();
    openssl_verify(d.path(), &ca, &[("auth.pem", &card.certificates.authentication)]);

    // A node with another key-encryption key refuses to start and creates nothing.
    let mut wrong = config.clone();
    let other = dir.path().join("other-kek");
    wrong.kek_file = Some(other.clone());
    let msg = vsc_server::serve::Server::bind(wrong.clone()).await.err().expect("refused").to_string();
    assert!(msg.contains("already initialised"), "{msg}");
    assert!(!other.exists(), "a key file was created for a database that has one");
    vsc_crypto::Kek::load_or_create(&other).unwrap();
    let msg = vsc_server::serve::Server::bind(wrong).await.err().expect("refused").to_string();
    assert!(msg.contains("does not match the database"), "{msg}");
    let mut conn = second.vsc.store().conn().await.unwrap();
    assert!(vsc_store::ca::get(&mut conn, "root").await.unwrap().is_some());
    assert_eq!(second.anon.ca_pem().await.unwrap(), ca);
}

async fn readiness_follows_the_database(b: Backend) {
    let ts = TestServer::start(b).await;
    let (status, _) = ts.anon.raw(Method::GET, "/readyz", None).await.unwrap();
    assert_eq!(status, 200);
    ts.vsc.store().close().await;
    let (status, text) = ts.anon.raw(Method::GET, "/readyz", None).await.unwrap();
    assert_eq!(status, 503, "{text}");
    let (status, _) = ts.anon.raw(Method::GET, "/healthz", None).await.unwrap();
    assert_eq!(status, 200);
}

async fn rsa_profile_uses_the_key_pool(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = vsc_testkit::test_config(b, dir.path()).await;
    config.rsa_pool_size = 2;
    let ts = TestServer::start_with(config, dir).await;
    // The server's background task fills the pool; wait for it.
    let mut pooled = 0;
    for _ in 0..200 {
        let mut conn = ts.vsc.store().conn().await.unwrap();
        pooled = vsc_store::key_pool::count(&mut conn, "rsa2048").await.unwrap();
        if pooled == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pooled, 2);
    let user = new_user(&ts.client, "rsa@example.nhs.uk").await;
    let req = IssueCardRequest { key_algorithm: Some("rsa2048".into()), ..card_req("v2", &["R8000"]) };
    let card = ts.client.issue_card(&user.id.to_string(), &req).await.unwrap();
    assert_eq!(card.key_algorithm, "rsa2048");
    let mut conn = ts.vsc.store().conn().await.unwrap();
    assert_eq!(vsc_store::key_pool::count(&mut conn, "rsa2048").await.unwrap(), 0, "both keys came from the pool");
    let d = tempfile::tempdir().unwrap();
    let signing = card.certificates.signing.clone().unwrap();
    openssl_verify(
        d.path(),
        &ts.anon.ca_pem().await.unwrap(),
        &[("a.pem", &card.certificates.authentication), ("s.pem", &signing)],
    );
    assert!(openssl_text(d.path(), &signing).contains("rsaEncryption"));
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/healthz", &["get"][..]),
        ("/readyz", &["get"]),
        ("/api/v1/organisations", &["get", "post"]),
        ("/api/v1/users", &["get", "post"]),
        ("/api/v1/users/{id}", &["get"]),
        ("/api/v1/users/{id}/cards", &["post"]),
        ("/api/v1/cards/{serial}", &["get"]),
        ("/api/v1/cards/{serial}/revoke", &["post"]),
        ("/api/v1/pki/ca.pem", &["get"]),
        ("/api/v1/audit", &["get"]),
        ("/api/v1/cards/{serial}/invitation", &["post"]),
        ("/api/v1/enrolment/{token}", &["get", "post"]),
        ("/api/v1/enrolment/{token}/resend-code", &["post"]),
        ("/api/v1/enrolment/{token}/verify", &["post"]),
        ("/api/v1/self/sign-in", &["post"]),
        ("/api/v1/self/sign-in/{sign_in}/verify", &["post"]),
        ("/api/v1/self", &["get"]),
        ("/api/v1/self/sign-out", &["post"]),
        ("/api/v1/self/questions", &["put"]),
        ("/api/v1/self/email-verification", &["post"]),
        ("/api/v1/self/email-verification/{token}", &["post"]),
        ("/api/v1/self/mobile-verification", &["post"]),
        ("/api/v1/self/mobile-verification/verify", &["post"]),
        ("/api/v1/change-requests", &["get"]),
        ("/api/v1/change-requests/{id}/approve", &["post"]),
        ("/api/v1/change-requests/{id}/reject", &["post"]),
        ("/api/v1/self/not-me/{token}", &["post"]),
        ("/api/v1/organisations/{code}/dual-control", &["get", "put"]),
    ] {
        for m in methods {
            assert!(paths.get(path).and_then(|p| p.get(*m)).is_some(), "{m} {path} missing from the OpenAPI document");
        }
    }
    assert!(doc["components"]["schemas"]["CardView"].is_object());
    assert!(doc["components"]["schemas"]["ChangeRequested"].is_object(), "the 202 of dual-controlled actions");
    assert!(doc["paths"]["/api/v1/users/{id}"]["patch"]["responses"]["202"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

async fn get_json(c: &Client, path: &str) -> (u16, Value) {
    let (status, text) = c.raw(Method::GET, path, None).await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
}

fn surnames(v: &Value) -> Vec<&str> {
    v["users"].as_array().unwrap().iter().map(|u| u["surname"].as_str().unwrap()).collect()
}

async fn users_search_is_scoped_and_validated(b: Backend) {
    let ts = TestServer::start(b).await;
    let c = &ts.client;
    for (forename, surname, email) in
        [("Siobhan", "O'Brien", "siobhan@example.nhs.uk"), ("Anna", "Smithson", "anna@example.nhs.uk")]
    {
        let req = CreateUserRequest { forename: forename.into(), surname: surname.into(), ..user_req("ORG1", email) };
        c.create_user(&req).await.unwrap();
    }
    let holder = new_user(c, "holder@example.nhs.uk").await;
    let card = c.issue_card(&holder.id.to_string(), &card_req("v2", &["R8000"])).await.unwrap();
    let other = ts
        .vsc
        .bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "boss@other.nhs.uk", "Olive Boss")
        .await
        .unwrap();
    let c2 = ts.anon.with_token(&other.token);
    let req = CreateUserRequest { surname: "Smithers".into(), ..user_req("ORG2", "dora@other.nhs.uk") };
    c2.create_user(&req).await.unwrap();

    // Text, sorting and paging, within the caller's organisation only.
    let (status, v) = get_json(c, "/api/v1/users?q=MITH").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(surnames(&v), ["Smithson"]);
    assert_eq!((v["total"].as_i64(), v["page"].as_u64(), v["per_page"].as_u64()), (Some(1), Some(1), Some(50)));
    assert_eq!(v["users"][0]["organisation"], "ORG1");
    assert_eq!(v["users"][0]["display_name"].as_str().unwrap().split(" (").next(), Some("Anna Smithson"));
    let (_, v) = get_json(&c2, "/api/v1/users?q=mith").await;
    assert_eq!(surnames(&v), ["Smithers"]);
    let (_, v) = get_json(c, "/api/v1/users?q=o%27bri").await;
    assert_eq!(surnames(&v), ["O'Brien"]);
    let (_, v) = get_json(c, &format!("/api/v1/users?q={}", &card.serial[..10])).await;
    assert_eq!(v["users"][0]["id"], holder.id.to_string());
    assert_eq!(v["users"][0]["cards"][0]["serial"], card.serial.as_str());
    assert_eq!(v["users"][0]["cards"][0]["state"], "issued");
    let (_, v) = get_json(c, "/api/v1/users?enrolment=pending").await;
    assert_eq!(surnames(&v), ["Other"]);
    let (_, v) = get_json(c, "/api/v1/users?sort=name&dir=desc&per_page=2").await;
    assert_eq!(surnames(&v), ["Smithson", "Other"]);
    assert_eq!(v["total"], 3);
    let (_, v) = get_json(c, "/api/v1/users?sort=name&dir=desc&per_page=2&page=2").await;
    assert_eq!(surnames(&v), ["O'Brien"]);
    // Another organisation's code is not the caller's.
    let (status, v) = get_json(c, "/api/v1/users?organisation=ORG2").await;
    assert_eq!((status, v["error"]["field"].as_str()), (404, Some("organisation")), "{v}");
    let (_, v) = get_json(&c2, "/api/v1/users?organisation=ORG2").await;
    assert_eq!(surnames(&v), ["Smithers"]);

    // Bad parameters name the field.
    for (query, field) in [
        ("q=ab", "q"),
        ("sort=shoe_size", "sort"),
        ("dir=up", "dir"),
        ("page=0", "page"),
        ("per_page=201", "per_page"),
        ("card_state=lost", "card_state"),
        ("card_type=v3", "card_type"),
        ("enrolment=maybe", "enrolment"),
    ] {
        let (status, v) = get_json(c, &format!("/api/v1/users?{query}")).await;
        assert_eq!((status, v["error"]["field"].as_str()), (422, Some(field)), "{query}: {v}");
    }
    let (status, _) = ts.anon.raw(Method::GET, "/api/v1/users", None).await.unwrap();
    assert_eq!(status, 401);
}
