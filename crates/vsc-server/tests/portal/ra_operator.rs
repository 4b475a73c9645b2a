//! The trust model's operator and reach rules, replayed as an attacker would: a manager cannot
//! run the installation (organisations, their names and email domains, the catalogues: 403
//! AU0002Forbidden, pages without those controls); an email domain and an organisation name
//! belong to one organisation even against concurrent requests; a manager acts only on staff
//! accounts whose organisations they all cover, and never sees a password link (it goes to the
//! account's own mailbox); a new password ends sessions but keeps the TOTP, which only the console
//! resets; conflicts with other organisations' users and staff name nobody; role counts are the
//! caller's.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vsc_client::Client;
use vsc_server::service::Principal;
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::Browser;
use super::ra::{
    app_code, count, first_sign_in, link_path, other_organisation, password_step, staff_first_sign_in, text_of,
};

on_both_backends!(
    a_manager_cannot_run_the_installation,
    a_domain_and_a_name_belong_to_one_organisation,
    staff_actions_stay_within_the_managers_reach,
    a_new_password_ends_sessions_and_keeps_the_totp,
    conflicts_with_other_organisations_name_nobody,
    role_counts_are_the_callers_organisations,
);

const MANAGER: &str = "mona.manager@example.nhs.uk";

/// An API client of a plain manager (not an operator) of ORG1.
async fn manager_api(ts: &TestServer, email: &str) -> Client {
    ts.vsc.invite_staff(email, "ORG1", "manager", Some("Mona Manager")).await.unwrap();
    ts.anon.with_token(&ts.vsc.create_token(email).await.unwrap())
}

async fn call(api: &Client, method: Method, path: &str, body: Option<Value>) -> (u16, String) {
    api.raw(method, path, body.as_ref()).await.unwrap()
}

/// The newest password link emailed to `email`.
async fn emailed_link(ts: &TestServer, email: &str) -> Option<String> {
    let mail = ts.vsc.outbox(Some(email), 20).await.unwrap();
    let m = mail.iter().rev().find(|m| m.kind == "staff_invitation")?;
    let at = m.body.find("http")?;
    Some(m.body[at..].chars().take_while(|c| !c.is_whitespace()).collect())
}

async fn staff_invitations(ts: &TestServer, email: &str) -> usize {
    ts.vsc.outbox(Some(email), 50).await.unwrap().iter().filter(|m| m.kind == "staff_invitation").count()
}

/// The id of the staff account with `email`.
async fn staff_id(ts: &TestServer, email: &str) -> String {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    vsc_store::staff::by_email_key(&mut conn, &email.to_lowercase()).await.unwrap().unwrap().id
}

