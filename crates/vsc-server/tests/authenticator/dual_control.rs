//! Dual control over an enrolled holder's identity, replayed as an attacker would: an RA agent
//! acting alone, the requester approving their own request, a manager of another organisation,
//! two approvers racing, stale and expired requests.

use serde_json::{Value, json};
use vsc_client::Client;
use vsc_server::{Principal, Vsc};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use crate::devices::{Holder, delete, enrolled_holder, get, message, post, register_device};

on_both_backends!(
    an_agent_alone_cannot_take_over_a_card_and_the_holder_is_told,
    requesters_other_organisations_and_agents_cannot_approve,
    two_managers_racing_apply_a_request_once,
    requests_expire_are_rejected_or_withdrawn_and_block_renewal,
    dual_control_off_or_a_holder_not_enrolled_applies_at_once,
);

/// A staff account of `org` in `role` with an API token → a client acting as it.
async fn staff(ts: &TestServer, email: &str, org: &str, role: &str) -> Client {
    ts.vsc.invite_staff(email, org, role, Some("Sam Staff")).await.unwrap();
    ts.anon.with_token(&ts.vsc.create_token(email).await.unwrap())
}

async fn patch(c: &Client, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = c.raw(reqwest::Method::PATCH, path, Some(&body)).await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn count(vsc: &Vsc, action: &str) -> usize {
    vsc.audit_log(&Principal::Operator, 1000).await.unwrap().iter().filter(|e| e.action == action).count()
}

async fn sql(vsc: &Vsc, statement: &str, id: &str) {
    let mut conn = vsc.store().conn().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).bind(id).execute(&mut *conn).await.unwrap();
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

/// The id of a 202 answer's change request.
fn requested(status: u16, v: &Value) -> String {
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["change_request"]["state"], "pending", "{v}");
    v["change_request"]["id"].as_str().unwrap().to_string()
}

async fn holder_with_device(ts: &TestServer, email: &str) -> (Holder, String) {
    let h = enrolled_holder(ts, email).await;
    let device = register_device(ts, &h).await;
    (h, device.id)
}

