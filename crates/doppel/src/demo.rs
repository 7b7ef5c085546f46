//! `doppel demo`: a server with a synthetic population, history first, then
//! live data, so every part of Doppel can be seen working in one command.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use doppel_engine::Engine;
use doppel_model::{Batch, FieldValue, Point, Span, Timestamp};
use doppel_protocols::{RawBatch, RawSample, RawSeries};
use doppel_synth::{EpisodeKind, PersonSimulator, Population, PopulationConfig, Profile};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::DemoArgs;
use crate::config::{LimitsConfig, Settings, StoreFileConfig};
use crate::encryption::EncryptionSettings;
use crate::serve::{
    ADMIN_TOKEN_VARIABLE, open_auth, open_engine, open_keyring, open_privacy, server_config, shutdown_signal,
};

/// Points per ingest call while loading history: large enough to amortise
/// fsyncs, small enough to keep memory flat.
const HISTORY_BATCH_POINTS: usize = 50_000;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.people > 0, "--people must be at least 1");
    anyhow::ensure!(args.speed.is_finite() && args.speed > 0.0, "--speed must be a positive number");
    let temp = match &args.data {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("doppel-demo-")
                .tempdir()
                .context("cannot create a temporary data directory")?,
        ),
    };
    // A temporary demo keeps its data and its keyring side by side in one
    // directory that is removed at the end.
    let data = args
        .data
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.path().join("data")))
        .context("no data directory")?;
    let keyring_dir = match &temp {
        Some(temp) => temp.path().join("keys"),
        None => crate::encryption::default_keyring(&data),
    };
    // A throwaway demo gets a throwaway master key of its own; a demo on a
    // kept data directory gets what `serve` would (and its warning).
    let master_key = match &temp {
        Some(temp) => {
            let path = temp.path().join("master.key");
            crate::encryption::write_new_master_key(&path)?;
            Some(doppel_crypto::MasterKeySource::File(path))
        }
        None => None,
    };
    let settings = Settings {
        data: data.clone(),
        listen: args.listen,
        strict: false,
        models: None,
        default_model: "person".to_owned(),
        limits: demo_limits(args.speed),
        store: StoreFileConfig::default(),
        tls: None,
        auth: doppel_server::AuthConfig::default(),
        privacy: doppel_server::PrivacyConfig::default(),
        insecure: false,
        encryption: Some(EncryptionSettings {
            keyring: keyring_dir,
            master: master_key,
            previous: Vec::new(),
        }),
    };
    let keyring = open_keyring(&settings).await?;
    let engine = open_engine(&settings, keyring.as_ref()).await?;
    // The demo's server takes the token from DOPPEL_ADMIN_TOKEN, or one
    // made here, so that it can print a credential that works.
    let admin_token = match std::env::var(ADMIN_TOKEN_VARIABLE) {
        Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
        _ => crate::token::generate()?,
    };
    let (auth, _) = open_auth(&settings, keyring.as_ref(), Some(&admin_token)).await?;

    let now = Timestamp::now();
    let today = Timestamp::from_nanos(now.as_nanos().div_euclid(NANOS_PER_DAY) * NANOS_PER_DAY);
    let config = PopulationConfig {
        people: args.people,
        days: args.days,
        seed: args.seed,
        start: today.add_nanos(-i64::from(args.days) * NANOS_PER_DAY),
        ..PopulationConfig::default()
    };
    eprintln!("generating {} people with {} days of history in {}", args.people, args.days, data.display());
    let population = Population::generate(&config);
    let simulators = {
        let engine = engine.clone();
        let people = population.people.clone();
        let seed = args.seed;
        tokio::task::spawn_blocking(move || load_history(&engine, &people, seed, now))
            .await
            .context("history generation panicked")??
    };

    let privacy = open_privacy(&settings, keyring.as_ref()).await?;
    let server_config = doppel_server::ServerConfig { auth, privacy, ..server_config(&settings) };
    let listen = server_config.listen;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = {
        let engine = engine.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            doppel_server::serve(engine, server_config, async move {
                let _ = stop.changed().await;
            })
            .await
        })
    };
    print_welcome(listen, &admin_token, &population.people);

    let live = tokio::task::spawn_blocking({
        let engine = engine.clone();
        let stop = stop_rx.clone();
        let speed = args.speed;
        move || stream_live(&engine, simulators, now, speed, &stop)
    });
    match args.duration_secs {
        Some(secs) => {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(secs)) => {},
                () = shutdown_signal() => {},
            }
        }
        None => shutdown_signal().await,
    }
    let _ = stop_tx.send(true);
    live.await.context("live streaming panicked")??;
    server.await.context("server task panicked")?.context("server failed")?;
    let stats = engine.stats();
    eprintln!("demo stopped after {} points in {} twins", stats.points_ingested, stats.twins);
    drop(engine);
    drop(temp);
    Ok(())
}

