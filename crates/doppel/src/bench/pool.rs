//! The ingest workload as a stream of request bodies long enough for any
//! run length: a synthetic population simulated once for a few days (the
//! pool), then replayed day after day with its timestamps moved forward,
//! so a run of 30 s or more needs neither gigabytes of bodies in memory
//! nor a simulator competing with the server for the cores.
//!
//! Bodies come in two shapes, as real clients send them:
//! - [`Shape::Person`]: one person's day per request, sent with that
//!   person's own credential — a phone or an app uploading.
//! - [`Shape::Gateway`]: an hour of many people per request, cut every
//!   `batch_lines` lines — a gateway or Telegraf forwarding what its
//!   devices sent.
//!
//! Step `i` of a stream always renders the same bytes, so every system
//! receives the same sequence; a faster system simply gets further.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use clap::ValueEnum;
use doppel_model::{Point, Timestamp, TwinId};
use doppel_protocols::line_protocol::encode_point;
use doppel_synth::{PersonSimulator, Population, PopulationConfig};
use indicatif::ProgressBar;

use super::workload::{NANOS_PER_DAY, QUERY_SIGNAL};

/// Nanoseconds per hour: the gateway shape's slice of a day.
const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

/// How requests group points.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Shape {
    /// One person's day per request, with that person's credential.
    Person,
    /// An hour of many people per request, with one gateway credential.
    Gateway,
}

impl Shape {
    /// The name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Gateway => "gateway",
        }
    }

    /// What the shape stands for, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Person => "one person's day per request, each person with their own token",
            Self::Gateway => "an hour of many people per request, one gateway token",
        }
    }
}

/// One line of the pool: where its text ends and when it happens.
#[derive(Clone, Copy, Debug)]
struct Line {
    /// End of the line's text in [`Pool::text`] (its start is the previous
    /// line's end): everything up to and including the space before the
    /// timestamp.
    end: usize,
    /// Time since midnight of its pool day.
    offset_ns: i64,
    /// Whether it is a [`QUERY_SIGNAL`] point.
    query: bool,
}

/// Part of one pool chunk: a range of its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Piece {
    chunk: usize,
    lines: Range<usize>,
}

/// One request body of a round, before its timestamps are placed.
#[derive(Clone, Debug)]
struct Template {
    /// Day of the pool the lines come from.
    pool_day: u32,
    /// Index of the person whose credential sends it ([`Shape::Person`]).
    person: Option<usize>,
    pieces: Vec<Piece>,
}

/// A rendered body and what it holds.
#[derive(Clone, Debug)]
pub struct Body {
    /// Line protocol, nanosecond timestamps.
    pub bytes: Bytes,
    /// The person whose credential sends it, for [`Shape::Person`].
    pub person: Option<usize>,
    /// Points (lines).
    pub points: u64,
    /// Points of [`QUERY_SIGNAL`].
    pub query_points: u64,
    /// Day of the stream (0 = the first) its points fall on.
    pub day: u32,
}

/// A population's days, ready to be replayed in either shape.
pub struct Pool {
    twins: Vec<TwinId>,
    pool_days: u32,
    /// Line prefixes, back to back.
    text: String,
    lines: Vec<Line>,
    /// Lines of each (pool day, person), in time order: index
    /// `day * people + person`.
    chunks: Vec<Range<usize>>,
}

