//! CSV import of users in the vRA Manager (`/ra/import`, its sample file and progress page) and
//! `POST /api/v1/users/import`: problems by row and column with nothing imported, a good file
//! imported whole (cards and invitations included, users searchable), organisation scoping.

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use vsc_proto::{UserImportErrors, UserImportResult, UserSearchQuery};
use vsc_server::service::Principal;
use vsc_testkit::{Backend, TestServer, on_both_backends};

use super::ra::{count, first_sign_in, staff_first_sign_in};
use super::{Browser, Page};

on_both_backends!(
    ra_import_reports_every_problem_and_imports_nothing,
    ra_import_of_a_good_file_creates_users_cards_and_invitations,
    ra_import_sample_imports_as_it_is,
    api_import_mirrors_the_page,
);

const HEADER: &str = "organisation,forename,surname,email,mobile,subject_cn,directory_account,card_type,roles";

/// Upload `csv` as the form's file; the page's answer.
async fn upload(web: &mut Browser, csrf: &str, csv: &str) -> Page {
    let boundary = "----vscimportboundary7MA4YWxk";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"users.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    let r = web
        .http
        .post(format!("{}/ra/import", web.base))
        .header(COOKIE, web.cookie_header())
        .header(CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    web.keep(r).await
}

/// Follow an import's page until it has finished (as the page's own refresh would).
async fn finished(web: &mut Browser, path: &str) -> Page {
    for _ in 0..200 {
        let page = web.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        if !page.body.contains("http-equiv=\"refresh\"") {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the import at {path} did not finish");
}

/// Upload through the form and wait for the result page → (the import's path, its final page).
async fn import_at(web: &mut Browser, csv: &str) -> (String, Page) {
    let form = web.get("/ra/import").await;
    assert_eq!(form.status, StatusCode::OK);
    let started = upload(web, &form.csrf(), csv).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let path = started.location().to_string();
    assert!(path.starts_with("/ra/import/"), "{path}");
    let page = finished(web, &path).await;
    (path, page)
}

/// Upload through the form and wait for the result page.
async fn import_page(web: &mut Browser, csv: &str) -> Page {
    import_at(web, csv).await.1
}

/// The (row, column, reason) lines of the error table.
fn error_rows(page: &Page) -> Vec<(String, String, String)> {
    let at = page.body.find("id=\"import-errors\"").unwrap_or_else(|| panic!("no error table in {}", page.body));
    let table = &page.body[at..page.body[at..].find("</table>").unwrap() + at];
    table
        .split("<tr><td")
        .skip(1)
        .map(|r| {
            let cells: Vec<String> = r
                .split("<td")
                .map(|c| {
                    let c = &c[c.find('>').unwrap() + 1..];
                    c[..c.find("</td>").unwrap()].replace("&#39;", "'").replace("&#x27;", "'")
                })
                .collect();
            (cells[0].clone(), cells[1].clone(), cells[2].clone())
        })
        .collect()
}

/// The status of a POST to `path` that declares a body of `length` bytes but sends none (the
/// server answers from the headers, or waits for a body that never comes and times out → 0).
async fn declared_length_status(ts: &TestServer, path: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = ts.url.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head =
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/csv\r\nContent-Length: {length}\r\n\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), sock.read(&mut buf)).await;
    let Ok(Ok(n)) = read else { return 0 };
    String::from_utf8_lossy(&buf[..n]).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

async fn users_in(ts: &TestServer, org: &str) -> i64 {
    let mut conn = ts.vsc.store().conn().await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM users u JOIN organisations o ON o.id = u.org_id WHERE o.code = '{org}'"
    )))
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

