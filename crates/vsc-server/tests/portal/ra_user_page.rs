//! The vRA Manager's user page, completed: directory accounts (add, remove after a confirmation,
//! empty state), mobile and subject CN edits (audited, subject CN unique), the self-refreshing
//! audit log fragment (matched on targets, not on text), deleting a device after a confirmation
//! step and through `DELETE /api/v1/users/{id}/devices/{device}`, and error pages in the RA layout.

use reqwest::{Method, StatusCode};
use vsc_client::Client;
use vsc_proto::IssueCardRequest;
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::Page;
use super::ra::{add_device, count, exec, first_sign_in, last_detail, staff_first_sign_in, text_of};

on_both_backends!(
    ra_user_page_directory_accounts_and_audit_log,
    ra_edits_mobile_and_subject_cn,
    ra_deletes_devices_after_confirming,
);

/// The error message shown with id `id`.
fn message_of(page: &Page, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let at = page.body.find(&marker).unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    let rest = &page.body[at + marker.len()..];
    rest[..rest.find("</p>").unwrap()].replace("<span class=\"visually-hidden\">Error: </span>", "")
}

async fn ra_user_page_directory_accounts_and_audit_log(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "manager.dir@example.nhs.uk").await;
    let u = super::holder(&ts, "dora.dir@example.nhs.uk", None).await;
    let path = format!("/ra/users/{}", u.id);

    let page = web.get(&path).await;
    assert_eq!(text_of(&page, "directory-empty"), "No directory accounts");
    let csrf = page.csrf();
    let accounts = format!("{path}/directory-accounts");

    let added = web.post(&accounts, &[("csrf", &csrf), ("name", "CORP\\dora.dir")]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let page = web.get(added.location()).await;
    assert_eq!(text_of(&page, "note"), "Directory account CORP\\dora.dir was added.");
    assert!(page.body.contains("data-account=\"CORP\\dora.dir\""), "{}", page.body);
    assert!(page.body.contains(">pending<"), "not enrolled yet: pending");
    assert!(!page.body.contains("id=\"directory-empty\""));
    assert_eq!(last_detail(&ts, "directory_account.added").await["state"], "pending");

    // A duplicate and a bad name: the problem beside the form, what was typed kept.
    let twice = web.post(&accounts, &[("csrf", &csrf), ("name", "CORP\\dora.dir")]).await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message_of(&twice, "directory-error").contains("already has directory account"), "{}", twice.body);
    let bad = web.post(&accounts, &[("csrf", &csrf), ("name", "no spaces please")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message_of(&bad, "directory-error").contains("64 letters"), "{}", bad.body);
    assert!(bad.body.contains("value=\"no spaces please\""));
    assert_eq!(count(&ts, "directory_account.added").await, 1);

    // Removing asks first (the link carries the name, encoded), then removes.
    assert!(page.body.contains("directory-accounts/remove?name=CORP%5Cdora.dir"), "{}", page.body);
    let confirm = web.get(&format!("{accounts}/remove?name=CORP%5Cdora.dir")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(text_of(&confirm, "confirm-title").contains("CORP\\dora.dir"));
    assert!(confirm.body.contains("id=\"confirm-button\""));
    assert_eq!(count(&ts, "directory_account.removed").await, 0, "showing the confirmation changes nothing");
    assert_eq!(web.get(&format!("{accounts}/remove?name=nobody")).await.status, StatusCode::NOT_FOUND);
    let removed =
        web.post(&format!("{accounts}/remove"), &[("csrf", &confirm.csrf()), ("name", "CORP\\dora.dir")]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    let page = web.get(removed.location()).await;
    assert_eq!(text_of(&page, "directory-empty"), "No directory accounts");
    assert_eq!(last_detail(&ts, "directory_account.removed").await["name"], "CORP\\dora.dir");

    // A holder who has already enrolled (has a passcode): a new account is active at once.
    let enrolled = super::holder(&ts, "eve.enrolled@example.nhs.uk", None).await;
    exec(
        &ts,
        &format!(
            "INSERT INTO holder_credentials (user_id, passcode_hash, updated_at) VALUES ('{}', 'x', 1700000000)",
            enrolled.id
        ),
    )
    .await;
    let theirs = format!("/ra/users/{}/directory-accounts", enrolled.id);
    let added = web.post(&theirs, &[("csrf", &csrf), ("name", "eve.enrolled")]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let page = web.get(added.location()).await;
    assert!(page.body.contains(">active<") && !page.body.contains(">pending<"), "{}", page.body);
    assert_eq!(last_detail(&ts, "directory_account.added").await["state"], "active");

    // The audit log alone: newest first, only this user's and their cards' events; an event
    // that merely mentions the card's serial (another user's) is not theirs.
    let card = ts
        .client
        .issue_card(
            &u.id.to_string(),
            &IssueCardRequest { card_type: "v1".into(), roles: vec!["R8000".into()], key_algorithm: None },
        )
        .await
        .unwrap();
    exec(
        &ts,
        &format!(
            "INSERT INTO audit_events (at, actor, action, org_id, target, detail) VALUES (1700000000, 'test', \
             'test.mentions_serial', (SELECT id FROM organisations WHERE code = 'ORG1'), \
             'user:00000000-0000-4000-8000-000000000000', '{{\"note\":\"{}\"}}')",
            card.serial
        ),
    )
    .await;
    let fragment = web.get(&format!("{path}/audit")).await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(!fragment.body.contains("<html"), "a fragment, not a page");
    assert!(fragment.body.contains("hx-trigger=\"every 5s\""));
    let at = |action: &str| fragment.body.find(&format!(">{action}<")).unwrap_or_else(|| panic!("no {action}"));
    assert!(at("card.issued") < at("directory_account.removed"));
    assert!(at("directory_account.removed") < at("directory_account.added"));
    assert!(at("directory_account.added") < at("user.created"));
    assert!(!fragment.body.contains("test.mentions_serial"), "{}", fragment.body);
    // The full page includes the same log.
    assert!(web.get(&path).await.body.contains("id=\"audit-log\""));

    // Staff of another organisation: 404 for all of it, nothing changes.
    ts.vsc.bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "ra@other.nhs.uk", "Rob Other").await.unwrap();
    let (mut other, _) = staff_first_sign_in(&ts, "agent@other.nhs.uk", "ORG2", "agent", "Otto Other").await;
    let csrf = other.get("/ra").await.csrf();
    assert_eq!(other.get(&format!("{path}/audit")).await.status, StatusCode::NOT_FOUND);
    let theirs = other.post(&accounts, &[("csrf", &csrf), ("name", "sneaky")]).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&ts, "directory_account.added").await, 2);
    ts.stop().await;
}