impl Pool {
    /// Simulates `config.people` people for `config.days` days with
    /// doppel-synth (people in parallel, each independently seeded, so the
    /// pool does not depend on the thread count).
    pub fn generate(config: &PopulationConfig, progress: &ProgressBar) -> Result<Pool> {
        if config.people == 0 || config.days == 0 {
            bail!("the pool needs at least one person and one day");
        }
        let population = Population::generate(config);
        let start = config.start.as_nanos();
        let end = config.history_end();
        let people = population.people.len();
        let slots: Vec<Mutex<Option<Vec<Point>>>> = (0..people).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(people);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(profile) = population.people.get(index) else { break };
                        let mut points = Vec::new();
                        PersonSimulator::new(profile, config.seed).advance(end, &mut points);
                        points.sort_by_key(|p| p.time);
                        if let Ok(mut slot) = slots[index].lock() {
                            *slot = Some(points);
                        }
                        progress.inc(1);
                    }
                });
            }
        });
        let mut pool = Pool {
            twins: population.people.iter().map(|p| p.id.clone()).collect(),
            pool_days: config.days,
            text: String::new(),
            lines: Vec::new(),
            chunks: vec![0..0; people * config.days as usize],
        };
        let mut line = String::new();
        for (person, slot) in slots.into_iter().enumerate() {
            let points = slot
                .into_inner()
                .ok()
                .flatten()
                .ok_or_else(|| anyhow!("a generator thread failed; no points for one person"))?;
            let mut day_start = 0usize;
            for day in 0..config.days {
                let begin = pool.lines.len();
                let day_end_ns = start + i64::from(day + 1) * NANOS_PER_DAY;
                let count = points[day_start..].partition_point(|p| p.time.as_nanos() < day_end_ns);
                for point in &points[day_start..day_start + count] {
                    line.clear();
                    encode_point(&mut line, point);
                    let prefix =
                        line.trim_end_matches('\n').rsplit_once(' ').map_or("", |(prefix, _)| prefix);
                    pool.text.push_str(prefix);
                    pool.text.push(' ');
                    pool.lines.push(Line {
                        end: pool.text.len(),
                        offset_ns: point.time.as_nanos() - (start + i64::from(day) * NANOS_PER_DAY),
                        query: point.signal.as_str() == QUERY_SIGNAL,
                    });
                }
                day_start += count;
                pool.chunks[day as usize * people + person] = begin..pool.lines.len();
            }
        }
        Ok(pool)
    }

    /// The twins, in person order.
    pub fn twins(&self) -> &[TwinId] {
        &self.twins
    }

    /// The people who have [`QUERY_SIGNAL`] points on every pool day (the
    /// others wear no heart-rate sensor, or not every day), so that every
    /// timed query has data to answer with.
    pub fn query_people(&self) -> Vec<usize> {
        let people = self.twins.len();
        (0..people)
            .filter(|&person| {
                (0..self.pool_days as usize)
                    .all(|day| self.lines[self.chunks[day * people + person].clone()].iter().any(|l| l.query))
            })
            .collect()
    }

    /// Points in one replay of the pool.
    pub fn points_per_round(&self) -> u64 {
        self.lines.len() as u64
    }

    /// Days in one replay of the pool.
    pub fn days(&self) -> u32 {
        self.pool_days
    }

    /// One round (every pool day once) of bodies in `shape`.
    fn round(&self, shape: Shape, batch_lines: usize) -> Vec<Template> {
        let people = self.twins.len();
        let mut round = Vec::new();
        for pool_day in 0..self.pool_days {
            let chunk_of = |person: usize| pool_day as usize * people + person;
            match shape {
                // A person-day without points (a device left at home) sends nothing.
                Shape::Person => {
                    round.extend((0..people).filter(|&person| !self.chunks[chunk_of(person)].is_empty()).map(
                        |person| Template {
                            pool_day,
                            person: Some(person),
                            pieces: vec![Piece {
                                chunk: chunk_of(person),
                                lines: self.chunks[chunk_of(person)].clone(),
                            }],
                        },
                    ))
                }
                Shape::Gateway => {
                    let mut body = Template { pool_day, person: None, pieces: Vec::new() };
                    let mut body_lines = 0usize;
                    for hour in 0..24 {
                        for person in 0..people {
                            let chunk = &self.chunks[chunk_of(person)];
                            let lines = &self.lines[chunk.clone()];
                            let before =
                                |end: i64| chunk.start + lines.partition_point(|l| l.offset_ns < end);
                            let (from, to) =
                                (before(hour * NANOS_PER_HOUR), before((hour + 1) * NANOS_PER_HOUR));
                            let mut at = from;
                            while at < to {
                                let take = (to - at).min(batch_lines - body_lines);
                                body.pieces.push(Piece { chunk: chunk_of(person), lines: at..at + take });
                                body_lines += take;
                                at += take;
                                if body_lines == batch_lines {
                                    round.push(std::mem::replace(
                                        &mut body,
                                        Template { pool_day, person: None, pieces: Vec::new() },
                                    ));
                                    body_lines = 0;
                                }
                            }
                        }
                    }
                    if body_lines > 0 {
                        round.push(body);
                    }
                }
            }
        }
        round
    }
}

/// The bodies of one shape, replayed from a pool, starting at `start`
/// (a midnight) and ending after `max_days` days.
pub struct Stream<'a> {
    pool: &'a Pool,
    round: Vec<Template>,
    start: Timestamp,
    max_days: u32,
}

impl<'a> Stream<'a> {
    /// The stream of `shape` bodies of at most `batch_lines` lines (the
    /// person shape sends whole person-days, whatever their length).
    pub fn new(pool: &'a Pool, shape: Shape, batch_lines: usize, start: Timestamp, max_days: u32) -> Self {
        Stream { pool, round: pool.round(shape, batch_lines.max(1)), start, max_days }
    }

    /// First instant of the stream.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// The first instant after day `days` of the stream.
    pub fn end_of_day(&self, days: u32) -> Timestamp {
        self.start.add_nanos(i64::from(days) * NANOS_PER_DAY)
    }

