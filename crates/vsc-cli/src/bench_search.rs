//! `vsc bench search`: seed N users (bulk inserts straight through the store; a tenth with a card
//! row, no keys), then time representative RA searches — surname substring, exact email, serial
//! prefix, UUID, and the unfiltered list — each sorted and limited to a staff member's two of
//! eight organisations, and print p50/p95 against the 50 ms bound.

use std::sync::Arc;
use std::time::Instant;

use vsc_server::clock::SystemClock;
use vsc_server::{Config, Vsc};
use vsc_store::cards::NewCard;
use vsc_store::user_search::{self, BulkUser, UserQuery, UserSort};
use vsc_store::users::NewUser;

use crate::bench::{percentile, with_scratch};

/// Target p95 of one search at a million users.
const P95_TARGET_MS: f64 = 50.0;
/// Organisations the users are spread over; the searching staff member holds the first two.
const ORGS: usize = 8;
/// Users per write transaction while seeding.
const SEED_BATCH: usize = 20_000;
/// Timed searches per kind.
const RUNS: usize = 200;

const FORENAMES: &[&str] = &[
    "Oliver",
    "Amelia",
    "George",
    "Isla",
    "Harry",
    "Ava",
    "Noah",
    "Mia",
    "Jack",
    "Ivy",
    "Leo",
    "Lily",
    "Arthur",
    "Isabella",
    "Muhammad",
    "Rosie",
    "Oscar",
    "Sophia",
    "Charlie",
    "Grace",
    "Siobhan",
    "Aoife",
    "Niamh",
    "Seán",
    "Dylan",
    "Rhys",
    "Cerys",
    "Zainab",
    "Priya",
    "Aarav",
    "Chen",
    "Wei",
    "Olumide",
    "Chioma",
    "Kwame",
    "Fatima",
    "Yusuf",
    "Anya",
    "Mateusz",
    "Zofia",
    "Joël",
    "Renée",
    "Ana-Maria",
    "Jean-Luc",
    "D'Arcy",
    "Eilidh",
    "Morag",
    "Callum",
    "Tomasz",
    "Ines",
];
const SURNAMES: &[&str] = &[
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Lewis",
    "Harris",
    "Clarke",
    "Patel",
    "Jackson",
    "Wood",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Morris",
    "Moore",
    "Clark",
    "Lee",
    "King",
    "Baker",
    "Harrison",
    "Morgan",
    "Allen",
    "James",
    "Scott",
    "Phillips",
    "Watson",
    "Davis",
    "Parker",
    "Price",
    "Bennett",
    "Young",
    "Griffiths",
    "Mitchell",
    "Kelly",
    "Cook",
    "Carter",
    "Richardson",
    "Bailey",
    "Collins",
    "Bell",
    "Shaw",
    "Murphy",
    "Miller",
    "Cox",
    "Richards",
    "Khan",
    "Marshall",
    "Anderson",
    "Simpson",
    "Ellis",
    "Adams",
    "Singh",
    "O'Brien",
    "O'Neill",
    "O'Connor",
    "D'Souza",
    "McDonald",
    "MacLeod",
    "Nguyen",
    "Kowalski",
    "Nowak",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Begum",
    "Hussain",
    "Ahmed",
    "Ali",
    "Chowdhury",
    "Wang",
    "Zhang",
    "Li",
    "Fernández",
    "García",
    "Da Silva",
    "Van der Berg",
    "Ó Súilleabháin",
    "Ap Rhys",
    "Llewellyn",
    "Fitzgerald",
];
/// Syllables making further, rarer surnames (e.g. "Ashworth", "Brackenby").
const PREFIXES: &[&str] = &[
    "Ash", "Brack", "Cald", "Dun", "Elm", "Fair", "Gold", "Hart", "Ing", "Kings", "Lang", "Mar", "Nor", "Oak", "Pen",
    "Rad", "Stan", "Thorn", "Under", "Wex", "Black", "Brook", "Crom", "Hawk", "Whit",
];
const SUFFIXES: &[&str] = &[
    "worth", "enby", "well", "ford", "ley", "ton", "field", "wick", "more", "dale", "shaw", "ridge", "combe", "hurst",
    "brook", "by", "stone", "wood", "ham", "son",
];

