//! Store tests. Every test runs twice: against SQLite in a fresh temporary directory, and against
//! PostgreSQL in a fresh database created for the test (and dropped afterwards) when
//! `DATABASE_URL` points at a server, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
//! Without `DATABASE_URL` the PostgreSQL variants print a notice and pass.

use std::error::Error;
use std::time::Duration;

use sqlx::Row;
use tempfile::TempDir;
use vsc_core::{Actor, AuditRecord, DEFAULT_ROLES};
use vsc_store::cards::{CardKeyRow, CardRow, NewCard};
use vsc_store::organisations::OrganisationRow;
use vsc_store::roles::RoleRow;
use vsc_store::staff::StaffRow;
use vsc_store::user_search::{EnrolmentFilter, UserQuery, UserSort};
use vsc_store::users::{NewUser, UserRow};
use vsc_store::{
    Backend, Conn, Store, StoreError, audit, cards, key_pool, organisations, roles, staff, system, tokens, user_search,
    users,
};

type BoxError = Box<dyn Error + Send + Sync>;

/// A database made for one test, removed again by [`TestDb::finish`].
struct TestDb {
    store: Store,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The temporary directory holding the SQLite file (deleted on drop).
    Sqlite { _dir: TempDir },
    /// The server URL to reconnect to and the database to drop.
    Postgres { admin_url: String, url: String },
}

impl TestDb {
    async fn sqlite() -> Result<TestDb, BoxError> {
        let dir = tempfile::tempdir()?;
        let url = vsc_store::sqlite_url(dir.path());
        let store = Store::connect(&url).await?;
        Ok(TestDb { store, url, cleanup: Cleanup::Sqlite { _dir: dir } })
    }

    /// `None` when `DATABASE_URL` is not set.
    async fn postgres() -> Result<Option<TestDb>, BoxError> {
        let admin_url = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ => return Ok(None),
        };
        let url = vsc_store::scratch::create(&admin_url, "vsc_store").await?;
        match Store::connect(&url).await {
            Ok(store) => Ok(Some(TestDb { store, url: url.clone(), cleanup: Cleanup::Postgres { admin_url, url } })),
            Err(e) => {
                drop_database(&admin_url, &url).await;
                Err(e.into())
            }
        }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Cleanup::Postgres { admin_url, url } = &self.cleanup {
            drop_database(admin_url, url).await;
        }
    }
}

/// Best effort: a failure to drop only leaves a stray database behind.
async fn drop_database(admin_url: &str, url: &str) {
    if let Err(e) = vsc_store::scratch::drop(admin_url, url).await {
        eprintln!("warning: could not drop test database {url}: {e}");
    }
}

/// Writes one test body (taking a `Store`, optionally also the database URL) and runs it as two
/// tests, `$sqlite` and `$postgres`.
macro_rules! store_test {
    ($sqlite:ident, $postgres:ident, |$store:ident| $body:block) => {
        store_test!($sqlite, $postgres, |$store, _url| $body);
    };
    ($sqlite:ident, $postgres:ident, |$store:ident, $url:ident| $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            let db = TestDb::sqlite().await.expect("create a SQLite store");
            assert_eq!(db.store.backend(), Backend::Sqlite);
            {
                let $store: Store = db.store.clone();
                let $url: &str = &db.url;
                $body
            }
            db.finish().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            let Some(db) = TestDb::postgres().await.expect("create a PostgreSQL store") else {
                eprintln!("SKIPPED: postgres store tests need DATABASE_URL");
                return;
            };
            assert_eq!(db.store.backend(), Backend::Postgres);
            {
                let $store: Store = db.store.clone();
                let $url: &str = &db.url;
                $body
            }
            db.finish().await;
        }
    };
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn add_org(conn: &mut Conn, code: &str) -> Result<String, StoreError> {
    let id = new_id();
    organisations::insert(conn, &id, code, &format!("{code} organisation"), &[], 1).await?;
    Ok(id)
}

async fn add_user(conn: &mut Conn, org_id: &str, tag: &str) -> Result<String, StoreError> {
    let id = new_id();
    let email = format!("{tag}@example.org");
    let subject_cn = format!("{tag} {id}");
    let user = NewUser {
        id: &id,
        org_id,
        forename: "Test",
        surname: tag,
        email: &email,
        email_key: &email,
        mobile: None,
        subject_cn: &subject_cn,
        created_at: 1,
    };
    users::insert(conn, &user).await?;
    Ok(id)
}

async fn add_card(conn: &mut Conn, user_id: &str, serial: &str, issued_at: i64) -> Result<String, StoreError> {
    let id = new_id();
    let card = NewCard {
        id: &id,
        serial,
        user_id,
        card_type: "v2",
        state: "issued",
        key_algorithm: "p256",
        issued_at,
        expires_at: issued_at + 1000,
    };
    cards::insert(conn, &card).await?;
    Ok(id)
}

async fn count_rows(conn: &mut Conn, table: &str) -> Result<i64, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}"));
    Ok(sqlx::query(sql).fetch_one(conn).await?.try_get("n")?)
}

// 1. Connecting again re-runs the migrator without re-applying anything; the default roles are seeded once.
store_test!(migrations_are_idempotent_sqlite, migrations_are_idempotent_postgres, |store, url| {
    let again = Store::connect(url).await.expect("a second connect to a migrated database");
    again.ping().await.unwrap();
    assert_eq!(again.backend(), store.backend());
    let expected: Vec<RoleRow> = DEFAULT_ROLES
        .iter()
        .map(|(code, name)| RoleRow { code: code.to_string(), name: name.to_string(), is_default: true })
        .collect();
    for s in [&store, &again] {
        let mut conn = s.conn().await.unwrap();
        assert_eq!(roles::list(&mut conn).await.unwrap(), expected);
        // Each migration applied exactly once, however often the store connects.
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap().count();
        assert_eq!(count_rows(&mut conn, "_sqlx_migrations").await.unwrap(), files as i64);
    }
    again.close().await;
    store.ping().await.unwrap();
});