async fn ra_edits_mobile_and_subject_cn(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "manager.cn@example.nhs.uk").await;
    let u = super::holder(&ts, "mo.bile@example.nhs.uk", Some("+447700900123")).await;
    let other = super::holder(&ts, "cn.owner@example.nhs.uk", None).await;
    let edit_path = format!("/ra/users/{}/edit", u.id);
    let edit = web.get(&edit_path).await;
    assert!(edit.body.contains("value=\"+447700900123\"") && edit.body.contains(&u.subject_cn), "{}", edit.body);
    let csrf = edit.csrf();
    let post = |mobile: &'static str, cn: String| {
        vec![
            ("csrf", csrf.clone()),
            ("forename", u.forename.clone()),
            ("surname", u.surname.clone()),
            ("mobile", mobile.into()),
            ("subject_cn", cn),
        ]
    };

    let fields = post("+44 7700 900999", "Mo Bile 1".into());
    let saved = web.post(&edit_path, &super::pairs(&fields)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = web.get(saved.location()).await;
    assert_eq!(text_of(&page, "user-mobile"), "+447700900999");
    assert_eq!(text_of(&page, "user-mobile-state"), "not confirmed", "a number typed by the RA");
    assert!(!ts.client.user(&u.id.to_string()).await.unwrap().mobile_verified);
    assert_eq!(text_of(&page, "user-subject-cn"), "Mo Bile 1");
    let mobile = last_detail(&ts, "user.mobile_changed").await;
    assert_eq!((mobile["old"].as_str(), mobile["new"].as_str()), (Some("+447700900123"), Some("+447700900999")));
    let cn = last_detail(&ts, "user.subject_cn_changed").await;
    assert_eq!((cn["old"].as_str(), cn["new"].as_str()), (Some(u.subject_cn.as_str()), Some("Mo Bile 1")));
    assert!(page.body.contains(">user.subject_cn_changed<"), "in the user's audit log");

    // Another user's subject CN: refused beside the field, nothing changed.
    let fields = post("", other.subject_cn.clone());
    let taken = web.post(&edit_path, &super::pairs(&fields)).await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = message_of(&taken, "subject_cn-error");
    assert!(message.contains(&format!("subject CN {} is taken", other.subject_cn)), "{message}");
    let now = ts.client.user(&u.id.to_string()).await.unwrap();
    assert_eq!((now.mobile.as_deref(), now.subject_cn.as_str()), (Some("+447700900999"), "Mo Bile 1"));

    // Clearing the mobile is allowed; the same details again change nothing.
    let fields = post("", "Mo Bile 1".into());
    assert_eq!(web.post(&edit_path, &super::pairs(&fields)).await.status, StatusCode::SEE_OTHER);
    assert_eq!(ts.client.user(&u.id.to_string()).await.unwrap().mobile, None);
    assert_eq!(last_detail(&ts, "user.mobile_changed").await["new"], serde_json::Value::Null);
    assert_eq!(count(&ts, "user.mobile_changed").await, 2);
    assert_eq!(count(&ts, "user.subject_cn_changed").await, 1);

    // The JSON API: the same rules.
    let api = format!("/api/v1/users/{}", u.id);
    let body = serde_json::json!({ "subject_cn": other.subject_cn });
    let (status, text) = ts.client.raw(Method::PATCH, &api, Some(&body)).await.unwrap();
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("is taken") && text.contains("subject_cn"), "{text}");
    let body = serde_json::json!({ "mobile": "+447700900555", "subject_cn": "Mo Bile 2" });
    let (status, text) = ts.client.raw(Method::PATCH, &api, Some(&body)).await.unwrap();
    assert_eq!(status, 200, "{text}");
    let view: vsc_proto::UserView = serde_json::from_str(&text).unwrap();
    assert_eq!((view.mobile.as_deref(), view.subject_cn.as_str()), (Some("+447700900555"), "Mo Bile 2"));
    let bad = serde_json::json!({ "mobile": "call me" });
    assert_eq!(ts.client.raw(Method::PATCH, &api, Some(&bad)).await.unwrap().0, 422);
    let cleared = serde_json::json!({ "mobile": "" });
    assert_eq!(ts.client.raw(Method::PATCH, &api, Some(&cleared)).await.unwrap().0, 200);
    assert_eq!(ts.client.user(&u.id.to_string()).await.unwrap().mobile, None);
    ts.stop().await;
}

