//! The engine: validates batches against twin models, makes them durable
//! through the store, updates live state and publishes events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use doppel_model::{
    Batch, ModelDef, ModelRegistry, Sample, SeriesBatch, SignalName, Span, Timestamp, TwinId,
};
use doppel_protocols::{LineError, MAX_REPORTED_ERRORS, ParseErrors, RawBatch};
use doppel_store::{
    Aggregate, Bucket, RangeQuery, RetentionPolicy, SeriesData, Store, StoreConfig, StoreStats, TwinRecord,
};
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::events::{Event, EventBody, EventKind, PointUpdate};
use crate::limits::IngestLimits;
use crate::live::{LiveTwin, SignalIds, TwinTable};
use crate::view::{SignalState, TwinSummary, TwinView, WindowStats};
use crate::{EngineError, IngestError};

/// Default number of events a subscriber may fall behind before the bus
/// skips events for it (the server then drops it as slow); at one event
/// per twin per batch this is seconds of traffic.
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

/// How the engine is set up.
pub struct EngineConfig {
    /// Where and how history is kept.
    pub store: StoreConfig,
    /// Models twins may use.
    pub models: ModelRegistry,
    /// Model of twins created by their first write.
    pub default_model: String,
    /// When true, writes to twins that do not exist are rejected instead of
    /// creating them.
    pub strict_twins: bool,
    /// Events buffered per subscriber.
    pub event_capacity: usize,
    /// Caps on what one batch and one twin may bring.
    pub limits: IngestLimits,
}

impl EngineConfig {
    /// Built-in models, `person` as default, twins created on first write.
    pub fn new(store: StoreConfig) -> Self {
        Self {
            store,
            models: ModelRegistry::with_builtins(),
            default_model: "person".to_owned(),
            strict_twins: false,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            limits: IngestLimits::default(),
        }
    }
}

/// What an accepted batch did.
#[derive(Clone, Debug, Default)]
pub struct IngestReceipt {
    /// Points written.
    pub points: usize,
    /// Series touched.
    pub series: usize,
    /// Twins created by this batch.
    pub twins_created: Vec<TwinId>,
}

/// Counters for `/metrics`.
#[derive(Clone, Debug)]
pub struct EngineStats {
    /// Twins that exist.
    pub twins: usize,
    /// Signals with live state across all twins.
    pub live_signals: usize,
    /// Points accepted since start.
    pub points_ingested: u64,
    /// Batches accepted since start.
    pub batches_ingested: u64,
    /// Batches rejected for bad input since start.
    pub batches_rejected: u64,
    /// Events published since start.
    pub events_published: u64,
    /// Current subscribers.
    pub subscribers: usize,
    /// The store's own counters.
    pub store: StoreStats,
}

#[derive(Default)]
struct Counters {
    points: AtomicU64,
    batches: AtomicU64,
    rejected: AtomicU64,
    events: AtomicU64,
}

/// Live twins over a durable store. Share it as `Arc<Engine>`; its methods
/// block on disk I/O, so async callers run them on a blocking thread.
pub struct Engine {
    store: Store,
    models: ModelRegistry,
    default_model: Arc<ModelDef>,
    strict_twins: bool,
    twins: TwinTable,
    /// Dense ids of signal names, so live signals stay small.
    signal_ids: SignalIds,
    limits: IngestLimits,
    /// Serialises twin creation so a first write cannot overwrite the
    /// properties of a concurrent `put_twin`.
    create_lock: Mutex<()>,
    bus: broadcast::Sender<Arc<Event>>,
    seq: AtomicU64,
    counters: Counters,
}

impl Engine {
    /// Opens the store (recovering it after a crash) and rebuilds the live
    /// state of every twin from it.
    pub fn open(config: EngineConfig) -> Result<Self, EngineError> {
        let default_model = config
            .models
            .get(&config.default_model)
            .ok_or_else(|| unknown_model(&config.models, &config.default_model))?;
        let mut store_config = config.store;
        store_config.retention = retention_with_models(&store_config.retention, &config.models);
        let store = Store::open(store_config)?;
        let (bus, _) = broadcast::channel(config.event_capacity.max(1));
        let engine = Self {
            store,
            models: config.models,
            default_model,
            strict_twins: config.strict_twins,
            twins: TwinTable::new(),
            signal_ids: SignalIds::default(),
            limits: config.limits,
            create_lock: Mutex::new(()),
            bus,
            seq: AtomicU64::new(0),
            counters: Counters::default(),
        };
        engine.restore_live_state()?;
        Ok(engine)
    }