// 2. Organisations keep their domains, sorted; codes are unique.
store_test!(organisations_round_trip_sqlite, organisations_round_trip_postgres, |store| {
    let mut conn = store.conn().await.unwrap();
    let id = new_id();
    let domains: Vec<String> = vec!["zeta.example".into(), "alpha.example".into(), "mid.example".into()];
    organisations::insert(&mut conn, &id, "ACME", "Acme Health", &domains, 100).await.unwrap();

    let found = organisations::by_code(&mut conn, "ACME").await.unwrap().expect("inserted organisation");
    let expected = OrganisationRow {
        id: id.clone(),
        code: "ACME".into(),
        name: "Acme Health".into(),
        email_domains: vec!["alpha.example".into(), "mid.example".into(), "zeta.example".into()],
    };
    assert_eq!(found, expected);
    assert_eq!(organisations::by_id(&mut conn, &id).await.unwrap(), Some(expected));
    assert_eq!(organisations::by_code(&mut conn, "NONE").await.unwrap(), None);

    organisations::add_domain(&mut conn, &id, "alpha.example").await.unwrap();
    organisations::add_domain(&mut conn, &id, "beta.example").await.unwrap();
    assert_eq!(
        organisations::domains(&mut conn, &id).await.unwrap(),
        ["alpha.example", "beta.example", "mid.example", "zeta.example"]
    );

    let dup = organisations::insert(&mut conn, &new_id(), "ACME", "Another Acme", &[], 101).await;
    assert!(matches!(dup, Err(StoreError::Constraint(_))), "duplicate code: {dup:?}");
    assert_eq!(count_rows(&mut conn, "organisations").await.unwrap(), 1);

    // A name whatever its case, and a domain another organisation holds, are refused by the
    // database itself (two concurrent requests cannot both win).
    let same_name = organisations::insert(&mut conn, &new_id(), "ACME2", "ACME health", &[], 102).await;
    assert!(matches!(same_name, Err(StoreError::Constraint(_))), "duplicate name: {same_name:?}");
    let held = vec!["beta.example".to_string()];
    let same_domain = organisations::insert(&mut conn, &new_id(), "ACME3", "Acme Three", &held, 103).await;
    assert!(matches!(same_domain, Err(StoreError::Constraint(_))), "a held domain: {same_domain:?}");
    let other = new_id();
    organisations::insert(&mut conn, &other, "ACME4", "Acme Four", &["four.example".to_string()], 104).await.unwrap();
    assert!(!organisations::add_domain(&mut conn, &other, "beta.example").await.unwrap(), "held by ACME");
    assert_eq!(organisations::domain_holder(&mut conn, "beta.example").await.unwrap().as_deref(), Some(id.as_str()));
    assert_eq!(
        organisations::by_name(&mut conn, "acme HEALTH").await.unwrap().map(|o| o.code).as_deref(),
        Some("ACME")
    );
    let rename = organisations::rename(&mut conn, &other, "Acme Health").await;
    assert!(matches!(rename, Err(StoreError::Constraint(_))), "a held name: {rename:?}");
});

// 3. Users: lookups join the organisation code; email keys are unique; awkward names survive.
store_test!(users_round_trip_sqlite, users_round_trip_postgres, |store| {
    let mut conn = store.conn().await.unwrap();
    let org_id = add_org(&mut conn, "USERS").await.unwrap();
    let forename = "Siobhán Mary-Kate Órla D'Arcy-O'Sullivan Ní Bhriain'Test";
    let surname = "O'Donoghue-D'Arcy-Fitzgerald-O'Sullivan-MacGiolla'Phádraig";
    assert!(forename.chars().count() > 50 && surname.chars().count() > 50);
    let id = new_id();
    let user = NewUser {
        id: &id,
        org_id: &org_id,
        forename,
        surname,
        email: "Mary.ODonoghue@Example.ORG",
        email_key: "mary.odonoghue@example.org",
        mobile: None,
        subject_cn: "Siobhan O'Donoghue 1",
        created_at: 1_700_000_000,
    };
    users::insert(&mut conn, &user).await.unwrap();

    let expected = UserRow {
        id: id.clone(),
        org_id: org_id.clone(),
        org_code: "USERS".into(),
        forename: forename.into(),
        surname: surname.into(),
        email: "Mary.ODonoghue@Example.ORG".into(),
        mobile: None,
        subject_cn: "Siobhan O'Donoghue 1".into(),
        created_at: 1_700_000_000,
    };
    assert_eq!(users::by_id(&mut conn, &id).await.unwrap(), Some(expected.clone()));
    assert_eq!(users::by_email_key(&mut conn, "mary.odonoghue@example.org").await.unwrap(), Some(expected));
    assert_eq!(users::by_email_key(&mut conn, "Mary.ODonoghue@Example.ORG").await.unwrap(), None);
    assert!(users::subject_cn_taken(&mut conn, "Siobhan O'Donoghue 1").await.unwrap());
    assert!(!users::subject_cn_taken(&mut conn, "Siobhan O'Donoghue 2").await.unwrap());

    let same_key_id = new_id();
    let same_key = NewUser { id: &same_key_id, subject_cn: "Siobhan O'Donoghue 2", ..user.clone() };
    let dup = users::insert(&mut conn, &same_key).await;
    assert!(matches!(dup, Err(StoreError::Constraint(_))), "duplicate email key: {dup:?}");
    assert_eq!(users::by_id(&mut conn, &same_key_id).await.unwrap(), None);

    let same_cn_id = new_id();
    let same_cn = NewUser { id: &same_cn_id, email_key: "other@example.org", ..user.clone() };
    let dup = users::insert(&mut conn, &same_cn).await;
    assert!(matches!(dup, Err(StoreError::Constraint(_))), "duplicate subject CN: {dup:?}");

    let orphan_id = new_id();
    let orphan = NewUser {
        id: &orphan_id,
        org_id: "no-such-organisation",
        email_key: "orphan@example.org",
        subject_cn: "Orphan 1",
        ..user.clone()
    };
    let orphaned = users::insert(&mut conn, &orphan).await;
    assert!(matches!(orphaned, Err(StoreError::Constraint(_))), "unknown organisation: {orphaned:?}");

    let mobile_id = new_id();
    let with_mobile = NewUser {
        id: &mobile_id,
        email_key: "mobile@example.org",
        subject_cn: "Mobile 1",
        mobile: Some("+44 7700 900123"),
        ..user
    };
    users::insert(&mut conn, &with_mobile).await.unwrap();
    let found = users::by_id(&mut conn, &mobile_id).await.unwrap().expect("user with mobile");
    assert_eq!(found.mobile.as_deref(), Some("+44 7700 900123"));
    assert_eq!(count_rows(&mut conn, "users").await.unwrap(), 2);
});

