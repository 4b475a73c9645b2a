//! The vRA Manager's sign-in pages (`/ra`): password links, password + TOTP sign-in with set-up
//! at the first sign-in, the throttle on failures, session expiry, sign-out.

use reqwest::StatusCode;
use vsc_crypto::totp::TotpSecret;
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::{Browser, Page};

on_both_backends!(
    ra_first_sign_in_sets_a_password_and_totp_then_signs_out,
    ra_wrong_password_and_unknown_email_answer_alike_and_failures_lock,
    ra_totp_codes_work_once_and_sessions_expire,
    ra_password_links_work_once_and_a_new_invite_replaces_them,
    ra_the_right_password_at_the_limit_locks_until_a_time_not_for_good,
    ra_a_new_password_ends_the_accounts_sessions,
);

pub(super) const PASSWORD: &str = "correct horse battery staple";
pub(super) const FAILED: &str = "the email address or password is wrong, or sign-in is locked for 15 minutes";

/// The path of a password link.
pub(super) fn link_path(link: &str) -> String {
    link[link.find("/ra/set-password/").expect("a password link")..].to_string()
}

/// The text of the element with `id` (up to the next tag).
pub(super) fn text_of(page: &Page, id: &str) -> String {
    let at = page.body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    let rest = &page.body[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..start + rest[start..].find('<').unwrap()].to_string()
}

fn base32_decode(s: &str) -> Vec<u8> {
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s}"),
        };
        bits = (bits << 5) | u64::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

#[allow(clippy::disallowed_methods)]
pub(super) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The code an authenticator app would show now for the base32 `secret`.
pub(super) fn app_code(secret: &str) -> String {
    TotpSecret::from_bytes(&base32_decode(secret)).code_at(unix_now())
}

/// The code of the next step (accepted now: the server allows one step either side).
fn next_code(secret: &str) -> String {
    TotpSecret::from_bytes(&base32_decode(secret)).code_for_step(TotpSecret::step(unix_now()) + 1)
}

/// Email and password → the page the sign-in continues on.
pub(super) async fn password_step(web: &mut Browser, email: &str, password: &str) -> Page {
    let form = web.get("/ra/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    // Before sign-in the header links no section of the portal.
    assert!(!form.body.contains("id=\"nav-users\""), "{}", form.body);
    web.post("/ra/sign-in", &[("csrf", &form.csrf()), ("email", email), ("password", password)]).await
}

/// A new manager's first sign-in through the pages → (their browser, the TOTP secret).
pub(super) async fn first_sign_in(ts: &TestServer, email: &str) -> (Browser, String) {
    staff_first_sign_in(ts, email, "ORG1", "manager", "Fiona Smith").await
}

/// A new staff member of `org` in `role`, invited and signed in for the first time through the
/// pages (password link, password, TOTP set-up) → (their browser, the TOTP secret).
pub(super) async fn staff_first_sign_in(
    ts: &TestServer,
    email: &str,
    org: &str,
    role: &str,
    name: &str,
) -> (Browser, String) {
    let out = ts.vsc.invite_staff(email, org, role, Some(name)).await.unwrap();
    let mut web = Browser::new(&ts.url);
    let path = link_path(&out.password_link);
    let form = web.get(&path).await;
    web.post(&path, &[("csrf", &form.csrf()), ("password", PASSWORD), ("confirm", PASSWORD)]).await;
    let next = password_step(&mut web, email, PASSWORD).await;
    assert_eq!(next.location(), "/ra/totp-setup");
    let setup = web.get("/ra/totp-setup").await;
    let secret = text_of(&setup, "totp-secret");
    let done = web.post("/ra/totp-setup", &[("csrf", &setup.csrf()), ("code", &app_code(&secret))]).await;
    assert_eq!(done.location(), "/ra", "{}", done.body);
    (web, secret)
}

pub(super) async fn count(ts: &TestServer, action: &str) -> i64 {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    vsc_store::audit::count_action(&mut conn, action).await.unwrap()
}

pub(super) async fn exec(ts: &TestServer, sql: &str) {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut *conn).await.unwrap();
}