async fn ra_import_reports_every_problem_and_imports_nothing(b: Backend) {
    let ts = TestServer::start(b).await;
    ts.vsc.bootstrap("ORG2", "Other Trust", &["other.nhs.uk".into()], "ra@other.nhs.uk", "Rob Other").await.unwrap();
    ts.client
        .create_user(&vsc_proto::CreateUserRequest {
            organisation: "ORG1".into(),
            forename: "Existing".into(),
            surname: "Holder".into(),
            email: "taken@example.nhs.uk".into(),
            mobile: None,
            subject_cn: None,
            directory_account: None,
        })
        .await
        .unwrap();
    let (mut web, _) = first_sign_in(&ts, "manager.import@example.nhs.uk").await;
    let before = users_in(&ts, "ORG1").await;

    let csv = format!(
        "{HEADER}\n\
         ORG1,Ann,Good,ann.good@example.nhs.uk,,,,,\n\
         ORG1,Bob,Badmail,not-an-email,,,,,\n\
         ORG2,Olga,Other,olga@other.nhs.uk,,,,,\n\
         ORG1,Dup,One,dup@example.nhs.uk,,,,,\n\
         ORG1,Dup,Two,DUP@example.nhs.uk,,,,,\n\
         ORG1,Tess,Taken,taken@example.nhs.uk,,,,,\n\
         ORG1,Carl,Card,carl@example.nhs.uk,,,,v3,R8000\n\
         ORG1,Rita,Roles,rita@example.nhs.uk,,,,v1,R9999\n\
         ORG1,Nora,Noroles,nora@example.nhs.uk,,,,v2,\n\
         ORG1,Eve,Elsewhere,eve@elsewhere.example,,,,,\n"
    );
    let page = import_page(&mut web, &csv).await;
    assert!(page.body.contains("Nothing was imported"), "{}", page.body);
    let rows = error_rows(&page);
    let at = |row: &str, column: &str| {
        rows.iter()
            .find(|(r, c, _)| r == row && c == column)
            .map(|(_, _, reason)| reason.clone())
            .unwrap_or_else(|| panic!("no error at row {row} column {column} in {rows:?}"))
    };
    assert_eq!(at("3", "email"), "an email address needs an @");
    assert_eq!(at("4", "organisation"), "no organisation ORG2 among yours");
    assert_eq!(at("6", "email"), "the same email as row 5");
    assert_eq!(at("7", "email"), "a user with email taken@example.nhs.uk already exists");
    assert!(at("8", "card_type").contains("not a card type"));
    assert_eq!(at("9", "roles"), "R9999 is not in the role catalogue");
    assert_eq!(at("10", "roles"), "a card needs at least one role");
    assert!(at("11", "email").contains("not allowed for organisation ORG1"));
    assert_eq!(rows.len(), 8, "{rows:?}");
    // Good rows were not imported either, and the form is there to try again.
    assert_eq!(users_in(&ts, "ORG1").await, before);
    assert_eq!(users_in(&ts, "ORG2").await, 0);
    assert!(page.body.contains("id=\"import-form\""));
    assert_eq!(count(&ts, "users.imported").await, 0);

    // A wrong header is reported on row 1.
    let page = import_page(&mut web, "organisation,forename,surname,e-mail\nORG1,A,B,a@example.nhs.uk\n").await;
    let rows = error_rows(&page);
    assert!(rows.iter().any(|(r, c, _)| r == "1" && c == "e-mail"), "{rows:?}");
    assert!(rows.iter().any(|(r, c, why)| r == "1" && c == "email" && why.contains("missing")), "{rows:?}");

    // An upload without the page's CSRF token is refused before anything is read.
    let forged = upload(&mut web, "csrf_not-the-one-on-the-page-0123456789", "organisation\n").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    // … with the refusal in the vRA Manager's layout, leading back into it.
    assert!(forged.body.contains("vRA Manager") && forged.body.contains("href=\"/ra\""), "{}", forged.body);

    // No file at all: the form again, with the problem.
    let form = web.get("/ra/import").await;
    let empty = upload(&mut web, &form.csrf(), "").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body.contains("Choose a CSV file"), "{}", empty.body);
}