// 4. Cards with their roles and keys; revocation happens once.
store_test!(cards_round_trip_sqlite, cards_round_trip_postgres, |store| {
    let mut conn = store.conn().await.unwrap();
    let org_id = add_org(&mut conn, "CARDS").await.unwrap();
    let user_id = add_user(&mut conn, &org_id, "holder").await.unwrap();
    let card_id = new_id();
    let card = NewCard {
        id: &card_id,
        serial: "1500000000000001",
        user_id: &user_id,
        card_type: "v2",
        state: "issued",
        key_algorithm: "p256",
        issued_at: 1_000,
        expires_at: 2_000,
    };
    cards::insert(&mut conn, &card).await.unwrap();

    assert!(cards::add_role(&mut conn, &card_id, "R8000").await.unwrap());
    assert!(!cards::add_role(&mut conn, &card_id, "R9999").await.unwrap());
    assert!(cards::add_role(&mut conn, &card_id, "R8008").await.unwrap());
    assert_eq!(cards::roles(&mut conn, &card_id).await.unwrap(), ["R8000", "R8008"]);

    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let keys = [
        CardKeyRow {
            card_id: card_id.clone(),
            purpose: "signing".into(),
            algorithm: "p256".into(),
            public_key_der: all_bytes.iter().rev().copied().collect(),
            sealed_private_key: vec![0, 0, 0xff, 0x00, 0x80],
            cert_der: vec![0x30, 0x82, 0x00, 0x00],
            cert_serial: "0a1b2c".into(),
            not_before: 1_000,
            not_after: 2_000,
        },
        CardKeyRow {
            card_id: card_id.clone(),
            purpose: "authentication".into(),
            algorithm: "p256".into(),
            public_key_der: all_bytes.clone(),
            sealed_private_key: all_bytes.repeat(3),
            cert_der: vec![0x30, 0x00, 0xff],
            cert_serial: "0a1b2d".into(),
            not_before: 1_001,
            not_after: 2_001,
        },
    ];
    for k in &keys {
        cards::insert_key(&mut conn, k).await.unwrap();
    }
    let stored = cards::keys(&mut conn, &card_id).await.unwrap();
    assert_eq!(stored.iter().map(|k| k.purpose.as_str()).collect::<Vec<_>>(), ["authentication", "signing"]);
    for (got, want) in stored.iter().zip(keys.iter().rev()) {
        assert_eq!(got.card_id, want.card_id);
        assert_eq!(got.purpose, want.purpose);
        assert_eq!(got.algorithm, want.algorithm);
        assert_eq!(got.public_key_der, want.public_key_der);
        assert_eq!(got.sealed_private_key, want.sealed_private_key);
        assert_eq!(got.cert_der, want.cert_der);
        assert_eq!(got.cert_serial, want.cert_serial);
        assert_eq!((got.not_before, got.not_after), (want.not_before, want.not_after));
    }

    let expected = CardRow {
        id: card_id.clone(),
        serial: "1500000000000001".into(),
        user_id: user_id.clone(),
        org_id: org_id.clone(),
        card_type: "v2".into(),
        state: "issued".into(),
        key_algorithm: "p256".into(),
        issued_at: 1_000,
        expires_at: 2_000,
        revoked_at: None,
        revocation_reason: None,
        suspended_at: None,
        suspended_reason: None,
        suspended_from: None,
    };
    assert_eq!(cards::by_serial(&mut conn, "1500000000000001").await.unwrap(), Some(expected.clone()));
    assert_eq!(cards::by_serial(&mut conn, "1500000000000009").await.unwrap(), None);
    assert!(cards::serial_taken(&mut conn, "1500000000000001").await.unwrap());
    assert!(!cards::serial_taken(&mut conn, "1500000000000009").await.unwrap());

    let newer_id = add_card(&mut conn, &user_id, "1500000000000002", 1_500).await.unwrap();
    let mine = cards::for_user(&mut conn, &user_id).await.unwrap();
    assert_eq!(mine.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [newer_id.as_str(), card_id.as_str()]);
    assert_eq!(mine.get(1), Some(&expected));
    assert_eq!(cards::count(&mut conn).await.unwrap(), 2);
    assert_eq!(cards::key_count(&mut conn).await.unwrap(), 2);

    let dup = add_card(&mut conn, &user_id, "1500000000000001", 1_600).await;
    assert!(matches!(dup, Err(StoreError::Constraint(_))), "duplicate serial: {dup:?}");

    assert!(cards::revoke(&mut conn, &card_id, 1_800, Some("keyCompromise")).await.unwrap());
    assert!(!cards::revoke(&mut conn, &card_id, 1_900, Some("superseded")).await.unwrap());
    assert!(!cards::revoke(&mut conn, "no-such-card", 1_900, None).await.unwrap());
    let revoked = cards::by_serial(&mut conn, "1500000000000001").await.unwrap().expect("revoked card");
    assert_eq!(revoked.state, "revoked");
    assert_eq!(revoked.revoked_at, Some(1_800));
    assert_eq!(revoked.revocation_reason.as_deref(), Some("keyCompromise"));
    let untouched = cards::by_serial(&mut conn, "1500000000000002").await.unwrap().expect("other card");
    assert_eq!((untouched.state.as_str(), untouched.revoked_at), ("issued", None));
    assert_eq!(cards::count(&mut conn).await.unwrap(), 2);
});

// 5. A transaction dropped without commit leaves nothing behind.
store_test!(dropped_transaction_rolls_back_sqlite, dropped_transaction_rolls_back_postgres, |store| {
    let (org_id, user_id) = {
        let mut tx = store.begin().await.unwrap();
        let org_id = add_org(&mut tx, "GONE").await.unwrap();
        let user_id = add_user(&mut tx, &org_id, "gone").await.unwrap();
        add_card(&mut tx, &user_id, "1500000000000003", 10).await.unwrap();
        assert!(organisations::by_code(&mut tx, "GONE").await.unwrap().is_some());
        assert_eq!(cards::count(&mut tx).await.unwrap(), 1);
        drop(tx);
        (org_id, user_id)
    };
    let mut conn = store.conn().await.unwrap();
    assert_eq!(organisations::by_code(&mut conn, "GONE").await.unwrap(), None);
    assert_eq!(organisations::by_id(&mut conn, &org_id).await.unwrap(), None);
    assert_eq!(users::by_id(&mut conn, &user_id).await.unwrap(), None);
    assert_eq!(cards::count(&mut conn).await.unwrap(), 0);
    drop(conn);

    let mut tx = store.begin().await.unwrap();
    add_org(&mut tx, "KEPT").await.unwrap();
    tx.commit().await.unwrap();
    let mut conn = store.conn().await.unwrap();
    assert!(organisations::by_code(&mut conn, "KEPT").await.unwrap().is_some());
    assert_eq!(count_rows(&mut conn, "organisations").await.unwrap(), 1);
    drop(conn);

    // An autocommit write straight after a dropped transaction commits on its own (it does not
    // land in the abandoned transaction).
    let mut tx = store.begin().await.unwrap();
    add_org(&mut tx, "LOST").await.unwrap();
    drop(tx);
    {
        let mut writer = store.writer().await.unwrap();
        add_org(&mut writer, "AUTO").await.unwrap();
    }
    let mut conn = store.conn().await.unwrap();
    assert!(organisations::by_code(&mut conn, "AUTO").await.unwrap().is_some());
    assert_eq!(organisations::by_code(&mut conn, "LOST").await.unwrap(), None);
    drop(conn);

    if store.backend() == Backend::Sqlite {
        // A transaction the writer's bookkeeping missed is ended before the next one begins.
        {
            let mut writer = store.writer().await.unwrap();
            sqlx::query("BEGIN").execute(&mut *writer).await.unwrap();
            add_org(&mut writer, "STRAY").await.unwrap();
        }
        let mut tx = store.begin().await.unwrap();
        add_org(&mut tx, "NEXT").await.unwrap();
        tx.commit().await.unwrap();
        let mut conn = store.conn().await.unwrap();
        assert!(organisations::by_code(&mut conn, "NEXT").await.unwrap().is_some());
        assert_eq!(organisations::by_code(&mut conn, "STRAY").await.unwrap(), None);
    }
});

