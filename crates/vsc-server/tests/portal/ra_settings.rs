//! The vRA Manager's settings (`/ra/settings` and the settings JSON API): default roles cannot be
//! deleted (the control is disabled and the API answers 409), agents are refused (403 page and
//! 403 JSON), roles are added, renamed and deleted, email domains govern new users, questions are
//! retired, and policies are saved with their effective values shown.

use reqwest::{Method, StatusCode};
use serde_json::json;
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::Page;
use super::ra::{count, first_sign_in, staff_first_sign_in};

on_both_backends!(
    default_roles_cannot_be_deleted_and_roles_are_managed,
    an_agent_is_refused_from_settings,
    domains_questions_and_policies_are_managed,
);

/// The `<tr>` of the roles table for `code`.
fn role_row<'a>(page: &'a Page, code: &str) -> &'a str {
    let at = page.body.find(&format!("data-role=\"{code}\"")).unwrap_or_else(|| panic!("no role {code}"));
    let rest = &page.body[at..];
    &rest[..rest.find("</tr>").unwrap()]
}

async fn default_roles_cannot_be_deleted_and_roles_are_managed(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "manager.settings@example.nhs.uk").await;
    // The catalogues are the operators' (a manager's refusal: `ra_operator.rs`).
    ts.vsc.set_staff_operator("manager.settings@example.nhs.uk", true).await.unwrap();
    let page = web.get("/ra/settings").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let row = role_row(&page, "R8000");
    assert!(row.contains("disabled") && row.contains("Default role — cannot be deleted"), "{row}");
    assert!(!row.contains("/ra/settings/roles/R8000/delete"), "no delete form for a default role: {row}");
    let csrf = page.csrf();

    // Posting the delete anyway is refused beside the row.
    let refused = web.post("/ra/settings/roles/R8000/delete", &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("default roles cannot be deleted"), "{}", refused.body);
    // And over the API.
    let (status, body) = ts.client.raw(Method::DELETE, "/api/v1/roles/R8003", None).await.unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("default roles cannot be deleted"), "{body}");

    // Add, refuse a duplicate and a bad code, rename, delete.
    let added = web.post("/ra/settings/roles", &[("csrf", &csrf), ("code", "r9001"), ("name", "Locum Role")]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let page = web.get(added.location()).await;
    assert!(page.body.contains("The role was added."), "{}", page.body);
    assert!(role_row(&page, "R9001").contains("value=\"Locum Role\""));
    assert!(role_row(&page, "R9001").contains("/ra/settings/roles/R9001/delete"), "a catalogue role can be deleted");
    let dup = web.post("/ra/settings/roles", &[("csrf", &csrf), ("code", "R9001"), ("name", "Again")]).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(dup.body.contains("id=\"role-code-error\"") && dup.body.contains("value=\"Again\""), "{}", dup.body);
    let bad = web.post("/ra/settings/roles", &[("csrf", &csrf), ("code", "R 9"), ("name", "X")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let renamed = web.post("/ra/settings/roles/R9001/rename", &[("csrf", &csrf), ("name", "Locum Access Role")]).await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER);
    let (status, body) = ts.client.raw(Method::GET, "/api/v1/roles", None).await.unwrap();
    assert_eq!(status, 200);
    let roles: serde_json::Value = serde_json::from_str(&body).unwrap();
    let r = roles.as_array().unwrap().iter().find(|r| r["code"] == "R9001").unwrap();
    assert_eq!((r["name"].as_str(), r["is_default"].as_bool()), (Some("Locum Access Role"), Some(false)));
    assert_eq!(count(&ts, "settings.role_renamed").await, 1);
    let deleted = web.post("/ra/settings/roles/R9001/delete", &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(!web.get("/ra/settings").await.body.contains("data-role=\"R9001\""));

    // API: add, rename, a role on a card cannot be deleted.
    let (status, body) =
        ts.client.raw(Method::POST, "/api/v1/roles", Some(&json!({ "code": "R9002", "name": "Bank" }))).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, _) =
        ts.client.raw(Method::PATCH, "/api/v1/roles/R9002", Some(&json!({ "name": "Bank Staff" }))).await.unwrap();
    assert_eq!(status, 200);
    let user = super::holder(&ts, "role.card@example.nhs.uk", None).await;
    let card = vsc_proto::IssueCardRequest { card_type: "v2".into(), roles: vec!["R9002".into()], key_algorithm: None };
    ts.client.issue_card(&user.id.to_string(), &card).await.unwrap();
    let (status, body) = ts.client.raw(Method::DELETE, "/api/v1/roles/R9002", None).await.unwrap();
    assert_eq!(status, 409);
    assert!(body.contains("is on 1 card"), "{body}");
    assert_eq!(ts.client.raw(Method::DELETE, "/api/v1/roles/R7777", None).await.unwrap().0, 404);
    assert_eq!(count(&ts, "settings.role_added").await, 2);
    assert_eq!(count(&ts, "settings.role_deleted").await, 1);
    ts.stop().await;
}

async fn an_agent_is_refused_from_settings(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = staff_first_sign_in(&ts, "agent.settings@example.nhs.uk", "ORG1", "agent", "Alex Agent").await;
    let page = web.get("/ra/settings").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("Settings are for RA managers"), "{}", page.body);
    let csrf = web.get("/ra").await.csrf();
    let post = web.post("/ra/settings/roles", &[("csrf", &csrf), ("code", "R9100"), ("name", "Sneaky")]).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);

    let agent = ts.anon.with_token(&ts.vsc.create_token("agent.settings@example.nhs.uk").await.unwrap());
    for (method, path, body) in [
        (Method::GET, "/api/v1/roles", None),
        (Method::POST, "/api/v1/roles", Some(json!({ "code": "R9100", "name": "Sneaky" }))),
        (Method::DELETE, "/api/v1/roles/R8000", None),
        (Method::GET, "/api/v1/security-questions", None),
        (Method::PUT, "/api/v1/organisations/ORG1/policy", Some(json!({ "number_matching": false }))),
        (Method::POST, "/api/v1/organisations/ORG1/email-domains", Some(json!({ "domain": "evil.example" }))),
    ] {
        let (status, text) = agent.raw(method.clone(), path, body.as_ref()).await.unwrap();
        assert_eq!(status, 403, "{method} {path}: {text}");
        assert!(text.contains("AU0002Forbidden"), "{text}");
        if method == Method::GET || path.ends_with("/policy") {
            assert!(text.contains("settings are for RA managers"), "{text}");
        } else {
            assert!(text.contains("only an operator may"), "{text}");
        }
    }
    assert_eq!(count(&ts, "settings.role_added").await, 0);
    ts.stop().await;
}

