//! The crash test behind the product promise "a write is acknowledged only
//! when it is durable".
//!
//! Each cycle starts the real `doppel serve` on one persistent data
//! directory, lets several concurrent writers send line-protocol batches,
//! and kills the server with SIGKILL after a random delay (or, in the
//! flush variant, the moment a segment file is being written). The next
//! cycle restarts the server on the same directory and checks, over HTTP:
//!
//! * the server starts (a torn WAL tail never prevents start);
//! * every point of every batch that was answered `204` in any earlier
//!   cycle is present, with its value;
//! * every batch that was sent but not answered is either wholly present
//!   or wholly absent, and stays that way in later cycles;
//! * nothing else is present (no phantom points, no wrong values).
//!
//! Every point's value is a function of its (twin, signal, time), so
//! duplicates and rewrites of earlier points never change what is
//! expected, whichever write wins.
//!
//! The seed is printed; `DOPPEL_CRASH_SEED=<seed>` replays the same
//! batches and kill delays (thread timing still varies), and
//! `DOPPEL_CRASH_CYCLES=<n>` runs more or fewer cycles, and
//! `DOPPEL_CRASH_KEEP=1` keeps the data directory and server log. See
//! docs/testing.md.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use doppel_model::Timestamp;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Cycles of the plain variant: enough kills to land in many different
/// places of the write path, few enough for well under a minute in a
/// debug build on two cores.
const PLAIN_CYCLES: usize = 20;

/// Cycles of the flush/compaction variant: with a head of 5,000 points
/// and a tier merge once four segments of a size exist, this many cycles
/// see many flushes and several compactions.
const FLUSH_CYCLES: usize = 16;

/// Concurrent writers; more than one so group commit shares fsyncs and
/// batches interleave in the WAL.
const WRITERS: usize = 4;

/// Twins written to. Writer `w` writes twins `w .. w + TWINS_PER_WRITER`
/// (mod `TWINS`), so every twin is shared by several writers.
const TWINS: usize = 6;

/// How many twins one writer's batches touch.
const TWINS_PER_WRITER: usize = 3;

/// Signal names: not in the `person` model, so they are plain gauges with
/// no range check that could refuse a value.
const SIGNALS: [&str; 3] = ["crash_a", "crash_b", "crash_c"];

/// Fresh points per batch: "a few hundred", as a phone or gateway sends.
const BATCH_POINTS_MIN: usize = 150;
/// Upper bound (exclusive) of fresh points per batch; at most `1 << 10`
/// so a batch's points fit in its time slot (see [`SLOT_NS`]).
const BATCH_POINTS_MAX: usize = 350;

/// One in this many fresh points is written twice in its own batch.
const IN_BATCH_DUPLICATE_ONE_IN: usize = 20;

/// One in this many lines of a batch rewrites an already acknowledged
/// point (same key, same deterministic value).
const REWRITE_ONE_IN: usize = 25;

/// First timestamp used: 2023-11-14T22:13:20Z.
const BASE_NS: i64 = 1_700_000_000_000_000_000;

/// Each batch owns one slot of time; slots are visited in a scrambled
/// order, so consecutive batches land far apart and out of order.
const SLOT_NS: i64 = 1_000_000;

/// Spacing of a batch's points inside its slot (1024 points per slot).
const POINT_NS: i64 = 1_000;

/// log2 of the number of slots: batch ids are scrambled within
/// `0 .. 1 << SLOT_BITS`, which bounds the batches of one test run.
const SLOT_BITS: u32 = 20;

/// End (exclusive) of the time range every point lies in.
const END_NS: i64 = BASE_NS + (1_i64 << SLOT_BITS) * SLOT_NS;

/// Random delay between the writers' start and SIGKILL, in milliseconds.
const KILL_DELAY_MS: std::ops::Range<u64> = 20..250;

/// In the flush variant, the longest wait for a segment file being
/// written before killing anyway.
const SEGMENT_WATCH_MS: u64 = 2_000;

/// Store settings of the flush variant: a small head makes flushes (and,
/// every four flushes, compactions) happen every few hundred
/// milliseconds, so kills land inside them.
const FLUSH_CONFIG: &str = "[store]\nhead_flush_points = 5000\n";

/// In the plain variant, every this many cycles a torn record (what a
/// power cut leaves of a write in progress) is appended to the newest WAL
/// file after the kill; SIGKILL alone rarely tears a record, because the
/// kernel keeps what `write` was given.
const TEAR_WAL_EVERY_CYCLES: usize = 3;