// 6. The audit log is append-only, newest first, and scoped to a staff member's organisations.
store_test!(audit_is_append_only_sqlite, audit_is_append_only_postgres, |store| {
    let mut conn = store.conn().await.unwrap();
    let org_a = add_org(&mut conn, "AUDA").await.unwrap();
    let org_b = add_org(&mut conn, "AUDB").await.unwrap();
    let org_c = add_org(&mut conn, "AUDC").await.unwrap();
    let agent = new_id();
    staff::insert(&mut conn, &agent, "Agent@Example.org", "agent@example.org", "Agent", "agent", 1).await.unwrap();
    let idle = new_id();
    staff::insert(&mut conn, &idle, "idle@example.org", "idle@example.org", "Idle", "agent", 1).await.unwrap();
    assert!(staff::grant(&mut conn, &agent, &org_a).await.unwrap());
    assert!(staff::grant(&mut conn, &agent, &org_c).await.unwrap());
    assert!(!staff::grant(&mut conn, &agent, &org_a).await.unwrap());
    assert!(staff::is_granted(&mut conn, &agent, &org_c).await.unwrap());
    assert!(!staff::is_granted(&mut conn, &agent, &org_b).await.unwrap());
    let granted = organisations::for_staff(&mut conn, &agent).await.unwrap();
    assert_eq!(granted.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(), ["AUDA", "AUDC"]);

    let event = |actor: Actor, action: &'static str, org: Option<&String>, target: &str| AuditRecord {
        actor,
        action,
        org_id: org.cloned(),
        target: Some(target.to_string()),
        detail: format!(r#"{{"target":"{target}"}}"#),
    };
    audit::append(&mut conn, 10, &event(Actor::Operator, "organisation.created", Some(&org_a), "org:AUDA"))
        .await
        .unwrap();
    audit::append(&mut conn, 20, &event(Actor::System, "card.issued", Some(&org_b), "card:1")).await.unwrap();
    let staff_actor = Actor::Staff("agent@example.org".into());
    audit::append(&mut conn, 30, &event(staff_actor, "card.revoked", Some(&org_c), "card:2")).await.unwrap();
    let started =
        AuditRecord { actor: Actor::System, action: "system.started", org_id: None, target: None, detail: "{}".into() };
    audit::append(&mut conn, 40, &started).await.unwrap();

    let all = audit::list(&mut conn, None, 10).await.unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["system.started", "card.revoked", "card.issued", "organisation.created"]);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "ids descend: {all:?}");
    let revoked = &all[1];
    assert_eq!(revoked.at, 30);
    assert_eq!(revoked.actor, "staff:agent@example.org");
    assert_eq!(revoked.org_code.as_deref(), Some("AUDC"));
    assert_eq!(revoked.target.as_deref(), Some("card:2"));
    assert_eq!(revoked.detail, r#"{"target":"card:2"}"#);
    assert_eq!((all[0].org_code.as_deref(), all[0].target.as_deref()), (None, None));
    assert_eq!(all[3].actor, "operator");

    let newest = audit::list(&mut conn, None, 2).await.unwrap();
    assert_eq!(newest.as_slice(), &all[..2]);

    let scoped = audit::list(&mut conn, Some(&agent), 10).await.unwrap();
    let scoped_actions: Vec<&str> = scoped.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(scoped_actions, ["card.revoked", "organisation.created"]);
    assert_eq!(scoped.as_slice(), [all[1].clone(), all[3].clone()].as_slice());
    assert!(audit::list(&mut conn, Some(&idle), 10).await.unwrap().is_empty());

    let update = sqlx::query("UPDATE audit_events SET action = 'x'").execute(&mut *conn).await;
    assert!(update.is_err(), "UPDATE of audit_events must fail: {update:?}");
    let delete = sqlx::query("DELETE FROM audit_events").execute(&mut *conn).await;
    assert!(delete.is_err(), "DELETE from audit_events must fail: {delete:?}");
    if store.backend() == Backend::Postgres {
        let truncate = sqlx::query("TRUNCATE audit_events").execute(&mut *conn).await;
        assert!(truncate.is_err(), "TRUNCATE of audit_events must fail: {truncate:?}");
    }
    assert_eq!(audit::list(&mut conn, None, 10).await.unwrap(), all);
});

// 7. The seeded roles cannot be deleted; others can, unless a card uses them.
store_test!(default_roles_are_undeletable_sqlite, default_roles_are_undeletable_postgres, |store| {
    let mut conn = store.conn().await.unwrap();
    let refused = roles::delete(&mut conn, "R8000").await;
    assert!(refused.is_err(), "deleting a default role must fail: {refused:?}");
    let codes = |list: &[RoleRow]| list.iter().map(|r| r.code.clone()).collect::<Vec<_>>();
    assert_eq!(codes(&roles::list(&mut conn).await.unwrap()), ["R8000", "R8003", "R8008"]);

    roles::insert(&mut conn, "R9001", "Test Role", 5).await.unwrap();
    let dup = roles::insert(&mut conn, "R9001", "Test Role again", 6).await;
    assert!(matches!(dup, Err(StoreError::Constraint(_))), "duplicate role: {dup:?}");
    let listed = roles::list(&mut conn).await.unwrap();
    assert!(listed.contains(&RoleRow { code: "R9001".into(), name: "Test Role".into(), is_default: false }));
    assert!(roles::delete(&mut conn, "R9001").await.unwrap());
    assert!(!roles::delete(&mut conn, "R9001").await.unwrap());
    assert_eq!(codes(&roles::list(&mut conn).await.unwrap()), ["R8000", "R8003", "R8008"]);

    roles::insert(&mut conn, "R9002", "Role in use", 7).await.unwrap();
    let org_id = add_org(&mut conn, "ROLES").await.unwrap();
    let user_id = add_user(&mut conn, &org_id, "roles").await.unwrap();
    let card_id = add_card(&mut conn, &user_id, "1500000000000004", 10).await.unwrap();
    assert!(cards::add_role(&mut conn, &card_id, "R9002").await.unwrap());
    let in_use = roles::delete(&mut conn, "R9002").await;
    assert!(matches!(in_use, Err(StoreError::Constraint(_))), "deleting a role in use: {in_use:?}");
    assert_eq!(cards::roles(&mut conn, &card_id).await.unwrap(), ["R9002"]);
});