async fn domains_questions_and_policies_are_managed(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "manager.domains@example.nhs.uk").await;
    // Email domains and the catalogues are the operators' (a manager's refusal: `ra_operator.rs`).
    ts.vsc.set_staff_operator("manager.domains@example.nhs.uk", true).await.unwrap();
    let csrf = web.get("/ra/settings").await.csrf();

    // Domains: a new one admits new users; the last one cannot be removed.
    let new_user =
        |email: &str| json!({ "organisation": "ORG1", "forename": "Dee", "surname": "Main", "email": email });
    assert_eq!(
        ts.client.raw(Method::POST, "/api/v1/users", Some(&new_user("dee@trust.example"))).await.unwrap().0,
        422
    );
    let added =
        web.post("/ra/settings/organisations/ORG1/domains/add", &[("csrf", &csrf), ("domain", "Trust.Example")]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(
        ts.client.raw(Method::POST, "/api/v1/users", Some(&new_user("dee@trust.example"))).await.unwrap().0,
        201
    );
    let removed = web
        .post("/ra/settings/organisations/ORG1/domains/remove", &[("csrf", &csrf), ("domain", "example.nhs.uk")])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        ts.client.raw(Method::POST, "/api/v1/users", Some(&new_user("dee2@example.nhs.uk"))).await.unwrap().0,
        422
    );
    let last = web
        .post("/ra/settings/organisations/ORG1/domains/remove", &[("csrf", &csrf), ("domain", "trust.example")])
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert!(last.body.contains("id=\"domains-ORG1-error\""), "{}", last.body);
    let (status, _) = ts
        .client
        .raw(Method::POST, "/api/v1/organisations/ORG1/email-domains", Some(&json!({ "domain": "example.nhs.uk" })))
        .await
        .unwrap();
    assert_eq!(status, 201);
    assert_eq!(
        ts.client.raw(Method::DELETE, "/api/v1/organisations/ORG1/email-domains/trust.example", None).await.unwrap().0,
        200
    );
    assert_eq!(ts.client.raw(Method::GET, "/api/v1/organisations/NOPE/policy", None).await.unwrap().0, 404);

    // Questions: add one, retire one (it disappears from enrolment's list), keep three offered.
    let q = web.post("/ra/settings/questions", &[("csrf", &csrf), ("text", "What was your first job?")]).await;
    assert_eq!(q.status, StatusCode::SEE_OTHER);
    let retired = web.post("/ra/settings/questions/1/retire", &[("csrf", &csrf)]).await;
    assert_eq!(retired.status, StatusCode::SEE_OTHER);
    let offered = ts.vsc.questions().await.unwrap();
    assert!(offered.iter().all(|q| q.id != 1) && offered.iter().any(|q| q.text == "What was your first job?"));
    let (status, body) = ts.client.raw(Method::GET, "/api/v1/security-questions", None).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"active\":false"), "{body}");
    for id in 2..=6 {
        ts.client
            .raw(Method::PATCH, &format!("/api/v1/security-questions/{id}"), Some(&json!({ "active": false })))
            .await
            .unwrap();
    }
    let (status, body) =
        ts.client.raw(Method::PATCH, "/api/v1/security-questions/7", Some(&json!({ "active": false }))).await.unwrap();
    assert_eq!(status, 409, "three must stay offered: {body}");

    // Policy: invalid values shown beside the field; a valid policy is in effect.
    let form = |session: &'static str, idle: &'static str| {
        [("number_matching", "off"), ("session_minutes", session), ("idle_minutes", idle), ("reminder_days", "")]
    };
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend(form("60", "90"));
    let bad = web.post("/ra/settings/organisations/ORG1/policy", &fields).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"idle_minutes-ORG1-error\"") && bad.body.contains("value=\"90\""), "{}", bad.body);
    let mut fields = vec![("csrf", csrf.as_str()), ("push_only", "on")];
    fields.extend(form("60", "15"));
    let saved = web.post("/ra/settings/organisations/ORG1/policy", &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let (status, body) = ts.client.raw(Method::GET, "/api/v1/organisations/ORG1/policy", None).await.unwrap();
    assert_eq!(status, 200);
    let p: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        p["effective"],
        json!({ "push_only": true, "number_matching": false, "session_minutes": 60,
        "idle_minutes": 15, "reminder_days": 3 })
    );
    assert_eq!(p["settings"]["reminder_days"], serde_json::Value::Null);
    let page = web.get("/ra/settings").await;
    assert!(page.body.contains("In effect: <strong>3 days</strong> (service default)"), "{}", page.body);
    assert!(page.body.contains("In effect: <strong>60 minutes</strong>. "), "{}", page.body);
    assert_eq!(count(&ts, "settings.policy_changed").await, 1);
    let (status, _) = ts
        .client
        .raw(Method::PUT, "/api/v1/organisations/ORG1/policy", Some(&json!({ "reminder_days": 30 })))
        .await
        .unwrap();
    assert_eq!(status, 422);
    ts.stop().await;
}
