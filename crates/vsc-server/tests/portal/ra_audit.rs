//! The vRA Manager's audit log viewer (`/ra/audit`, `/ra/audit.csv`): filters by action prefix,
//! outcome, date range and user, organisation scoping, the CSV export and bad filter values.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use vsc_client::Client;
use vsc_proto::{CreateUserRequest, UserView};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::{Browser, Page};

on_both_backends!(ra_audit_filters_scopes_and_exports,);

/// A new agent of `org` signed in through the pages (password link, password, TOTP set-up).
async fn signed_in_agent(ts: &TestServer, email: &str, org: &str) -> Browser {
    super::ra::staff_first_sign_in(ts, email, org, "agent", "Alex Agent").await.0
}

async fn user(client: &Client, org: &str, forename: &str, email: &str) -> UserView {
    let req = CreateUserRequest {
        organisation: org.into(),
        forename: forename.into(),
        surname: "Audit".into(),
        email: email.into(),
        mobile: None,
        subject_cn: None,
        directory_account: None,
    };
    client.create_user(&req).await.unwrap()
}

async fn exec(ts: &TestServer, sql: &str) {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut *conn).await.unwrap();
}

/// Append an audit event of organisation `org` at Unix time `at`.
async fn event(ts: &TestServer, at: i64, actor: &str, action: &str, org: &str, target: &str, detail: &str) {
    exec(
        ts,
        &format!(
            "INSERT INTO audit_events (at, actor, action, org_id, target, detail) VALUES ({at}, '{actor}', \
             '{action}', (SELECT id FROM organisations WHERE code = '{org}'), '{target}', '{detail}')"
        ),
    )
    .await;
}

/// The actions listed on an audit page, in order.
fn actions(page: &Page) -> Vec<String> {
    let marker = "class=\"mono audit-action\">";
    page.body
        .match_indices(marker)
        .map(|(at, _)| {
            let rest = &page.body[at + marker.len()..];
            rest[..rest.find('<').unwrap()].to_string()
        })
        .collect()
}

/// 2026-03-10 12:00:00 UTC.
const MAR10_NOON: i64 = 1_773_144_000;
const DAY: i64 = 86_400;