// 8. API tokens are found by hash; unknown and revoked hashes are not; use is recorded coarsely.
store_test!(tokens_round_trip_sqlite, tokens_round_trip_postgres, |store| {
    let mut conn = store.conn().await.unwrap();
    let staff_id = new_id();
    staff::insert(&mut conn, &staff_id, "Boss@Example.org", "boss@example.org", "The Boss", "manager", 1)
        .await
        .unwrap();
    let expected_staff = StaffRow {
        id: staff_id.clone(),
        email: "Boss@Example.org".into(),
        display_name: "The Boss".into(),
        role: "manager".into(),
        operator: false,
    };
    assert_eq!(staff::by_email_key(&mut conn, "boss@example.org").await.unwrap(), Some(expected_staff.clone()));
    assert_eq!(staff::by_email_key(&mut conn, "nobody@example.org").await.unwrap(), None);

    let hash: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(67));
    let token_id = new_id();
    tokens::insert(&mut conn, &token_id, &staff_id, &hash, 100).await.unwrap();
    let (found_staff, found_hash, found_id) = tokens::find(&mut conn, &hash).await.unwrap().expect("token by hash");
    assert_eq!(found_staff, expected_staff);
    assert_eq!(found_hash, hash);
    assert_eq!(found_id, token_id);
    assert!(tokens::find(&mut conn, &[0xff; 32]).await.unwrap().is_none());
    let dup = tokens::insert(&mut conn, &new_id(), &staff_id, &hash, 101).await;
    assert!(matches!(dup, Err(StoreError::Constraint(_))), "duplicate hash: {dup:?}");

    let last_used = async |conn: &mut Conn| -> Option<i64> {
        sqlx::query("SELECT last_used_at FROM api_tokens WHERE id = $1")
            .bind(token_id.as_str())
            .fetch_one(conn)
            .await
            .unwrap()
            .try_get("last_used_at")
            .unwrap()
    };
    assert_eq!(last_used(&mut conn).await, None);
    tokens::touch(&mut conn, &token_id, 1_000).await.unwrap();
    assert_eq!(last_used(&mut conn).await, Some(1_000));
    tokens::touch(&mut conn, &token_id, 1_030).await.unwrap();
    assert_eq!(last_used(&mut conn).await, Some(1_000));
    tokens::touch(&mut conn, &token_id, 1_061).await.unwrap();
    assert_eq!(last_used(&mut conn).await, Some(1_061));

    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
        .bind(2_000i64)
        .bind(token_id.as_str())
        .execute(&mut *conn)
        .await
        .unwrap();
    assert!(tokens::find(&mut conn, &hash).await.unwrap().is_none());
});

// 9. Installation settings are written once.
store_test!(system_settings_insert_once_sqlite, system_settings_insert_once_postgres, |store| {
    let mut conn = store.conn().await.unwrap();
    assert_eq!(system::get(&mut conn, "kek_id").await.unwrap(), None);
    assert!(system::insert_if_absent(&mut conn, "kek_id", "first").await.unwrap());
    assert!(!system::insert_if_absent(&mut conn, "kek_id", "second").await.unwrap());
    assert_eq!(system::get(&mut conn, "kek_id").await.unwrap().as_deref(), Some("first"));
    assert!(system::insert_if_absent(&mut conn, "ca_name", "vsc CA").await.unwrap());
    assert_eq!(system::get(&mut conn, "ca_name").await.unwrap().as_deref(), Some("vsc CA"));
});

// 10. The key pool hands out the oldest key of an algorithm first, each key once.
store_test!(key_pool_takes_oldest_first_sqlite, key_pool_takes_oldest_first_postgres, |store| {
    let mut conn = store.conn().await.unwrap();
    key_pool::insert(&mut conn, "newer", "rsa2048", &[2, 0, 2], 2).await.unwrap();
    key_pool::insert(&mut conn, "older", "rsa2048", &[1, 0, 0xff], 1).await.unwrap();
    key_pool::insert(&mut conn, "ec", "p256", &[3], 0).await.unwrap();
    assert_eq!(key_pool::count(&mut conn, "rsa2048").await.unwrap(), 2);
    assert_eq!(key_pool::count(&mut conn, "p256").await.unwrap(), 1);

    assert_eq!(key_pool::take(&mut conn, "rsa2048").await.unwrap(), Some(("older".into(), vec![1, 0, 0xff])));
    assert_eq!(key_pool::take(&mut conn, "rsa2048").await.unwrap(), Some(("newer".into(), vec![2, 0, 2])));
    assert_eq!(key_pool::take(&mut conn, "rsa2048").await.unwrap(), None);
    assert_eq!(key_pool::count(&mut conn, "rsa2048").await.unwrap(), 0);
    assert_eq!(key_pool::count(&mut conn, "p256").await.unwrap(), 1);
    assert_eq!(key_pool::take(&mut conn, "ed25519").await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(key_pool::take(&mut tx, "p256").await.unwrap(), Some(("ec".into(), vec![3])));
    drop(tx);
    assert_eq!(key_pool::count(&mut conn, "p256").await.unwrap(), 1, "a rolled-back take returns the key");
});

// 11. Concurrent write transactions queue rather than fail (BEGIN IMMEDIATE and busy_timeout on SQLite).
store_test!(concurrent_writers_all_commit_sqlite, concurrent_writers_all_commit_postgres, |store| {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8i64 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut tx = store.begin().await?;
            let domains = [format!("c{i}.example")];
            let name = format!("Concurrent {i}");
            organisations::insert(&mut tx, &new_id(), &format!("CONC{i}"), &name, &domains, i).await?;
            // Hold the write transaction open for a while so that the others have to wait for it.
            tokio::time::sleep(Duration::from_millis(25)).await;
            tx.commit().await?;
            Ok::<i64, StoreError>(i)
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        done.push(joined.expect("writer task").expect("writer transaction"));
    }
    done.sort_unstable();
    assert_eq!(done, (0..8).collect::<Vec<_>>());

    let mut conn = store.conn().await.unwrap();
    assert_eq!(count_rows(&mut conn, "organisations").await.unwrap(), 8);
    for i in 0..8 {
        let org =
            organisations::by_code(&mut conn, &format!("CONC{i}")).await.unwrap().expect("committed organisation");
        assert_eq!(org.email_domains, [format!("c{i}.example")]);
    }
});

