//! The vRA Manager's users list (`/ra`: search, filters, sorting, pages, the htmx fragment) and
//! user page (`/ra/users/{id}`: details, cards, devices with Delete, audit log), and that staff
//! see only their organisations' users.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use vsc_proto::{CreateUserRequest, IssueCardRequest, UserView};
use vsc_server::service::{IssueCard, Principal};
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::ra::{add_device, count, exec, first_sign_in, other_organisation, other_organisation_user, text_of};
use super::{Browser, Page};

on_both_backends!(
    ra_users_list_searches_filters_sorts_and_pages,
    ra_users_list_answers_htmx_with_the_results_fragment,
    ra_staff_see_only_their_organisations_users,
    ra_user_page_shows_the_user_and_deletes_devices,
    ra_user_page_card_actions_issue_resend_renew_revoke_unlock_and_pin_reset,
    ra_card_actions_of_another_organisation_are_not_found,
);

fn new_user(org: &str, forename: &str, surname: &str, email: &str) -> CreateUserRequest {
    CreateUserRequest {
        organisation: org.into(),
        forename: forename.into(),
        surname: surname.into(),
        email: email.into(),
        mobile: Some("+447700900123".into()),
        subject_cn: None,
        directory_account: None,
    }
}

async fn user(ts: &TestServer, forename: &str, surname: &str, email: &str) -> UserView {
    ts.client.create_user(&new_user("ORG1", forename, surname, email)).await.unwrap()
}

/// The user names in the table, in order.
fn names(page: &Page) -> Vec<String> {
    page.body
        .split("class=\"user-link\">")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].replace("&#39;", "'").replace("&#x27;", "'"))
        .collect()
}

/// Every table's header cells match the cells of each of its rows.
fn assert_aligned(page: &Page) {
    let tables: Vec<&str> = page.body.split("<table").skip(1).collect();
    assert!(!tables.is_empty(), "no table in {}", page.body);
    for t in tables {
        let t = &t[..t.find("</table>").unwrap()];
        let head = &t[t.find("<thead>").unwrap()..t.find("</thead>").unwrap()];
        let ths = head.matches("<th ").count() + head.matches("<th>").count();
        let body = &t[t.find("<tbody>").unwrap()..];
        let rows: Vec<&str> = body.split("<tr").skip(1).collect();
        assert!(!rows.is_empty());
        for r in rows {
            assert_eq!(r.matches("<td").count(), ths, "row {r} vs {ths} headers");
            assert_eq!(r.matches("<th ").count() + r.matches("<th>").count(), 0);
        }
    }
}