async fn ra_audit_filters_scopes_and_exports(b: Backend) {
    let ts = TestServer::start(b).await;
    let other = ts
        .vsc
        .bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "ra@other.nhs.uk", "Rob Other")
        .await
        .unwrap();
    let org2 = Client::new(&ts.url).with_token(&other.token);
    let ann = user(&ts.client, "ORG1", "Ann", "ann.audit@example.nhs.uk").await;
    let bob = user(&ts.client, "ORG1", "Bob", "bob.audit@example.nhs.uk").await;
    let olga = user(&org2, "ORG2", "Olga", "olga.audit@other.nhs.uk").await;
    let ann_target = format!("user:{}", ann.id);
    event(
        &ts,
        MAR10_NOON,
        "holder:ann",
        "card.login_approved",
        "ORG1",
        &ann_target,
        r#"{"login":"l1","device":"dev-approve-1","method":"push"}"#,
    )
    .await;
    event(
        &ts,
        MAR10_NOON + DAY,
        "holder:ann",
        "card.login_denied",
        "ORG1",
        &ann_target,
        r#"{"login":"l2","device":"dev-deny-2","method":"code","reason":"wrong, really"}"#,
    )
    .await;
    event(&ts, MAR10_NOON + 2 * DAY, "=HYPERLINK(1)", "staff.sign_in_failed", "ORG1", "staff:x", "{}").await;
    event(
        &ts,
        MAR10_NOON,
        "holder:olga-secret",
        "card.login_denied",
        "ORG2",
        &format!("user:{}", olga.id),
        r#"{"method":"push","device":"dev-olga"}"#,
    )
    .await;

    let mut web = signed_in_agent(&ts, "agent.audit@example.nhs.uk", "ORG1").await;
    let all = web.get("/ra/audit").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(all.body.contains("id=\"nav-audit\""));
    let listed = actions(&all);
    assert!(listed.iter().filter(|a| *a == "user.created").count() >= 2, "{listed:?}");
    assert!(listed.contains(&"card.login_approved".to_string()));
    // Another organisation's events are not shown.
    assert!(!all.body.contains("olga"), "{}", all.body);
    assert!(!all.body.contains("ORG2"));
    // Authentication events show their method and device.
    assert!(all.body.contains("<td>push</td>"), "{}", all.body);
    assert!(all.body.contains("dev-approve-1"));
    assert!(all.body.contains("id=\"audit-csv\""));
    assert!(!all.body.contains("id=\"audit-older\""), "one page only");

    // Action prefix.
    let cards = web.get("/ra/audit?action=card.").await;
    assert_eq!(actions(&cards), ["card.login_denied", "card.login_approved"], "newest first");
    let exact = web.get("/ra/audit?action=card.login_denied").await;
    assert_eq!(actions(&exact), ["card.login_denied"]);

    // Outcome.
    let failures = web.get("/ra/audit?outcome=failure").await;
    assert_eq!(actions(&failures), ["staff.sign_in_failed", "card.login_denied"]);
    let successes = actions(&web.get("/ra/audit?outcome=success").await);
    assert!(
        successes.contains(&"card.login_approved".to_string()) && !successes.contains(&"card.login_denied".to_string())
    );

    // Date range (UTC days, both inclusive).
    let day = web.get("/ra/audit?from=2026-03-11&to=2026-03-11").await;
    assert_eq!(day.status, StatusCode::OK);
    assert_eq!(actions(&day), ["card.login_denied"]);
    let span = web.get("/ra/audit?from=2026-03-10&to=2026-03-12").await;
    assert_eq!(actions(&span), ["staff.sign_in_failed", "card.login_denied", "card.login_approved"]);

    // User, by UUID or email.
    let by_id = actions(&web.get(&format!("/ra/audit?user={}", ann.id)).await);
    assert_eq!(by_id, ["card.login_denied", "card.login_approved", "user.created"]);
    let by_email = actions(&web.get("/ra/audit?user=Ann.Audit%40example.nhs.uk").await);
    assert_eq!(by_email, by_id);
    let bobs = actions(&web.get(&format!("/ra/audit?user={}", bob.id)).await);
    assert_eq!(bobs, ["user.created"]);
    // Another organisation's user: nothing.
    let theirs = web.get(&format!("/ra/audit?user={}", olga.id)).await;
    assert!(actions(&theirs).is_empty());
    assert!(theirs.body.contains("id=\"audit-empty\""));

    // Actor substring, combined with the outcome.
    let actor = web.get("/ra/audit?actor=ANN&outcome=failure").await;
    assert_eq!(actions(&actor), ["card.login_denied"]);

    // Bad values: an inline error and 422, the typed values kept.
    let bad = web.get("/ra/audit?from=2026-02-30").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("the from date must be a real date"), "{}", bad.body);
    assert!(bad.body.contains("value=\"2026-02-30\""));
    assert!(actions(&bad).is_empty());
    let backwards = web.get("/ra/audit?from=2026-03-12&to=2026-03-10").await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(backwards.body.contains("the from date must not be after the to date"), "{}", backwards.body);
    let outcome = web.get("/ra/audit?outcome=maybe").await;
    assert_eq!(outcome.status, StatusCode::UNPROCESSABLE_ENTITY);
    let csv_bad = web.get("/ra/audit.csv?to=31/03/2026").await;
    assert_eq!(csv_bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // CSV: the same filters, RFC 4180 quoting, formulas neutralised, other organisations left out.
    let csv = web.get("/ra/audit.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(csv.headers[CONTENT_DISPOSITION].to_str().unwrap().contains("audit-log.csv"));
    let mut lines = csv.body.split("\r\n");
    assert_eq!(lines.next(), Some("time,actor,action,outcome,organisation,target,method,device,detail"));
    assert!(!csv.body.contains("olga") && !csv.body.contains("ORG2"), "{}", csv.body);
    assert!(
        csv.body.contains(&format!(
            "2026-03-11T12:00:00Z,holder:ann,card.login_denied,failure,ORG1,{ann_target},code,dev-deny-2,\
         \"{{\"\"login\"\":\"\"l2\"\",\"\"device\"\":\"\"dev-deny-2\"\",\"\"method\"\":\"\"code\"\",\
         \"\"reason\"\":\"\"wrong, really\"\"}}\"\r\n"
        )),
        "{}",
        csv.body
    );
    assert!(csv.body.contains("2026-03-12T12:00:00Z,'=HYPERLINK(1),staff.sign_in_failed,failure,ORG1"), "{}", csv.body);
    let filtered = web.get("/ra/audit.csv?action=card.&outcome=success").await;
    let rows: Vec<&str> = filtered.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{}", filtered.body);
    assert!(rows[1].contains("card.login_approved,success,ORG1") && rows[1].contains(",push,dev-approve-1,"));

    // Pages of 50, the "older" link carrying the filters and the cursor.
    for i in 0..55 {
        event(&ts, MAR10_NOON - DAY + i, "bulk", "test.bulk", "ORG1", "x", "{}").await;
    }
    let first = web.get("/ra/audit?action=test.bulk").await;
    assert_eq!(actions(&first).len(), 50);
    let href = text_of_attr(&first, "audit-older").replace("&amp;", "&").replace("&#38;", "&");
    assert!(href.starts_with("/ra/audit?action=test.bulk&before="), "{href}");
    let second = web.get(&href).await;
    assert_eq!(actions(&second).len(), 5);
    assert!(!second.body.contains("id=\"audit-older\""));
}

/// The `href` of the link with `id`.
fn text_of_attr(page: &Page, id: &str) -> String {
    let at = page.body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    let start = page.body[..at].rfind("href=\"").unwrap() + 6;
    page.body[start..start + page.body[start..].find('"').unwrap()].to_string()
}