/// Creates every twin with its properties and writes its history, two
/// people at a time per core, with a progress bar.
fn load_history(
    engine: &Engine,
    people: &[Profile],
    seed: u64,
    until: Timestamp,
) -> anyhow::Result<Vec<PersonSimulator>> {
    for person in people {
        let properties = person.properties_json();
        engine
            .put_twin(&person.id, Some("person"), properties)
            .with_context(|| format!("cannot create twin {}", person.id))?;
    }
    let bar = ProgressBar::new(people.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} people  {msg}  ({eta} left)") {
        bar.set_style(style);
    }
    let started = Instant::now();
    let points_total = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut simulators: Vec<Option<PersonSimulator>> = (0..people.len()).map(|_| None).collect();
    let results: Vec<anyhow::Result<Vec<(usize, PersonSimulator)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<Vec<(usize, PersonSimulator)>> {
                    let mut done = Vec::new();
                    let mut points = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(person) = people.get(index) else { break };
                        let mut sim = PersonSimulator::new(person, seed);
                        sim.advance(until, &mut points);
                        for chunk in points.chunks(HISTORY_BATCH_POINTS) {
                            ingest_points(engine, chunk)?;
                        }
                        let total = points_total.fetch_add(points.len(), Ordering::Relaxed) + points.len();
                        points.clear();
                        let rate = total as f64 / started.elapsed().as_secs_f64().max(1e-3);
                        bar.set_message(format!("{total} points, {:.0}k points/s", rate / 1e3));
                        bar.inc(1);
                        done.push((index, sim));
                    }
                    Ok(done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a generator thread panicked"))))
            .collect()
    });
    for result in results {
        for (index, sim) in result? {
            simulators[index] = Some(sim);
        }
    }
    bar.finish();
    Ok(simulators.into_iter().flatten().collect())
}

/// The default limits, except that a demo streaming faster than real time
/// writes simulated time ahead of the clock on purpose: its horizon is a
/// century instead of an hour.
fn demo_limits(speed: f64) -> LimitsConfig {
    let future_horizon = if speed > 1.0 { Span::from_secs(100 * 365 * 86_400) } else { None };
    LimitsConfig { future_horizon, ..LimitsConfig::default() }
}

/// Writes generated points through the engine like any other source. Each
/// point is its own item, numbered as a JSON batch would be, so that the
/// per-line caps see one field per item.
fn ingest_points(engine: &Engine, points: &[Point]) -> anyhow::Result<()> {
    let batch = Batch::from_points(points.iter().cloned());
    let mut item = 0;
    let raw = RawBatch {
        series: batch
            .series
            .into_iter()
            .map(|s| RawSeries {
                key: s.key,
                samples: s
                    .samples
                    .into_iter()
                    .map(|x| {
                        item += 1;
                        RawSample { line: item, time: x.time, value: FieldValue::Number(x.value) }
                    })
                    .collect(),
            })
            .collect(),
    };
    engine.ingest(raw).context("the generated data was rejected")?;
    Ok(())
}

/// Advances every person's simulation once per wall-clock second (scaled by
/// `speed`) and writes what happened, until told to stop.
fn stream_live(
    engine: &Engine,
    mut simulators: Vec<PersonSimulator>,
    start: Timestamp,
    speed: f64,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let wall_start = Instant::now();
    let mut points = Vec::new();
    let mut tick = 0u64;
    while !*stop.borrow() {
        tick += 1;
        let target = wall_start + Duration::from_secs(tick);
        if let Some(wait) = target.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sim_elapsed = wall_start.elapsed().as_secs_f64() * speed;
        let until = start.add_nanos((sim_elapsed * 1e9) as i64);
        for sim in &mut simulators {
            sim.advance(until, &mut points);
        }
        for chunk in points.chunks(HISTORY_BATCH_POINTS) {
            ingest_points(engine, chunk)?;
        }
        points.clear();
    }
    Ok(())
}

fn print_welcome(listen: std::net::SocketAddr, admin_token: &str, people: &[Profile]) {
    let base = format!("http://{listen}");
    let first = people.first().map(|p| p.id.to_string()).unwrap_or_default();
    let ill =
        people.iter().find(|p| p.episodes.iter().any(|e| matches!(e.kind, EpisodeKind::Illness { .. })));
    let training = people
        .iter()
        .find(|p| p.episodes.iter().any(|e| matches!(e.kind, EpisodeKind::TrainingBlock { .. })));
    let cgm = people.iter().find(|p| p.diabetes.is_some());
    println!();
    println!("Doppel demo is live at {base} (Ctrl-C to stop)");
    println!("  admin token:     {admin_token}");
    println!("  API description: {base}/api/openapi.json");
    println!("  metrics:         {base}/metrics (with the token)");
    if let Some(p) = ill {
        println!("  {} has a planted illness episode (resting HR and skin temperature rise)", p.id);
    }
    if let Some(p) = training {
        println!("  {} is in a training block", p.id);
    }
    if let Some(p) = cgm {
        println!("  {} wears a CGM and doses insulin", p.id);
    }
    println!();
    let auth = format!("-H \"Authorization: Bearer {admin_token}\"");
    println!("Try:");
    println!("  curl -s {auth} {base}/api/v1/twins/{first}");
    println!(
        "  curl -s {auth} '{base}/api/v1/twins/{first}/signals/heart_rate?every=1h&agg=mean,min,max&format=csv'"
    );
    println!("  curl -sN {auth} {base}/api/v1/twins/{first}/events");
    println!("or, with the client commands: export DOPPEL_TOKEN={admin_token}; doppel twin show {first}");
    println!();
}