/// Longest one write or read request may take before the test treats the
/// server as hung.
const REQUEST_TIMEOUT_MS: u64 = 30_000;

/// Violations shown in a failure message; the rest are counted.
const VIOLATIONS_SHOWN: usize = 20;

/// One point, identified by what the store deduplicates on.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    twin: usize,
    signal: usize,
    time_ns: i64,
}

impl Key {
    /// The point's value: a pure function of its key, so every write of
    /// the key carries the same value. Quarter steps are exact in f64.
    fn value(&self) -> f64 {
        let mixed = (self.twin as i64) * 7_919 + (self.signal as i64) * 104_729 + self.time_ns / POINT_NS;
        (mixed.rem_euclid(1_000_000)) as f64 / 4.0
    }

    fn line(&self) -> String {
        format!(
            "{},twin={} value={} {}",
            SIGNALS[self.signal],
            twin_name(self.twin),
            self.value(),
            self.time_ns
        )
    }
}

fn twin_name(twin: usize) -> String {
    format!("crash-{twin}")
}

/// A bijection of `0 .. 1 << SLOT_BITS` (multiplication by an odd number
/// modulo a power of two), so consecutive batch ids get far-apart slots.
fn slot_of(batch_id: u64) -> i64 {
    let mask = (1_u64 << SLOT_BITS) - 1;
    ((batch_id.wrapping_mul(0x9E37_79B1)) & mask) as i64
}

/// A batch sent but not (yet) answered 204.
#[derive(Debug)]
struct PendingBatch {
    id: u64,
    fresh: Vec<Key>,
}

/// What the server must hold, as far as the writers know.
#[derive(Default)]
struct Truth {
    /// Points that must be present: acknowledged, or recovered whole after a crash.
    committed: HashSet<Key>,
    /// The same keys, for picking rewrite targets at random.
    committed_list: Vec<Key>,
    /// Batches sent and not acknowledged.
    pending: HashMap<u64, PendingBatch>,
    /// Next batch id; ids are never reused, so fresh keys never repeat.
    next_batch: u64,
}

impl Truth {
    fn commit(&mut self, keys: &[Key]) {
        for key in keys {
            if self.committed.insert(*key) {
                self.committed_list.push(*key);
            }
        }
    }
}

/// What one cycle's writers did before the kill.
#[derive(Default, Debug)]
struct WriteTally {
    acked_batches: usize,
    acked_points: usize,
    in_flight_batches: usize,
    /// Answers other than 204 while the server was alive: always a failure.
    unexpected: Vec<String>,
}

/// What a verification after restart found.
struct Verified {
    points: usize,
    pending_present: usize,
    pending_absent: usize,
}

fn seed() -> u64 {
    match std::env::var("DOPPEL_CRASH_SEED") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("DOPPEL_CRASH_SEED={text:?} is not a u64")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
        }
    }
}

fn cycles(default: usize) -> usize {
    match std::env::var("DOPPEL_CRASH_CYCLES") {
        Ok(text) => {
            text.trim().parse().unwrap_or_else(|_| panic!("DOPPEL_CRASH_CYCLES={text:?} is not a count"))
        }
        Err(_) => default,
    }
}

/// How a cycle decides when to kill.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    /// After a random delay.
    Delay,
    /// As soon as a `*.seg.tmp` (a flush or compaction being written)
    /// exists, or after [`SEGMENT_WATCH_MS`].
    SegmentBeingWritten,
}

