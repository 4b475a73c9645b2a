//! Creating and editing users in the vRA Manager (`/ra/users/new`, `/ra/users/{id}/edit`) and
//! `PATCH /api/v1/users/{id}`: domain checks, long names with apostrophes, the email change
//! (audited old → new, the old address told, the new one unconfirmed and sent a confirmation
//! link), duplicates and organisation scoping.

use reqwest::{Method, StatusCode};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::Page;
use super::ra::{first_sign_in, last_detail, staff_first_sign_in, text_of};

on_both_backends!(ra_creates_and_edits_users, api_patch_changes_names_and_email,);

/// The error message shown beside `field`.
fn error_of(page: &Page, field: &str) -> String {
    let marker = format!("id=\"{field}-error\">");
    let at = page.body.find(&marker).unwrap_or_else(|| panic!("no {field} error in {}", page.body));
    let rest = &page.body[at + marker.len()..];
    let inner = &rest[..rest.find("</p>").unwrap()];
    inner.replace("<span class=\"visually-hidden\">Error: </span>", "")
}

async fn ra_creates_and_edits_users(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "manager.edit@example.nhs.uk").await;

    let home = web.get("/ra").await;
    assert!(home.body.contains("href=\"/ra/users/new\""), "{}", home.body);
    let form = web.get("/ra/users/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<option value=\"ORG1\""), "{}", form.body);
    let csrf = form.csrf();

    // A domain the organisation does not allow: the problem beside the field, values kept.
    let refused = web
        .post(
            "/ra/users/new",
            &[
                ("csrf", &csrf),
                ("organisation", "ORG1"),
                ("forename", "Ann"),
                ("surname", "Other"),
                ("email", "ann@elsewhere.example"),
                ("mobile", ""),
                ("subject_cn", ""),
                ("directory_account", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&refused, "email").contains("not allowed"), "{}", refused.body);
    assert!(refused.body.contains("value=\"ann@elsewhere.example\""));
    assert!(refused.body.contains("value=\"Other\""));

    let created = web
        .post(
            "/ra/users/new",
            &[
                ("csrf", &csrf),
                ("organisation", "ORG1"),
                ("forename", "Ann"),
                ("surname", "Edit"),
                ("email", "ann.edit@example.nhs.uk"),
                ("mobile", ""),
                ("subject_cn", ""),
                ("directory_account", "ann.edit"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let user_path = created.location().to_string();
    assert!(user_path.starts_with("/ra/users/"), "{user_path}");
    let id = user_path.trim_start_matches("/ra/users/").to_string();
    let page = web.get(&user_path).await;
    assert_eq!(text_of(&page, "user-email"), "ann.edit@example.nhs.uk");
    assert!(page.body.contains(&format!("href=\"/ra/users/{id}/edit\"")));

    // Names: an apostrophe and more than 50 characters.
    let long = "Marie-Thérèse Anne-Sophie Élisabeth Geneviève Charlotte";
    assert!(long.chars().count() > 50);
    let edit = web.get(&format!("/ra/users/{id}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    let saved = web
        .post(&format!("/ra/users/{id}/edit"), &[("csrf", &edit.csrf()), ("forename", long), ("surname", "O'Brien")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let user = ts.client.user(&id).await.unwrap();
    assert_eq!((user.forename.as_str(), user.surname.as_str()), (long, "O'Brien"));
    let bad =
        web.post(&format!("/ra/users/{id}/edit"), &[("csrf", &edit.csrf()), ("forename", long), ("surname", "")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"surname-error\""), "{}", bad.body);

    // Email: the domain is checked, duplicates refused, then the change is made and told.
    ts.client
        .create_user(&vsc_proto::CreateUserRequest {
            organisation: "ORG1".into(),
            forename: "Bob".into(),
            surname: "Taken".into(),
            email: "bob.taken@example.nhs.uk".into(),
            mobile: None,
            subject_cn: None,
            directory_account: None,
        })
        .await
        .unwrap();
    let email_path = format!("/ra/users/{id}/email");
    let wrong = web.post(&email_path, &[("csrf", &edit.csrf()), ("email", "ann@elsewhere.example")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&wrong, "email").contains("not allowed"));
    let taken = web.post(&email_path, &[("csrf", &edit.csrf()), ("email", "BOB.Taken@example.nhs.uk")]).await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(&taken, "email").contains("already exists"), "{}", taken.body);
    assert!(taken.body.contains("value=\"BOB.Taken@example.nhs.uk\""));

    let changed = web.post(&email_path, &[("csrf", &edit.csrf()), ("email", "ann.new@example.nhs.uk")]).await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let page = web.get(changed.location()).await;
    assert_eq!(text_of(&page, "user-email"), "ann.new@example.nhs.uk");
    assert!(text_of(&page, "note").contains("the new one was sent a confirmation link"), "{}", page.body);
    assert_eq!(text_of(&page, "user-email-state"), "not confirmed");
    // The old address is told of the change; the new one gets a confirmation link, nothing else.
    let old_mail = ts.vsc.outbox(Some("ann.edit@example.nhs.uk"), 50).await.unwrap();
    let m = old_mail.iter().find(|m| m.kind == "email_changed").expect("the old address is told");
    assert!(m.body.contains("ann.edit@example.nhs.uk") && m.body.contains("ann.new@example.nhs.uk"));
    assert!(m.body.contains("O'Brien"), "{}", m.body);
    let new_mail = ts.vsc.outbox(Some("ann.new@example.nhs.uk"), 50).await.unwrap();
    assert!(new_mail.iter().all(|m| m.kind != "email_changed"), "{new_mail:?}");
    let m = new_mail.iter().find(|m| m.kind == "email_verification").expect("a confirmation link to the new address");
    assert!(m.body.contains("/self-service/verify-email/") && m.body.contains("O'Brien"), "{}", m.body);
    let detail = last_detail(&ts, "user.email_changed").await;
    assert_eq!(detail["old"], "ann.edit@example.nhs.uk");
    assert_eq!(detail["new"], "ann.new@example.nhs.uk");
    assert_eq!(detail["email_verified"], false);

    // Staff of another organisation: 404 everywhere.
    ts.vsc.bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "ra@other.nhs.uk", "Rob Other").await.unwrap();
    let (mut other, _) = staff_first_sign_in(&ts, "agent@other.nhs.uk", "ORG2", "agent", "Otto Other").await;
    assert_eq!(other.get(&format!("/ra/users/{id}/edit")).await.status, StatusCode::NOT_FOUND);
    let home = other.get("/ra").await;
    let csrf = home.csrf();
    let names =
        other.post(&format!("/ra/users/{id}/edit"), &[("csrf", &csrf), ("forename", "X"), ("surname", "Y")]).await;
    assert_eq!(names.status, StatusCode::NOT_FOUND);
    let email = other.post(&email_path, &[("csrf", &csrf), ("email", "x@other.nhs.uk")]).await;
    assert_eq!(email.status, StatusCode::NOT_FOUND);
    let new = other.get("/ra/users/new").await;
    assert!(!new.body.contains("value=\"ORG1\""));
    let user = ts.client.user(&id).await.unwrap();
    assert_eq!(user.email, "ann.new@example.nhs.uk");
    ts.stop().await;
}

async fn api_patch_changes_names_and_email(b: Backend) {
    let ts = TestServer::start(b).await;
    let user = super::holder(&ts, "patch.me@example.nhs.uk", None).await;
    let path = format!("/api/v1/users/{}", user.id);
    let body = serde_json::json!({ "surname": "D'Arcy", "email": "Patched@example.nhs.uk" });
    let (status, text) = ts.client.raw(Method::PATCH, &path, Some(&body)).await.unwrap();
    assert_eq!(status, 200, "{text}");
    let view: vsc_proto::UserView = serde_json::from_str(&text).unwrap();
    assert_eq!(view.surname, "D'Arcy");
    assert_eq!(view.forename, user.forename);
    assert_eq!(view.email, "Patched@example.nhs.uk");
    assert!(!view.email_verified, "an address typed by the RA is not confirmed");
    let sent = |to: &'static str, kind: &'static str| {
        let vsc = ts.vsc.clone();
        async move { vsc.outbox(Some(to), 50).await.unwrap().iter().filter(|m| m.kind == kind).count() }
    };
    // The old address is told; the new one is asked to confirm (and gets nothing else).
    assert_eq!(sent("patch.me@example.nhs.uk", "email_changed").await, 1);
    assert_eq!(sent("patch.me@example.nhs.uk", "email_verification").await, 0);
    assert_eq!(sent("Patched@example.nhs.uk", "email_verification").await, 1);
    assert_eq!(sent("Patched@example.nhs.uk", "email_changed").await, 0);
    let bad = serde_json::json!({ "email": "x@elsewhere.example" });
    assert_eq!(ts.client.raw(Method::PATCH, &path, Some(&bad)).await.unwrap().0, 422);
    let other = ts.anon.raw(Method::PATCH, &path, Some(&body)).await.unwrap().0;
    assert_eq!(other, 401);
    ts.stop().await;
}
