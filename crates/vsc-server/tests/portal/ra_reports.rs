//! The vRA Manager's reports: pending users (`/ra/pending`, `.csv`) and expiring smartcards
//! (`/ra/expiring`, `.csv`), and their JSON mirrors under `/api/v1/reports`, each limited to the
//! staff member's organisations.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use vsc_client::Client;
use vsc_proto::{CreateUserRequest, ExpiringReport, IssueCardRequest, PendingReport, UserView};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::Browser;
use super::ra::{text_of, unix_now};

on_both_backends!(
    ra_pending_page_lists_issued_not_enrolled_cards_and_exports_csv,
    ra_expiring_page_filters_by_days_sorts_and_exports,
);

const DAY: i64 = 86_400;

/// A new agent of `org` signed in through the pages (password link, password, TOTP set-up).
async fn signed_in_agent(ts: &TestServer, email: &str, org: &str) -> Browser {
    super::ra::staff_first_sign_in(ts, email, org, "agent", "Alex Agent").await.0
}

async fn user(client: &Client, org: &str, forename: &str, surname: &str, email: &str) -> UserView {
    let req = CreateUserRequest {
        organisation: org.into(),
        forename: forename.into(),
        surname: surname.into(),
        email: email.into(),
        mobile: None,
        subject_cn: None,
        directory_account: None,
    };
    client.create_user(&req).await.unwrap()
}

/// Issue a V1 card; returns its serial.
async fn card(client: &Client, u: &UserView) -> String {
    let req = IssueCardRequest { card_type: "v1".into(), roles: vec!["R8000".into()], key_algorithm: None };
    client.issue_card(&u.id.to_string(), &req).await.unwrap().serial
}

async fn exec(ts: &TestServer, sql: &str) {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut *conn).await.unwrap();
}

/// A second organisation with its own manager; returns the manager's API client.
async fn other_org(ts: &TestServer, code: &str, domain: &str) -> Client {
    let out = ts
        .vsc
        .bootstrap(code, &format!("Other Trust {code}"), &[domain.into()], &format!("ra@{domain}"), "Rob Other")
        .await;
    Client::new(&ts.url).with_token(&out.unwrap().token)
}

async fn json<T: serde::de::DeserializeOwned>(client: &Client, path: &str) -> (u16, Option<T>, String) {
    let (status, body) = client.raw(reqwest::Method::GET, path, None).await.unwrap();
    (status, serde_json::from_str(&body).ok(), body)
}

/// HTML text with `&` entities read back.
fn unescape(html: &str) -> String {
    html.replace("&amp;", "&").replace("&#38;", "&")
}

fn people_time(t: time::OffsetDateTime) -> String {
    let f = time::format_description::parse_borrowed::<1>(
        "[day padding:none] [month repr:long] [year] [hour]:[minute]:[second] UTC",
    )
    .unwrap();
    t.format(&f).unwrap()
}

