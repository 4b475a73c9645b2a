//! Deleting a user from the vRA Manager (`POST /ra/users/{id}/delete`, confirmation required) and
//! through the API (`DELETE /api/v1/users/{id}`): cards revoked and on the CRL, devices and
//! directory accounts gone, the audit trail kept; other organisations' users are not found. Also
//! restarting the issuance of an issued card (`POST .../cards/{serial}/restart`, page and API).

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use sqlx::Row;
use vsc_proto::{CreateUserRequest, IssueCardRequest, UserView};
use vsc_server::service::Principal;
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::ra::{
    count, exec, first_sign_in, other_organisation, other_organisation_user, staff_first_sign_in, text_of,
};

on_both_backends!(
    ra_delete_user_revokes_cards_removes_devices_and_keeps_the_audit_trail,
    ra_delete_user_of_another_organisation_is_not_found,
    api_delete_user_answers_204_then_404,
    ra_restart_issuance_gives_new_certificates_and_a_new_link,
);

fn new_user(org: &str, forename: &str, surname: &str, email: &str) -> CreateUserRequest {
    CreateUserRequest {
        organisation: org.into(),
        forename: forename.into(),
        surname: surname.into(),
        email: email.into(),
        mobile: None,
        subject_cn: None,
        directory_account: None,
    }
}

/// A user of ORG1 with an active V2 card, a device and a pending directory account → (user, card
/// serial, certificate serials).
async fn holder(ts: &TestServer) -> (UserView, String, Vec<String>) {
    let u = ts.client.create_user(&new_user("ORG1", "Dora", "Doomed", "dora.doomed@example.nhs.uk")).await.unwrap();
    let req = IssueCardRequest { card_type: "v2".into(), roles: vec!["R8000".into()], key_algorithm: None };
    let card = ts.client.issue_card(&u.id.to_string(), &req).await.unwrap();
    exec(ts, &format!("UPDATE cards SET state = 'active' WHERE serial = '{}'", card.serial)).await;
    exec(
        ts,
        &format!(
            "INSERT INTO devices (id, user_id, name, device_type, authenticator_type, state, created_at) \
             VALUES ('dev-dora', '{}', 'Dora phone', 'phone', 'vsc', 'active', 1700000000)",
            u.id
        ),
    )
    .await;
    exec(
        ts,
        &format!(
            "INSERT INTO directory_accounts (user_id, name, state, created_at) VALUES ('{}', 'DORA01', 'pending', 1700000000)",
            u.id
        ),
    )
    .await;
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let row = vsc_store::cards::by_serial(&mut conn, &card.serial).await.unwrap().unwrap();
    let certs = vsc_store::certificates::for_card(&mut conn, &row.id).await.unwrap();
    assert_eq!(certs.len(), 2, "a V2 card has two certificates");
    (u, card.serial, certs.into_iter().map(|c| c.serial_hex).collect())
}

/// Rows of `table` whose `user_id` is `id`.
async fn rows_of(ts: &TestServer, table: &str, id: &str) -> i64 {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE user_id = '{id}'");
    sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *conn).await.unwrap().get::<i64, _>("n")
}

/// The serials (upper-case hex, no leading zeros) listed on the service's current CRL.
async fn crl_serials(ts: &TestServer) -> Vec<String> {
    let der = ts.anon.crl().await.unwrap();
    let mut child = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&der).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(norm)
        .collect()
}

fn norm(hex: &str) -> String {
    hex.trim().trim_start_matches('0').to_ascii_uppercase()
}