/// Organisation ORG2 ("Other Trust", domain other.nhs.uk), made by the operator.
pub(super) async fn other_organisation(ts: &TestServer) {
    let org2 = vsc_proto::CreateOrganisationRequest {
        code: "ORG2".into(),
        name: "Other Trust".into(),
        email_domains: vec!["other.nhs.uk".into()],
    };
    ts.vsc.create_organisation(&vsc_server::service::Principal::Operator, &org2).await.unwrap();
}

/// Olga Other, a user of ORG2 (made by [`other_organisation`] first), made by the operator.
pub(super) async fn other_organisation_user(ts: &TestServer) -> vsc_proto::UserView {
    let olga = vsc_proto::CreateUserRequest {
        organisation: "ORG2".into(),
        forename: "Olga".into(),
        surname: "Other".into(),
        email: "olga.other@other.nhs.uk".into(),
        mobile: None,
        subject_cn: None,
        directory_account: None,
    };
    ts.vsc.create_user(&vsc_server::service::Principal::Operator, &olga).await.unwrap()
}

/// Register device `id` of `user_id` in `state`, with its app version, platform and platform version.
pub(super) async fn add_device(
    ts: &TestServer,
    user_id: impl std::fmt::Display,
    id: &str,
    state: &str,
    app: [&str; 3],
) {
    let [version, platform, platform_version] = app;
    exec(
        ts,
        &format!(
            "INSERT INTO devices (id, user_id, name, device_type, authenticator_type, state, client_version, \
             platform, platform_version, created_at, registered_at) VALUES ('{id}', '{user_id}', 'Phone {id}', \
             'phone', 'vsc', '{state}', '{version}', '{platform}', '{platform_version}', 1700000000, 1700000100)"
        ),
    )
    .await;
}

/// The `detail` of the latest audit event with `action`.
pub(super) async fn last_detail(ts: &TestServer, action: &str) -> serde_json::Value {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let detail: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT detail FROM audit_events WHERE action = '{action}' ORDER BY id DESC LIMIT 1"
    )))
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    serde_json::from_str(&detail).unwrap()
}