/// Users for the search tests: (org, forename, surname, email) and a card for some.
async fn seed_search(store: &Store) -> Result<(String, String, Vec<String>), BoxError> {
    let mut tx = store.begin().await?;
    let a = add_org(&mut tx, "SRCHA").await?;
    let b = add_org(&mut tx, "SRCHB").await?;
    let people = [
        (&a, "Siobhan", "O'Brien", "siobhan.obrien@example.org", 10),
        (&a, "Anna", "Smithson", "anna@example.org", 20),
        (&a, "Bob", "Smith", "Bob.Smith@Example.org", 30),
        (&a, "Carl", "Jones", "carl@example.org", 40),
        (&b, "Dora", "Smithers", "dora@example.org", 50),
    ];
    let mut ids = Vec::new();
    for (org, forename, surname, email, created_at) in people {
        let id = new_id();
        let cn = format!("{surname} {created_at}");
        users::insert(
            &mut tx,
            &NewUser {
                id: &id,
                org_id: org,
                forename,
                surname,
                email,
                email_key: &email.to_lowercase(),
                mobile: None,
                subject_cn: &cn,
                created_at,
            },
        )
        .await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok((a, b, ids))
}

fn names(page: &user_search::UserPage) -> Vec<&str> {
    page.rows.iter().map(|r| r.surname.as_str()).collect()
}

fn query(text: Option<&str>, org_ids: Option<Vec<String>>) -> UserQuery {
    UserQuery { text: text.map(String::from), org_ids, page: 1, per_page: 50, ..UserQuery::default() }
}

store_test!(user_search_matches_anywhere_sqlite, user_search_matches_anywhere_postgres, |store| {
    let (a, b, ids) = seed_search(&store).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    add_card(&mut tx, &ids[3], "1500000000000042", 100).await.unwrap();
    tx.commit().await.unwrap();
    let mut conn = store.conn().await.unwrap();
    let all = Some(vec![a.clone(), b.clone()]);

    // Surname substring, case-insensitive, across organisations; sorted by name.
    let page = user_search::search(&mut conn, &query(Some("mith"), all.clone())).await.unwrap();
    assert_eq!(names(&page), ["Smith", "Smithers", "Smithson"]);
    assert_eq!((page.total, page.total_capped), (3, false));
    assert_eq!(page.rows[0].display_name, "Bob Smith (Smith 30)");
    assert_eq!(page.rows[0].org_code, "SRCHA");
    // Email (any case), apostrophes, serial prefix, UUID, subject CN.
    let page = user_search::search(&mut conn, &query(Some("bob.smith@example.ORG"), all.clone())).await.unwrap();
    assert_eq!(names(&page), ["Smith"]);
    let page = user_search::search(&mut conn, &query(Some("o'bri"), all.clone())).await.unwrap();
    assert_eq!(names(&page), ["O'Brien"]);
    let page = user_search::search(&mut conn, &query(Some("150000000"), all.clone())).await.unwrap();
    assert_eq!(names(&page), ["Jones"]);
    assert_eq!(page.rows[0].cards[0].serial, "1500000000000042");
    assert_eq!(page.rows[0].next_card_expiry, Some(1100));
    let page = user_search::search(&mut conn, &query(Some(&ids[1].to_uppercase()), all.clone())).await.unwrap();
    assert_eq!(names(&page), ["Smithson"]);
    let page = user_search::search(&mut conn, &query(Some("(Jones 40)"), all.clone())).await.unwrap();
    assert_eq!(names(&page), ["Jones"]);
    // LIKE wildcards are plain characters; quotes are too.
    assert!(user_search::search(&mut conn, &query(Some("S%th"), all.clone())).await.unwrap().rows.is_empty());
    assert!(user_search::search(&mut conn, &query(Some("\"Smith"), all.clone())).await.unwrap().rows.is_empty());
    // Too short to use the index.
    assert!(user_search::search(&mut conn, &query(Some("sm"), all.clone())).await.is_err());

    // Organisation scoping, with and without text.
    let page = user_search::search(&mut conn, &query(Some("mith"), Some(vec![b.clone()]))).await.unwrap();
    assert_eq!(names(&page), ["Smithers"]);
    let page = user_search::search(&mut conn, &query(None, Some(vec![b.clone()]))).await.unwrap();
    assert_eq!(names(&page), ["Smithers"]);
    assert!(user_search::search(&mut conn, &query(None, Some(vec![]))).await.unwrap().rows.is_empty());
    let page = user_search::search(&mut conn, &query(None, None)).await.unwrap();
    assert_eq!(page.total, 5);

    // Changes reach the index: renamed users, new and deleted cards, deleted users.
    drop(conn);
    let mut tx = store.begin().await.unwrap();
    sqlx::query("UPDATE users SET surname = 'Jonas' WHERE id = $1").bind(&ids[3]).execute(&mut *tx).await.unwrap();
    add_card(&mut tx, &ids[0], "1600000000000001", 200).await.unwrap();
    sqlx::query("DELETE FROM cards WHERE serial = '1500000000000042'").execute(&mut *tx).await.unwrap();
    sqlx::query("DELETE FROM users WHERE id = $1").bind(&ids[4]).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let mut conn = store.conn().await.unwrap();
    assert_eq!(
        names(&user_search::search(&mut conn, &query(Some("carl jonas"), all.clone())).await.unwrap()),
        ["Jonas"]
    );
    assert!(user_search::search(&mut conn, &query(Some("carl jones"), all.clone())).await.unwrap().rows.is_empty());
    assert!(user_search::search(&mut conn, &query(Some("1500000"), all.clone())).await.unwrap().rows.is_empty());
    assert_eq!(
        names(&user_search::search(&mut conn, &query(Some("1600000"), all.clone())).await.unwrap()),
        ["O'Brien"]
    );
    assert_eq!(
        names(&user_search::search(&mut conn, &query(Some("mith"), all.clone())).await.unwrap()),
        ["Smith", "Smithson"]
    );

    // A user moved to another organisation is found there only; a new email is found, the old not.
    drop(conn);
    let mut tx = store.begin().await.unwrap();
    sqlx::query(
        "UPDATE users SET org_id = $2, email = 'bob@new.example.org', email_key = 'bob@new.example.org' WHERE id = $1",
    )
    .bind(&ids[2])
    .bind(&b)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut conn = store.conn().await.unwrap();
    let only = |org: &String| Some(vec![org.clone()]);
    assert_eq!(names(&user_search::search(&mut conn, &query(Some("mith"), only(&b))).await.unwrap()), ["Smith"]);
    assert_eq!(names(&user_search::search(&mut conn, &query(Some("mith"), only(&a))).await.unwrap()), ["Smithson"]);
    assert_eq!(names(&user_search::search(&mut conn, &query(Some("bob@new"), all.clone())).await.unwrap()), ["Smith"]);
    assert!(user_search::search(&mut conn, &query(Some("Bob.Smith@"), all.clone())).await.unwrap().rows.is_empty());
});

store_test!(user_search_sorts_filters_and_pages_sqlite, user_search_sorts_filters_and_pages_postgres, |store| {
    let (a, b, ids) = seed_search(&store).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    add_card(&mut tx, &ids[1], "1500000000000001", 100).await.unwrap();
    let active = add_card(&mut tx, &ids[2], "1500000000000002", 50).await.unwrap();
    sqlx::query("UPDATE cards SET state = 'active', card_type = 'v1' WHERE id = $1")
        .bind(&active)
        .execute(&mut *tx)
        .await
        .unwrap();
    user_search::set_last_active(&mut tx, &ids[3], 500).await.unwrap();
    user_search::set_last_active(&mut tx, &ids[0], 700).await.unwrap();
    tx.commit().await.unwrap();
    let mut conn = store.conn().await.unwrap();
    let both = Some(vec![a.clone(), b.clone()]);

    let sorted = |sort, descending, text: Option<&str>| {
        let mut q = query(text, both.clone());
        q.sort = sort;
        q.descending = descending;
        q
    };
    for text in [None, Some("example")] {
        let page = user_search::search(&mut conn, &sorted(UserSort::Name, false, text)).await.unwrap();
        assert_eq!(names(&page), ["Jones", "O'Brien", "Smith", "Smithers", "Smithson"], "{text:?}");
        assert_eq!(page.total, 5);
        let page = user_search::search(&mut conn, &sorted(UserSort::Name, true, text)).await.unwrap();
        assert_eq!(names(&page), ["Smithson", "Smithers", "Smith", "O'Brien", "Jones"]);
        let page = user_search::search(&mut conn, &sorted(UserSort::Created, true, text)).await.unwrap();
        assert_eq!(names(&page), ["Smithers", "Jones", "Smith", "Smithson", "O'Brien"]);
        let page = user_search::search(&mut conn, &sorted(UserSort::Email, false, text)).await.unwrap();
        assert_eq!(names(&page), ["Smithson", "Smith", "Jones", "Smithers", "O'Brien"]);
        let page = user_search::search(&mut conn, &sorted(UserSort::Organisation, true, text)).await.unwrap();
        assert_eq!(names(&page), ["Smithers", "Smithson", "Smith", "O'Brien", "Jones"]);
        let page = user_search::search(&mut conn, &sorted(UserSort::LastActive, false, text)).await.unwrap();
        assert_eq!(names(&page)[3..], ["Jones", "O'Brien"]);
        let page = user_search::search(&mut conn, &sorted(UserSort::LastActive, true, text)).await.unwrap();
        assert_eq!(names(&page)[..2], ["O'Brien", "Jones"]);
        assert_eq!(page.rows[0].last_active_at, Some(700));
        let page = user_search::search(&mut conn, &sorted(UserSort::CardExpiry, true, text)).await.unwrap();
        assert_eq!(names(&page)[..2], ["Smithson", "Smith"]);

        // Pages of two.
        let mut q = sorted(UserSort::Name, false, text);
        q.per_page = 2;
        let mut seen = Vec::new();
        for page in 1..=3 {
            q.page = page;
            let p = user_search::search(&mut conn, &q).await.unwrap();
            assert_eq!(p.total, 5);
            seen.extend(p.rows.into_iter().map(|r| r.surname));
        }
        assert_eq!(seen, ["Jones", "O'Brien", "Smith", "Smithers", "Smithson"]);

        // Filters.
        let mut q = query(text, both.clone());
        q.enrolment = Some(EnrolmentFilter::Pending);
        assert_eq!(names(&user_search::search(&mut conn, &q).await.unwrap()), ["Smithson"]);
        q.enrolment = Some(EnrolmentFilter::Enrolled);
        assert_eq!(names(&user_search::search(&mut conn, &q).await.unwrap()), ["Smith"]);
        q.enrolment = Some(EnrolmentFilter::NoCard);
        assert_eq!(names(&user_search::search(&mut conn, &q).await.unwrap()), ["Jones", "O'Brien", "Smithers"]);
        let mut q = query(text, both.clone());
        q.card_state = Some("active".into());
        q.card_type = Some("v1".into());
        assert_eq!(names(&user_search::search(&mut conn, &q).await.unwrap()), ["Smith"]);
        q.card_type = Some("v2".into());
        assert!(user_search::search(&mut conn, &q).await.unwrap().rows.is_empty());
    }
});

/// A fresh, unmigrated database: (URL, cleanup).
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
async fn empty_database(backend: Backend) -> Option<(String, Cleanup)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            Some((vsc_store::sqlite_url(dir.path()), Cleanup::Sqlite { _dir: dir }))
        }
        Backend::Postgres => {
            let admin_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty())?;
            let url = vsc_store::scratch::create(&admin_url, "vsc_store").await.unwrap();
            Some((url.clone(), Cleanup::Postgres { admin_url, url }))
        }
    }
}

