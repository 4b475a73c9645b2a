//! Staff management in the vRA Manager (`/ra/staff`, `/api/v1/staff`): a manager invites staff
//! (the link emailed, never shown to the manager), the invitee signs in from the email; agents are refused;
//! granting and revoking organisations changes what staff see; disabling ends sessions, pending
//! sign-ins and API tokens; managers cannot disable or demote themselves.

use reqwest::{Method, StatusCode};
use vsc_client::Client;
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::Browser;
use super::ra::{
    FAILED, PASSWORD, app_code, count, first_sign_in, link_path, password_step, staff_first_sign_in, text_of,
};

on_both_backends!(
    ra_manager_invites_staff_who_sign_in_from_the_email,
    ra_granted_organisations_decide_what_staff_see,
    ra_disabling_staff_ends_their_sessions_and_tokens,
);

const MANAGER: &str = "fiona.manager@example.nhs.uk";
const AGENT: &str = "alex.agent@example.nhs.uk";

/// A manager of ORG1 and ORG2 signed in → (browser, API client with a token of theirs).
async fn manager_of_two(ts: &TestServer) -> (Browser, Client) {
    let (web, _) = first_sign_in(ts, MANAGER).await;
    ts.vsc.bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "rob@other.nhs.uk", "Rob Other").await.unwrap();
    ts.vsc.invite_staff(MANAGER, "ORG2", "manager", None).await.unwrap();
    let api = ts.anon.with_token(&ts.vsc.create_token(MANAGER).await.unwrap());
    (web, api)
}