    fn restore_live_state(&self) -> Result<(), EngineError> {
        let mut after: Option<TwinId> = None;
        loop {
            let page = self.store.twins(after.as_ref(), 1024, None);
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for record in &page {
                let live = self.rebuild_live(&record.id, self.model_or_default(&record.model))?;
                self.twins.insert(record.id.clone(), live);
            }
        }
        Ok(())
    }

    /// A twin's live state under `model`, rebuilt from its stored history.
    fn rebuild_live(&self, id: &TwinId, model: Arc<ModelDef>) -> Result<LiveTwin, EngineError> {
        let mut live = LiveTwin::new(model);
        let keys = self.store.series(id)?;
        live.add_series(keys.len());
        let mut signals: Vec<&SignalName> = keys.iter().map(|key| &key.signal).collect();
        signals.dedup();
        for signal in signals {
            self.rebuild_signal(&mut live, id, signal)?;
        }
        Ok(live)
    }

    /// Replays the newest point and the largest window's worth of history
    /// of every series of one signal into live state, from scratch: the
    /// store holds one point per series and time, so the result depends
    /// only on history.
    fn rebuild_signal(
        &self,
        live: &mut LiveTwin,
        twin: &TwinId,
        signal: &SignalName,
    ) -> Result<(), EngineError> {
        let Some(id) = self.signal_ids.id(signal) else {
            tracing::warn!(twin = %twin, signal = %signal, "signal name table is full; not kept live");
            return Ok(());
        };
        live.reset(id, signal);
        let mut query = RangeQuery {
            twin: twin.clone(),
            signal: signal.clone(),
            provenance: doppel_model::Provenance::none(),
            from: Timestamp::MIN,
            to: Timestamp::MAX,
        };
        let Some((_, newest)) = self.store.last(&query)? else { return Ok(()) };
        let longest = live.model.windows_for(signal).iter().map(|s| s.as_nanos()).max().unwrap_or(0);
        query.from = newest.time.add_nanos(-longest);
        query.to = newest.time.add_nanos(1);
        let mut points: Vec<(Timestamp, f64)> = Vec::new();
        for series in self.store.read(&query)? {
            points.extend(series.samples.iter().map(|s| (s.time, s.value.get())));
        }
        // In time order, so windows slide once and no point counts as late.
        points.sort_by_key(|(time, _)| *time);
        live.apply(id, signal, points.into_iter());
        Ok(())
    }

    fn model_or_default(&self, name: &str) -> Arc<ModelDef> {
        self.models.get(name).unwrap_or_else(|| {
            tracing::warn!(model = name, "model is no longer defined; using the default model");
            self.default_model.clone()
        })
    }

    /// Validates a whole batch against the ingest caps and its twins'
    /// models, writes it durably and applies it to live state. All or
    /// nothing: if any point is bad, every bad line is reported and nothing
    /// is written or registered (not even a name).
    pub fn ingest(&self, raw: RawBatch) -> Result<IngestReceipt, IngestError> {
        // Under overload the refusal comes first, before the batch costs
        // validation or creates its twins.
        self.store.check_head_room()?;
        let mut errors = self.limits.check_request(&raw, Timestamp::now());
        if !errors.is_empty() {
            return Err(self.reject(errors));
        }
        let (cap_errors, new_series) = self.check_twin_caps(&raw);
        errors.extend(cap_errors);
        let mut models: HashMap<TwinId, Arc<ModelDef>> = HashMap::new();
        let mut new_twins: Vec<TwinId> = Vec::new();
        let mut batch = Batch { series: Vec::with_capacity(raw.series.len()) };
        for series in raw.series {
            let model = match self.ingest_model(&series.key.twin, &mut models, &mut new_twins) {
                Ok(model) => model,
                Err(message) => {
                    errors.extend(series.samples.iter().map(|s| LineError::at_line(s.line, message.clone())));
                    continue;
                }
            };
            let mut samples = Vec::with_capacity(series.samples.len());
            for raw_sample in series.samples {
                match model.check(&series.key.signal, &raw_sample.value) {
                    Ok(value) => samples.push(Sample { time: raw_sample.time, value }),
                    Err(rejection) => errors.push(LineError::at_line(raw_sample.line, rejection.to_string())),
                }
            }
            batch.series.push(SeriesBatch { key: series.key, samples });
        }
        if !errors.is_empty() {
            return Err(self.reject(errors));
        }
        let twins_created = self.create_twins(new_twins)?;
        self.store.write(&batch)?;
        let points = batch.point_count();
        self.apply_live(&batch, &models, &new_series);
        self.counters.points.fetch_add(points as u64, Ordering::Relaxed);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        Ok(IngestReceipt { points, series: batch.series.len(), twins_created })
    }