async fn htmx_get(web: &Browser, path: &str) -> (StatusCode, String) {
    let r = web
        .http
        .get(format!("{}{path}", web.base))
        .header(COOKIE, web.cookie_header())
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn ra_users_list_searches_filters_sorts_and_pages(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    let empty = web.get("/ra").await;
    assert_eq!(text_of(&empty, "users-empty"), "No users yet.");

    // 26 users: one more than a page.
    let mut made = Vec::new();
    for i in 0..25u8 {
        let tag: String = [b'a' + i / 5, b'a' + i % 5].iter().map(|b| char::from(*b)).collect();
        made.push(user(&ts, "Test", &format!("Person{tag}"), &format!("person.{tag}@example.nhs.uk")).await);
    }
    let grainne = user(&ts, "Gráinne", "O'Neill", "zz.grainne@example.nhs.uk").await;
    let card = ts
        .client
        .issue_card(
            &grainne.id.to_string(),
            &IssueCardRequest { card_type: "v2".into(), roles: vec!["R8000".into()], key_algorithm: None },
        )
        .await
        .unwrap();

    let first = web.get("/ra").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(text_of(&first, "users-summary"), "26 users · page 1 of 2");
    let list = names(&first);
    assert_eq!(list.len(), 25);
    // By surname: O'Neill before Person00.
    assert_eq!(list[0], format!("Gráinne O'Neill ({})", grainne.subject_cn));
    assert!(list[1].starts_with("Test Personaa"), "{list:?}");
    assert!(first.body.contains("aria-sort=\"ascending\""));
    assert!(first.body.contains(&card.serial) && first.body.contains("V2"));
    assert!(first.body.contains(&format!("href=\"/ra/users/{}\"", grainne.id)));
    assert_aligned(&first);
    // Every column header is a sort link; the active one toggles.
    assert_eq!(first.body.matches("class=\"sort-link\"").count(), 6);
    assert!(first.body.contains("href=\"/ra?dir=desc\""), "name toggles to descending");
    assert!(first.body.contains("href=\"/ra?sort=email\""));
    assert!(first.body.contains("id=\"page-next\"") && !first.body.contains("id=\"page-prev\""));

    let second = web.get("/ra?page=2").await;
    assert_eq!(text_of(&second, "users-summary"), "26 users · page 2 of 2");
    assert_eq!(names(&second), vec!["Test Personee (".to_string() + &made[24].subject_cn + ")"]);
    assert!(second.body.contains("id=\"page-prev\"") && !second.body.contains("id=\"page-next\""));

    // Sorting by email, both ways.
    let asc = names(&web.get("/ra?sort=email").await);
    assert!(asc[0].starts_with("Test Personaa"), "{asc:?}");
    let desc_page = web.get("/ra?sort=email&dir=desc").await;
    let desc = names(&desc_page);
    assert!(desc[0].starts_with("Gráinne O'Neill"), "{desc:?}");
    assert!(desc[1].starts_with("Test Personee"), "{desc:?}");
    assert!(desc_page.body.contains("aria-sort=\"descending\""));
    assert!(
        desc_page.body.contains("<input type=\"hidden\" name=\"sort\" value=\"email\">"),
        "the form keeps the sort"
    );

    // Search anywhere in the name, email, serial.
    for q in ["neill", "ZZ.GRAIN", &card.serial[3..12]] {
        let page = web.get(&format!("/ra?q={q}")).await;
        assert_eq!(names(&page), vec![format!("Gráinne O'Neill ({})", grainne.subject_cn)], "{q}");
        assert!(page.body.contains(&format!("value=\"{q}\"")), "the box keeps the text");
    }
    let none = web.get("/ra?q=nobody-at-all").await;
    assert_eq!(text_of(&none, "users-empty"), "No users match “nobody-at-all”.");
    let short = web.get("/ra?q=ab").await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    let q_error = &short.body[short.body.find("id=\"q-error\"").expect("an error beside the box")..];
    assert!(q_error.starts_with("id=\"q-error\"><span class=\"visually-hidden\">Error: </span>search for at least 3"));
    assert!(short.body.contains("form-group--error"));

    // Filters.
    let v2 = web.get("/ra?card_type=v2").await;
    assert_eq!(names(&v2).len(), 1);
    assert_eq!(names(&web.get("/ra?enrolment=pending&card_state=issued").await).len(), 1);
    let no_card = web.get("/ra?enrolment=none&organisation=ORG1").await;
    assert_eq!(text_of(&no_card, "users-summary"), "25 users · page 1 of 1");
    let nothing = web.get("/ra?card_state=revoked").await;
    assert_eq!(text_of(&nothing, "users-empty"), "No users match these filters.");
    let bad = web.get("/ra?card_type=v9").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("card_type must be one of v1, v2"), "{}", bad.body);
}