/// The invitee opens the emailed link, sets a password and signs in for the first time.
async fn sign_in_from_email(ts: &TestServer, email: &str) -> (Browser, String) {
    let mail = ts.vsc.outbox(Some(email), 10).await.unwrap();
    let m = mail.iter().rev().find(|m| m.kind == "staff_invitation").expect("an invitation to the vRA Manager");
    let at = m.body.find("http").expect("a link");
    let link: String = m.body[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    let mut web = Browser::new(&ts.url);
    let path = link_path(&link);
    let form = web.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let set = web.post(&path, &[("csrf", &form.csrf()), ("password", PASSWORD), ("confirm", PASSWORD)]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert_eq!(password_step(&mut web, email, PASSWORD).await.location(), "/ra/totp-setup");
    let setup = web.get("/ra/totp-setup").await;
    let code = app_code(&text_of(&setup, "totp-secret"));
    let done = web.post("/ra/totp-setup", &[("csrf", &setup.csrf()), ("code", &code)]).await;
    assert_eq!(done.location(), "/ra", "{}", done.body);
    (web, link)
}

/// The staff member with `email` as the API lists them.
async fn listed(api: &Client, email: &str) -> Option<serde_json::Value> {
    let (status, text) = api.raw(Method::GET, "/api/v1/staff", None).await.unwrap();
    assert_eq!(status, 200, "{text}");
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    list["staff"].as_array().unwrap().iter().find(|s| s["email"] == email).cloned()
}

async fn ra_manager_invites_staff_who_sign_in_from_the_email(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, api) = manager_of_two(&ts).await;
    let list = web.get("/ra/staff").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("id=\"nav-staff\" aria-current=\"page\""), "{}", list.body);
    assert!(list.body.contains(MANAGER) && list.body.contains("rob@other.nhs.uk"));

    let form = web.get("/ra/staff/new").await;
    assert!(form.body.contains("value=\"ORG1\"") && form.body.contains("value=\"ORG2\""), "{}", form.body);
    let csrf = form.csrf();
    let fields = |orgs: &'static [&'static str]| {
        let mut f = vec![("csrf", csrf.as_str()), ("email", AGENT), ("name", "Alex O'Agent"), ("role", "agent")];
        f.extend(orgs.iter().map(|o| ("organisations", *o)));
        f
    };
    let none = web.post("/ra/staff/new", &fields(&[])).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains("id=\"organisations-error\""), "{}", none.body);
    assert!(none.body.contains("value=\"Alex O&#39;Agent\"") || none.body.contains("value=\"Alex O&#x27;Agent\""));
    let invited = web.post("/ra/staff/new", &fields(&["ORG1"])).await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    assert_eq!(text_of(&invited, "invited-email"), AGENT);
    assert!(!invited.body.contains("/ra/set-password/"), "the link is for the invitee only: {}", invited.body);
    let again = web.post("/ra/staff/new", &fields(&["ORG1"])).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("already has a staff account"), "{}", again.body);

    // The email carries the link; the agent signs in with it.
    let (mut agent, emailed) = sign_in_from_email(&ts, AGENT).await;
    assert!(emailed.contains("/ra/set-password/"), "{emailed}");
    assert_eq!(text_of(&agent.get("/ra").await, "staff-role"), "RA Agent");
    let seen = listed(&api, AGENT).await.expect("the agent in the list");
    assert_eq!(seen["organisations"], serde_json::json!(["ORG1"]));
    assert_eq!((seen["password_set"].as_bool(), seen["totp_set"].as_bool()), (Some(true), Some(true)));
    assert!(seen["last_sign_in"].is_string(), "{seen}");
    assert_eq!(count(&ts, "staff.created").await, 4, "two bootstraps and two invitations");

    // Agents are refused, on the pages and in the API.
    let id = seen["id"].as_str().unwrap().to_string();
    for path in ["/ra/staff".to_string(), "/ra/staff/new".into(), format!("/ra/staff/{id}")] {
        let page = agent.get(&path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("Staff management is for RA managers"), "{}", page.body);
        assert!(page.body.contains("vRA Manager"), "the RA layout");
    }
    let agent_api = ts.anon.with_token(&ts.vsc.create_token(AGENT).await.unwrap());
    assert_eq!(agent_api.raw(Method::GET, "/api/v1/staff", None).await.unwrap().0, 403);
    let promote = serde_json::json!({ "role": "manager" });
    assert_eq!(agent_api.raw(Method::PATCH, &format!("/api/v1/staff/{id}"), Some(&promote)).await.unwrap().0, 403);

    // The API invites too, into the manager's organisations only.
    let body = serde_json::json!({ "email": "bea@other.nhs.uk", "name": "Bea Other", "role": "manager",
        "organisations": ["ORG2"] });
    let (status, text) = api.raw(Method::POST, "/api/v1/staff", Some(&body)).await.unwrap();
    assert_eq!(status, 201, "{text}");
    let out: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(out["organisations"], serde_json::json!(["ORG2"]));
    assert!(out.get("password_link").is_none() && !text.contains("/ra/set-password/"), "{text}");
    let mail = ts.vsc.outbox(Some("bea@other.nhs.uk"), 10).await.unwrap();
    assert!(mail.iter().any(|m| m.kind == "staff_invitation" && m.body.contains("/ra/set-password/")));
    ts.vsc.bootstrap("ORG3", "Third Trust", &["third.nhs.uk".into()], "t@third.nhs.uk", "Tess Third").await.unwrap();
    let foreign = serde_json::json!({ "email": "x@third.nhs.uk", "name": "X Y", "role": "agent",
        "organisations": ["ORG3"] });
    assert_eq!(api.raw(Method::POST, "/api/v1/staff", Some(&foreign)).await.unwrap().0, 404);
    assert!(listed(&api, "t@third.nhs.uk").await.is_none(), "staff of other organisations are not listed");
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    for (path, method) in [
        ("/api/v1/staff", "get"),
        ("/api/v1/staff", "post"),
        ("/api/v1/staff/{id}", "get"),
        ("/api/v1/staff/{id}", "patch"),
        ("/api/v1/staff/{id}/password-link", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
    ts.stop().await;
}

/// What a staff member sees: (the ORG1 user's page, the ORG2 user's page, whether each user's
/// email is in GET /api/v1/users).
async fn sees(web: &mut Browser, api: &Client, one: &str, two: &str) -> (StatusCode, StatusCode, bool, bool) {
    let p1 = web.get(&format!("/ra/users/{one}")).await.status;
    let p2 = web.get(&format!("/ra/users/{two}")).await.status;
    let (status, text) = api.raw(Method::GET, "/api/v1/users", None).await.unwrap();
    assert_eq!(status, 200, "{text}");
    (p1, p2, text.contains("one@example.nhs.uk"), text.contains("two@other.nhs.uk"))
}

async fn ra_granted_organisations_decide_what_staff_see(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, api) = manager_of_two(&ts).await;
    let body = serde_json::json!({ "email": AGENT, "name": "Alex Agent", "role": "agent", "organisations": ["ORG1"] });
    let (status, text) = api.raw(Method::POST, "/api/v1/staff", Some(&body)).await.unwrap();
    assert_eq!(status, 201, "{text}");
    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"].as_str().unwrap().to_string();
    let (mut agent, _) = sign_in_from_email(&ts, AGENT).await;
    let agent_api = ts.anon.with_token(&ts.vsc.create_token(AGENT).await.unwrap());
    let one = super::holder(&ts, "one@example.nhs.uk", None).await;
    let two = serde_json::json!({ "organisation": "ORG2", "forename": "Tom", "surname": "Two",
        "email": "two@other.nhs.uk" });
    let (status, text) = api.raw(Method::POST, "/api/v1/users", Some(&two)).await.unwrap();
    assert_eq!(status, 201, "{text}");
    let two = serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"].as_str().unwrap().to_string();

    let one = one.id.to_string();
    assert_eq!(sees(&mut agent, &agent_api, &one, &two).await, (StatusCode::OK, StatusCode::NOT_FOUND, true, false));

    // Grant ORG2 through the API.
    let path = format!("/api/v1/staff/{id}");
    let both = serde_json::json!({ "organisations": ["ORG2", "org1"] });
    let (status, text) = api.raw(Method::PATCH, &path, Some(&both)).await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"organisations\":[\"ORG1\",\"ORG2\"]"), "{text}");
    assert_eq!(sees(&mut agent, &agent_api, &one, &two).await, (StatusCode::OK, StatusCode::OK, true, true));

    // Revoke ORG1 on the page.
    let page = web.get(&format!("/ra/staff/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"org-ORG1\" name=\"organisations\" value=\"ORG1\" checked"), "{}", page.body);
    let csrf = page.csrf();
    let saved = web.post(&format!("/ra/staff/{id}/organisations"), &[("csrf", &csrf), ("organisations", "ORG2")]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(text_of(&web.get(saved.location()).await, "staff-member-organisations"), "ORG2");
    assert_eq!(sees(&mut agent, &agent_api, &one, &two).await, (StatusCode::NOT_FOUND, StatusCode::OK, false, true));
    assert_eq!(count(&ts, "staff.revoked").await, 1);

    // At least one organisation stays; organisations of others cannot be granted.
    let none = web.post(&format!("/ra/staff/{id}/organisations"), &[("csrf", &csrf)]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains("id=\"organisations-error\""), "{}", none.body);
    assert_eq!(api.raw(Method::PATCH, &path, Some(&serde_json::json!({ "organisations": [] }))).await.unwrap().0, 422);
    ts.vsc.bootstrap("ORG3", "Third Trust", &["third.nhs.uk".into()], "t@third.nhs.uk", "Tess Third").await.unwrap();
    let foreign = serde_json::json!({ "organisations": ["ORG3"] });
    assert_eq!(api.raw(Method::PATCH, &path, Some(&foreign)).await.unwrap().0, 404);

    // Promote to manager on the page: staff management opens up for them.
    let promoted = web.post(&format!("/ra/staff/{id}/role"), &[("csrf", &csrf), ("role", "manager")]).await;
    assert_eq!(promoted.status, StatusCode::SEE_OTHER, "{}", promoted.body);
    assert_eq!(agent.get("/ra/staff").await.status, StatusCode::OK);
    assert_eq!(count(&ts, "staff.role_changed").await, 1);
    ts.stop().await;
}