async fn ra_delete_user_revokes_cards_removes_devices_and_keeps_the_audit_trail(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    let (u, serial, certs) = holder(&ts).await;
    let id = u.id.to_string();
    let path = format!("/ra/users/{id}");
    let page = web.get(&path).await;
    assert!(page.body.contains("id=\"delete-user-form\""), "{}", page.body);
    assert!(page.body.contains("I understand the cards will be revoked"));
    let listed = crl_serials(&ts).await;
    assert!(certs.iter().all(|c| !listed.contains(&norm(c))), "not revoked yet");

    // Without the confirmation box: refused, nothing changes.
    let unconfirmed = web.post(&format!("{path}/delete"), &[("csrf", &page.csrf())]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.body.contains("I understand the cards will be revoked"), "{}", unconfirmed.body);
    assert_eq!(count(&ts, "user.deleted").await, 0);
    assert_eq!(web.get(&path).await.status, StatusCode::OK);
    // Without the CSRF field: refused.
    let forged = web.post(&format!("{path}/delete"), &[("confirm", "on")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&ts, "user.deleted").await, 0);

    let deleted = web.post(&format!("{path}/delete"), &[("csrf", &page.csrf()), ("confirm", "on")]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    assert_eq!(deleted.location(), "/ra?done=user_deleted");
    let home = web.get(deleted.location()).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(text_of(&home, "note").starts_with("The user was deleted"), "{}", home.body);

    // The user is gone, everywhere.
    let gone = web.get(&path).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.body.contains("User not found"));
    assert!(ts.client.user(&id).await.is_err());
    assert_eq!(rows_of(&ts, "devices", &id).await, 0);
    assert_eq!(rows_of(&ts, "directory_accounts", &id).await, 0);
    assert_eq!(rows_of(&ts, "cards", &id).await, 0);
    // Both certificates are on the CRL.
    let listed = crl_serials(&ts).await;
    for c in &certs {
        assert!(listed.contains(&norm(c)), "{c} not in {listed:?}");
    }
    // The audit trail is kept, with the deletion naming the revoked card.
    assert_eq!(count(&ts, "user.created").await, 1);
    assert_eq!(count(&ts, "card.issued").await, 1);
    assert_eq!(count(&ts, "user.deleted").await, 1);
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let row = sqlx::query("SELECT target, detail FROM audit_events WHERE action = 'user.deleted'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("target"), format!("user:{id}"));
    let detail: serde_json::Value = serde_json::from_str(&row.get::<String, _>("detail")).unwrap();
    assert_eq!(detail["revoked_cards"], serde_json::json!([serial]));
    assert_eq!(detail["devices_deleted"], 1);
    assert_eq!(detail["directory_accounts_deleted"][0]["name"], "DORA01");

    // Again: not found.
    let again = web.post(&format!("{path}/delete"), &[("csrf", &page.csrf()), ("confirm", "on")]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

async fn ra_delete_user_of_another_organisation_is_not_found(b: Backend) {
    let ts = TestServer::start(b).await;
    other_organisation(&ts).await;
    let (u, _, _) = holder(&ts).await;
    let (mut web, _) = staff_first_sign_in(&ts, "olivia.other@other.nhs.uk", "ORG2", "manager", "Olivia Other").await;
    let csrf = web.get("/ra").await.csrf();
    for id in [u.id.to_string(), "00000000-0000-4000-8000-000000000000".into(), "not-a-uuid".into()] {
        let r = web.post(&format!("/ra/users/{id}/delete"), &[("csrf", &csrf), ("confirm", "on")]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}");
        assert!(r.body.contains("User not found"));
    }
    assert_eq!(count(&ts, "user.deleted").await, 0);
    assert!(ts.client.user(&u.id.to_string()).await.is_ok());
}

async fn api_delete_user_answers_204_then_404(b: Backend) {
    let ts = TestServer::start(b).await;
    other_organisation(&ts).await;
    let (u, _, certs) = holder(&ts).await;
    let theirs = other_organisation_user(&ts).await;
    let http = reqwest::Client::new();
    let delete = |id: String| {
        http.delete(format!("{}/api/v1/users/{id}", ts.url))
            .header(AUTHORIZATION, format!("Bearer {}", ts.token))
            .send()
    };
    // Another organisation's user, and no token at all.
    assert_eq!(delete(theirs.id.to_string()).await.unwrap().status(), StatusCode::NOT_FOUND);
    let anon = http.delete(format!("{}/api/v1/users/{}", ts.url, u.id)).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count(&ts, "user.deleted").await, 0);

    let r = delete(u.id.to_string()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(delete(u.id.to_string()).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert!(ts.client.user(&u.id.to_string()).await.is_err());
    let listed = crl_serials(&ts).await;
    assert!(certs.iter().all(|c| listed.contains(&norm(c))), "{listed:?}");
    assert_eq!(count(&ts, "user.deleted").await, 1);
    assert!(ts.vsc.get_user(&Principal::Operator, &theirs.id.to_string()).await.is_ok());
}

/// The enrolment tokens of the invitations sent to `email`, oldest first.
async fn invitation_tokens(ts: &TestServer, email: &str) -> Vec<String> {
    let marker = "/self-service/enrol/";
    let messages = ts.vsc.outbox(Some(email), 50).await.unwrap();
    let mut tokens: Vec<String> = messages
        .iter()
        .filter(|m| m.kind == "invitation")
        .map(|m| {
            let start = m.body.find(marker).expect("link in body") + marker.len();
            m.body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
        })
        .collect();
    tokens.dedup();
    tokens
}

async fn enrolment_status(ts: &TestServer, token: &str) -> StatusCode {
    reqwest::get(format!("{}/api/v1/enrolment/{token}", ts.url)).await.unwrap().status()
}

async fn ra_restart_issuance_gives_new_certificates_and_a_new_link(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    let u = ts.client.create_user(&new_user("ORG1", "Rita", "Restart", "rita.restart@example.nhs.uk")).await.unwrap();
    let req = IssueCardRequest { card_type: "v2".into(), roles: vec!["R8000".into()], key_algorithm: None };
    let card = ts.client.issue_card(&u.id.to_string(), &req).await.unwrap();
    let old_link = invitation_tokens(&ts, &u.email).await;
    assert_eq!(old_link.len(), 1);
    assert_eq!(enrolment_status(&ts, &old_link[0]).await, StatusCode::OK);
    let path = format!("/ra/users/{}", u.id);
    let page = web.get(&path).await;
    assert!(page.body.contains(&format!("{path}/cards/{}/restart", card.serial)), "{}", page.body);
    assert!(page.body.contains("Restart issuance"));

    let restarted = web.post(&format!("{path}/cards/{}/restart", card.serial), &[("csrf", &page.csrf())]).await;
    assert_eq!(restarted.status, StatusCode::SEE_OTHER, "{}", restarted.body);
    assert_eq!(restarted.location(), format!("{path}?done=issuance_restarted&card={}", card.serial));
    let after = web.get(restarted.location()).await;
    assert!(
        text_of(&after, "note").starts_with(&format!("Issuance of card {} restarted", card.serial)),
        "{}",
        after.body
    );
    assert!(after.body.contains(">card.issuance_restarted<"));
    assert_eq!(count(&ts, "card.issuance_restarted").await, 1);

    // Same card, new certificates; the old ones are on the CRL.
    let now = ts.client.card(&card.serial).await.unwrap();
    assert_eq!(now.state, "issued");
    assert_ne!(now.certificates.authentication, card.certificates.authentication);
    assert_ne!(now.certificates.signing, card.certificates.signing);
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let row = vsc_store::cards::by_serial(&mut conn, &card.serial).await.unwrap().unwrap();
    let certs = vsc_store::certificates::for_card(&mut conn, &row.id).await.unwrap();
    drop(conn);
    assert_eq!(certs.len(), 4);
    let listed = crl_serials(&ts).await;
    assert_eq!(certs.iter().filter(|c| listed.contains(&norm(&c.serial_hex))).count(), 2, "the superseded two");

    // A new link; the old one is dead.
    let links = invitation_tokens(&ts, &u.email).await;
    assert_eq!(links.len(), 2);
    assert_eq!(enrolment_status(&ts, &links[0]).await, StatusCode::NOT_FOUND);
    assert_eq!(enrolment_status(&ts, &links[1]).await, StatusCode::OK);

    // The API: 202 for an issued card, 409 once it is enrolled.
    let http = reqwest::Client::new();
    let restart = || {
        http.post(format!("{}/api/v1/cards/{}/restart", ts.url, card.serial))
            .header(AUTHORIZATION, format!("Bearer {}", ts.token))
            .send()
    };
    assert_eq!(restart().await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(invitation_tokens(&ts, &u.email).await.len(), 3);
    exec(&ts, &format!("UPDATE cards SET state = 'active' WHERE serial = '{}'", card.serial)).await;
    assert_eq!(restart().await.unwrap().status(), StatusCode::CONFLICT);
    let refused = web.post(&format!("{path}/cards/{}/restart", card.serial), &[("csrf", &page.csrf())]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&ts, "card.issuance_restarted").await, 2);
}