async fn ra_deletes_devices_after_confirming(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "manager.dev@example.nhs.uk").await;
    let u = super::holder(&ts, "dev.owner@example.nhs.uk", None).await;
    let path = format!("/ra/users/{}", u.id);
    for (id, state) in [("dev-a", "active"), ("dev-b", "pending_registration"), ("dev-c", "active")] {
        add_device(&ts, u.id, id, state, ["2.0.1", "iOS", "18.1"]).await;
    }
    let page = web.get(&path).await;
    assert!(page.body.contains(&format!("href=\"{path}/devices/dev-a/delete\"")), "a link to the confirmation");

    let confirm = web.get(&format!("{path}/devices/dev-a/delete")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert_eq!(text_of(&confirm, "confirm-title"), "Delete device Phone dev-a?");
    assert!(confirm.body.contains("iOS 18.1") && confirm.body.contains("2.0.1"), "{}", confirm.body);
    assert_eq!(count(&ts, "device.deleted").await, 0, "showing the confirmation changes nothing");
    assert_eq!(web.get(&format!("{path}/devices/nope/delete")).await.status, StatusCode::NOT_FOUND);
    let deleted = web.post(&format!("{path}/devices/dev-a/delete"), &[("csrf", &confirm.csrf())]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    let after = web.get(deleted.location()).await;
    assert!(!after.body.contains("data-device-id=\"dev-a\"") && after.body.contains("data-device-id=\"dev-b\""));

    // The JSON mirror: 204, audited like the button; 404 when gone and for other organisations.
    let api = |d: &str| format!("/api/v1/users/{}/devices/{d}", u.id);
    let (status, text) = ts.client.raw(Method::DELETE, &api("dev-b"), None).await.unwrap();
    assert_eq!(status, 204, "{text}");
    assert_eq!(count(&ts, "device.deleted").await, 2);
    assert_eq!(last_detail(&ts, "device.deleted").await["device"], "dev-b");
    assert_eq!(ts.client.raw(Method::DELETE, &api("dev-b"), None).await.unwrap().0, 404);
    let org2 = ts.vsc.bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "ra@other.nhs.uk", "Rob").await;
    let org2 = Client::new(&ts.url).with_token(&org2.unwrap().token);
    let (status, text) = org2.raw(Method::DELETE, &api("dev-c"), None).await.unwrap();
    assert_eq!(status, 404, "{text}");
    assert!(!text.contains("dev-c") && !text.contains("device"), "nothing about the device leaks: {text}");
    assert_eq!(count(&ts, "device.deleted").await, 2);
    assert!(web.get(&path).await.body.contains("data-device-id=\"dev-c\""));

    // Error pages under /ra are in the vRA Manager's layout, leading back into it.
    let missing = web.get("/ra/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("vRA Manager") && missing.body.contains("href=\"/ra\""), "{}", missing.body);
    assert!(!missing.body.contains("Self-Service Portal"), "{}", missing.body);
    ts.stop().await;
}

#[test]
fn openapi_documents_device_delete_and_the_new_patch_fields() {
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    assert!(doc["paths"]["/api/v1/users/{id}/devices/{device}"]["delete"].is_object(), "DELETE device documented");
    let patch = &doc["components"]["schemas"]["UpdateUserRequest"]["properties"];
    for field in ["forename", "surname", "email", "mobile", "subject_cn"] {
        assert!(patch[field].is_object(), "UpdateUserRequest.{field} documented: {patch}");
    }
}