/// A small deterministic generator (splitmix64): the same users every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from.get(self.below(from.len())).copied().unwrap_or("x")
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}

/// One seeded user, owned.
struct Person {
    id: String,
    org: usize,
    forename: String,
    surname: String,
    email: String,
    subject_cn: String,
    created_at: i64,
    /// Position in the seed order, which spreads states and types.
    n: i64,
    serial: Option<String>,
}

fn person(rng: &mut Rng, i: usize) -> Person {
    let forename = rng.pick(FORENAMES).to_string();
    let surname = if rng.below(2) == 0 {
        rng.pick(SURNAMES).to_string()
    } else {
        format!("{}{}", rng.pick(PREFIXES), rng.pick(SUFFIXES))
    };
    let local: String = format!("{forename}.{surname}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '\'')
        .collect::<String>()
        .to_lowercase();
    let org = rng.below(ORGS);
    Person {
        id: rng.uuid(),
        org,
        email: format!("{local}.{i}@org{org}.example.nhs.uk"),
        subject_cn: format!("{:012}", 100_000_000_000u64 + i as u64),
        created_at: 1_600_000_000 + i as i64 * 60,
        n: i as i64,
        serial: i.is_multiple_of(10).then(|| format!("15{:014}", i as u64 * 7919 % 100_000_000_000_000)),
        forename,
        surname,
    }
}

/// Seed, search, report: on `--database-url` only when given; else on SQLite and, when
/// `DATABASE_URL` names a PostgreSQL server, on it too.
pub async fn search(users: usize, database_url: Option<String>, json: bool) -> anyhow::Result<()> {
    if database_url.is_some() {
        return with_scratch(database_url, 0, |config| run(config, users, json)).await;
    }
    with_scratch(None, 0, |config| run(config, users, json)).await?;
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => with_scratch(Some(url), 0, |config| run(config, users, json)).await,
        _ => Ok(()),
    }
}