    /// Body `step`; `None` once the stream has run past its last day.
    pub fn body(&self, step: usize) -> Option<Body> {
        let per_round = self.round.len();
        let template = self.round.get(step % per_round.max(1))?;
        let round = u32::try_from(step / per_round).ok()?;
        let day = round.checked_mul(self.pool.pool_days)?.checked_add(template.pool_day)?;
        if day >= self.max_days {
            return None;
        }
        let midnight = self.end_of_day(day).as_nanos();
        let lines: usize = template.pieces.iter().map(|p| p.lines.len()).sum();
        let mut bytes = Vec::with_capacity(lines * 80);
        let (mut points, mut query_points) = (0u64, 0u64);
        let mut digits = [0u8; 20];
        for piece in &template.pieces {
            for index in piece.lines.clone() {
                let line = self.pool.lines[index];
                let begin = if index == 0 { 0 } else { self.pool.lines[index - 1].end };
                bytes.extend_from_slice(&self.pool.text.as_bytes()[begin..line.end]);
                bytes.extend_from_slice(format_i64(&mut digits, midnight + line.offset_ns));
                bytes.push(b'\n');
                points += 1;
                query_points += u64::from(line.query);
            }
        }
        Some(Body { bytes: Bytes::from(bytes), person: template.person, points, query_points, day })
    }
}

/// `value` in decimal, written at the end of `buffer`.
fn format_i64(buffer: &mut [u8; 20], value: i64) -> &[u8] {
    let negative = value < 0;
    let mut rest = value.unsigned_abs();
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::Precision;

    fn pool(people: usize, days: u32) -> Pool {
        let config = PopulationConfig {
            people,
            days,
            seed: 3,
            start: Timestamp::from_nanos(10 * NANOS_PER_DAY),
            ..PopulationConfig::default()
        };
        Pool::generate(&config, &ProgressBar::hidden()).unwrap()
    }

    /// (twin, signal, time) of every point of `body`, through the real parser.
    fn parse(body: &Body) -> Vec<(String, String, i64)> {
        let batch =
            doppel_protocols::line_protocol::parse(&body.bytes, Precision::Ns, Timestamp::from_secs(0))
                .unwrap();
        let mut points = Vec::new();
        for series in batch.series {
            for sample in series.samples {
                points.push((
                    series.key.twin.to_string(),
                    series.key.signal.to_string(),
                    sample.time.as_nanos(),
                ));
            }
        }
        points.sort();
        points
    }

    #[test]
    fn both_shapes_carry_the_same_points_per_round_and_count_them() {
        let pool = pool(3, 2);
        let start = Timestamp::from_nanos(100 * NANOS_PER_DAY);
        let mut seen = Vec::new();
        for shape in [Shape::Person, Shape::Gateway] {
            let stream = Stream::new(&pool, shape, 500, start, 2);
            let (mut all, mut points, mut query) = (Vec::new(), 0, 0);
            let mut step = 0;
            while let Some(body) = stream.body(step) {
                let parsed = parse(&body);
                assert_eq!(parsed.len() as u64, body.points);
                let in_query = parsed.iter().filter(|(_, signal, _)| signal == QUERY_SIGNAL).count();
                assert_eq!(in_query as u64, body.query_points);
                let (day_from, day_to) =
                    (stream.end_of_day(body.day).as_nanos(), stream.end_of_day(body.day + 1).as_nanos());
                assert!(parsed.iter().all(|(_, _, t)| (day_from..day_to).contains(t)), "{shape:?}");
                match shape {
                    Shape::Person => {
                        let owner = pool.twins()[body.person.unwrap()].to_string();
                        assert!(parsed.iter().all(|(twin, _, _)| *twin == owner));
                    }
                    Shape::Gateway => assert!(body.points <= 500 && body.person.is_none()),
                }
                assert!(body.points > 0, "no empty bodies: a server refuses them");
                points += body.points;
                query += body.query_points;
                all.extend(parsed);
                step += 1;
            }
            assert_eq!(points, pool.points_per_round());
            assert!(query > 0 && query < points);
            all.sort();
            seen.push(all);
        }
        assert_eq!(seen[0], seen[1], "the shapes cut the same points differently");
    }

    #[test]
    fn gateway_bodies_hold_many_people_and_replays_move_forward_by_the_pool_length() {
        let pool = pool(4, 1);
        let start = Timestamp::from_nanos(50 * NANOS_PER_DAY);
        let stream = Stream::new(&pool, Shape::Gateway, 100_000, start, 3);
        let first = parse(&stream.body(0).unwrap());
        let twins: std::collections::BTreeSet<&String> = first.iter().map(|(twin, _, _)| twin).collect();
        assert_eq!(twins.len(), 4, "an hour of every person in one body");
        let per_round = stream.round.len();
        let replay = stream.body(per_round).unwrap();
        assert_eq!(replay.day, 1);
        let moved: Vec<_> = parse(&replay).into_iter().map(|(a, b, t)| (a, b, t - NANOS_PER_DAY)).collect();
        assert_eq!(moved, first);
        assert!(stream.body(3 * per_round).is_none(), "the stream ends after max_days");
    }

    #[test]
    fn integers_format_as_decimal() {
        let mut buffer = [0u8; 20];
        for value in [0, 7, -7, 1_700_000_000_000_000_000, i64::MIN, i64::MAX] {
            assert_eq!(format_i64(&mut buffer, value), value.to_string().as_bytes());
        }
    }
}