async fn ra_disabling_staff_ends_their_sessions_and_tokens(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, MANAGER).await;
    let api = ts.anon.with_token(&ts.vsc.create_token(MANAGER).await.unwrap());
    let (mut agent, _) = staff_first_sign_in(&ts, AGENT, "ORG1", "agent", "Alex Agent").await;
    let agent_api = ts.anon.with_token(&ts.vsc.create_token(AGENT).await.unwrap());
    assert_eq!(agent_api.raw(Method::GET, "/api/v1/users", None).await.unwrap().0, 200);
    let me = listed(&api, MANAGER).await.unwrap()["id"].as_str().unwrap().to_string();
    let id = listed(&api, AGENT).await.unwrap()["id"].as_str().unwrap().to_string();

    // Not oneself.
    let mine = web.get(&format!("/ra/staff/{me}")).await;
    assert!(mine.body.contains("id=\"myself\""));
    let csrf = mine.csrf();
    let refused = web.post(&format!("/ra/staff/{me}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("you cannot disable your own account"), "{}", refused.body);
    let demote = web.post(&format!("/ra/staff/{me}/role"), &[("csrf", &csrf), ("role", "agent")]).await;
    assert!(demote.body.contains("you cannot change your own role"), "{}", demote.body);
    let own = format!("/api/v1/staff/{me}");
    let disabled = serde_json::json!({ "disabled": true });
    assert_eq!(api.raw(Method::PATCH, &own, Some(&disabled)).await.unwrap().0, 409);
    assert_eq!(web.get("/ra/staff").await.status, StatusCode::OK, "still a manager");

    // The agent has a sign-in waiting for its code in a second browser.
    let mut pending = Browser::new(&ts.url);
    assert_eq!(password_step(&mut pending, AGENT, PASSWORD).await.location(), "/ra/sign-in/code");

    let done = web.post(&format!("/ra/staff/{id}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(text_of(&web.get(done.location()).await, "staff-member-status"), "Disabled");
    assert_eq!(count(&ts, "staff.disabled").await, 1);
    let home = agent.get("/ra").await;
    assert_eq!((home.status, home.location()), (StatusCode::SEE_OTHER, "/ra/sign-in"));
    assert_eq!(agent_api.raw(Method::GET, "/api/v1/users", None).await.unwrap().0, 401);
    let form = pending.get("/ra/sign-in").await;
    let late = pending.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", "123456")]).await;
    assert_ne!(late.location(), "/ra", "the pending sign-in ended");
    assert!(pending.get("/ra").await.location().ends_with("/ra/sign-in"));
    // Signing in answers exactly as a wrong password does.
    let mut again = Browser::new(&ts.url);
    let right = password_step(&mut again, AGENT, PASSWORD).await;
    let wrong = password_step(&mut again, MANAGER, "not the password at all").await;
    assert_eq!(right.status, wrong.status);
    assert!(right.body.contains(FAILED) && wrong.body.contains(FAILED), "{}", right.body);

    // Enabled again: the token works and sign-in goes on to the code.
    let enabled = web.post(&format!("/ra/staff/{id}/enable"), &[("csrf", &csrf)]).await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER);
    assert_eq!(agent_api.raw(Method::GET, "/api/v1/users", None).await.unwrap().0, 200);
    assert_eq!(password_step(&mut again, AGENT, PASSWORD).await.location(), "/ra/sign-in/code");

    // A new password link: emailed to the agent only (never on the manager's page), and it works.
    let resent = web.post(&format!("/ra/staff/{id}/link"), &[("csrf", &csrf)]).await;
    assert_eq!(resent.status, StatusCode::SEE_OTHER, "{}", resent.body);
    let page = web.get(resent.location()).await;
    assert!(text_of(&page, "note").contains("emailed"), "{}", page.body);
    assert!(!page.body.contains("/ra/set-password/"), "{}", page.body);
    let mail = ts.vsc.outbox(Some(AGENT), 10).await.unwrap();
    let m = mail.iter().rev().find(|m| m.kind == "staff_invitation").expect("the new link's email");
    let at = m.body.find("http").expect("a link");
    let link: String = m.body[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    assert_eq!(Browser::new(&ts.url).get(&link_path(&link)).await.status, StatusCode::OK);
    ts.stop().await;
}
