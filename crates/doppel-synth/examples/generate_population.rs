//! Measures generation speed: the demo's population (1,000 people × 30 days
//! by default) generated person by person, as the CLI does, counting points
//! per signal. Run with `cargo run --release -p doppel-synth --example
//! generate_population [people] [days]`.

use std::time::Instant;

use doppel_synth::{PersonSimulator, Population, PopulationConfig, Signal};

fn main() {
    let mut args = std::env::args().skip(1);
    let people = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let days = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let config = PopulationConfig { people, days, ..PopulationConfig::default() };

    let started = Instant::now();
    let population = Population::generate(&config);
    let profiles_s = started.elapsed().as_secs_f64();

    let mut per_signal = [0usize; Signal::ALL.len()];
    let mut total = 0usize;
    let mut points = Vec::new();
    let mut simulate_s = 0.0;
    for profile in &population.people {
        let simulating = Instant::now();
        let mut simulator = PersonSimulator::new(profile, config.seed);
        points.clear();
        simulator.advance(config.history_end(), &mut points);
        simulate_s += simulating.elapsed().as_secs_f64();
        total += points.len();
        // Counting is kept out of the timing.
        let mut last: Option<(&str, usize)> = None;
        for point in &points {
            let name = point.signal.as_str();
            let index = match last {
                Some((last_name, index)) if last_name == name => index,
                _ => Signal::from_name(name).map_or(0, |signal| signal as usize),
            };
            per_signal[index] += 1;
            last = Some((name, index));
        }
    }

    println!("{people} people × {days} days: profiles in {profiles_s:.3} s");
    println!(
        "points: {total} in {simulate_s:.2} s on one thread = {:.1} M points/s",
        total as f64 / simulate_s / 1e6
    );
    println!("per person-day: {:.0}", total as f64 / (people.max(1) as f64 * f64::from(days.max(1))));
    for (signal, count) in Signal::ALL.iter().zip(per_signal) {
        println!("  {:<26} {count:>12}", signal.name());
    }
}