async fn ra_first_sign_in_sets_a_password_and_totp_then_signs_out(b: Backend) {
    let ts = TestServer::start(b).await;
    let mut web = Browser::new(&ts.url);
    // Not signed in: /ra goes to sign-in.
    let home = web.get("/ra").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/ra/sign-in");

    // The bootstrap prints a link for the manager (running it again makes a new one).
    let boot =
        ts.vsc.bootstrap("ORG1", "Test Trust", &["example.nhs.uk".into()], "ra@example.nhs.uk", "Rachel Admin").await;
    let link = boot.unwrap().password_link;
    assert!(link.contains("/ra/set-password/vsp_"), "{link}");
    let path = link_path(&link);
    let form = web.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(text_of(&form, "staff-email"), "ra@example.nhs.uk");
    // The rules: at least 12 characters, not the email, typed the same twice.
    let csrf = form.csrf();
    for (password, confirm, message) in [
        ("short", "short", "use at least 12 characters"),
        ("ra@example.nhs.uk", "ra@example.nhs.uk", "must not be your email address"),
        (PASSWORD, "correct horse battery stapler", "the two passwords are not the same"),
    ] {
        let page = web.post(&path, &[("csrf", &csrf), ("password", password), ("confirm", confirm)]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.body.contains(message), "{message}: {}", page.body);
    }
    let set = web.post(&path, &[("csrf", &csrf), ("password", PASSWORD), ("confirm", PASSWORD)]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER);
    assert_eq!(set.location(), "/ra/sign-in?password=set");
    let note = web.get(set.location()).await;
    assert!(note.body.contains("your password is set"));

    // Password → TOTP set-up: a QR code of the otpauth URI and the key as text.
    let next = password_step(&mut web, "RA@example.nhs.uk", PASSWORD).await;
    assert_eq!(next.status, StatusCode::SEE_OTHER);
    assert_eq!(next.location(), "/ra/totp-setup");
    let pending = next.set_cookie("vsc_ra_sign_in").unwrap();
    assert!(pending.contains("HttpOnly; SameSite=Strict; Path=/"), "{pending}");
    // Without the TOTP step /ra is still closed.
    assert_eq!(web.get("/ra").await.location(), "/ra/sign-in");
    let setup = web.get("/ra/totp-setup").await;
    assert_eq!(setup.status, StatusCode::OK);
    assert!(setup.body.contains("<svg"), "{}", setup.body);
    let secret = text_of(&setup, "totp-secret");
    assert_eq!(secret.len(), 32, "{secret}");
    let wrong = web.post("/ra/totp-setup", &[("csrf", &setup.csrf()), ("code", "000000")]).await;
    if wrong.status != StatusCode::SEE_OTHER {
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(wrong.body.contains("the code is wrong"), "{}", wrong.body);
        assert!(wrong.body.contains(&secret), "the set-up page is shown again");
    }
    let done = web.post("/ra/totp-setup", &[("csrf", &setup.csrf()), ("code", &app_code(&secret))]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/ra");
    let session = done.set_cookie("vsc_ra").unwrap();
    assert!(session.contains("HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"), "{session}");
    assert!(!session.contains("Secure"), "plain-http loopback test server: {session}");

    // Home: name, role, organisations, the (empty) users list, sign-out.
    let home = web.get("/ra").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert_eq!(text_of(&home, "staff-name"), "Rachel Admin");
    assert_eq!(text_of(&home, "staff-role"), "RA Manager");
    assert!(home.body.contains("Test Trust (<span class=\"mono\">ORG1</span>)"), "{}", home.body);
    assert!(home.body.contains("No users yet."), "{}", home.body);
    assert_eq!(web.get("/ra/sign-in").await.location(), "/ra", "a signed-in manager goes home");
    assert_eq!(count(&ts, "staff.totp_set_up").await, 1);
    assert_eq!(count(&ts, "staff.signed_in").await, 1);

    // The API token still works beside the portal.
    ts.client.audit(1).await.unwrap();

    // Sign-out ends the session for good (even replaying the old cookie).
    let old = web.cookies.get("vsc_ra").cloned().unwrap();
    let out = web.post("/ra/sign-out", &[("csrf", &home.csrf())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/ra/sign-in");
    assert!(!web.cookies.contains_key("vsc_ra"));
    web.cookies.insert("vsc_ra".into(), old);
    assert_eq!(web.get("/ra").await.location(), "/ra/sign-in");
    assert_eq!(count(&ts, "staff.signed_out").await, 1);

    // The next sign-in asks for a code (no second set-up).
    let mut web = Browser::new(&ts.url);
    let next = password_step(&mut web, "ra@example.nhs.uk", PASSWORD).await;
    assert_eq!(next.location(), "/ra/sign-in/code");
    let form = web.get("/ra/sign-in/code").await;
    assert_eq!(web.get("/ra/totp-setup").await.location(), "/ra/sign-in/code");
    let done = web.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", &next_code(&secret))]).await;
    assert_eq!(done.location(), "/ra", "{}", done.body);
    assert_eq!(web.get("/ra").await.status, StatusCode::OK);
}

async fn ra_wrong_password_and_unknown_email_answer_alike_and_failures_lock(b: Backend) {
    let ts = TestServer::start(b).await;
    let (_, secret) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    let mut web = Browser::new(&ts.url);
    let unknown = password_step(&mut web, "nobody@example.nhs.uk", PASSWORD).await;
    let wrong = password_step(&mut web, "fiona.smith@example.nhs.uk", "not the password at all").await;
    for page in [&unknown, &wrong] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.body.contains(FAILED), "{}", page.body);
        assert!(page.set_cookie("vsc_ra_sign_in").is_none());
    }
    assert_eq!(
        unknown.body.replace("nobody@example.nhs.uk", "E"),
        wrong.body.replace("fiona.smith@example.nhs.uk", "E")
    );

    // Four more wrong passwords (five in a row) lock sign-in: then even the right password fails.
    for _ in 0..4 {
        assert_eq!(password_step(&mut web, "fiona.smith@example.nhs.uk", "wrong wrong wrong").await.status, 401);
    }
    assert_eq!(count(&ts, "staff.sign_in_locked").await, 1);
    let locked = password_step(&mut web, "fiona.smith@example.nhs.uk", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
    assert!(locked.body.contains(FAILED));
    assert_eq!(count(&ts, "staff.sign_in_failed").await, 7, "1 unknown + 5 wrong + 1 locked");

    // 15 minutes later (the lock aged in the database) the right password works again.
    exec(&ts, "UPDATE staff SET sign_in_locked_until = sign_in_locked_until - 901").await;
    let next = password_step(&mut web, "fiona.smith@example.nhs.uk", PASSWORD).await;
    assert_eq!(next.location(), "/ra/sign-in/code", "{}", next.body);

    // Concurrent wrong passwords are counted exactly: of 8 at once, 5 are checked, 3 refused
    // unchecked, and sign-in locks once.
    exec(&ts, "UPDATE staff SET sign_in_failures = 0, sign_in_locked_until = NULL").await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let vsc = ts.vsc.clone();
        attempts.spawn(async move { vsc.staff_sign_in("fiona.smith@example.nhs.uk", "wrong wrong wrong").await });
    }
    let results = attempts.join_all().await;
    assert!(results.iter().all(Result::is_err));
    assert_eq!(count(&ts, "staff.sign_in_locked").await, 2);
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let failures: i64 = sqlx::Row::get(
        &sqlx::query("SELECT sign_in_failures FROM staff WHERE email_key = 'fiona.smith@example.nhs.uk'")
            .fetch_one(&mut *conn)
            .await
            .unwrap(),
        0,
    );
    assert_eq!(failures, 5);
    drop(conn);

    // Wrong TOTP codes count too: a stolen password cannot try codes without limit.
    exec(&ts, "UPDATE staff SET sign_in_failures = 0, sign_in_locked_until = NULL").await;
    let mut web = Browser::new(&ts.url);
    password_step(&mut web, "fiona.smith@example.nhs.uk", PASSWORD).await;
    let form = web.get("/ra/sign-in/code").await;
    let right = app_code(&secret);
    let wrong_code = if right == "123456" { "654321" } else { "123456" };
    // The password check stays counted until the code is right: 1 + 4 wrong codes lock.
    for left in [3, 2, 1] {
        let page = web.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", wrong_code)]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.body.contains(&format!("{left} attempt(s) left")), "{}", page.body);
    }
    let last = web.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", wrong_code)]).await;
    assert_eq!(last.status, StatusCode::UNAUTHORIZED, "{}", last.body);
    assert!(last.body.contains("sign in again"), "{}", last.body);
    assert_eq!(count(&ts, "staff.sign_in_locked").await, 3);
}

/// The account's stored failure count and lock time.
async fn lock_state(ts: &TestServer, email: &str) -> (i64, Option<i64>) {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    let row = sqlx::query("SELECT sign_in_failures, sign_in_locked_until FROM staff WHERE email_key = $1")
        .bind(email)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    (sqlx::Row::get(&row, 0), sqlx::Row::get(&row, 1))
}

async fn ra_the_right_password_at_the_limit_locks_until_a_time_not_for_good(b: Backend) {
    let ts = TestServer::start(b).await;
    let email = "fiona.smith@example.nhs.uk";
    let (_, secret) = first_sign_in(&ts, email).await;
    let mut web = Browser::new(&ts.url);
    for _ in 0..4 {
        assert_eq!(password_step(&mut web, email, "wrong wrong wrong").await.status, 401);
    }
    assert_eq!(lock_state(&ts, email).await, (4, None));
    // The fifth check reaches the limit: the right password does not get through it, and the
    // account is locked until a time (not merely at the limit with no end).
    let at_limit = password_step(&mut web, email, PASSWORD).await;
    assert_eq!(at_limit.status, StatusCode::UNAUTHORIZED);
    assert!(at_limit.body.contains(FAILED), "{}", at_limit.body);
    let (failures, until) = lock_state(&ts, email).await;
    assert_eq!(failures, 5);
    let until = until.expect("reaching the limit sets a lock until a time");
    assert!((unix_now() + 890..=unix_now() + 900).contains(&until), "15 minutes: {until}");
    assert_eq!(count(&ts, "staff.sign_in_locked").await, 1);
    // Still locked a moment later, for the right password too.
    assert_eq!(password_step(&mut web, email, PASSWORD).await.status, StatusCode::UNAUTHORIZED);

    // When the lock has run out (aged in the database) the right password and code sign in.
    exec(&ts, "UPDATE staff SET sign_in_locked_until = sign_in_locked_until - 901").await;
    let next = password_step(&mut web, email, PASSWORD).await;
    assert_eq!(next.location(), "/ra/sign-in/code", "{}", next.body);
    let form = web.get("/ra/sign-in/code").await;
    let done = web.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", &next_code(&secret))]).await;
    assert_eq!(done.location(), "/ra", "{}", done.body);
    assert_eq!(lock_state(&ts, email).await, (0, None), "a completed sign-in clears the count");

    // Reaching the limit at the code step locks until a time too.
    let mut other = Browser::new(&ts.url);
    exec(&ts, "UPDATE staff SET sign_in_failures = 3").await;
    assert_eq!(password_step(&mut other, email, PASSWORD).await.location(), "/ra/sign-in/code");
    let form = other.get("/ra/sign-in/code").await;
    let live = [app_code(&secret), next_code(&secret)];
    let wrong_code = ["000000", "111111", "222222"].into_iter().find(|c| !live.iter().any(|l| l == c)).unwrap();
    let wrong = other.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", wrong_code)]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    let (failures, until) = lock_state(&ts, email).await;
    assert_eq!(failures, 5);
    assert!(until.is_some_and(|u| u > unix_now()), "locked until a time");
    ts.stop().await;
}

async fn ra_a_new_password_ends_the_accounts_sessions(b: Backend) {
    let ts = TestServer::start(b).await;
    let email = "fiona.smith@example.nhs.uk";
    let (mut first, secret) = first_sign_in(&ts, email).await;
    assert_eq!(first.get("/ra").await.status, StatusCode::OK);
    let mut second = Browser::new(&ts.url);
    password_step(&mut second, email, PASSWORD).await;
    let form = second.get("/ra/sign-in/code").await;
    let done = second.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", &next_code(&secret))]).await;
    assert_eq!(done.location(), "/ra", "{}", done.body);
    let token = ts.vsc.create_token(email).await.unwrap();
    let api = ts.anon.with_token(&token);
    assert_eq!(api.raw(reqwest::Method::GET, "/api/v1/users", None).await.unwrap().0, 200);

    // A new password from a new link (as a manager's "email a new link" gives).
    let link = ts.vsc.invite_staff(email, "ORG1", "manager", None).await.unwrap().password_link;
    let mut web = Browser::new(&ts.url);
    let path = link_path(&link);
    let page = web.get(&path).await;
    let new = "a brand new long password";
    let set = web.post(&path, &[("csrf", &page.csrf()), ("password", new), ("confirm", new)]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert_eq!(last_detail(&ts, "staff.password_set").await["sessions_ended"], 2);
    // Both browsers' sessions are over.
    for browser in [&mut first, &mut second] {
        assert_eq!(browser.get("/ra").await.location(), "/ra/sign-in");
    }
    // API tokens are separate credentials (issued by the operator): they keep working.
    assert_eq!(api.raw(reqwest::Method::GET, "/api/v1/users", None).await.unwrap().0, 200);
    // The old password no longer signs in; the new one does.
    assert_eq!(password_step(&mut web, email, PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(password_step(&mut web, email, new).await.location(), "/ra/sign-in/code");
    ts.stop().await;
}

async fn ra_totp_codes_work_once_and_sessions_expire(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut first, secret) = first_sign_in(&ts, "fiona.smith@example.nhs.uk").await;
    assert_eq!(first.get("/ra").await.status, StatusCode::OK);

    // A second sign-in: the code just used for the set-up is refused, the next one works, and
    // then it is refused in turn.
    let used = app_code(&secret);
    let mut web = Browser::new(&ts.url);
    password_step(&mut web, "fiona.smith@example.nhs.uk", PASSWORD).await;
    let form = web.get("/ra/sign-in/code").await;
    assert_eq!(form.status, StatusCode::OK);
    let again = web.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", &used)]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", again.body);
    assert!(again.body.contains("the code is wrong or was used already"), "{}", again.body);
    let next = next_code(&secret);
    let ok = web.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", &next)]).await;
    assert_eq!(ok.location(), "/ra", "{}", ok.body);
    let mut third = Browser::new(&ts.url);
    password_step(&mut third, "fiona.smith@example.nhs.uk", PASSWORD).await;
    let form = third.get("/ra/sign-in/code").await;
    let replay = third.post("/ra/sign-in/code", &[("csrf", &form.csrf()), ("code", &next)]).await;
    assert_eq!(replay.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A finished sign-in cannot be spent twice.
    assert_eq!(web.get("/ra/sign-in/code").await.location(), "/ra/sign-in");

    // Sessions end after 30 idle minutes (aged in the database: the test server runs on the
    // real clock), and after 12 hours however busy.
    assert_eq!(web.get("/ra").await.status, StatusCode::OK);
    exec(&ts, "UPDATE staff_sessions SET last_seen_at = last_seen_at - 1790").await;
    assert_eq!(web.get("/ra").await.status, StatusCode::OK, "29 idle minutes are fine, and count as activity");
    exec(&ts, "UPDATE staff_sessions SET last_seen_at = last_seen_at - 1801").await;
    let expired = web.get("/ra").await;
    assert_eq!(expired.location(), "/ra/sign-in");
    assert!(expired.set_cookie("vsc_ra").unwrap().contains("Max-Age=0"));
    // The other session, busy but 12 hours old, ends too.
    let mut conn = ts.vsc.store().conn().await.unwrap();
    sqlx::query("UPDATE staff_sessions SET created_at = $1 - 43201, last_seen_at = $1")
        .bind(unix_now())
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    assert_eq!(first.get("/ra").await.location(), "/ra/sign-in");
}

async fn ra_password_links_work_once_and_a_new_invite_replaces_them(b: Backend) {
    let ts = TestServer::start(b).await;
    let one = ts.vsc.invite_staff("agent@example.nhs.uk", "ORG1", "agent", Some("Alex Agent")).await.unwrap();
    assert!(one.created && one.granted);
    let two = ts.vsc.invite_staff("agent@example.nhs.uk", "ORG1", "agent", None).await.unwrap();
    assert!(!two.created && !two.granted);
    assert_eq!(count(&ts, "staff.password_link_issued").await, 3, "bootstrap + 2 invites");
    // A new account needs a name; the role of an existing one is not changed by an invite.
    assert!(ts.vsc.invite_staff("new@example.nhs.uk", "ORG1", "agent", None).await.is_err());
    assert!(ts.vsc.invite_staff("agent@example.nhs.uk", "ORG1", "manager", None).await.is_err());
    assert!(ts.vsc.invite_staff("agent@example.nhs.uk", "NOPE", "agent", None).await.is_err());

    let mut web = Browser::new(&ts.url);
    let replaced = web.get(&link_path(&one.password_link)).await;
    assert_eq!(replaced.status, StatusCode::NOT_FOUND);
    assert!(replaced.body.contains("This link is not valid"), "{}", replaced.body);
    let garbage = web.get("/ra/set-password/%3Cscript%3E").await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);

    let path = link_path(&two.password_link);
    let form = web.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    let set = web.post(&path, &[("csrf", &form.csrf()), ("password", PASSWORD), ("confirm", PASSWORD)]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER);
    for used in [
        web.get(&path).await,
        web.post(
            &path,
            &[("csrf", &form.csrf()), ("password", "another long password"), ("confirm", "another long password")],
        )
        .await,
    ] {
        assert_eq!(used.status, StatusCode::GONE);
        assert!(used.body.contains("This link has already been used"), "{}", used.body);
    }
    assert_eq!(count(&ts, "staff.password_set").await, 1);
    // The agent signs in (first time: TOTP set-up) and sees the agent role.
    let next = password_step(&mut web, "agent@example.nhs.uk", PASSWORD).await;
    assert_eq!(next.location(), "/ra/totp-setup");
    let setup = web.get("/ra/totp-setup").await;
    let done = web
        .post("/ra/totp-setup", &[("csrf", &setup.csrf()), ("code", &app_code(&text_of(&setup, "totp-secret")))])
        .await;
    assert_eq!(done.location(), "/ra");
    assert_eq!(text_of(&web.get("/ra").await, "staff-role"), "RA Agent");

    // An expired link gets its own page.
    let three = ts.vsc.invite_staff("agent@example.nhs.uk", "ORG1", "agent", None).await.unwrap();
    exec(&ts, "UPDATE staff_password_links SET expires_at = expires_at - 86401").await;
    let expired = web.get(&link_path(&three.password_link)).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(expired.body.contains("This link has expired"), "{}", expired.body);
}