    fn reject(&self, mut errors: Vec<LineError>) -> IngestError {
        errors.sort_by_key(|e| e.line);
        let truncated = errors.len() > MAX_REPORTED_ERRORS;
        errors.truncate(MAX_REPORTED_ERRORS);
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        IngestError::Rejected(ParseErrors { errors, truncated })
    }

    /// Refusals of series that would take a twin past its cap on distinct
    /// signals or series, and the number of new series per twin. Judged
    /// against what the twin held when the batch was validated, so batches
    /// racing for one twin's last places may pass it by their own size at
    /// most.
    fn check_twin_caps(&self, raw: &RawBatch) -> (Vec<LineError>, HashMap<TwinId, usize>) {
        let mut errors = Vec::new();
        // Per twin: the new signals and the number of new series this
        // batch brings (a batch holds each series once).
        let mut new: HashMap<&TwinId, (HashSet<&SignalName>, usize)> = HashMap::new();
        for series in &raw.series {
            let twin = &series.key.twin;
            let shard = self.twins.shard(twin).read();
            let live = shard.get(twin);
            let (signals, new_series) = new.entry(twin).or_default();
            let known_signal =
                live.zip(self.signal_ids.get(&series.key.signal)).is_some_and(|(t, id)| t.has_signal(id));
            if !known_signal && signals.insert(&series.key.signal) {
                let held = live.map_or(0, LiveTwin::signal_count);
                if held + signals.len() > self.limits.max_signals_per_twin {
                    errors.push(LineError::at_line(
                        series.samples.first().map_or(0, |s| s.line),
                        format!(
                            "signal {} would be distinct signal number {} of twin {twin}, above the limit of {} \
                             (max_signals_per_twin)",
                            series.key.signal,
                            held + signals.len(),
                            self.limits.max_signals_per_twin
                        ),
                    ));
                }
            }
            if live.is_none() || !self.store.holds_series(&series.key) {
                *new_series += 1;
                let held = live.map_or(0, LiveTwin::series_count);
                if held + *new_series > self.limits.max_series_per_twin {
                    errors.push(LineError::at_line(
                        series.samples.first().map_or(0, |s| s.line),
                        format!(
                            "series {} {} would be series number {} of twin {twin}, above the limit of {} \
                             (max_series_per_twin)",
                            series.key.signal,
                            series.key.provenance,
                            held + *new_series,
                            self.limits.max_series_per_twin
                        ),
                    ));
                }
            }
        }
        let counts = new.into_iter().map(|(twin, (_, series))| (twin.clone(), series)).collect();
        (errors, counts)
    }

    /// The model that validates a twin's points in this batch; records
    /// twins that must be created first.
    fn ingest_model(
        &self,
        twin: &TwinId,
        models: &mut HashMap<TwinId, Arc<ModelDef>>,
        new_twins: &mut Vec<TwinId>,
    ) -> Result<Arc<ModelDef>, String> {
        if let Some(model) = models.get(twin) {
            return Ok(model.clone());
        }
        let existing = self.twins.shard(twin).read().get(twin).map(|t| t.model.clone());
        let model = match existing {
            Some(model) => model,
            None if self.strict_twins => {
                return Err(format!(
                    "twin {twin} does not exist (strict mode: create it with PUT /api/v1/twins/{twin} first)"
                ));
            }
            None => {
                new_twins.push(twin.clone());
                self.default_model.clone()
            }
        };
        models.insert(twin.clone(), model.clone());
        Ok(model)
    }

    fn create_twins(&self, ids: Vec<TwinId>) -> Result<Vec<TwinId>, IngestError> {
        if ids.is_empty() {
            return Ok(ids);
        }
        let _guard = self.create_lock.lock();
        let now = Timestamp::now();
        let records: Vec<TwinRecord> = ids
            .into_iter()
            .filter(|id| !self.twins.contains(id))
            .map(|id| TwinRecord {
                id,
                model: self.default_model.name.clone(),
                properties: serde_json::Map::new(),
                created: now,
            })
            .collect();
        self.store.put_twins(&records)?;
        let mut created = Vec::with_capacity(records.len());
        for record in records {
            self.twins.insert(record.id.clone(), LiveTwin::new(self.default_model.clone()));
            self.publish(&record.id, EventKind::TwinCreated, EventBody::Twin { model: record.model });
            created.push(record.id);
        }
        Ok(created)
    }