async fn run(config: Config, count: usize, json: bool) -> anyhow::Result<()> {
    let vsc = Vsc::open(config, Arc::new(SystemClock)).await?;
    let store = vsc.store().clone();
    let backend = store.backend().name();

    let mut org_ids = Vec::new();
    {
        let mut tx = store.begin().await?;
        for o in 0..ORGS {
            let id = format!("00000000-0000-4000-8000-{o:012}");
            let domains = [format!("org{o}.example.nhs.uk")];
            vsc_store::organisations::insert(&mut tx, &id, &format!("BS{o}"), &format!("Bench Trust {o}"), &domains, 1)
                .await?;
            org_ids.push(id);
        }
        tx.commit().await?;
    }

    let started = Instant::now();
    let mut rng = Rng(0x5EED);
    let mut samples: Vec<Person> = Vec::new();
    let mut done = 0;
    while done < count {
        let n = SEED_BATCH.min(count - done);
        let people: Vec<Person> = (done..done + n).map(|i| person(&mut rng, i)).collect();
        let keys: Vec<String> = people.iter().map(|p| p.email.to_lowercase()).collect();
        let rows: Vec<BulkUser<'_>> = people
            .iter()
            .zip(&keys)
            .map(|(p, key)| BulkUser {
                user: NewUser {
                    id: &p.id,
                    org_id: org_ids.get(p.org).map_or("", String::as_str),
                    forename: &p.forename,
                    surname: &p.surname,
                    email: &p.email,
                    email_key: key,
                    mobile: None,
                    subject_cn: &p.subject_cn,
                    created_at: p.created_at,
                },
                // Four in five have logged in at some point.
                last_active_at: (p.n % 5 != 0).then_some(p.created_at + 86_400 * (p.n % 400)),
            })
            .collect();
        let card_ids: Vec<String> = people.iter().filter(|p| p.serial.is_some()).map(|_| rng.uuid()).collect();
        let cards: Vec<NewCard<'_>> = people
            .iter()
            .filter_map(|p| p.serial.as_deref().map(|s| (p, s)))
            .zip(&card_ids)
            .map(|((p, serial), id)| NewCard {
                id,
                serial,
                user_id: &p.id,
                card_type: if p.n % 3 == 0 { "v1" } else { "v2" },
                state: if p.n % 7 == 0 { "issued" } else { "active" },
                key_algorithm: "p256",
                issued_at: p.created_at,
                expires_at: p.created_at + 3 * 365 * 86_400,
            })
            .collect();
        let mut tx = store.begin().await?;
        user_search::insert_users_bulk(&mut tx, &rows).await?;
        user_search::insert_cards_bulk(&mut tx, &cards).await?;
        tx.commit().await?;
        drop(rows);
        drop(cards);
        // Keep a spread of users to search for: some from each batch, only from the staff's organisations.
        samples.extend(people.into_iter().filter(|p| p.org < 2).step_by(97));
        done += n;
    }
    let seed = started.elapsed();
    user_search::refresh_statistics(&mut *store.conn().await?).await?;
    anyhow::ensure!(!samples.is_empty(), "no users seeded in the staff's organisations");

    let scope = Some(org_ids.iter().take(2).cloned().collect::<Vec<_>>());
    let sorts = [
        (UserSort::Name, false),
        (UserSort::Created, true),
        (UserSort::LastActive, true),
        (UserSort::Email, false),
        (UserSort::CardExpiry, false),
    ];
    let with_cards: Vec<&Person> = samples.iter().filter(|p| p.serial.is_some()).collect();
    let mut all = Vec::new();
    let mut kinds = Vec::new();
    for kind in ["surname", "email", "serial", "uuid", "list"] {
        let mut times = Vec::with_capacity(RUNS);
        let mut matched = 0usize;
        for run in 0..RUNS {
            let p = samples.get(rng.below(samples.len())).ok_or_else(|| anyhow::anyhow!("no sample"))?;
            let text = match kind {
                "surname" => {
                    let chars: Vec<char> = p.surname.chars().collect();
                    let len = chars.len().clamp(3, 5);
                    let start = rng.below(chars.len().saturating_sub(len) + 1);
                    Some(chars.iter().skip(start).take(len).collect::<String>())
                }
                "email" => Some(p.email.clone()),
                "serial" => with_cards
                    .get(rng.below(with_cards.len()))
                    .and_then(|c| c.serial.as_deref())
                    .map(|s| s.chars().take(12).collect()),
                "uuid" => Some(p.id.clone()),
                _ => None,
            };
            let (sort, descending) = sorts.get(run % sorts.len()).copied().unwrap_or_default();
            let q = UserQuery {
                text,
                org_ids: scope.clone(),
                sort,
                descending,
                page: 1,
                per_page: 50,
                ..UserQuery::default()
            };
            let mut conn = store.conn().await?;
            let t = Instant::now();
            let page = user_search::search(&mut conn, &q).await?;
            times.push(t.elapsed());
            matched += usize::try_from(page.total).unwrap_or(0);
        }
        times.sort();
        let (p50, p95) = (percentile(&times, 50.0), percentile(&times, 95.0));
        kinds.push((kind, p50, p95, matched as f64 / RUNS as f64));
        all.extend(times);
    }
    all.sort();
    let (p50, p95) = (percentile(&all, 50.0), percentile(&all, 95.0));
    let ratio = p95 / P95_TARGET_MS;
    if json {
        let per_kind: serde_json::Map<String, serde_json::Value> = kinds
            .iter()
            .map(|(k, p50, p95, m)| {
                (k.to_string(), serde_json::json!({"p50_ms": p50, "p95_ms": p95, "mean_matches": m}))
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "backend": backend, "users": count, "p50_ms": p50, "p95_ms": p95,
                "p95_target_ms": P95_TARGET_MS, "p95_ratio_to_target": ratio,
                "searches": all.len(), "seed_s": seed.as_secs_f64(), "kinds": per_kind,
            })
        );
    } else {
        println!(
            "{backend}: {count} users seeded in {:.1} s; {} searches (2 of {ORGS} organisations, sorted, 50 a page)",
            seed.as_secs_f64(),
            all.len()
        );
        for (k, p50, p95, m) in &kinds {
            println!("  {k:<8} p50 {p50:7.2} ms  p95 {p95:7.2} ms  (mean {m:.0} matches)");
        }
        println!("  all      p50 {p50:7.2} ms  p95 {p95:7.2} ms  = {ratio:.2} × the {P95_TARGET_MS} ms bound");
    }
    Ok(())
}