async fn ra_users_list_answers_htmx_with_the_results_fragment(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    user(&ts, "Ann", "Archer", "ann.archer@example.nhs.uk").await;
    user(&ts, "Bob", "Baker", "bob.baker@example.nhs.uk").await;

    let full = web.get("/ra?sort=email&dir=desc").await;
    assert!(full.body.starts_with("<!DOCTYPE html>"));
    assert!(full.body.contains("<script src=\"/static/htmx.min.js\" defer></script>"));
    assert!(full.body.contains("hx-trigger=\"submit, input changed delay:300ms, change\""));
    assert!(!full.body.contains("hx-swap-oob"), "no out-of-band parts in the full page");
    let csp = full.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
    assert_eq!(full.headers["vary"], "HX-Request");

    let (status, fragment) = htmx_get(&web, "/ra?sort=email&dir=desc").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!fragment.contains("<html") && !fragment.contains("<form"), "{fragment}");
    assert!(fragment.contains("id=\"users-table\""));
    assert!(fragment.contains("hx-target=\"#users-results\"") && fragment.contains("hx-push-url=\"true\""));
    assert!(fragment.contains("id=\"users-sort-state\" hx-swap-oob=\"true\""), "{fragment}");
    let fragment_page = Page { status, headers: full.headers.clone(), body: fragment };
    assert_eq!(names(&fragment_page)[0], names(&full)[0]);
    assert!(names(&fragment_page)[0].starts_with("Bob Baker"));
    assert_aligned(&fragment_page);

    // A problem comes back inside the fragment with 200 (htmx swaps only successful answers).
    let (status, short) = htmx_get(&web, "/ra?q=ab").await;
    assert_eq!(status, StatusCode::OK);
    assert!(short.contains("id=\"search-problem\"") && short.contains("at least 3 characters"), "{short}");

    let js = web.get("/static/htmx.min.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(js.headers[CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert!(js.body.starts_with("/*! htmx 2."), "license header kept");
}

async fn ra_staff_see_only_their_organisations_users(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    other_organisation(&ts).await;
    let theirs = other_organisation_user(&ts).await;
    let mine = user(&ts, "Mary", "Mine", "mary.mine@example.nhs.uk").await;
    exec(
        &ts,
        &format!(
            "INSERT INTO devices (id, user_id, name, device_type, authenticator_type, state, created_at) \
             VALUES ('dev-olga', '{}', 'Olga phone', 'phone', 'vsc', 'pending_code', 1700000000)",
            theirs.id
        ),
    )
    .await;

    let list = web.get("/ra").await;
    assert_eq!(names(&list), vec![format!("Mary Mine ({})", mine.subject_cn)]);
    assert!(!list.body.contains("Other Trust"), "ORG2 is not offered as a filter");
    assert_eq!(text_of(&web.get("/ra?q=olga").await, "users-empty"), "No users match “olga”.");
    let filtered = web.get("/ra?organisation=ORG2").await;
    assert_eq!(filtered.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(filtered.body.contains("no organisation ORG2 among yours"), "{}", filtered.body);

    let page = web.get(&format!("/ra/users/{}", theirs.id)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("User not found") && !page.body.contains("Olga"), "{}", page.body);
    let home = web.get("/ra").await;
    let delete = web.post(&format!("/ra/users/{}/devices/dev-olga/delete", theirs.id), &[("csrf", &home.csrf())]).await;
    assert_eq!(delete.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&ts, "device.deleted").await, 0);
    assert_eq!(web.get(&format!("/ra/users/{}", mine.id)).await.status, StatusCode::OK);
}

async fn ra_user_page_shows_the_user_and_deletes_devices(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    let u = user(&ts, "Gráinne", "O'Neill", "grainne.oneill@example.nhs.uk").await;
    let path = format!("/ra/users/{}", u.id);

    let bare = web.get(&path).await;
    assert_eq!(bare.status, StatusCode::OK, "{}", bare.body);
    assert_eq!(text_of(&bare, "cards-empty"), "No cards");
    assert_eq!(text_of(&bare, "devices-empty"), "No devices");
    assert_eq!(text_of(&bare, "user-last-active"), "Never");

    let card = ts
        .client
        .issue_card(
            &u.id.to_string(),
            &IssueCardRequest { card_type: "v2".into(), roles: vec!["R8000".into()], key_algorithm: None },
        )
        .await
        .unwrap();
    for (id, state) in [("dev-pending", "pending_code"), ("dev-active", "active")] {
        add_device(&ts, u.id, id, state, ["1.4.2", "Android", "15"]).await;
    }

    let page = web.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(text_of(&page, "user-name").starts_with("Gráinne O"), "{}", page.body);
    assert_eq!(text_of(&page, "user-email"), "grainne.oneill@example.nhs.uk");
    assert_eq!(text_of(&page, "user-mobile"), "+447700900123");
    assert_eq!(text_of(&page, "user-uuid"), u.id.to_string());
    assert_eq!(text_of(&page, "user-subject-cn"), u.subject_cn);
    assert!(page.body.contains("Test Trust"));
    assert!(page.body.contains(&card.serial) && page.body.contains("R8000"));
    assert!(page.body.contains("Phone dev-pending") && page.body.contains("Phone dev-active"));
    assert!(page.body.contains("1.4.2") && page.body.contains("Android"));
    assert!(page.body.contains("Waiting for the emailed code"));
    assert_aligned(&page);
    // The audit log, newest first: the card's issue after the user's creation.
    let issued = page.body.find(">card.issued<").expect("card.issued in the log");
    let created = page.body.find(">user.created<").expect("user.created in the log");
    assert!(issued < created, "newest first");

    // Delete the device that never finished registering.
    let delete = web.post(&format!("{path}/devices/dev-pending/delete"), &[("csrf", &page.csrf())]).await;
    assert_eq!(delete.status, StatusCode::SEE_OTHER, "{}", delete.body);
    assert_eq!(delete.location(), format!("{path}?done=device_deleted"));
    let after = web.get(delete.location()).await;
    assert!(after.body.contains("The device was deleted."));
    assert!(
        !after.body.contains("data-device-id=\"dev-pending\"") && after.body.contains("data-device-id=\"dev-active\"")
    );
    assert!(after.body.contains("Phone dev-pending"), "the audit log names the deleted device");
    assert!(after.body.contains(">device.deleted<"));
    assert_eq!(count(&ts, "device.deleted").await, 1);
    // Again: gone.
    let again = web.post(&format!("{path}/devices/dev-pending/delete"), &[("csrf", &page.csrf())]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    // Without the CSRF field: refused before anything happens.
    let forged = web.post(&format!("{path}/devices/dev-active/delete"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let last = web.post(&format!("{path}/devices/dev-active/delete"), &[("csrf", &page.csrf())]).await;
    assert_eq!(last.status, StatusCode::SEE_OTHER);
    assert_eq!(text_of(&web.get(&path).await, "devices-empty"), "No devices");

    // Unknown and malformed ids: the same 404 page.
    for id in ["00000000-0000-4000-8000-000000000000", "not-a-uuid"] {
        let missing = web.get(&format!("/ra/users/{id}")).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{id}");
        assert!(missing.body.contains("User not found"));
    }
}

async fn ra_user_page_card_actions_issue_resend_renew_revoke_unlock_and_pin_reset(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    let u = user(&ts, "Gráinne", "O'Neill", "grainne.oneill@example.nhs.uk").await;
    let path = format!("/ra/users/{}", u.id);
    let page = web.get(&path).await;
    assert!(page.body.contains("id=\"issue-card-form\"") && page.body.contains("name=\"role_R8000\""), "{}", page.body);

    // No role chosen: refused beside the form.
    let none = web.post(&format!("{path}/cards"), &[("csrf", &page.csrf()), ("card_type", "v2")]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        none.body.contains("id=\"issue-error\"") && none.body.contains("Choose at least one role"),
        "{}",
        none.body
    );
    assert_eq!(count(&ts, "card.issued").await, 0);

    // Issue a V2 card.
    let issued =
        web.post(&format!("{path}/cards"), &[("csrf", &page.csrf()), ("card_type", "v2"), ("role_R8000", "on")]).await;
    assert_eq!(issued.status, StatusCode::SEE_OTHER, "{}", issued.body);
    let after = web.get(issued.location()).await;
    let serial =
        ts.vsc.staff_user_page(&Principal::Operator, &u.id.to_string()).await.unwrap().user.cards[0].serial.clone();
    assert!(serial.starts_with("150"), "{serial}");
    assert!(text_of(&after, "note").contains(&format!("Card {serial} (V2) issued")), "{}", after.body);
    assert!(after.body.contains("tag--issued\">issued<") && after.body.contains("R8000"));
    assert!(after.body.contains(">card.issued<"));
    assert_aligned(&after);
    let invitations = |m: &Vec<vsc_server::service::OutboxMessage>| m.iter().filter(|m| m.kind == "invitation").count();
    assert_eq!(invitations(&ts.vsc.outbox(Some(&u.email), 10).await.unwrap()), 1);
    let card_path = format!("{path}/cards/{serial}");

    // Resend.
    let resent = web.post(&format!("{card_path}/resend"), &[("csrf", &page.csrf())]).await;
    assert_eq!(resent.status, StatusCode::SEE_OTHER, "{}", resent.body);
    let after = web.get(resent.location()).await;
    assert!(text_of(&after, "note").contains("A new invitation"), "{}", after.body);
    assert!(after.body.contains(">enrolment.invitation_resent<"));
    assert_eq!(invitations(&ts.vsc.outbox(Some(&u.email), 10).await.unwrap()), 2);

    // Unlock: the card is not locked.
    let unlock = web.post(&format!("{card_path}/unlock"), &[("csrf", &page.csrf())]).await;
    assert_eq!(unlock.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unlock.body.contains("is issued, not locked: only a locked card can be unlocked"), "{}", unlock.body);
    assert_eq!(count(&ts, "card.unlock_link_issued").await, 0);

    // Renew: refused while the holder's email address is not confirmed (a renewed certificate
    // certifies only a confirmed identity)...
    let before = ts.client.card(&serial).await.unwrap();
    let refused = web.post(&format!("{card_path}/renew"), &[("csrf", &page.csrf())]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("email address is not confirmed yet"), "{}", refused.body);
    assert!(
        refused.body.contains("id=\"user-email-state\" class=\"tag tag--issued\">not confirmed<"),
        "{}",
        refused.body
    );
    assert_eq!(count(&ts, "card.renewed").await, 0);
    assert_eq!(ts.client.card(&serial).await.unwrap().certificates.authentication, before.certificates.authentication);
    // ...then, once the holder has confirmed it (as their signed-in confirmation link does), same
    // serial, new certificate.
    exec(&ts, &format!("UPDATE users SET email_verified_at = 1700000000 WHERE id = '{}'", u.id)).await;
    let renewed = web.post(&format!("{card_path}/renew"), &[("csrf", &page.csrf())]).await;
    assert_eq!(renewed.status, StatusCode::SEE_OTHER, "{}", renewed.body);
    let after = web.get(renewed.location()).await;
    assert!(text_of(&after, "note").starts_with(&format!("Card {serial} renewed; new certificates until ")));
    assert!(after.body.contains(">card.renewed<"));
    let now = ts.client.card(&serial).await.unwrap();
    assert_eq!(now.serial, serial);
    assert_ne!(now.certificates.authentication, before.certificates.authentication);

    // Revoke: a reason is required.
    let empty = web.post(&format!("{card_path}/revoke"), &[("csrf", &page.csrf()), ("reason", "  ")]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body.contains(&format!("id=\"card-error-{serial}\"")) && empty.body.contains("Enter the reason"));
    assert_eq!(count(&ts, "card.revoked").await, 0);
    let revoked =
        web.post(&format!("{card_path}/revoke"), &[("csrf", &page.csrf()), ("reason", "card lost on the bus")]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let after = web.get(revoked.location()).await;
    assert_eq!(text_of(&after, "note"), format!("Card {serial} revoked."));
    assert!(after.body.contains("tag--revoked\">revoked<") && after.body.contains("card lost on the bus"));
    assert!(!after.body.contains(&format!("{card_path}/renew")), "no renew for a revoked card");
    assert_eq!(ts.client.card(&serial).await.unwrap().state, "revoked");
    // Renewing it now: refused with the service's reason.
    let late = web.post(&format!("{card_path}/renew"), &[("csrf", &page.csrf())]).await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(late.body.contains("the card is revoked"), "{}", late.body);
    // Unknown action, unknown card, no CSRF field.
    assert_eq!(
        web.post(&format!("{card_path}/explode"), &[("csrf", &page.csrf())]).await.status,
        StatusCode::NOT_FOUND
    );
    let other = web.post(&format!("{path}/cards/1500000000000000/renew"), &[("csrf", &page.csrf())]).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(web.post(&format!("{card_path}/renew"), &[]).await.status, StatusCode::FORBIDDEN);

    // PIN reset for an active device: the token is shown once.
    exec(
        &ts,
        &format!(
            "INSERT INTO devices (id, user_id, name, device_type, authenticator_type, state, created_at, registered_at) \
             VALUES ('dev-active', '{}', 'Work phone', 'phone', 'vsc', 'active', 1700000000, 1700000100)",
            u.id
        ),
    )
    .await;
    let page = web.get(&path).await;
    assert!(page.body.contains(&format!("{path}/devices/dev-active/pin-reset")));
    let reset = web.post(&format!("{path}/devices/dev-active/pin-reset"), &[("csrf", &page.csrf())]).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    assert!(text_of(&reset, "pin-token").starts_with("vpr"), "{}", reset.body);
    assert!(reset.body.contains("PIN reset token for Work phone"));
    assert!(reset.body.contains(">device.pin_reset_issued<"));
    assert!(!web.get(&path).await.body.contains("id=\"pin-token\""), "shown once");
}

async fn ra_card_actions_of_another_organisation_are_not_found(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    other_organisation(&ts).await;
    let theirs = other_organisation_user(&ts).await;
    let req = IssueCardRequest { card_type: "v2".into(), roles: vec!["R8000".into()], key_algorithm: None };
    let card = ts
        .vsc
        .issue_card(&Principal::Operator, &theirs.id.to_string(), &IssueCard::parse(&req).unwrap())
        .await
        .unwrap();
    exec(
        &ts,
        &format!(
            "INSERT INTO devices (id, user_id, name, device_type, authenticator_type, state, created_at) \
             VALUES ('dev-olga', '{}', 'Olga phone', 'phone', 'vsc', 'active', 1700000000)",
            theirs.id
        ),
    )
    .await;
    let csrf = web.get("/ra").await.csrf();
    let path = format!("/ra/users/{}", theirs.id);
    let issue = web.post(&format!("{path}/cards"), &[("csrf", &csrf), ("card_type", "v2"), ("role_R8000", "on")]).await;
    assert_eq!(issue.status, StatusCode::NOT_FOUND);
    for action in ["resend", "renew", "revoke", "unlock"] {
        let r = web.post(&format!("{path}/cards/{}/{action}", card.serial), &[("csrf", &csrf), ("reason", "x")]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
        assert!(r.body.contains("User not found"));
    }
    let pin = web.post(&format!("{path}/devices/dev-olga/pin-reset"), &[("csrf", &csrf)]).await;
    assert_eq!(pin.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&ts, "card.issued").await, 1);
    for action in ["enrolment.invitation_resent", "card.renewed", "card.revoked", "device.pin_reset_issued"] {
        assert_eq!(count(&ts, action).await, 0, "{action}");
    }
}