    /// Applies an accepted (and durable) batch to live state, registering
    /// its signal names now that it is committed.
    fn apply_live(
        &self,
        batch: &Batch,
        models: &HashMap<TwinId, Arc<ModelDef>>,
        new_series: &HashMap<TwinId, usize>,
    ) {
        let publishing = self.bus.receiver_count() > 0;
        for run in batch.series.chunk_by(|a, b| a.key.twin == b.key.twin) {
            let twin = &run[0].key.twin;
            let ids: Vec<Option<u32>> =
                run.iter().map(|series| self.signal_ids.id(&series.key.signal)).collect();
            let mut shard = self.twins.shard(twin).write();
            let Some(live) = shard.get_mut(twin) else { continue };
            live.add_series(new_series.get(twin).copied().unwrap_or(0));
            live.add_signals(
                ids.iter().zip(run).filter_map(|(id, series)| Some(((*id)?, &series.key.signal))),
            );
            // One entry per signal: its id and the batch's new points.
            let mut signals: Vec<SignalPoints<'_>> = Vec::new();
            for (series, id) in run.iter().zip(&ids) {
                let Some(id) = *id else { continue };
                let points = last_per_time(&series.samples);
                match signals.iter_mut().find(|(known, _, _)| *known == id) {
                    Some((_, _, all)) => all.extend(points),
                    None => signals.push((id, &series.key.signal, points)),
                }
            }
            for (id, signal, mut points) in signals {
                if live.needs_rebuild(id, signal, points.iter().map(|(time, _)| *time)) {
                    if let Err(error) = self.rebuild_signal(live, twin, signal) {
                        tracing::warn!(twin = %twin, signal = %signal, %error, "cannot rebuild live state from history");
                    }
                    continue;
                }
                points.sort_by_key(|(time, _)| *time);
                live.apply(id, signal, points.into_iter());
            }
        }
        if !publishing {
            return;
        }
        let mut updates: HashMap<&TwinId, Vec<PointUpdate>> = HashMap::new();
        for series in &batch.series {
            let key = &series.key;
            let model = models.get(&key.twin);
            let list = updates.entry(&key.twin).or_default();
            list.extend(series.samples.iter().map(|sample| PointUpdate {
                signal: key.signal.clone(),
                provenance: key.provenance.clone(),
                time: sample.time,
                value: sample.value.get(),
                label: model.and_then(|m| m.label(&key.signal, sample.value)).map(str::to_owned),
            }));
        }
        for (twin, points) in updates {
            self.publish(twin, EventKind::Points, EventBody::Points { points });
        }
    }