struct Scenario {
    name: &'static str,
    cycles: usize,
    config: Option<&'static str>,
    /// Triggers used in turn, one per cycle.
    triggers: &'static [Trigger],
    /// Append a torn WAL record after every n-th kill.
    tear_wal_every: Option<usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_and_in_flight_batches_are_atomic() {
    run_scenario(Scenario {
        name: "plain",
        cycles: cycles(PLAIN_CYCLES),
        config: None,
        triggers: &[Trigger::Delay],
        tear_wal_every: Some(TEAR_WAL_EVERY_CYCLES),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_during_flush_and_compaction() {
    let summary = run_scenario(Scenario {
        name: "flush",
        cycles: cycles(FLUSH_CYCLES),
        config: Some(FLUSH_CONFIG),
        triggers: &[Trigger::SegmentBeingWritten, Trigger::Delay],
        tear_wal_every: None,
    })
    .await;
    assert!(
        summary.max_segments > 0,
        "no segment was ever written: the flush variant did not flush (seed {})",
        summary.seed
    );
}

struct Summary {
    seed: u64,
    max_segments: usize,
}

async fn run_scenario(scenario: Scenario) -> Summary {
    let seed = seed();
    println!(
        "crash test `{}`: seed {seed} ({} cycles); replay with DOPPEL_CRASH_SEED={seed}",
        scenario.name, scenario.cycles
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // Kept for inspection when asked; otherwise removed when the test ends.
    let (root, _cleanup) = if std::env::var_os("DOPPEL_CRASH_KEEP").is_some() {
        let root = dir.keep();
        println!("crash test `{}`: keeping {}", scenario.name, root.display());
        (root, None)
    } else {
        (dir.path().to_owned(), Some(dir))
    };
    let data = root.join("data");
    let log = root.join("server.log");
    let config_path = root.join("doppel.toml");
    let mut extra: Vec<String> = Vec::new();
    if let Some(config) = scenario.config {
        std::fs::write(&config_path, config).expect("write config");
        extra.push("--config".into());
        extra.push(config_path.display().to_string());
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let truth = Arc::new(Mutex::new(Truth::default()));
    let started = Instant::now();
    let mut max_segments = 0;
    let mut previous_segments = 0;
    let mut compactions_seen = 0;
    let mut tails_torn = 0;
    let mut kills_in_segment_write = 0;
    let mut total_in_flight = 0;
    let mut total_acked = 0;
    for cycle in 0..=scenario.cycles {
        let restart = Instant::now();
        let mut server = Server::start(&data, &log, &extra).await;
        let restart_ms = restart.elapsed().as_millis();
        let context = format!("seed {seed}, cycle {cycle}");
        assert_no_corrupt_segments(&data, &context);
        if cycle == 0 {
            create_twins(&server, &context).await;
        }
        let verified = verify(&server, &truth, &context).await;
        let committed = truth.lock().expect("truth lock").committed.len();
        if cycle == scenario.cycles {
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            println!(
                "final restart in {restart_ms} ms: previous in-flight batches {} present, {} absent; \
                 {} points verified; {total_acked} acked and {total_in_flight} in-flight batches over the run; \
                 {kills_in_segment_write} kills while a segment was being written; {compactions_seen} \
                 compactions seen; {tails_torn} WAL tails torn by the test, {} recoveries reporting WAL \
                 damage; {:.1} s",
                verified.pending_present,
                verified.pending_absent,
                verified.points,
                log_text.matches("wal_damage: [WalDamage").count(),
                started.elapsed().as_secs_f64()
            );
            assert_eq!(
                verified.points, committed,
                "{context}: verified count differs from the committed set"
            );
            break;
        }
        let trigger = scenario.triggers[cycle % scenario.triggers.len()];
        let mut rng = StdRng::seed_from_u64(seed ^ (cycle as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        let delay_ms = rng.random_range(KILL_DELAY_MS);
        let (tally, segment_tmp_at_kill, killed_after_ms) =
            write_then_kill(&mut server, &truth, seed, cycle, trigger, delay_ms).await;
        assert!(tally.unexpected.is_empty(), "{context}: unexpected answers: {:?}", tally.unexpected);
        let torn = match scenario.tear_wal_every {
            Some(every) if cycle % every == every - 1 => {
                tear_wal_tail(&data.join("wal"), &mut rng, &context);
                tails_torn += 1;
                true
            }
            _ => false,
        };
        let segments = count_files(&data.join("segments"), ".seg");
        max_segments = max_segments.max(segments);
        // A compaction merges every segment into one, so the count drops.
        if segments < previous_segments {
            compactions_seen += 1;
        }
        previous_segments = segments;
        if segment_tmp_at_kill {
            kills_in_segment_write += 1;
        }
        total_in_flight += tally.in_flight_batches;
        total_acked += tally.acked_batches;
        println!(
            "cycle {cycle:>2}: restart {restart_ms:>5} ms, previous in-flight {} present / {} absent, \
             verified {:>7} points | {trigger:?} kill after {killed_after_ms:>4} ms: acked {:>3} batches \
             ({:>6} points), in flight {}, segments {segments}, segment being written at kill: {segment_tmp_at_kill}, \
             WAL tail torn: {torn}",
            verified.pending_present,
            verified.pending_absent,
            verified.points,
            tally.acked_batches,
            tally.acked_points,
            tally.in_flight_batches,
        );
    }
    assert!(total_acked > 0, "seed {seed}: no batch was ever acknowledged, so nothing was tested");
    assert!(
        total_in_flight > 0,
        "seed {seed}: no batch was ever in flight at a kill, so atomicity was not tested"
    );
    Summary { seed, max_segments }
}

/// Creates every twin before the first write, so reads of a twin that a
/// torn batch would have created answer with points rather than 404.
async fn create_twins(server: &Server, context: &str) {
    let client = http_client();
    for twin in 0..TWINS {
        let response = client
            .put(server.url(&format!("/api/v1/twins/{}", twin_name(twin))))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{context}: creating twin {twin}: {e}"));
        assert!(response.status().is_success(), "{context}: creating twin {twin}: {}", response.status());
    }
}

fn http_client() -> reqwest::Client {
    common::admin_client(Duration::from_millis(REQUEST_TIMEOUT_MS))
}

/// Runs the writers until the kill, then waits for them to notice.
/// Returns what they did, whether a segment file was being written when
/// the server died, and how long after the writers' start it was killed.
async fn write_then_kill(
    server: &mut Server,
    truth: &Arc<Mutex<Truth>>,
    seed: u64,
    cycle: usize,
    trigger: Trigger,
    delay_ms: u64,
) -> (WriteTally, bool, u128) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let client = http_client();
    let url = server.url("/api/v2/write?precision=ns");
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let rng_seed = seed ^ ((cycle * WRITERS + writer + 1) as u64).wrapping_mul(0xE703_7ED1_A0B4_28DB);
        writers.push(tokio::spawn(write_batches(
            writer,
            StdRng::seed_from_u64(rng_seed),
            client.clone(),
            url.clone(),
            truth.clone(),
            stop.clone(),
        )));
    }
    let segments_dir = server.data.join("segments");
    match trigger {
        Trigger::Delay => tokio::time::sleep(Duration::from_millis(delay_ms)).await,
        Trigger::SegmentBeingWritten => {
            // Let the writers fill the head past a flush first, then poll
            // as fast as the runtime allows for a segment being written.
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let deadline = Instant::now() + Duration::from_millis(SEGMENT_WATCH_MS);
            while Instant::now() < deadline && count_files(&segments_dir, ".seg.tmp") == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
    server.kill();
    let killed_after_ms = started.elapsed().as_millis();
    let segment_tmp_at_kill = count_files(&segments_dir, ".seg.tmp") > 0;
    stop.store(true, Ordering::SeqCst);
    let mut total = WriteTally::default();
    for writer in writers {
        let tally = writer.await.expect("writer task panicked");
        total.acked_batches += tally.acked_batches;
        total.acked_points += tally.acked_points;
        total.in_flight_batches += tally.in_flight_batches;
        total.unexpected.extend(tally.unexpected);
    }
    (total, segment_tmp_at_kill, killed_after_ms)
}

/// One writer: builds a batch, registers it as in flight, sends it, and
/// commits it on 204, until the server dies or `stop` is set.
async fn write_batches(
    writer: usize,
    mut rng: StdRng,
    client: reqwest::Client,
    url: String,
    truth: Arc<Mutex<Truth>>,
    stop: Arc<AtomicBool>,
) -> WriteTally {
    let mut tally = WriteTally::default();
    while !stop.load(Ordering::SeqCst) {
        let (id, body) = {
            let mut truth = truth.lock().expect("truth lock");
            let id = truth.next_batch;
            truth.next_batch += 1;
            let (fresh, body) = build_batch(writer, id, &mut rng, &truth.committed_list);
            truth.pending.insert(id, PendingBatch { id, fresh });
            (id, body)
        };
        let answer = client.post(&url).header("content-type", "text/plain").body(body).send().await;
        match answer {
            Ok(response) if response.status() == 204 => {
                let mut truth = truth.lock().expect("truth lock");
                if let Some(batch) = truth.pending.remove(&id) {
                    tally.acked_batches += 1;
                    tally.acked_points += batch.fresh.len();
                    truth.commit(&batch.fresh);
                }
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                // A broken connection can surface as an answer only if the
                // server sent one; any answer but 204 while it was alive is a
                // bug. The batch stays pending: it must be all-or-nothing.
                tally.unexpected.push(format!("batch {id}: {status}: {text}"));
                tally.in_flight_batches += 1;
                break;
            }
            Err(_) => {
                // The server died with this batch in flight.
                tally.in_flight_batches += 1;
                break;
            }
        }
    }
    tally
}

/// A batch of fresh points (unique keys in the batch's own time slot),
/// some written twice, plus rewrites of acknowledged points, in shuffled
/// order. Returns the fresh keys and the line-protocol body.
fn build_batch(writer: usize, id: u64, rng: &mut StdRng, committed: &[Key]) -> (Vec<Key>, String) {
    assert!(id < (1 << SLOT_BITS), "more batches than time slots");
    let slot_start = BASE_NS + slot_of(id) * SLOT_NS;
    let count = rng.random_range(BATCH_POINTS_MIN..BATCH_POINTS_MAX);
    let fresh: Vec<Key> = (0..count)
        .map(|i| Key {
            twin: (writer + rng.random_range(0..TWINS_PER_WRITER)) % TWINS,
            signal: rng.random_range(0..SIGNALS.len()),
            time_ns: slot_start + i as i64 * POINT_NS,
        })
        .collect();
    let mut lines: Vec<String> = fresh.iter().map(Key::line).collect();
    for key in &fresh {
        if rng.random_range(0..IN_BATCH_DUPLICATE_ONE_IN) == 0 {
            lines.push(key.line());
        }
    }
    if !committed.is_empty() {
        for _ in 0..count / REWRITE_ONE_IN {
            lines.push(committed[rng.random_range(0..committed.len())].line());
        }
    }
    lines.shuffle(rng);
    (fresh, lines.join("\n"))
}

/// Reads every series back and checks it against `truth`; resolves the
/// pending batches into committed (all present) or forgotten (none
/// present). Panics with every violation found.
async fn verify(server: &Server, truth: &Arc<Mutex<Truth>>, context: &str) -> Verified {
    let client = http_client();
    let mut present: HashSet<Key> = HashSet::new();
    let mut violations: Vec<String> = Vec::new();
    for twin in 0..TWINS {
        for signal in 0..SIGNALS.len() {
            for (time_ns, value) in read_series(&client, server, twin, signal, context).await {
                let key = Key { twin, signal, time_ns };
                if !present.insert(key) {
                    violations.push(format!("{key:?} returned twice"));
                }
                if value != key.value() {
                    violations.push(format!("{key:?} has value {value}, written as {}", key.value()));
                }
            }
        }
    }
    let mut truth = truth.lock().expect("truth lock");
    let pending: Vec<PendingBatch> = truth.pending.drain().map(|(_, batch)| batch).collect();
    let pending_keys: HashSet<Key> = pending.iter().flat_map(|b| b.fresh.iter().copied()).collect();
    let mut lost: Vec<&Key> = truth.committed.iter().filter(|k| !present.contains(k)).collect();
    lost.sort();
    if !lost.is_empty() {
        violations.push(format!(
            "{} acknowledged points are missing, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    let mut phantoms: Vec<&Key> =
        present.iter().filter(|k| !truth.committed.contains(k) && !pending_keys.contains(k)).collect();
    phantoms.sort();
    if !phantoms.is_empty() {
        violations.push(format!(
            "{} points are present that were never written or belong to a batch found absent earlier, e.g. {:?}",
            phantoms.len(),
            &phantoms[..phantoms.len().min(5)]
        ));
    }
    let (mut pending_present, mut pending_absent) = (0, 0);
    for batch in &pending {
        let found = batch.fresh.iter().filter(|k| present.contains(k)).count();
        if found == batch.fresh.len() {
            pending_present += 1;
            truth.commit(&batch.fresh);
        } else if found == 0 {
            pending_absent += 1;
        } else {
            violations.push(format!(
                "in-flight batch {} is torn: {found} of its {} points are present",
                batch.id,
                batch.fresh.len()
            ));
        }
    }
    if !violations.is_empty() {
        let shown = violations.iter().take(VIOLATIONS_SHOWN).cloned().collect::<Vec<_>>().join("\n  ");
        panic!(
            "{context}: {} violations after restart:\n  {shown}\nserver log:\n{}",
            violations.len(),
            server.log_tail()
        );
    }
    Verified { points: present.len(), pending_present, pending_absent }
}

/// Every raw point of one series, as (time in ns, value), read as CSV.
async fn read_series(
    client: &reqwest::Client,
    server: &Server,
    twin: usize,
    signal: usize,
    context: &str,
) -> Vec<(i64, f64)> {
    let url = server.url(&format!(
        "/api/v1/twins/{}/signals/{}?from={BASE_NS}&to={END_NS}&format=csv",
        twin_name(twin),
        SIGNALS[signal]
    ));
    let response = client.get(&url).send().await.unwrap_or_else(|e| panic!("{context}: GET {url}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_else(|e| panic!("{context}: reading {url}: {e}"));
    assert_eq!(status, 200, "{context}: GET {url}: {text}");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("time,value"), "{context}: CSV header of {url}");
    lines
        .map(|line| {
            let (time, value) =
                line.split_once(',').unwrap_or_else(|| panic!("{context}: bad CSV line {line:?} from {url}"));
            let time = Timestamp::parse(time)
                .unwrap_or_else(|| panic!("{context}: bad time {time:?} from {url}"))
                .as_nanos();
            let value: f64 =
                value.parse().unwrap_or_else(|_| panic!("{context}: bad value {value:?} from {url}"));
            (time, value)
        })
        .collect()
}

/// Appends to the newest WAL file what a power cut can leave of a record
/// being appended: part of a header, a header promising more bytes than
/// follow, or a whole record whose checksum does not match. None of it was
/// acknowledged, so recovery must drop it and keep everything before it.
fn tear_wal_tail(wal_dir: &Path, rng: &mut StdRng, context: &str) {
    let newest = std::fs::read_dir(wal_dir)
        .unwrap_or_else(|e| panic!("{context}: listing {}: {e}", wal_dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "wal"))
        .max()
        .unwrap_or_else(|| panic!("{context}: no WAL file in {}", wal_dir.display()));
    let mut tail: Vec<u8> = Vec::new();
    match rng.random_range(0..3) {
        0 => tail.extend_from_slice(&[0x10, 0x27, 0x00]),
        1 => {
            tail.extend_from_slice(&4096_u32.to_le_bytes());
            tail.extend_from_slice(&rng.random::<u32>().to_le_bytes());
            tail.extend((0..100).map(|_| rng.random::<u8>()));
        }
        _ => {
            let payload: Vec<u8> = (0..64).map(|_| rng.random::<u8>()).collect();
            tail.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            // A checksum of all zeros: wrong for random bytes but for a
            // chance of 2^-32, which the seed makes reproducible.
            tail.extend_from_slice(&0_u32.to_le_bytes());
            tail.extend_from_slice(&payload);
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap_or_else(|e| panic!("{context}: opening {}: {e}", newest.display()));
    std::io::Write::write_all(&mut file, &tail)
        .unwrap_or_else(|e| panic!("{context}: tearing {}: {e}", newest.display()));
}

/// Files in `dir` whose names end with `suffix` (0 when `dir` is absent).
fn count_files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

/// A segment refused at open means a flush or compaction was not atomic.
fn assert_no_corrupt_segments(data: &Path, context: &str) {
    let corrupt = count_files(&data.join("segments"), ".seg.corrupt");
    assert_eq!(corrupt, 0, "{context}: recovery refused {corrupt} segment(s) as corrupt");
}

#[test]
fn slots_are_a_bijection_so_fresh_keys_never_repeat() {
    let slots: HashSet<i64> = (0..1_u64 << 16).map(slot_of).collect();
    assert_eq!(slots.len(), 1 << 16);
    assert!(slots.iter().all(|s| (0..1 << SLOT_BITS).contains(s)));
    assert!(BATCH_POINTS_MAX as i64 * POINT_NS <= SLOT_NS);
}

#[test]
fn batches_hold_their_fresh_points_and_only_known_rewrites() {
    let mut rng = StdRng::seed_from_u64(7);
    let committed = vec![Key { twin: 0, signal: 1, time_ns: BASE_NS + 5 }];
    let (fresh, body) = build_batch(2, 9, &mut rng, &committed);
    let lines: HashSet<&str> = body.lines().collect();
    assert!(fresh.iter().all(|k| lines.contains(k.line().as_str())));
    let allowed: HashSet<String> = fresh.iter().chain(&committed).map(Key::line).collect();
    assert!(body.lines().all(|l| allowed.contains(l)), "{body}");
    assert!(fresh.iter().all(|k| (2..2 + TWINS_PER_WRITER).contains(&k.twin)));
}
