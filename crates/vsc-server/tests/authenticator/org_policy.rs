//! Each organisation's policy from the vRA Manager's settings takes effect: number matching,
//! card session lifetime and idle timeout (kept by each session), and the reminder period; and
//! a security question holders answered is retired rather than deleted.

use std::sync::Arc;
use std::time::Duration;

use vsc_client::device::Decision;
use vsc_proto::{CardLoginRequest, CreateUserRequest, IssueCardRequest, OrganisationPolicy, UpdateQuestionRequest};
use vsc_server::Principal;
use vsc_testkit::{Backend, ManualClock, TestServer, on_both_backends};

use crate::devices::{enrolled_holder, register_device};

on_both_backends!(
    number_matching_and_session_lifetimes_follow_the_organisation,
    the_reminder_period_follows_the_organisation,
    answered_questions_are_retired_not_deleted,
);

#[allow(clippy::disallowed_methods)]
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

async fn number_matching_and_session_lifetimes_follow_the_organisation(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    let h = enrolled_holder(&ts, "policy.holder@example.nhs.uk").await;
    let device = register_device(&ts, &h).await;
    let policy = OrganisationPolicy {
        number_matching: Some(false),
        session_minutes: Some(60),
        idle_minutes: Some(15),
        ..OrganisationPolicy::default()
    };
    ts.vsc.set_org_policy(&Principal::Operator, "ORG1", &policy).await.unwrap();
    let req = CardLoginRequest {
        email: h.email.clone(),
        passcode: Some(h.passcode.clone()),
        method: "push".into(),
        client: Some("test client".into()),
    };
    let login = ts.anon.card_login(&req).await.unwrap();
    assert_eq!(login.number, None, "number matching is off for ORG1 (on in the configuration)");
    let c = device.client(&ts).challenges(5).await.unwrap().challenges.remove(0);
    assert_eq!(c.choices, None);
    device.client(&ts).answer(&c.id, &c.nonce, Decision::Approve, None).await.unwrap();
    let session = ts.anon.open_card_session(&login.login, None).await.unwrap();
    let lifetime = (session.expires_at - now()).whole_minutes();
    assert!((58..=60).contains(&lifetime), "60-minute sessions, not the default 720: {lifetime}");
    let sc = ts.anon.with_token(&session.session);
    let status = sc.card_session().await.unwrap();
    let idle = (status.idle_expires_at - now()).whole_minutes();
    assert!((13..=15).contains(&idle), "15 idle minutes: {idle}");

    // The session keeps its own idle limit: 16 minutes unused ends it (the default is 120).
    clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(sc.card_session().await.unwrap_err().status(), Some(401));

    // Back to the service default: pushes ask for a number again.
    ts.vsc.set_org_policy(&Principal::Operator, "ORG1", &OrganisationPolicy::default()).await.unwrap();
    let again = ts.anon.card_login(&req).await.unwrap();
    assert!(again.number.is_some(), "the default (on) applies again");
    ts.stop().await;
}

async fn the_reminder_period_follows_the_organisation(b: Backend) {
    let clock = Arc::new(ManualClock::default());
    let ts = TestServer::start_with_clock(b, clock.clone()).await;
    let user = ts
        .client
        .create_user(&CreateUserRequest {
            organisation: "ORG1".into(),
            forename: "Rem".into(),
            surname: "Inder".into(),
            email: "rem.inder@example.nhs.uk".into(),
            mobile: None,
            subject_cn: None,
            directory_account: None,
        })
        .await
        .unwrap();
    let req = IssueCardRequest { card_type: "v2".into(), roles: vec!["R8000".into()], key_algorithm: None };
    ts.client.issue_card(&user.id.to_string(), &req).await.unwrap();
    clock.advance(Duration::from_secs(36 * 3600));
    assert_eq!(ts.vsc.send_reminders().await.unwrap(), 0, "a day and a half: not due with the default 3 days");
    let policy = OrganisationPolicy { reminder_days: Some(1), ..OrganisationPolicy::default() };
    ts.vsc.set_org_policy(&Principal::Operator, "ORG1", &policy).await.unwrap();
    assert_eq!(ts.vsc.send_reminders().await.unwrap(), 1, "due with ORG1's 1-day period");
    assert_eq!(ts.vsc.send_reminders().await.unwrap(), 0, "once per period");
    ts.stop().await;
}

async fn answered_questions_are_retired_not_deleted(b: Backend) {
    let ts = TestServer::start(b).await;
    enrolled_holder(&ts, "answers@example.nhs.uk").await;
    let who = Principal::Operator;
    let e = ts.vsc.delete_question(&who, 1).await.unwrap_err();
    assert!(e.to_string().contains("retire it instead"), "{e}");
    let q = ts.vsc.update_question(&who, 1, &UpdateQuestionRequest { text: None, active: Some(false) }).await.unwrap();
    assert_eq!((q.active, q.answered_by), (false, 1));
    assert!(ts.vsc.questions().await.unwrap().iter().all(|q| q.id != 1), "not offered to new holders");
    ts.vsc.delete_question(&who, 8).await.unwrap();
    assert_eq!(ts.vsc.list_questions(&who).await.unwrap().len(), 7, "an unanswered question is deleted");
    ts.stop().await;
}