    fn publish(&self, twin: &TwinId, kind: EventKind, body: EventBody) {
        if self.bus.receiver_count() == 0 {
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let event = Event { seq, twin: twin.clone(), kind, time: Timestamp::now(), body };
        if self.bus.send(Arc::new(event)).is_ok() {
            self.counters.events.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Creates a twin or replaces its model and properties. Returns the
    /// twin and whether it was created.
    pub fn put_twin(
        &self,
        id: &TwinId,
        model: Option<&str>,
        properties: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(TwinView, bool), EngineError> {
        let _guard = self.create_lock.lock();
        let existing = self.store.twin(id);
        let model_name = model
            .map(str::to_owned)
            .or_else(|| existing.as_ref().map(|t| t.model.clone()))
            .unwrap_or_else(|| self.default_model.name.clone());
        let model_def =
            self.models.get(&model_name).ok_or_else(|| unknown_model(&self.models, &model_name))?;
        model_def
            .check_properties(&properties)
            .map_err(|bad| EngineError::InvalidProperties(bad.iter().map(ToString::to_string).collect()))?;
        let created = existing.is_none();
        let record = TwinRecord {
            id: id.clone(),
            model: model_name.clone(),
            properties,
            created: existing.map_or_else(Timestamp::now, |t| t.created),
        };
        self.store.put_twin(&record)?;
        let same_model = self.model_of(id).is_some_and(|current| Arc::ptr_eq(&current, &model_def));
        if !same_model {
            // Windows follow the model's spans, so a new model means live
            // state rebuilt from history under it.
            let live = self.rebuild_live(id, model_def)?;
            self.twins.insert(id.clone(), live);
        }
        let kind = if created { EventKind::TwinCreated } else { EventKind::TwinUpdated };
        self.publish(id, kind, EventBody::Twin { model: model_name });
        let view = self.twin(id).ok_or_else(|| EngineError::UnknownTwin(id.clone()))?;
        Ok((view, created))
    }

    /// A twin's properties and live state.
    pub fn twin(&self, id: &TwinId) -> Option<TwinView> {
        let record = self.store.twin(id)?;
        let shard = self.twins.shard(id).read();
        let signals = shard.get(id).map(|live| signal_states(live, &self.signal_ids)).unwrap_or_default();
        Some(TwinView {
            id: record.id,
            model: record.model,
            created: record.created,
            properties: record.properties,
            signals,
        })
    }

    /// Deletes a twin and all its data. Returns false when it did not exist.
    pub fn delete_twin(&self, id: &TwinId) -> Result<bool, EngineError> {
        let _guard = self.create_lock.lock();
        let existed = self.store.delete_twin(id)?;
        self.twins.remove(id);
        if existed {
            self.publish(id, EventKind::TwinDeleted, EventBody::Deleted {});
        }
        Ok(existed)
    }

    /// Twins sorted by id, `limit` at a time after `after`, optionally of
    /// one model only.
    pub fn list_twins(&self, after: Option<&TwinId>, limit: usize, model: Option<&str>) -> Vec<TwinSummary> {
        self.store
            .twins(after, limit, model)
            .into_iter()
            .map(|r| TwinSummary { id: r.id, model: r.model, created: r.created })
            .collect()
    }

    /// Number of twins.
    pub fn twin_count(&self) -> usize {
        self.store.twin_count()
    }

    /// The model a twin uses.
    pub fn model_of(&self, id: &TwinId) -> Option<Arc<ModelDef>> {
        self.twins.shard(id).read().get(id).map(|t| t.model.clone())
    }

    /// The models twins may use.
    pub fn models(&self) -> &ModelRegistry {
        &self.models
    }

    /// Raw points of a twin's signal.
    pub fn read(&self, query: &RangeQuery) -> Result<Vec<SeriesData>, EngineError> {
        self.require_twin(&query.twin)?;
        Ok(self.store.read(query)?)
    }

    /// A lower bound on the raw points [`Engine::read`] of `query`
    /// returns, counted without reading any data (see
    /// [`Store::count_at_least`]).
    pub fn count_at_least(&self, query: &RangeQuery) -> Result<u64, EngineError> {
        self.require_twin(&query.twin)?;
        Ok(self.store.count_at_least(query)?)
    }

    /// Bucketed aggregates of a twin's signal.
    pub fn aggregate(
        &self,
        query: &RangeQuery,
        every: Option<Span>,
        aggs: &[Aggregate],
    ) -> Result<Vec<Bucket>, EngineError> {
        self.require_twin(&query.twin)?;
        Ok(self.store.aggregate(query, every, aggs)?)
    }

    fn require_twin(&self, id: &TwinId) -> Result<(), EngineError> {
        if self.twins.contains(id) { Ok(()) } else { Err(EngineError::UnknownTwin(id.clone())) }
    }

    /// A new subscription to every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.bus.subscribe()
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            twins: self.twins.len(),
            live_signals: self.twins.live_signals(),
            points_ingested: self.counters.points.load(Ordering::Relaxed),
            batches_ingested: self.counters.batches.load(Ordering::Relaxed),
            batches_rejected: self.counters.rejected.load(Ordering::Relaxed),
            events_published: self.counters.events.load(Ordering::Relaxed),
            subscribers: self.bus.receiver_count(),
            store: self.store.stats(),
        }
    }

    /// The store underneath, for maintenance and statistics.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Moves recent data from the WAL-backed head into compressed segments.
    pub fn flush(&self) -> Result<(), EngineError> {
        self.store.flush()?;
        Ok(())
    }
}

/// A signal's id, name and new points in one batch.
type SignalPoints<'a> = (u32, &'a SignalName, Vec<(Timestamp, f64)>);

/// The samples of one series as history keeps them: one per time, the
/// later of a batch's duplicates winning.
fn last_per_time(samples: &[Sample]) -> Vec<(Timestamp, f64)> {
    let mut points: Vec<(Timestamp, f64)> = samples.iter().map(|s| (s.time, s.value.get())).collect();
    if points.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return points;
    }
    // Stable, so duplicates keep their arrival order and the last is kept.
    points.sort_by_key(|(time, _)| *time);
    let mut kept: Vec<(Timestamp, f64)> = Vec::with_capacity(points.len());
    for point in points {
        match kept.last_mut() {
            Some(last) if last.0 == point.0 => *last = point,
            _ => kept.push(point),
        }
    }
    kept
}