async fn an_agent_alone_cannot_take_over_a_card_and_the_holder_is_told(b: Backend) {
    let ts = TestServer::start(b).await;
    let agent = staff(&ts, "agent.alone@example.nhs.uk", "ORG1", "agent").await;
    let manager = staff(&ts, "manager.two@example.nhs.uk", "ORG1", "manager").await;
    let (h, device) = holder_with_device(&ts, "holder.one@example.nhs.uk").await;
    let user = format!("/api/v1/users/{}", h.user_id);

    // The takeover: new email and mobile, the only authenticator deleted, an unlock link.
    let (s, email_req) = patch(&agent, &user, json!({ "email": "attacker@example.nhs.uk" })).await;
    let email_req = requested(s, &email_req);
    let (s, mobile_req) = patch(&agent, &user, json!({ "mobile": "+447700900999" })).await;
    let mobile_req = requested(s, &mobile_req);
    let (s, v) = agent.raw(reqwest::Method::DELETE, &format!("{user}/devices/{device}"), None).await.unwrap();
    let device_req = requested(s, &serde_json::from_str(&v).unwrap());
    let (s, v) = post(&agent, &format!("/api/v1/cards/{}/unlock", h.serial), json!({})).await;
    let unlock_req = requested(s, &v);
    // The same request twice is refused, not queued.
    let (s, v) = patch(&agent, &user, json!({ "email": "other@example.nhs.uk" })).await;
    assert_eq!((s, code(&v)), (409, "CF0001Conflict"), "{v}");

    // Nothing changed: same email and mobile, the device is there, no reset link was sent.
    let (_, u) = get(&agent, &user).await;
    assert_eq!(u["email"], h.email.as_str());
    assert_ne!(u["mobile"], "+447700900999");
    let (_, devices) = get(&h.client, "/api/v1/self/devices").await;
    assert!(devices.to_string().contains(&device), "{devices}");
    assert!(ts.vsc.outbox(Some(&h.email), 50).await.unwrap().iter().all(|m| m.kind != "passcode_reset"));
    assert_eq!(count(&ts.vsc, "change_request.created").await, 4);

    // Listed for the organisation, with who asked; the user page shows them.
    let (s, list) = get(&manager, "/api/v1/change-requests?state=pending").await;
    assert_eq!(s, 200, "{list}");
    let items = list["change_requests"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{list}");
    assert!(items.iter().all(|r| r["requested_by"] == "agent.alone@example.nhs.uk"));
    let email_item = items.iter().find(|r| r["id"] == email_req.as_str()).unwrap();
    assert_eq!(email_item["detail"]["new"], "attacker@example.nhs.uk");
    assert_eq!(email_item["action"], "email_change");

    // A manager approves the email change: applied, the holder told at the OLD address.
    let (s, approved) = post(&manager, &format!("/api/v1/change-requests/{email_req}/approve"), json!({})).await;
    assert_eq!(s, 200, "{approved}");
    assert_eq!(approved["change_request"]["state"], "approved");
    assert_eq!(approved["change_request"]["decided_by"], "manager.two@example.nhs.uk");
    assert_eq!(approved["result"]["email"], "attacker@example.nhs.uk");
    let notice = message(&ts.vsc, &h.email, "change_approved").await;
    assert!(notice.body.contains("attacker@example.nhs.uk"), "{}", notice.body);
    assert!(notice.body.contains("/self-service/not-me/"), "{}", notice.body);
    let audit = ts.vsc.audit_log(&Principal::Operator, 1000).await.unwrap();
    let event = audit.iter().find(|e| e.action == "change_request.approved").unwrap();
    let detail = event.detail.to_string();
    for part in ["agent.alone@example.nhs.uk", "manager.two@example.nhs.uk", h.email.as_str(), "attacker@"] {
        assert!(detail.contains(part), "{part} in {detail}");
    }

    // Approving again answers that it is no longer pending.
    let (s, v) = post(&manager, &format!("/api/v1/change-requests/{email_req}/approve"), json!({})).await;
    assert_eq!((s, code(&v)), (409, "CR0003NotPending"), "{v}");

    // The mobile change tells the old mobile too.
    let old_mobile = ts.vsc.get_user(&Principal::Operator, &h.user_id).await.unwrap().mobile.unwrap();
    let (s, v) = post(&manager, &format!("/api/v1/change-requests/{mobile_req}/approve"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["mobile"], "+447700900999");
    message(&ts.vsc, &old_mobile, "change_approved").await;

    // The device and unlock requests are rejected: nothing happens.
    for id in [&device_req, &unlock_req] {
        let (s, v) =
            post(&manager, &format!("/api/v1/change-requests/{id}/reject"), json!({ "reason": "not asked" })).await;
        assert_eq!((s, v["state"].as_str()), (200, Some("rejected")), "{v}");
    }
    // The approved mobile change ended the holder's portal session; the device stays.
    assert_eq!(get(&h.client, "/api/v1/self/devices").await.0, 401);
    assert_eq!(crate::devices::stored_state(&ts.vsc, &device).await.as_deref(), Some("active"));

    // "This was not me" from the notice suspends the card.
    let body = notice.body;
    let start = body.find("/self-service/not-me/").unwrap() + "/self-service/not-me/".len();
    let token: String =
        body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
    let (s, v) = post(&ts.anon, &format!("/api/v1/self/not-me/{token}"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["suspended"], json!([h.serial]));
    let card = ts.vsc.get_card(&Principal::Operator, &h.serial).await.unwrap();
    assert_eq!(card.state, "suspended");
    let (s, v) = post(&ts.anon, &format!("/api/v1/self/not-me/{token}"), json!({})).await;
    assert_eq!((s, code(&v)), (410, "EN0002LinkUsed"), "{v}");
    assert_eq!(count(&ts.vsc, "holder.reported_not_me").await, 1);

    // Resuming is dual-controlled too: the agent asks, a manager approves.
    let (s, v) = post(&agent, &format!("/api/v1/cards/{}/resume", h.serial), json!({})).await;
    let resume_req = requested(s, &v);
    assert_eq!(ts.vsc.get_card(&Principal::Operator, &h.serial).await.unwrap().state, "suspended");
    let (s, v) = post(&manager, &format!("/api/v1/change-requests/{resume_req}/approve"), json!({})).await;
    assert_eq!((s, v["result"]["state"].as_str()), (200, Some("active")), "{v}");
}

async fn requesters_other_organisations_and_agents_cannot_approve(b: Backend) {
    let ts = TestServer::start(b).await;
    let manager = staff(&ts, "asker@example.nhs.uk", "ORG1", "manager").await;
    let agent = staff(&ts, "agent.two@example.nhs.uk", "ORG1", "agent").await;
    ts.client
        .create_organisation(&vsc_proto::CreateOrganisationRequest {
            code: "ORG2".into(),
            name: "Other Trust".into(),
            email_domains: vec!["other.nhs.uk".into()],
        })
        .await
        .unwrap();
    let outsider = staff(&ts, "outsider@other.nhs.uk", "ORG2", "manager").await;
    let h = enrolled_holder(&ts, "holder.two@example.nhs.uk").await;
    let (s, v) =
        patch(&manager, &format!("/api/v1/users/{}", h.user_id), json!({ "email": "new.two@example.nhs.uk" })).await;
    let id = requested(s, &v);
    let approve = format!("/api/v1/change-requests/{id}/approve");

    let (s, v) = post(&manager, &approve, json!({})).await;
    assert_eq!((s, code(&v)), (403, "CR0001OwnRequest"), "{v}");
    let (s, v) = post(&agent, &approve, json!({})).await;
    assert_eq!((s, code(&v)), (403, "CR0002NotAnApprover"), "{v}");
    let (s, v) = post(&outsider, &approve, json!({})).await;
    assert_eq!((s, code(&v)), (404, "NF0001NotFound"), "{v}");
    let (s, list) = get(&outsider, "/api/v1/change-requests").await;
    assert_eq!(s, 200);
    assert_eq!(list["change_requests"], json!([]), "another organisation's manager sees nothing");
    // Agents may not reject others' requests either, and nobody can approve by rejecting.
    let (s, v) = post(&agent, &format!("/api/v1/change-requests/{id}/reject"), json!({ "reason": "x" })).await;
    assert_eq!((s, code(&v)), (403, "CR0002NotAnApprover"), "{v}");
    let (s, v) = post(&manager, &format!("/api/v1/change-requests/{id}/reject"), json!({ "reason": " " })).await;
    assert_eq!((s, code(&v)), (422, "IN0001InvalidInput"), "{v}");
    assert_eq!(ts.vsc.get_user(&Principal::Operator, &h.user_id).await.unwrap().email, h.email);
    // The operator (the bootstrap account) approves.
    let (s, v) = post(&ts.client, &approve, json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ts.vsc.get_user(&Principal::Operator, &h.user_id).await.unwrap().email, "new.two@example.nhs.uk");
}

async fn two_managers_racing_apply_a_request_once(b: Backend) {
    let ts = TestServer::start(b).await;
    let agent = staff(&ts, "agent.race@example.nhs.uk", "ORG1", "agent").await;
    let m1 = staff(&ts, "m1@example.nhs.uk", "ORG1", "manager").await;
    let m2 = staff(&ts, "m2@example.nhs.uk", "ORG1", "manager").await;
    let h = enrolled_holder(&ts, "holder.race@example.nhs.uk").await;
    let (s, v) = post(&agent, &format!("/api/v1/cards/{}/unlock", h.serial), json!({})).await;
    let id = requested(s, &v);
    let approve = format!("/api/v1/change-requests/{id}/approve");
    let (a, b2) = tokio::join!(post(&m1, &approve, json!({})), post(&m2, &approve, json!({})));
    let mut statuses = [a.0, b2.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b2:?}");
    assert_eq!(count(&ts.vsc, "card.unlock_link_issued").await, 1);
    assert_eq!(count(&ts.vsc, "change_request.approved").await, 1);
}

async fn requests_expire_are_rejected_or_withdrawn_and_block_renewal(b: Backend) {
    let ts = TestServer::start(b).await;
    let agent = staff(&ts, "agent.three@example.nhs.uk", "ORG1", "agent").await;
    let h = enrolled_holder(&ts, "holder.three@example.nhs.uk").await;
    let user = format!("/api/v1/users/{}", h.user_id);
    let (s, v) = patch(&agent, &user, json!({ "mobile": "+447700900555" })).await;
    let id = requested(s, &v);

    // Renewal certifies the identity as it stands: not while a change waits.
    let (s, v) = post(&ts.client, &format!("/api/v1/cards/{}/renew", h.serial), json!({})).await;
    assert_eq!((s, code(&v)), (409, "ST0001InvalidState"), "{v}");

    // The requester withdraws it; then renewal works.
    let (s, v) = post(&agent, &format!("/api/v1/change-requests/{id}/reject"), json!({ "reason": "typo" })).await;
    assert_eq!((s, v["state"].as_str(), v["reason"].as_str()), (200, Some("rejected"), Some("typo")), "{v}");
    assert_eq!(count(&ts.vsc, "change_request.withdrawn").await, 1);

    // A request past 72 hours is expired: not approvable, listed as expired, and a new one may be made.
    let (s, v) = patch(&agent, &user, json!({ "mobile": "+447700900556" })).await;
    let id = requested(s, &v);
    sql(&ts.vsc, "UPDATE change_requests SET requested_at = requested_at - 259300, expires_at = expires_at - 259300 WHERE id = $1", &id)
        .await;
    let (s, v) = post(&ts.client, &format!("/api/v1/change-requests/{id}/approve"), json!({})).await;
    assert_eq!((s, code(&v)), (409, "CR0003NotPending"), "{v}");
    let (_, pending) = get(&ts.client, "/api/v1/change-requests").await;
    assert_eq!(pending["change_requests"], json!([]));
    let (_, expired) = get(&ts.client, "/api/v1/change-requests?state=expired").await;
    assert_eq!(expired["change_requests"][0]["id"], id.as_str());
    let (s, v) = get(&ts.client, "/api/v1/change-requests?state=done").await;
    assert_eq!((s, code(&v)), (422, "IN0001InvalidInput"));
    let (s, v) = patch(&agent, &user, json!({ "mobile": "+447700900556" })).await;
    requested(s, &v);
}

async fn dual_control_off_or_a_holder_not_enrolled_applies_at_once(b: Backend) {
    let ts = TestServer::start(b).await;
    let agent = staff(&ts, "agent.four@example.nhs.uk", "ORG1", "agent").await;
    // Not enrolled yet: the change applies at once (as before dual control).
    let fresh = ts
        .client
        .create_user(&vsc_proto::CreateUserRequest {
            organisation: "ORG1".into(),
            forename: "Ned".into(),
            surname: "New".into(),
            email: "ned.new@example.nhs.uk".into(),
            mobile: None,
            subject_cn: None,
            directory_account: None,
        })
        .await
        .unwrap();
    let (s, v) = patch(&agent, &format!("/api/v1/users/{}", fresh.id), json!({ "email": "ned@example.nhs.uk" })).await;
    assert_eq!((s, v["email"].as_str()), (200, Some("ned@example.nhs.uk")), "{v}");

    // Only an operator turns dual control off (audited); then actions apply at once.
    let manager = staff(&ts, "manager.four@example.nhs.uk", "ORG1", "manager").await;
    let path = "/api/v1/organisations/ORG1/dual-control";
    let (s, v) = manager.raw(reqwest::Method::PUT, path, Some(&json!({ "dual_control": false }))).await.unwrap();
    assert_eq!(s, 403, "{v}");
    let (s, v) = get(&manager, path).await;
    assert_eq!((s, v["dual_control"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = ts.client.raw(reqwest::Method::PUT, path, Some(&json!({ "dual_control": false }))).await.unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(count(&ts.vsc, "organisation.dual_control_changed").await, 1);
    let h = enrolled_holder(&ts, "holder.four@example.nhs.uk").await;
    let (s, v) = patch(&agent, &format!("/api/v1/users/{}", h.user_id), json!({ "mobile": "+447700900444" })).await;
    assert_eq!((s, v["mobile"].as_str()), (200, Some("+447700900444")), "{v}");
    assert_eq!(delete(&agent, "/api/v1/users/00000000-0000-0000-0000-000000000000/devices/x").await, 404);
}