async fn ra_import_of_a_good_file_creates_users_cards_and_invitations(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "manager.import@example.nhs.uk").await;
    let csv = format!(
        "{HEADER}\r\n\
         ORG1,Siobhán,O'Connor-Smythe,siobhan.import@example.nhs.uk,+447700900123,,s.oconnor,v2,R8000;R8003\r\n\
         org1,Kwame,Mensah,kwame.import@example.nhs.uk,,123456789012,,V1,R8000\r\n\
         ORG1,Zofia,Nowak,zofia.import@example.nhs.uk,,,,,\r\n"
    );
    let (path, page) = import_at(&mut web, &csv).await;
    assert!(page.body.contains("Imported 3 users (2 cards)"), "{}", page.body);
    assert!(page.body.contains("id=\"to-users\""));

    let staff = Principal::Staff {
        id: {
            let mut conn = ts.vsc.store().conn().await.unwrap();
            vsc_store::staff::by_email_key(&mut conn, "manager.import@example.nhs.uk").await.unwrap().unwrap().id
        },
        email: "manager.import@example.nhs.uk".into(),
        role: vsc_core::StaffRole::Manager,
        operator: false,
    };
    // Searchable at once (the search index follows the inserts), with their cards.
    let found = ts
        .vsc
        .search_users(&staff, &UserSearchQuery { q: Some("connor-smy".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(found.users.len(), 1, "{found:?}");
    assert_eq!(found.users[0].surname, "O'Connor-Smythe");
    let siobhan = ts.vsc.user_by_email(&staff, "siobhan.import@example.nhs.uk").await.unwrap();
    assert_eq!(siobhan.cards.len(), 1);
    assert_eq!(siobhan.cards[0].card_type, "v2");
    assert_eq!(siobhan.mobile.as_deref(), Some("+447700900123"));
    let kwame = ts.vsc.user_by_email(&staff, "kwame.import@example.nhs.uk").await.unwrap();
    assert_eq!(kwame.subject_cn, "123456789012");
    let by_serial = ts
        .vsc
        .search_users(&staff, &UserSearchQuery { q: Some(kwame.cards[0].serial.clone()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(by_serial.users.len(), 1);
    let zofia = ts.vsc.user_by_email(&staff, "zofia.import@example.nhs.uk").await.unwrap();
    assert!(zofia.cards.is_empty());
    // Invitations for the two cards, none for the user without one.
    for (email, n) in
        [("siobhan.import@example.nhs.uk", 1), ("kwame.import@example.nhs.uk", 1), ("zofia.import@example.nhs.uk", 0)]
    {
        let sent = ts.vsc.outbox(Some(email), 10).await.unwrap();
        assert_eq!(sent.iter().filter(|m| m.kind == "invitation").count(), n, "{email}");
    }
    assert_eq!(count(&ts, "user.created").await, 3);
    assert_eq!(count(&ts, "card.issued").await, 2);
    assert_eq!(count(&ts, "users.imported").await, 1);

    // The same file again: every email is now taken, nothing more is imported.
    let again = import_page(&mut web, &csv).await;
    assert_eq!(error_rows(&again).iter().filter(|(_, c, _)| c == "email").count(), 3);
    assert_eq!(users_in(&ts, "ORG1").await, 3);
    assert_eq!(count(&ts, "users.imported").await, 1);

    // Only the staff member who started an import can read its page.
    assert_eq!(web.get(&path).await.status, StatusCode::OK);
    let (mut colleague, _) =
        staff_first_sign_in(&ts, "agent.import@example.nhs.uk", "ORG1", "agent", "Ali Agent").await;
    assert_eq!(colleague.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(colleague.get(&format!("{path}/progress")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(web.get("/ra/import/none-such").await.status, StatusCode::NOT_FOUND);
}

async fn ra_import_sample_imports_as_it_is(b: Backend) {
    let ts = TestServer::start(b).await;
    let (mut web, _) = first_sign_in(&ts, "manager.sample@example.nhs.uk").await;
    let form = web.get("/ra/import").await;
    assert!(form.body.contains("href=\"/ra/import/sample.csv\""), "{}", form.body);
    let sample = web.get("/ra/import/sample.csv").await;
    assert_eq!(sample.status, StatusCode::OK);
    assert!(sample.headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));
    assert!(sample.body.starts_with(HEADER), "{}", sample.body);
    assert_eq!(sample.body.lines().count(), 4);
    assert!(sample.body.contains("@example.nhs.uk"));
    let page = import_page(&mut web, &sample.body).await;
    assert!(page.body.contains("Imported 3 users (1 card)"), "{}", page.body);
    assert_eq!(users_in(&ts, "ORG1").await, 3);
}

async fn api_import_mirrors_the_page(b: Backend) {
    let ts = TestServer::start(b).await;
    let post = |csv: String| {
        reqwest::Client::new()
            .post(format!("{}/api/v1/users/import", ts.url))
            .header(AUTHORIZATION, format!("Bearer {}", ts.token))
            .header(CONTENT_TYPE, "text/csv")
            .body(csv)
            .send()
    };
    let bad =
        post(format!("{HEADER}\nORG1,Ann,Api,ann.api@example.nhs.uk,,,,,\nORG9,Bob,Api,bob.api@example.nhs.uk,,,,,\n"))
            .await
            .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let errors: UserImportErrors = bad.json().await.unwrap();
    assert_eq!(errors.errors.len(), 1, "{errors:?}");
    assert_eq!((errors.errors[0].row, errors.errors[0].column.as_str()), (3, "organisation"));
    assert_eq!(users_in(&ts, "ORG1").await, 0);

    let rows: String = (0..250)
        .map(|i| {
            let card = if i % 50 == 0 { "v1,R8000" } else { "," };
            format!("ORG1,Bulk,User,user{i}.bulk@example.nhs.uk,,,,{card}\n")
        })
        .collect();
    let good = post(format!("{HEADER}\n{rows}")).await.unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    let done: UserImportResult = good.json().await.unwrap();
    assert_eq!(done, UserImportResult { imported: 250, cards: 5 });
    assert_eq!(users_in(&ts, "ORG1").await, 250);

    // Import files may be larger than other requests (1 MiB), up to 5 MiB.
    let big = format!("{HEADER}\n{}", "ORG1,Big,File,big@example.nhs.uk,,,,,\n".repeat(40_000));
    assert!(big.len() > 1024 * 1024);
    let refused = post(big).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let errors: UserImportErrors = refused.json().await.unwrap();
    assert!(errors.errors[0].reason.starts_with("too many rows"), "{errors:?}");
    // Larger bodies are refused by their declared length, before they are read: 1 MiB elsewhere.
    assert_eq!(declared_length_status(&ts, "/api/v1/users", 1024 * 1024 + 1).await, 413);
    assert_eq!(declared_length_status(&ts, "/api/v1/users/import", 1024 * 1024 + 1).await, 401);
    assert_eq!(declared_length_status(&ts, "/api/v1/users/import", 6 * 1024 * 1024 + 1).await, 413);

    // Documented in the OpenAPI document, with both bodies.
    let doc = serde_json::to_value(vsc_server::api::openapi()).unwrap();
    assert!(doc["paths"]["/api/v1/users/import"]["post"].is_object());
    assert!(doc["components"]["schemas"]["UserImportErrors"].is_object());
    assert!(doc["components"]["schemas"]["UserImportResult"].is_object());

    // Without a token: 401, nothing read.
    let anon = reqwest::Client::new()
        .post(format!("{}/api/v1/users/import", ts.url))
        .header(CONTENT_TYPE, "text/csv")
        .body(format!("{HEADER}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
}