fn signal_states(live: &LiveTwin, names: &SignalIds) -> Vec<SignalState> {
    let mut states: Vec<SignalState> = live
        .snapshot(names)
        .into_iter()
        .map(|(signal, s)| {
            let def = live.model.signal(&signal);
            let label =
                doppel_model::Value::new(s.last_value).ok().and_then(|v| live.model.label(&signal, v));
            SignalState {
                unit: def.map(|d| d.unit.clone()).filter(|u| !u.is_empty()),
                last_time: s.last_time,
                last_value: s.last_value,
                label: label.map(str::to_owned),
                windows: s
                    .windows
                    .into_iter()
                    .map(|(window, summary)| WindowStats {
                        window,
                        count: summary.count,
                        mean: summary.mean,
                        min: summary.min,
                        max: summary.max,
                        std: summary.std,
                    })
                    .collect(),
                signal,
            }
        })
        .collect();
    states.sort_by(|a, b| a.signal.cmp(&b.signal));
    states
}

/// The store's retention: what the configuration says per signal, then
/// what models say of the signals they define, then the configured
/// default. Retention is applied by signal name, so when several models
/// define one signal the longest of their retentions applies, and a model
/// that keeps it forever keeps it forever for all: no twin loses data
/// earlier than its own model promises.
pub(crate) fn retention_with_models(configured: &RetentionPolicy, models: &ModelRegistry) -> RetentionPolicy {
    let mut from_models: HashMap<SignalName, Option<Span>> = HashMap::new();
    for name in models.names() {
        let Some(model) = models.get(name) else { continue };
        for signal in model.signals.keys() {
            let span = model.retention_for(signal);
            from_models
                .entry(signal.clone())
                .and_modify(|kept| *kept = kept.zip(span).map(|(a, b)| a.max(b)))
                .or_insert(span);
        }
    }
    let mut policy = configured.clone();
    for (signal, span) in from_models {
        if let Some(span) = span {
            policy.per_signal.entry(signal).or_insert(span);
        }
    }
    policy
}

fn unknown_model(models: &ModelRegistry, name: &str) -> EngineError {
    EngineError::UnknownModel { name: name.to_owned(), known: models.names().join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(toml: &str) -> ModelDef {
        ModelDef::from_toml(toml).unwrap()
    }

    #[test]
    fn models_fill_in_retention_the_configuration_leaves_open() {
        let mut models = ModelRegistry::empty();
        models
            .insert(model(
                "name = \"a\"\n[signals.heart_rate]\nunit = \"bpm\"\nkind = \"gauge\"\nretention = \"90d\"\n\
                 [signals.steps]\nunit = \"count\"\nkind = \"counter\"\nretention = \"30d\"\n\
                 [signals.weight]\nunit = \"kg\"\nkind = \"gauge\"\nretention = \"10d\"\n",
            ))
            .unwrap();
        models
            .insert(model(
                "name = \"b\"\n[signals.heart_rate]\nunit = \"bpm\"\nkind = \"gauge\"\nretention = \"400d\"\n\
                 [signals.weight]\nunit = \"kg\"\nkind = \"gauge\"\n",
            ))
            .unwrap();
        let mut configured = RetentionPolicy::default();
        configured.per_signal.insert(SignalName::new("steps").unwrap(), "7d".parse().unwrap());
        let policy = retention_with_models(&configured, &models);
        let get = |s: &str| policy.per_signal.get(&SignalName::new(s).unwrap()).copied();
        assert_eq!(get("heart_rate"), Some("400d".parse().unwrap()), "the longest model retention wins");
        assert_eq!(get("steps"), Some("7d".parse().unwrap()), "configuration wins over models");
        assert_eq!(get("weight"), None, "a model keeping a signal forever keeps it for all");
        assert_eq!(policy.default, None);
    }
}