async fn ra_pending_page_lists_issued_not_enrolled_cards_and_exports_csv(b: Backend) {
    let ts = TestServer::start(b).await;
    let org2 = other_org(&ts, "ORG2", "other.nhs.uk").await;
    let pending_user = user(&ts.client, "ORG1", "Gráinne", "O'Neill", "grainne.oneill@example.nhs.uk").await;
    let pending_serial = card(&ts.client, &pending_user).await;
    let enrolled_user = user(&ts.client, "ORG1", "Ann", "Enrolled", "ann.enrolled@example.nhs.uk").await;
    let enrolled_serial = card(&ts.client, &enrolled_user).await;
    exec(&ts, &format!("UPDATE cards SET state = 'active' WHERE serial = '{enrolled_serial}'")).await;
    exec(
        &ts,
        &format!(
            "UPDATE enrolments SET completed_at = invited_at + 60 WHERE card_id = \
             (SELECT id FROM cards WHERE serial = '{enrolled_serial}')"
        ),
    )
    .await;
    let other_user = user(&org2, "ORG2", "Olga", "Other", "olga.other@other.nhs.uk").await;
    let other_serial = card(&org2, &other_user).await;

    // JSON (the ORG1 manager's token): the pending card only, with its invitation.
    let (status, report, body) = json::<PendingReport>(&ts.client, "/api/v1/reports/pending").await;
    assert_eq!(status, 200, "{body}");
    let report = report.unwrap();
    assert_eq!(report.users.len(), 1, "{body}");
    let row = &report.users[0];
    assert_eq!(row.serial, pending_serial);
    assert_eq!(row.email, "grainne.oneill@example.nhs.uk");
    assert_eq!(row.organisation, "ORG1");
    assert_eq!(row.card_type, "v1");
    assert_eq!(row.reminded_at, None);
    assert_eq!((row.link_expires_at - row.invited_at).whole_days(), 14);
    assert!(!report.truncated);
    // The other organisation's manager sees only their own.
    let (_, theirs, _) = json::<PendingReport>(&org2, "/api/v1/reports/pending").await;
    let theirs = theirs.unwrap();
    assert_eq!(theirs.users.iter().map(|u| u.serial.as_str()).collect::<Vec<_>>(), [other_serial.as_str()]);
    // Both reports are in the OpenAPI document.
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    for path in ["/api/v1/reports/pending", "/api/v1/reports/expiring"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing from the OpenAPI document");
    }
    assert!(doc["components"]["schemas"]["ExpiringReport"].is_object());
    // Without a token: refused.
    assert_eq!(ts.anon.raw(reqwest::Method::GET, "/api/v1/reports/pending", None).await.unwrap().0, 401);

    // Not signed in: the pages go to sign-in.
    let mut stranger = Browser::new(&ts.url);
    for path in ["/ra/pending", "/ra/pending.csv", "/ra/expiring", "/ra/expiring.csv"] {
        assert_eq!(stranger.get(path).await.location(), "/ra/sign-in", "{path}");
    }

    // The page.
    let mut web = signed_in_agent(&ts, "agent.one@example.nhs.uk", "ORG1").await;
    let page = web.get("/ra/pending").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("href=\"/ra/pending\"") && page.body.contains("href=\"/ra/expiring\""), "nav");
    assert!(page.body.contains(&pending_serial), "{}", page.body);
    assert!(page.body.contains("grainne.oneill@example.nhs.uk"));
    assert!(page.body.contains("Gráinne O&#39;Neill") || page.body.contains("Gráinne O&#x27;Neill"), "{}", page.body);
    assert!(page.body.contains(&people_time(row.invited_at)), "invited: {}", page.body);
    assert!(page.body.contains(&people_time(row.link_expires_at)), "link expiry: {}", page.body);
    assert!(page.body.contains("<td>never</td>"));
    assert!(!page.body.contains(&enrolled_serial), "an enrolled card is not pending");
    assert!(!page.body.contains(&other_serial), "another organisation's card is not shown");
    assert!(!page.body.contains("No pending users"));

    // A reminder shows; newest invitation first.
    exec(&ts, "UPDATE enrolments SET reminded_at = invited_at + 3600").await;
    let second = user(&ts.client, "ORG1", "Bea", "Newer", "bea.newer@example.nhs.uk").await;
    let second_serial = card(&ts.client, &second).await;
    exec(
        &ts,
        &format!(
            "UPDATE enrolments SET invited_at = invited_at + 100 WHERE card_id = \
             (SELECT id FROM cards WHERE serial = '{second_serial}')"
        ),
    )
    .await;
    let page = web.get("/ra/pending").await;
    assert!(page.body.contains(&people_time(row.invited_at + time::Duration::hours(1))), "{}", page.body);
    assert!(page.body.find(&second_serial).unwrap() < page.body.find(&pending_serial).unwrap(), "newest first");

    // CSV: a name with a comma and quotes is quoted, a formula is neutralised.
    exec(
        &ts,
        "UPDATE users SET forename = '=HYPERLINK(\"x\")', surname = 'O''Neill, \"Jr\"' \
         WHERE email_key = 'grainne.oneill@example.nhs.uk'",
    )
    .await;
    exec(&ts, "UPDATE users SET email = '+bea@example.nhs.uk' WHERE email_key = 'bea.newer@example.nhs.uk'").await;
    let csv = web.get("/ra/pending.csv").await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert_eq!(csv.headers[CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(csv.headers[CONTENT_DISPOSITION], "attachment; filename=\"pending-users.csv\"");
    let lines: Vec<&str> = csv.body.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "header, two rows, final CRLF: {:?}", csv.body);
    assert_eq!(lines[0], "Name,Email,Organisation,Card serial,Type,Invited,Reminded,Link expires");
    assert!(lines[1].starts_with("'+bea") || lines[1].contains(",'+bea@example.nhs.uk,"), "{}", lines[1]);
    let cn = &pending_user.subject_cn;
    let invited = row.invited_at.format(&time::format_description::well_known::Rfc3339).unwrap();
    let reminded =
        (row.invited_at + time::Duration::hours(1)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let expires = row.link_expires_at.format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(
        lines[2],
        format!(
            "\"'=HYPERLINK(\"\"x\"\") O'Neill, \"\"Jr\"\" ({cn})\",grainne.oneill@example.nhs.uk,ORG1,\
             {pending_serial},V1,{invited},{reminded},{expires}"
        )
    );
    assert_eq!(lines[3], "");
    assert!(!csv.body.contains(&other_serial) && !csv.body.contains(&enrolled_serial));

    // Staff of an organisation without pending users: the empty state.
    other_org(&ts, "ORG3", "third.nhs.uk").await;
    let mut third = signed_in_agent(&ts, "agent@third.nhs.uk", "ORG3").await;
    let page = third.get("/ra/pending").await;
    assert_eq!(text_of(&page, "pending-empty"), "No pending users");
    let csv = third.get("/ra/pending.csv").await;
    assert_eq!(csv.body, "Name,Email,Organisation,Card serial,Type,Invited,Reminded,Link expires\r\n");
}

async fn ra_expiring_page_filters_by_days_sorts_and_exports(b: Backend) {
    let ts = TestServer::start(b).await;
    let org2 = other_org(&ts, "ORG2", "other.nhs.uk").await;
    let now = unix_now();
    let soon_user = user(&ts.client, "ORG1", "Zoe", "Young", "zoe.young@example.nhs.uk").await;
    let soon = card(&ts.client, &soon_user).await;
    let later_user = user(&ts.client, "ORG1", "Amy", "Brown", "amy.brown@example.nhs.uk").await;
    let later = card(&ts.client, &later_user).await;
    let far_user = user(&ts.client, "ORG1", "Fay", "Far", "fay.far@example.nhs.uk").await;
    let far = card(&ts.client, &far_user).await;
    let revoked_user = user(&ts.client, "ORG1", "Rex", "Revoked", "rex.revoked@example.nhs.uk").await;
    let revoked = card(&ts.client, &revoked_user).await;
    ts.client.revoke_card(&revoked, Some("left the trust")).await.unwrap();
    let other_user = user(&org2, "ORG2", "Olga", "Other", "olga.other@other.nhs.uk").await;
    let other = card(&org2, &other_user).await;
    for (serial, at) in [
        (&soon, now + 5 * DAY + 3600),
        (&later, now + 20 * DAY + 3600),
        (&revoked, now + 3 * DAY),
        (&other, now + 4 * DAY),
    ] {
        exec(&ts, &format!("UPDATE cards SET expires_at = {at} WHERE serial = '{serial}'")).await;
    }

    let mut web = signed_in_agent(&ts, "agent.one@example.nhs.uk", "ORG1").await;
    // Default: 30 days, soonest first; not the far-off, revoked or other organisation's cards.
    let page = web.get("/ra/expiring").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let hrefs = unescape(&page.body);
    assert!(page.body.contains("value=\"30\""), "{}", page.body);
    let (i_soon, i_later) = (page.body.find(&soon).unwrap(), page.body.find(&later).unwrap());
    assert!(i_soon < i_later, "soonest first");
    for absent in [&far, &revoked, &other] {
        assert!(!page.body.contains(absent.as_str()), "{absent}: {}", page.body);
    }
    assert!(page.body.contains("Zoe Young") && page.body.contains("zoe.young@example.nhs.uk"));
    assert!(page.body.contains("<td>5</td>") && page.body.contains("<td>20</td>"), "days left: {}", page.body);
    assert!(hrefs.contains("aria-sort=\"ascending\"><a href=\"/ra/expiring?days=30&sort=expiry&dir=desc\""), "{hrefs}");
    assert!(hrefs.contains("aria-sort=\"none\"><a href=\"/ra/expiring?days=30&sort=name&dir=asc\""));

    // By name: Brown before Young; and descending expiry.
    let page = web.get("/ra/expiring?days=30&sort=name&dir=asc").await;
    assert!(page.body.find(&later).unwrap() < page.body.find(&soon).unwrap(), "by name");
    assert!(
        unescape(&page.body).contains("aria-sort=\"ascending\"><a href=\"/ra/expiring?days=30&sort=name&dir=desc\"")
    );
    let page = web.get("/ra/expiring?days=30&sort=expiry&dir=desc").await;
    assert!(page.body.find(&later).unwrap() < page.body.find(&soon).unwrap(), "latest first");
    assert!(page.body.contains("aria-sort=\"descending\""));

    // A narrower window.
    let page = web.get("/ra/expiring?days=10").await;
    assert!(page.body.contains(&soon) && !page.body.contains(&later));
    let page = web.get("/ra/expiring?days=2").await;
    assert_eq!(text_of(&page, "expiring-empty"), "No cards expire within 2 days");

    // Bad windows: an inline error, the value kept.
    for bad in ["abc", "0", "366"] {
        let page = web.get(&format!("/ra/expiring?days={bad}")).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(text_of(&page, "days-error"), "days must be a whole number from 1 to 365");
        assert!(page.body.contains(&format!("value=\"{bad}\"")), "{}", page.body);
        assert!(!page.body.contains(&soon));
    }
    let csv = web.get("/ra/expiring.csv?days=abc").await;
    assert_eq!(csv.status, StatusCode::UNPROCESSABLE_ENTITY);

    // CSV.
    let csv = web.get("/ra/expiring.csv?days=30").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(csv.headers[CONTENT_DISPOSITION], "attachment; filename=\"expiring-cards.csv\"");
    let lines: Vec<&str> = csv.body.split("\r\n").collect();
    assert_eq!(lines[0], "Name,Email,Organisation,Serial,Type,State,Expires,Days left");
    assert_eq!(lines.len(), 4, "{:?}", csv.body);
    assert!(
        lines[1].starts_with(&format!(
            "Zoe Young ({}),zoe.young@example.nhs.uk,ORG1,{soon},V1,issued,",
            soon_user.subject_cn
        ))
    );
    assert!(lines[1].ends_with(",5") && lines[2].ends_with(",20"), "{:?}", csv.body);
    assert!(!csv.body.contains(&other));

    // JSON: the same scoping; a bad window is refused, naming the field.
    let (status, report, body) = json::<ExpiringReport>(&ts.client, "/api/v1/reports/expiring?days=30").await;
    assert_eq!(status, 200, "{body}");
    let report = report.unwrap();
    assert_eq!(report.days, 30);
    let serials: Vec<_> = report.cards.iter().map(|c| (c.serial.as_str(), c.days_left)).collect();
    assert_eq!(serials, [(soon.as_str(), 5), (later.as_str(), 20)]);
    let (_, theirs, _) = json::<ExpiringReport>(&org2, "/api/v1/reports/expiring").await;
    let theirs = theirs.unwrap();
    assert_eq!(theirs.cards.iter().map(|c| c.serial.as_str()).collect::<Vec<_>>(), [other.as_str()]);
    let (status, _, body) = json::<ExpiringReport>(&ts.client, "/api/v1/reports/expiring?days=400").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("\"days\""), "{body}");
    let (status, _, _) = json::<ExpiringReport>(&ts.client, "/api/v1/reports/expiring?sort=email").await;
    assert_eq!(status, 422);
}