async fn a_manager_cannot_run_the_installation(b: Backend) {
    let ts = TestServer::start(b).await;
    let manager = manager_api(&ts, MANAGER).await;
    let created_before = count(&ts, "organisation.created").await;
    let attempts = [
        (
            Method::POST,
            "/api/v1/organisations",
            Some(json!({ "code": "EVIL", "name": "Evil", "email_domains": ["gmail.com"] })),
        ),
        (Method::PATCH, "/api/v1/organisations/ORG1", Some(json!({ "name": "Renamed by a manager" }))),
        (Method::POST, "/api/v1/organisations/ORG1/email-domains", Some(json!({ "domain": "gmail.com" }))),
        (Method::DELETE, "/api/v1/organisations/ORG1/email-domains/example.nhs.uk", None),
        (Method::POST, "/api/v1/roles", Some(json!({ "code": "R9100", "name": "Sneaky" }))),
        (Method::PATCH, "/api/v1/roles/R8000", Some(json!({ "name": "Sneaky" }))),
        (Method::DELETE, "/api/v1/roles/R8000", None),
        (Method::POST, "/api/v1/security-questions", Some(json!({ "text": "What is the admin password?" }))),
        (Method::PATCH, "/api/v1/security-questions/1", Some(json!({ "active": false }))),
        (Method::DELETE, "/api/v1/security-questions/1", None),
    ];
    for (method, path, body) in attempts {
        let (status, text) = call(&manager, method.clone(), path, body).await;
        assert_eq!(status, 403, "{method} {path}: {text}");
        assert!(text.contains("AU0002Forbidden") && text.contains("only an operator may"), "{text}");
    }
    assert_eq!(count(&ts, "organisation.created").await, created_before);
    assert_eq!(count(&ts, "organisation.renamed").await, 0);
    let orgs: Value =
        serde_json::from_str(&call(&manager, Method::GET, "/api/v1/organisations", None).await.1).unwrap();
    assert_eq!(orgs[0]["name"], "Test Trust");
    assert_eq!(orgs[0]["email_domains"], json!(["example.nhs.uk"]));
    for action in
        ["settings.role_added", "settings.role_renamed", "settings.question_added", "settings.email_domain_added"]
    {
        assert_eq!(count(&ts, action).await, 0, "{action}");
    }
    // Reading stays open to managers.
    assert_eq!(call(&manager, Method::GET, "/api/v1/roles", None).await.0, 200);
    assert_eq!(call(&manager, Method::GET, "/api/v1/security-questions", None).await.0, 200);

    // The manager's settings page shows the catalogues and domains without their forms, and a
    // forged post is refused.
    let (mut web, _) = first_sign_in(&ts, "fiona.pages@example.nhs.uk").await;
    let page = web.get("/ra/settings").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for form in ["id=\"role-add\"", "id=\"question-add\"", "/domains/add", "/domains/remove", "/roles/R8000/rename"] {
        assert!(!page.body.contains(form), "{form} shown to a manager");
    }
    assert!(page.body.contains("id=\"policy-ORG1\""), "the policy stays the manager's");
    assert!(page.body.contains("example.nhs.uk") && page.body.contains("Clinical Practitioner Access Role"));
    let forged = web.post("/ra/settings/roles", &[("csrf", &page.csrf()), ("code", "R9100"), ("name", "Sneaky")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("This is for operators"), "{}", forged.body);
    let forged = web
        .post("/ra/settings/organisations/ORG1/domains/add", &[("csrf", &page.csrf()), ("domain", "gmail.com")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&ts, "settings.email_domain_added").await, 0);
    // Dual control: shown on, and only an operator turns it off.
    assert!(page.body.contains("id=\"dual-control-ORG1\"><strong class=\"tag tag--active\">on<"), "{}", page.body);
    assert!(!page.body.contains("dual-control-toggle-ORG1"), "the toggle is the operator's");
    let forged = web
        .post("/ra/settings/organisations/ORG1/dual-control", &[("csrf", &page.csrf()), ("dual_control", "off")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(count(&ts, "organisation.dual_control_changed").await, 0);

    // Made an operator from the console, the same account sees and uses the forms.
    ts.vsc.set_staff_operator("fiona.pages@example.nhs.uk", true).await.unwrap();
    let page = web.get("/ra/settings").await;
    assert!(page.body.contains("id=\"role-add\"") && page.body.contains("/domains/add"), "{}", page.body);
    let off = web
        .post("/ra/settings/organisations/ORG1/dual-control", &[("csrf", &page.csrf()), ("dual_control", "off")])
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.body);
    let page = web.get(off.location()).await;
    assert!(page.body.contains("id=\"dual-control-ORG1\"><strong class=\"tag tag--locked\">off<"), "{}", page.body);
    assert!(page.body.contains("Turn dual control on"));
    assert_eq!(count(&ts, "organisation.dual_control_changed").await, 1);

    // The operator (bootstrap's account) renames; staff views say who is an operator.
    let (status, text) =
        call(&ts.client, Method::PATCH, "/api/v1/organisations/org1", Some(json!({ "name": " North  Trust " }))).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["name"], "North Trust");
    assert_eq!(
        call(&ts.client, Method::PATCH, "/api/v1/organisations/NOPE", Some(json!({ "name": "X" }))).await.0,
        404
    );
    assert_eq!(call(&ts.client, Method::PATCH, "/api/v1/organisations/ORG1", Some(json!({ "name": "" }))).await.0, 422);
    assert_eq!(count(&ts, "organisation.renamed").await, 1);
    let staff: Value = serde_json::from_str(&call(&ts.client, Method::GET, "/api/v1/staff", None).await.1).unwrap();
    let operator_of = |email: &str| {
        staff["staff"].as_array().unwrap().iter().find(|s| s["email"] == email).map(|s| s["operator"].clone())
    };
    assert_eq!(operator_of("ra@example.nhs.uk"), Some(json!(true)));
    assert_eq!(operator_of(MANAGER), Some(json!(false)));
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    assert!(doc["paths"]["/api/v1/organisations/{code}"]["patch"].is_object());
    assert!(doc["components"]["schemas"]["StaffView"]["properties"]["operator"].is_object());
    ts.stop().await;
}

async fn a_domain_and_a_name_belong_to_one_organisation(b: Backend) {
    let ts = TestServer::start(b).await;
    other_organisation(&ts).await;
    let op = &ts.client;
    // Even an operator cannot give ORG1 the domain ORG2 holds; the answer does not name ORG2.
    let (status, text) =
        call(op, Method::POST, "/api/v1/organisations/ORG1/email-domains", Some(json!({ "domain": "Other.NHS.uk" })))
            .await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("belongs to another organisation"), "{text}");
    assert!(!text.contains("ORG2") && !text.contains("Other Trust"), "{text}");
    let new_org =
        |code: &str, name: &str, domain: &str| json!({ "code": code, "name": name, "email_domains": [domain] });
    let (status, text) =
        call(op, Method::POST, "/api/v1/organisations", Some(new_org("ORG3", "Third", "other.nhs.uk"))).await;
    assert_eq!(status, 409, "{text}");
    assert!(!text.contains("ORG2") && !text.contains("Other Trust"), "{text}");
    let (status, text) =
        call(op, Method::POST, "/api/v1/organisations", Some(new_org("ORG3", "OTHER trust", "third.example"))).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("already exists"), "{text}");
    let (status, text) =
        call(op, Method::PATCH, "/api/v1/organisations/ORG1", Some(json!({ "name": "other TRUST" }))).await;
    assert_eq!(status, 409, "{text}");
    // The console's bootstrap fails clearly too, and changes nothing.
    let boot =
        ts.vsc.bootstrap("ORG1", "Test Trust", &["other.nhs.uk".into()], "ra@example.nhs.uk", "Rachel Admin").await;
    let e = boot.expect_err("a held domain refused").to_string();
    assert!(e.contains("other.nhs.uk belongs to another organisation"), "{e}");
    let orgs = ts.vsc.list_organisations(&Principal::Operator).await.unwrap();
    assert_eq!(
        orgs.iter().map(|o| o.email_domains.clone()).collect::<Vec<_>>(),
        [["example.nhs.uk"], ["other.nhs.uk"]]
    );

    // Two concurrent requests for one new domain, or one new name: exactly one wins.
    let (a, b2) = tokio::join!(
        call(op, Method::POST, "/api/v1/organisations", Some(new_org("RACE1", "Race One", "race.example"))),
        call(op, Method::POST, "/api/v1/organisations", Some(new_org("RACE2", "Race Two", "race.example"))),
    );
    let mut statuses = [a.0, b2.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{a:?} {b2:?}");
    let (a, b2) = tokio::join!(
        call(op, Method::POST, "/api/v1/organisations", Some(new_org("RACE3", "Same Name", "race3.example"))),
        call(op, Method::POST, "/api/v1/organisations", Some(new_org("RACE4", "SAME name", "race4.example"))),
    );
    let mut statuses = [a.0, b2.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{a:?} {b2:?}");
    let (a, b2) = tokio::join!(
        call(op, Method::POST, "/api/v1/organisations/ORG1/email-domains", Some(json!({ "domain": "both.example" }))),
        call(op, Method::POST, "/api/v1/organisations/ORG2/email-domains", Some(json!({ "domain": "both.example" }))),
    );
    let mut statuses = [a.0, b2.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{a:?} {b2:?}");
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let holders: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM organisation_email_domains WHERE domain IN ('race.example', 'both.example')",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(holders, 2, "one organisation each");
    drop(conn);
    ts.stop().await;
}

async fn staff_actions_stay_within_the_managers_reach(b: Backend) {
    let ts = TestServer::start(b).await;
    other_organisation(&ts).await;
    let manager = manager_api(&ts, MANAGER).await;
    // Sam works for ORG1 and ORG2; Ann for ORG1 only.
    ts.vsc.invite_staff("sam@example.nhs.uk", "ORG1", "agent", Some("Sam Shared")).await.unwrap();
    ts.vsc.invite_staff("sam@example.nhs.uk", "ORG2", "agent", None).await.unwrap();
    // The console prints the link (it emails nothing).
    let before =
        ts.vsc.invite_staff("ann@example.nhs.uk", "ORG1", "agent", Some("Ann Inside")).await.unwrap().password_link;
    let (sam, ann, op) = (
        staff_id(&ts, "sam@example.nhs.uk").await,
        staff_id(&ts, "ann@example.nhs.uk").await,
        staff_id(&ts, "ra@example.nhs.uk").await,
    );
    let sam_mail = staff_invitations(&ts, "sam@example.nhs.uk").await;

    // The manager of ORG1 alone cannot touch Sam (who also covers ORG2) nor the operator.
    for id in [&sam, &op] {
        for body in [json!({ "role": "manager" }), json!({ "disabled": true }), json!({ "organisations": ["ORG1"] })] {
            let (status, text) =
                call(&manager, Method::PATCH, &format!("/api/v1/staff/{id}"), Some(body.clone())).await;
            assert_eq!(status, 403, "{body}: {text}");
            assert!(text.contains("AU0002Forbidden"), "{text}");
        }
        let (status, text) = call(&manager, Method::POST, &format!("/api/v1/staff/{id}/password-link"), None).await;
        assert_eq!(status, 403, "{text}");
        assert!(!text.contains("set-password"), "{text}");
    }
    assert_eq!(staff_invitations(&ts, "sam@example.nhs.uk").await, sam_mail, "no link was sent");
    for action in ["staff.role_changed", "staff.disabled", "staff.revoked"] {
        assert_eq!(count(&ts, action).await, 0, "{action}");
    }
    let seen: Value =
        serde_json::from_str(&call(&ts.client, Method::GET, &format!("/api/v1/staff/{sam}"), None).await.1).unwrap();
    assert_eq!((seen["role"].as_str(), seen["disabled"].as_bool()), (Some("agent"), Some(false)));
    assert_eq!(seen["organisations"], json!(["ORG1", "ORG2"]));

    // Ann is within reach: her new link goes to her mailbox, never into the response.
    assert_eq!(emailed_link(&ts, "ann@example.nhs.uk").await, None);
    let (status, text) = call(&manager, Method::POST, &format!("/api/v1/staff/{ann}/password-link"), None).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({ "status": "sent" }));
    let after = emailed_link(&ts, "ann@example.nhs.uk").await.unwrap();
    assert_ne!(before, after);
    assert!(!text.contains(&after) && !text.contains("vsp_"), "{text}");
    assert_eq!(Browser::new(&ts.url).get(&link_path(&after)).await.status, StatusCode::OK);
    assert_eq!(Browser::new(&ts.url).get(&link_path(&before)).await.status, StatusCode::NOT_FOUND, "older links die");
    let (status, _) =
        call(&manager, Method::PATCH, &format!("/api/v1/staff/{ann}"), Some(json!({ "role": "manager" }))).await;
    assert_eq!(status, 200);

    // The pages agree: Sam's page has no controls for this manager, a forged post is refused.
    let (mut web, _) = staff_first_sign_in(&ts, "mark.pages@example.nhs.uk", "ORG1", "manager", "Mark Pages").await;
    let page = web.get(&format!("/ra/staff/{sam}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"beyond-reach\""), "{}", page.body);
    for control in ["id=\"disable\"", "id=\"resend-link\"", "id=\"save-role\"", "id=\"save-organisations\""] {
        assert!(!page.body.contains(control), "{control} shown");
    }
    let csrf = page.csrf();
    for action in ["disable", "link", "role"] {
        let forged = web.post(&format!("/ra/staff/{sam}/{action}"), &[("csrf", &csrf), ("role", "manager")]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{action}: {}", forged.body);
    }
    assert_eq!(staff_invitations(&ts, "sam@example.nhs.uk").await, sam_mail);
    let ann_page = web.get(&format!("/ra/staff/{ann}")).await;
    assert!(ann_page.body.contains("id=\"disable\"") && !ann_page.body.contains("beyond-reach"));

    // An operator may act on anyone.
    let (status, _) = call(&ts.client, Method::POST, &format!("/api/v1/staff/{sam}/password-link"), None).await;
    assert_eq!(status, 202);
    assert_eq!(staff_invitations(&ts, "sam@example.nhs.uk").await, sam_mail + 1);
    ts.stop().await;
}

async fn a_new_password_ends_sessions_and_keeps_the_totp(b: Backend) {
    let ts = TestServer::start(b).await;
    let email = "tess.totp@example.nhs.uk";
    let (mut web, secret) = staff_first_sign_in(&ts, email, "ORG1", "agent", "Tess Totp").await;
    assert_eq!(web.get("/ra").await.status, StatusCode::OK);
    let mut pending = Browser::new(&ts.url);
    assert_eq!(password_step(&mut pending, email, super::ra::PASSWORD).await.location(), "/ra/sign-in/code");

    // A manager (here the operator) sends a new link; whoever opens it sets a password.
    let id = staff_id(&ts, email).await;
    assert_eq!(call(&ts.client, Method::POST, &format!("/api/v1/staff/{id}/password-link"), None).await.0, 202);
    let link = emailed_link(&ts, email).await.unwrap();
    let mut other = Browser::new(&ts.url);
    let path = link_path(&link);
    let form = other.get(&path).await;
    let new_password = "a brand new password 2";
    let set = other.post(&path, &[("csrf", &form.csrf()), ("password", new_password), ("confirm", new_password)]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    // The open session and the pending sign-in are over.
    assert!(web.get("/ra").await.location().ends_with("/ra/sign-in"));
    let code_form = pending.get("/ra/sign-in").await;
    let late = pending.post("/ra/sign-in/code", &[("csrf", &code_form.csrf()), ("code", &app_code(&secret))]).await;
    assert_ne!(late.location(), "/ra", "the pending sign-in was voided");
    assert_eq!(last_sessions_ended(&ts).await, 1);
    // The TOTP stays: the next sign-in asks for a code from the same app.
    let mut again = Browser::new(&ts.url);
    assert_eq!(password_step(&mut again, email, new_password).await.location(), "/ra/sign-in/code");

    // Only the console clears it: sessions end and the next sign-in sets it up again.
    ts.vsc.reset_staff_totp(email).await.unwrap();
    assert_eq!(count(&ts, "staff.totp_reset").await, 1);
    let mut fresh = Browser::new(&ts.url);
    assert_eq!(password_step(&mut fresh, email, new_password).await.location(), "/ra/totp-setup");
    let setup = fresh.get("/ra/totp-setup").await;
    assert_ne!(text_of(&setup, "totp-secret"), secret, "a new secret");
    ts.stop().await;
}

/// `sessions_ended` of the latest `staff.password_set` event.
async fn last_sessions_ended(ts: &TestServer) -> i64 {
    super::ra::last_detail(ts, "staff.password_set").await["sessions_ended"].as_i64().unwrap()
}

async fn conflicts_with_other_organisations_name_nobody(b: Backend) {
    let ts = TestServer::start(b).await;
    other_organisation(&ts).await;
    let op = &ts.client;
    // ORG2 holds shared.example with a user on it; the operator then moves the domain to ORG1.
    call(op, Method::POST, "/api/v1/organisations/ORG2/email-domains", Some(json!({ "domain": "shared.example" })))
        .await;
    let olga = vsc_proto::CreateUserRequest {
        organisation: "ORG2".into(),
        forename: "Olga".into(),
        surname: "Other".into(),
        email: "olga@shared.example".into(),
        mobile: None,
        subject_cn: None,
        directory_account: None,
    };
    ts.vsc.create_user(&Principal::Operator, &olga).await.unwrap();
    assert_eq!(call(op, Method::DELETE, "/api/v1/organisations/ORG2/email-domains/shared.example", None).await.0, 200);
    assert_eq!(
        call(op, Method::POST, "/api/v1/organisations/ORG1/email-domains", Some(json!({ "domain": "shared.example" })))
            .await
            .0,
        201
    );
    let manager = manager_api(&ts, MANAGER).await;
    let neutral = |text: &str| {
        assert!(text.contains("this email address cannot be used"), "{text}");
        for named in ["ORG2", "Other Trust", "Olga", "already exists", "manager", "agent", "Rob"] {
            assert!(!text.contains(named), "{named} in {text}");
        }
    };

    // Creating a user, changing an email and importing: Olga of ORG2 is named to nobody.
    let user = |email: &str| json!({ "organisation": "ORG1", "forename": "Ima", "surname": "Probe", "email": email });
    let (status, text) = call(&manager, Method::POST, "/api/v1/users", Some(user("OLGA@shared.example"))).await;
    assert_eq!(status, 409, "{text}");
    neutral(&text);
    let (status, text) = call(&manager, Method::POST, "/api/v1/users", Some(user("mine@shared.example"))).await;
    assert_eq!(status, 201, "{text}");
    let mine = serde_json::from_str::<Value>(&text).unwrap()["id"].as_str().unwrap().to_string();
    let (status, text) = call(
        &manager,
        Method::PATCH,
        &format!("/api/v1/users/{mine}"),
        Some(json!({ "email": "olga@shared.example" })),
    )
    .await;
    assert_eq!(status, 409, "{text}");
    neutral(&text);
    let who = ts.vsc.authenticate_token(&ts.vsc.create_token(MANAGER).await.unwrap()).await.unwrap().unwrap();
    let csv =
        "organisation,forename,surname,email\nORG1,Ima,Probe,olga@shared.example\nORG1,Ima,Again,mine@shared.example\n";
    let errors = ts.vsc.import_users(&who, csv.as_bytes()).await.unwrap().expect_err("conflicts");
    let reasons: Vec<(usize, String)> = errors.iter().map(|e| (e.row, e.reason.clone())).collect();
    assert_eq!(reasons[0], (2, "this email address cannot be used".to_string()), "{reasons:?}");
    assert_eq!(reasons[1], (3, "a user with email mine@shared.example already exists".to_string()), "{reasons:?}");
    // Within the manager's own organisation the answer stays specific.
    let (status, text) = call(&manager, Method::POST, "/api/v1/users", Some(user("Mine@shared.example"))).await;
    assert_eq!(status, 409);
    assert!(text.contains("already exists"), "{text}");

    // Inviting another organisation's staff member: neutral; one of ORG1's: specific.
    ts.vsc.invite_staff("rob@other.nhs.uk", "ORG2", "manager", Some("Rob Other")).await.unwrap();
    let invite = |email: &str| json!({ "email": email, "name": "Probe", "role": "agent", "organisations": ["ORG1"] });
    let (status, text) = call(&manager, Method::POST, "/api/v1/staff", Some(invite("ROB@other.nhs.uk"))).await;
    assert_eq!(status, 409, "{text}");
    neutral(&text);
    let (status, text) = call(&manager, Method::POST, "/api/v1/staff", Some(invite("ra@example.nhs.uk"))).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("already has a staff account"), "{text}");
    ts.stop().await;
}

async fn role_counts_are_the_callers_organisations(b: Backend) {
    let ts = TestServer::start(b).await;
    other_organisation(&ts).await;
    let card = vsc_proto::IssueCardRequest { card_type: "v1".into(), roles: vec!["R8003".into()], key_algorithm: None };
    let one = super::holder(&ts, "one@example.nhs.uk", None).await;
    ts.vsc
        .issue_card(&Principal::Operator, &one.id.to_string(), &vsc_server::service::IssueCard::parse(&card).unwrap())
        .await
        .unwrap();
    let olga = super::ra::other_organisation_user(&ts).await;
    for _ in 0..2 {
        let req = vsc_server::service::IssueCard::parse(&card).unwrap();
        ts.vsc.issue_card(&Principal::Operator, &olga.id.to_string(), &req).await.unwrap();
    }
    let cards_of = |roles: &[vsc_proto::RoleView]| roles.iter().find(|r| r.code == "R8003").map(|r| r.cards);
    let manager = manager_api(&ts, MANAGER).await;
    let seen: Vec<vsc_proto::RoleView> =
        serde_json::from_str(&call(&manager, Method::GET, "/api/v1/roles", None).await.1).unwrap();
    assert_eq!(cards_of(&seen), Some(1), "ORG1's card only");
    ts.vsc.invite_staff("rob@other.nhs.uk", "ORG2", "manager", Some("Rob Other")).await.unwrap();
    let rob = ts.anon.with_token(&ts.vsc.create_token("rob@other.nhs.uk").await.unwrap());
    let seen: Vec<vsc_proto::RoleView> =
        serde_json::from_str(&call(&rob, Method::GET, "/api/v1/roles", None).await.1).unwrap();
    assert_eq!(cards_of(&seen), Some(2), "ORG2's cards only");
    // A staff operator's counts are its organisations' too; the console counts every card.
    let seen: Vec<vsc_proto::RoleView> =
        serde_json::from_str(&call(&ts.client, Method::GET, "/api/v1/roles", None).await.1).unwrap();
    assert_eq!(cards_of(&seen), Some(1));
    assert_eq!(cards_of(&ts.vsc.list_roles(&Principal::Operator).await.unwrap()), Some(3));
    ts.stop().await;
}
