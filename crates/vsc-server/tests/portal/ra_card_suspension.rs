//! The vRA Manager's Suspend (with a reason) and Resume buttons on the user page's card rows,
//! without JavaScript; another organisation's staff cannot use them.

use reqwest::StatusCode;
use vsc_proto::{CreateUserRequest, IssueCardRequest};
use vsc_server::service::{IssueCard, Principal};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::ra::{count, exec, first_sign_in, last_detail, other_organisation, other_organisation_user, text_of};

on_both_backends!(ra_user_page_suspends_and_resumes_a_card, ra_cannot_suspend_another_organisations_card);

fn v2() -> IssueCard {
    IssueCard::parse(&IssueCardRequest { card_type: "v2".into(), roles: vec!["R8000".into()], key_algorithm: None })
        .unwrap()
}

async fn ra_user_page_suspends_and_resumes_a_card(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    let u = ts
        .client
        .create_user(&CreateUserRequest {
            organisation: "ORG1".into(),
            forename: "Sam".into(),
            surname: "Pended".into(),
            email: "sam.pended@example.nhs.uk".into(),
            mobile: None,
            subject_cn: None,
            directory_account: None,
        })
        .await
        .unwrap();
    let card = ts.vsc.issue_card(&Principal::Operator, &u.id.to_string(), &v2()).await.unwrap();
    let serial = card.serial;
    let path = format!("/ra/users/{}", u.id);
    let card_path = format!("{path}/cards/{serial}");
    let page = web.get(&path).await;
    assert!(!page.body.contains(&format!("{card_path}/suspend")), "an issued card cannot be suspended");
    exec(&ts, &format!("UPDATE cards SET state = 'active' WHERE serial = '{serial}'")).await;
    let page = web.get(&path).await;
    assert!(page.body.contains(&format!("action=\"{card_path}/suspend\"")), "{}", page.body);
    assert!(!page.body.contains(&format!("{card_path}/resume")));

    // A reason is required.
    let empty = web.post(&format!("{card_path}/suspend"), &[("csrf", &page.csrf()), ("reason", " ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body.contains(&format!("id=\"card-error-{serial}\"")) && empty.body.contains("Enter the reason"));
    assert_eq!(count(&ts, "card.suspended").await, 0);
    assert_eq!(web.post(&format!("{card_path}/suspend"), &[("reason", "x")]).await.status, StatusCode::FORBIDDEN);

    let done = web.post(&format!("{card_path}/suspend"), &[("csrf", &page.csrf()), ("reason", "lost badge")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let after = web.get(done.location()).await;
    assert!(text_of(&after, "note").starts_with(&format!("Card {serial} suspended")), "{}", after.body);
    assert!(after.body.contains("tag--suspended\">suspended<"), "{}", after.body);
    assert!(after.body.contains(&format!("action=\"{card_path}/resume\"")));
    assert!(
        !after.body.contains(&format!("{card_path}/suspend\"")) && !after.body.contains(&format!("{card_path}/renew"))
    );
    assert!(after.body.contains(">card.suspended<"));
    assert_eq!(last_detail(&ts, "card.suspended").await["reason"], "lost badge");
    assert_eq!(ts.client.card(&serial).await.unwrap().state, "suspended");
    let kinds: Vec<String> = ts.vsc.outbox(Some(&u.email), 10).await.unwrap().into_iter().map(|m| m.kind).collect();
    assert!(kinds.iter().any(|k| k == "card_suspended"), "{kinds:?}");

    // Suspending again through a stale page: the service's reason beside the card.
    let again = web.post(&format!("{card_path}/suspend"), &[("csrf", &page.csrf()), ("reason", "again")]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("already suspended"), "{}", again.body);

    // Resume is dual-controlled (the holder is enrolled): the button makes a change request …
    let resumed = web.post(&format!("{card_path}/resume"), &[("csrf", &page.csrf())]).await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER, "{}", resumed.body);
    let asked = web.get(resumed.location()).await;
    assert!(text_of(&asked, "note").starts_with("Change requested"), "{}", asked.body);
    assert!(asked.body.contains("id=\"pending-changes\"") && asked.body.contains("Resume the suspended card"));
    assert_eq!(ts.client.card(&serial).await.unwrap().state, "suspended");
    // … that another staff member (here the operator) approves.
    let (_, list) = ts.client.raw(reqwest::Method::GET, "/api/v1/change-requests", None).await.unwrap();
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = list["change_requests"][0]["id"].as_str().unwrap().to_string();
    let approve = format!("/api/v1/change-requests/{id}/approve");
    let (status, body) = ts.client.raw(reqwest::Method::POST, &approve, Some(&serde_json::json!({}))).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let after = web.get(&format!("/ra/users/{}", u.id)).await;
    assert!(!after.body.contains("id=\"pending-changes\""), "{}", after.body);
    assert!(after.body.contains("tag--active\">active<") && after.body.contains(">card.resumed<"));
    assert_eq!(ts.client.card(&serial).await.unwrap().state, "active");
    let stale = web.post(&format!("{card_path}/resume"), &[("csrf", &page.csrf())]).await;
    assert_eq!(stale.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(stale.body.contains("only a suspended card can be resumed"), "{}", stale.body);
}

async fn ra_cannot_suspend_another_organisations_card(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    other_organisation(&ts).await;
    let theirs = other_organisation_user(&ts).await;
    let card = ts.vsc.issue_card(&Principal::Operator, &theirs.id.to_string(), &v2()).await.unwrap();
    exec(&ts, &format!("UPDATE cards SET state = 'active' WHERE serial = '{}'", card.serial)).await;
    let csrf = web.get("/ra").await.csrf();
    let path = format!("/ra/users/{}/cards/{}", theirs.id, card.serial);
    for action in ["suspend", "resume"] {
        let r = web.post(&format!("{path}/{action}"), &[("csrf", &csrf), ("reason", "not mine")]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
        assert!(r.body.contains("User not found"));
    }
    assert_eq!(count(&ts, "card.suspended").await, 0);
    assert_eq!(ts.vsc.get_card(&Principal::Operator, &card.serial).await.unwrap().state, "active");
}
