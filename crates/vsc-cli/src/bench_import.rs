//! `vsc bench import`: time the CSV import of users on a fresh database, as the vRA Manager and
//! `POST /api/v1/users/import` run it (every row checked, then one transaction): N rows without
//! cards, then M rows each with a V1 card (keys, certificates, invitation email); prints rows/s.

use std::sync::Arc;
use std::time::Instant;

use vsc_server::clock::SystemClock;
use vsc_server::{Config, Principal, Vsc};

use crate::bench::with_scratch;

const HEADER: &str = "organisation,forename,surname,email,mobile,subject_cn,directory_account,card_type,roles\n";
const FORENAMES: [&str; 8] = ["Oliver", "Amelia", "Siobhán", "Kwame", "Zofia", "Priya", "D'Arcy", "Jean-Luc"];
const SURNAMES: [&str; 8] = ["Smith", "O'Connor", "Nowak", "Mensah", "Da Silva", "Patel", "Llewellyn", "Fernández"];

/// A file of `rows` users, each with a V1 card when `cards`.
fn file(rows: usize, cards: bool, tag: &str) -> String {
    let mut out = String::from(HEADER);
    for i in 0..rows {
        let f = FORENAMES.get(i % FORENAMES.len()).unwrap_or(&"Oliver");
        let s = SURNAMES.get((i / FORENAMES.len()) % SURNAMES.len()).unwrap_or(&"Smith");
        let card = if cards { "v1,R8000" } else { "," };
        out.push_str(&format!("BENCH,{f},{s},{tag}.{i}@bench.example,+447700900{:03},,,{card}\n", i % 1000));
    }
    out
}

/// Run the benchmark: `rows` users without cards, then `cards` users with a V1 card.
pub async fn import(rows: usize, cards: usize, database_url: Option<String>, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!((1..=vsc_server::service::MAX_IMPORT_ROWS).contains(&rows), "--rows must be 1 to 20000");
    anyhow::ensure!(cards <= vsc_server::service::MAX_IMPORT_ROWS, "--cards must be at most 20000");
    let backend = if database_url.is_some() { "postgres" } else { "sqlite" };
    with_scratch(database_url, 0, |config| run(config, backend, rows, cards, json)).await
}

async fn run(config: Config, backend: &str, rows: usize, cards: usize, json: bool) -> anyhow::Result<()> {
    let vsc = Vsc::open(config, Arc::new(SystemClock)).await?;
    vsc.bootstrap("BENCH", "Benchmark Trust", &["bench.example".into()], "ra@bench.example", "Bench Admin").await?;
    let runs = [("users", rows, false), ("users_with_v1_cards", cards, true)];
    for (kind, n, with_cards) in runs.into_iter().filter(|r| r.1 > 0) {
        let csv = file(n, with_cards, kind);
        let start = Instant::now();
        let outcome = vsc.import_users(&Principal::Operator, csv.as_bytes()).await?;
        let seconds = start.elapsed().as_secs_f64();
        let done = outcome.map_err(|e| anyhow::anyhow!("the benchmark file was refused: {e:?}"))?;
        anyhow::ensure!(done.imported == n, "imported {} of {n}", done.imported);
        let rate = n as f64 / seconds;
        if json {
            println!(
                "{}",
                serde_json::json!({ "backend": backend, "kind": kind, "rows": n, "cards": done.cards,
                                    "seconds": seconds, "rows_per_s": rate })
            );
        } else {
            println!("{backend}: imported {n} {kind} in {seconds:.2} s ({rate:.0} rows/s, {} cards)", done.cards);
        }
    }
    Ok(())
}