/// Run `sql` with `$n` binds (text or integers) on `conn`.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
async fn exec(conn: &mut sqlx::AnyConnection, sql: &str, binds: &[&dyn ToBind]) {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
    for b in binds {
        q = b.bind_to(q);
    }
    q.execute(&mut *conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

trait ToBind: Sync {
    fn bind_to<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;
}

impl ToBind for &str {
    fn bind_to<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        q.bind(self.to_string())
    }
}

impl ToBind for i64 {
    fn bind_to<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        q.bind(*self)
    }
}

impl ToBind for Vec<u8> {
    fn bind_to<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        q.bind(self.clone())
    }
}

/// Rows of every table that references `cards`, for comparing before and after a migration.
const CARD_TABLES: [&str; 7] =
    ["cards", "card_roles", "card_keys", "enrolments", "card_logins", "card_sessions", "certificates"];

/// Migration 0017 rebuilds `cards` on SQLite (a CHECK constraint cannot be altered there) while
/// five tables reference it ON DELETE CASCADE: a database populated at the migration before it
/// keeps every row, its foreign keys hold (and still cascade), the search triggers and view work,
/// and the new state is accepted while unknown ones are not.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
async fn suspension_migration_keeps_card_data(backend: Backend) {
    let Some((url, cleanup)) = empty_database(backend).await else {
        eprintln!("SKIPPED: postgres store tests need DATABASE_URL");
        return;
    };
    sqlx::any::install_default_drivers();
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("migrations/postgres"),
    };
    let before = migrator.iter().map(|m| m.version).filter(|v| *v < 17).max().unwrap();
    {
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
        migrator.run_to(before, &mut conn).await.unwrap();
        if backend == Backend::Sqlite {
            let on: i64 = sqlx::query("PRAGMA foreign_keys").fetch_one(&mut conn).await.unwrap().get(0);
            assert_eq!(on, 1, "populated with foreign keys enforced, as the server runs");
        }
        exec(
            &mut conn,
            "INSERT INTO organisations (id, code, name, name_key, created_at) VALUES ('o1', 'MIG', 'Mig', 'mig', 1)",
            &[],
        )
        .await;
        exec(
            &mut conn,
            "INSERT INTO users (id, org_id, forename, surname, email, email_key, subject_cn, created_at) \
             VALUES ('u1', 'o1', 'Ann', 'Migrant', 'ann@mig.example', 'ann@mig.example', 'Ann Migrant', 1)",
            &[],
        )
        .await;
        for (id, serial, state) in [("c1", "1500000000000071", "active"), ("c2", "1000000000000072", "locked")] {
            exec(
                &mut conn,
                "INSERT INTO cards (id, serial, user_id, card_type, state, key_algorithm, issued_at, expires_at) \
                 VALUES ($1, $2, 'u1', 'v2', $3, 'p256', 1, 4000000000)",
                &[&id, &serial, &state],
            )
            .await;
            exec(&mut conn, "INSERT INTO card_roles (card_id, role_code) VALUES ($1, 'R8000')", &[&id]).await;
            exec(
                &mut conn,
                "INSERT INTO card_keys (card_id, purpose, algorithm, public_key_der, sealed_private_key, cert_der, \
                 cert_serial, not_before, not_after) VALUES ($1, 'authentication', 'p256', $2, $2, $2, $3, 1, 4000000000)",
                &[&id, &vec![1u8, 2, 3], &serial],
            )
            .await;
            exec(
                &mut conn,
                "INSERT INTO certificates (serial_hex, card_id, purpose, cert_der, not_before, not_after, issued_at) \
                 VALUES ($2, $1, 'authentication', $3, 1, 4000000000, 1)",
                &[&id, &serial, &vec![1u8, 2, 3]],
            )
            .await;
            exec(
                &mut conn,
                "INSERT INTO enrolments (card_id, token_hash, invited_at, expires_at) VALUES ($1, $2, 1, 2)",
                &[&id, &serial.as_bytes().to_vec()],
            )
            .await;
            exec(
                &mut conn,
                "INSERT INTO card_logins (id, token_hash, purpose, user_id, card_id, method, state, nonce, client, ip, \
                 created_at, expires_at) VALUES ($1, $2, 'card', 'u1', $1, 'push', 'approved', 'n', 'c', 'ip', 1, 2)",
                &[&id, &serial.as_bytes().to_vec()],
            )
            .await;
            exec(
                &mut conn,
                "INSERT INTO card_sessions (id, token_hash, user_id, card_id, login_id, role, method, created_at, \
                 expires_at, last_seen_at) VALUES ($1, $2, 'u1', $1, $1, 'R8000', 'push', 1, 2, 1)",
                &[&id, &serial.as_bytes().to_vec()],
            )
            .await;
        }
        <sqlx::AnyConnection as sqlx::Connection>::close(conn).await.unwrap();
    }

    let store = Store::connect(&url).await.expect("the remaining migrations apply");
    let mut conn = store.conn().await.unwrap();
    for table in CARD_TABLES {
        assert_eq!(count_rows(&mut conn, table).await.unwrap(), 2, "{table} keeps its rows");
    }
    if backend == Backend::Sqlite {
        let violations = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut *conn).await.unwrap();
        assert!(violations.is_empty(), "{} foreign key violations", violations.len());
        let on: i64 = sqlx::query("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap().get(0);
        assert_eq!(on, 1);
    }
    let c1 = cards::by_serial(&mut conn, "1500000000000071").await.unwrap().unwrap();
    assert_eq!((c1.state.as_str(), c1.suspended_from.as_deref()), ("active", None));

    // The new state and its bookkeeping.
    assert_eq!(cards::suspend(&mut conn, "c2", 50, "lost phone").await.unwrap().as_deref(), Some("locked"));
    assert_eq!(cards::suspend(&mut conn, "c2", 51, "again").await.unwrap(), None, "already suspended");
    let c2 = cards::by_id(&mut conn, "c2").await.unwrap().unwrap();
    assert_eq!(
        (c2.state.as_str(), c2.suspended_at, c2.suspended_reason.as_deref(), c2.suspended_from.as_deref()),
        ("suspended", Some(50), Some("lost phone"), Some("locked"))
    );
    let bogus = sqlx::query("UPDATE cards SET state = 'frozen' WHERE id = 'c1'").execute(&mut *conn).await;
    assert!(bogus.is_err(), "unknown states are still refused");
    let half = sqlx::query("UPDATE cards SET state = 'suspended' WHERE id = 'c1'").execute(&mut *conn).await;
    assert!(half.is_err(), "a suspended card always knows what to resume to");

    // Certificates on hold, released, and the CRL entries.
    assert_eq!(vsc_store::certificates::hold_for_card(&mut conn, "c2", 50).await.unwrap(), 1);
    let listed = vsc_store::certificates::revoked_unexpired(&mut conn, 60, 0).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revocation_reason.as_deref(), Some("certificate_hold"));
    assert_eq!(cards::resume(&mut conn, "c2").await.unwrap().as_deref(), Some("locked"), "back to locked");
    assert_eq!(cards::resume(&mut conn, "c2").await.unwrap(), None);
    assert_eq!(vsc_store::certificates::release_for_card(&mut conn, "c2", 70).await.unwrap(), 1);
    let listed = vsc_store::certificates::revoked_unexpired(&mut conn, 80, 60).await.unwrap();
    assert_eq!((listed.len(), listed[0].revoked_at, listed[0].released_at), (1, None, Some(70)));
    assert!(
        vsc_store::certificates::revoked_unexpired(&mut conn, 80, 70).await.unwrap().is_empty(),
        "released long ago"
    );
    let c2 = cards::by_id(&mut conn, "c2").await.unwrap().unwrap();
    assert_eq!((c2.state.as_str(), c2.suspended_at, c2.suspended_from), ("locked", None, None));

    // Foreign keys still point at the rebuilt table (and cascade), and the search triggers work.
    drop(conn);
    let mut tx = store.begin().await.unwrap();
    add_card(&mut tx, "u1", "1500000000000073", 5).await.unwrap();
    sqlx::query("DELETE FROM cards WHERE id = 'c1'").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let mut conn = store.conn().await.unwrap();
    for table in ["card_roles", "card_keys", "enrolments", "card_logins", "card_sessions"] {
        assert_eq!(count_rows(&mut conn, table).await.unwrap(), 1, "{table}: c1's row went with it");
    }
    let orphan =
        sqlx::query("INSERT INTO card_roles (card_id, role_code) VALUES ('nope', 'R8000')").execute(&mut *conn).await;
    assert!(orphan.is_err(), "foreign keys are enforced against the rebuilt table");
    let mut q = query(Some("1500000000000073"), None);
    q.per_page = 10;
    let found = user_search::search(&mut conn, &q).await.unwrap();
    assert_eq!(names(&found), ["Migrant"], "the card triggers keep the search text");
    drop(conn);
    store.close().await;
    if let Cleanup::Postgres { admin_url, url } = &cleanup {
        drop_database(admin_url, url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suspension_migration_keeps_card_data_sqlite() {
    suspension_migration_keeps_card_data(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suspension_migration_keeps_card_data_postgres() {
    suspension_migration_keeps_card_data(Backend::Postgres).await;
}
