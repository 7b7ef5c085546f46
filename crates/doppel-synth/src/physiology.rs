//! The published relations the generator follows, as small pure functions.
//!
//! Each constant names its source. The numbers are population-level
//! approximations chosen to land inside the published ranges; they are not
//! fitted models of any one study. `docs/synthetic-population.md` lists the
//! same sources.

/// Mean nightly resting heart rate of adult wearable users, bpm: 65.5 in
/// Quer et al. 2020 (PLOS ONE 15:e0227709, 92,457 Fitbit users). Clinic
/// seated values are higher, about 72 bpm (Ostchega et al. 2011, NHSR 41).
pub const RESTING_HR_MEAN_BPM: f64 = 65.5;
/// Women's resting heart rate is a few bpm above men's (Ostchega et al. 2011;
/// Quer et al. 2020).
pub const RESTING_HR_FEMALE_EXTRA_BPM: f64 = 2.5;
/// Resting heart rate spread between the least and most fit person (fitness
/// 0 → 1): endurance-trained adults sit 10–20 bpm below sedentary ones.
pub const RESTING_HR_FITNESS_SPAN_BPM: f64 = 16.0;

/// Age-predicted maximal heart rate, bpm (Tanaka, Monahan and Seals 2001,
/// J Am Coll Cardiol 37:153: 208 − 0.7 × age).
pub fn max_heart_rate_bpm(age_years: f64) -> f64 {
    208.0 - 0.7 * age_years
}

/// Nightly RMSSD of a healthy adult at `age_years` with `resting_hr_bpm`,
/// before individual variation. Short-term RMSSD norms centre near 42 ms
/// (Nunan et al. 2010, PACE 33:1407) and fall with age, roughly halving from
/// the 20s to the 60s (Umetani et al. 1998, J Am Coll Cardiol 31:593); a
/// higher resting heart rate goes with lower vagal HRV.
pub fn typical_rmssd_ms(age_years: f64, resting_hr_bpm: f64) -> f64 {
    const RMSSD_AT_30_MS: f64 = 52.0;
    const LOG_DECLINE_PER_YEAR: f64 = 0.018;
    const LOG_DECLINE_PER_BPM: f64 = 0.02;
    RMSSD_AT_30_MS
        * (-LOG_DECLINE_PER_YEAR * (age_years - 30.0)).exp()
        * (-LOG_DECLINE_PER_BPM * (resting_hr_bpm - RESTING_HR_MEAN_BPM)).exp()
}

/// Median daily steps of adults: 7,000–8,000 (Tudor-Locke et al. 2011, Int J
/// Behav Nutr Phys Act 8:79, "How many steps/day are enough? for adults";
/// healthy adults range about 4,000–18,000).
pub const DAILY_STEPS_MEDIAN: f64 = 7_500.0;
/// Weekend days carry fewer steps than weekdays (Tudor-Locke et al. 2011).
pub const WEEKEND_STEPS_FACTOR: f64 = 0.85;

/// Amplitude of the circadian heart-rate rhythm, bpm. The endogenous
/// component is a few bpm with its trough in the biological night
/// (Vandewalle et al. 2007, J Sleep Res 16:148).
pub const CIRCADIAN_HR_AMPLITUDE_BPM: f64 = 3.0;
/// Hours from mid-sleep to the circadian heart-rate trough; it sits near the
/// core-temperature minimum, late in the sleep period.
pub const CIRCADIAN_NADIR_AFTER_MID_SLEEP_H: f64 = 1.5;

/// Heart rate while awake and sedentary above the nightly resting rate.
pub const AWAKE_SEDENTARY_ABOVE_RESTING_BPM: f64 = 9.0;
/// Heart rate in each stage relative to the nightly resting rate: slow-wave
/// sleep is the lowest and most regular, REM is higher and variable
/// (Somers et al. 1993, N Engl J Med 328:303).
pub fn sleep_stage_hr_offset_bpm(stage: crate::SleepStage) -> f64 {
    match stage {
        crate::SleepStage::Awake => 5.0,
        crate::SleepStage::Light => -1.0,
        crate::SleepStage::Deep => -3.5,
        crate::SleepStage::Rem => 1.5,
    }
}

/// Fraction of heart-rate reserve used when walking at `cadence_spm` steps
/// per minute. About 100 steps/min marks moderate intensity, roughly 3 METs
/// (Tudor-Locke et al. 2018, Br J Sports Med 52:776, narrative review).
pub fn walking_hr_reserve_fraction(cadence_spm: f64) -> f64 {
    (0.33 * (cadence_spm / 105.0).powi(2)).min(0.9)
}

/// METs of walking at `cadence_spm`: about 3 METs at 100 steps/min and 6 at
/// 130 (Tudor-Locke et al. 2018), light activity below.
pub fn walking_mets(cadence_spm: f64) -> f64 {
    if cadence_spm >= 100.0 { 3.0 + 0.1 * (cadence_spm - 100.0) } else { 1.3 + 0.017 * cadence_spm }
}

/// METs of an awake minute without steps: sitting, standing, small moves.
pub const AWAKE_SEDENTARY_METS: f64 = 1.3;

/// Active (above-resting) kcal per minute at `mets` for `weight_kg`: the
/// ACSM equation, kcal/min = METs × 3.5 × kg / 200, less the 1 MET of rest.
pub fn active_kcal_per_min(mets: f64, weight_kg: f64) -> f64 {
    (mets - 1.0).max(0.0) * 3.5 * weight_kg / 200.0
}

/// Typical METs and fraction of heart-rate reserve of a workout at
/// intensity factor 0.75 (Compendium of Physical Activities, Ainsworth et
/// al. 2011, Med Sci Sports Exerc 43:1575). Both scale with the intensity
/// factor.
pub fn workout_mets_and_hr_reserve(kind: crate::WorkoutKind) -> (f64, f64) {
    use crate::WorkoutKind as W;
    match kind {
        W::None => (1.0, 0.0),
        W::Walk => (4.3, 0.45),
        W::Run => (9.8, 0.75),
        W::Cycle => (8.0, 0.68),
        W::Swim => (7.0, 0.65),
        W::Strength => (5.0, 0.5),
        W::Other => (6.0, 0.6),
    }
}

/// TSS of a workout: hours × IF² × 100 (Coggan's training stress score).
pub fn training_stress_score(duration_min: f64, intensity_factor: f64) -> f64 {
    duration_min / 60.0 * intensity_factor * intensity_factor * 100.0
}

/// Time constant of acute training load, days (Banister's fatigue term; 7
/// days is the customary ATL constant).
pub const ACUTE_LOAD_TIME_CONSTANT_DAYS: f64 = 7.0;
/// Resting heart rate rise per TSS/day of acute load above habit. Functional
/// overreaching raises morning heart rate slightly and lowers RMSSD (Plews et
/// al. 2013, Sports Med 43:773): +1–3 bpm and −10–20 % at a sustained excess
/// of 50–70 TSS/day.
pub const RHR_RISE_PER_EXCESS_LOAD_BPM: f64 = 0.035;
/// Log-RMSSD drop per TSS/day of acute load above habit (Plews et al. 2013).
pub const LOG_RMSSD_DROP_PER_EXCESS_LOAD: f64 = 0.0035;

/// Share of each 90-minute cycle spent in REM, first cycle to last: REM
/// episodes lengthen across the night and total about 20–25 % of sleep
/// (Carskadon and Dement, Principles and Practice of Sleep Medicine; Ohayon et
/// al. 2004, Sleep 27:1255).
pub const REM_SHARE_BY_CYCLE: [f64; 6] = [0.10, 0.18, 0.25, 0.30, 0.33, 0.35];
/// Share of each cycle in slow-wave sleep, first cycle to last, for a young
/// adult: N3 is concentrated in the first two cycles.
pub const DEEP_SHARE_BY_CYCLE: [f64; 6] = [0.36, 0.24, 0.10, 0.04, 0.02, 0.02];
/// Mean length of a NREM–REM cycle, minutes.
pub const SLEEP_CYCLE_MIN: f64 = 90.0;

/// Scale on slow-wave sleep at `age_years`: N3 falls from about 20 % of
/// sleep in young adults to under 10 % after 60 (Ohayon et al. 2004).
pub fn deep_sleep_age_factor(age_years: f64) -> f64 {
    (1.25 - 0.011 * (age_years - 20.0)).clamp(0.5, 1.3)
}

/// Mid-sleep on workdays, hours after midnight, for chronotype 0. Population
/// mid-sleep on free days centres near 04:00 and workdays run about an hour
/// earlier (Roenneberg et al. 2007, Sleep Med Rev 11:429; Wittmann et al.
/// 2006, Chronobiol Int 23:497).
pub const WORKDAY_MID_SLEEP_H: f64 = 3.1;

/// Social jet lag (free-day minus workday mid-sleep), hours, for a person of
/// chronotype `chronotype_h`: about 1 h on average and larger for late types
/// (Wittmann et al. 2006).
pub fn social_jet_lag_h(chronotype_h: f64) -> f64 {
    (0.9 + 0.35 * chronotype_h).clamp(0.0, 2.5)
}

/// Systolic and diastolic pressure, mmHg, typical for age, sex and BMI:
/// systolic rises steadily with age, diastolic rises until about 50–60 and
/// then falls (Franklin et al. 1997, Circulation 96:308, Framingham); men run
/// a few mmHg higher; both rise with BMI.
pub fn typical_blood_pressure_mm_hg(age_years: f64, male: bool, bmi: f64) -> (f64, f64) {
    let sex = if male { 1.0 } else { 0.0 };
    let systolic = 108.0 + 0.45 * (age_years - 20.0) + 5.0 * sex + 0.6 * (bmi - 25.0);
    let diastolic = 70.0 + 0.25 * (age_years.min(55.0) - 20.0) - 0.25 * (age_years - 60.0).max(0.0)
        + 3.0 * sex
        + 0.4 * (bmi - 25.0);
    (systolic, diastolic)
}

/// Adult height, cm, mean and sd by sex (NCD-RisC 2016, eLife 5:e13410, high-income countries).
pub fn height_cm_mean_sd(male: bool) -> (f64, f64) {
    if male { (177.0, 7.0) } else { (163.5, 6.5) }
}

/// Fraction of the planted illness amplitude present `into_episode` of the
/// way from start (0) to end (1): a linear rise over the first fifth, a
/// plateau, a slower fall over the last third. Zero outside the episode.
pub fn illness_time_course(into_episode: f64) -> f64 {
    const RISE: f64 = 0.2;
    const FALL: f64 = 0.3;
    if !(0.0..1.0).contains(&into_episode) {
        0.0
    } else if into_episode < RISE {
        into_episode / RISE
    } else if into_episode > 1.0 - FALL {
        (1.0 - into_episode) / FALL
    } else {
        1.0
    }
}

/// Respiratory rate rise at full illness, breaths/min: respiratory rate
/// rises during infection, which is what made it a COVID-19 marker (Miller
/// et al. 2020, PLOS ONE 15:e0243693).
pub const ILLNESS_RESPIRATORY_RISE_PER_MIN: f64 = 2.0;
/// Log-RMSSD drop at full illness: HRV falls in infection (Hirten et al. 2021,
/// J Med Internet Res 23:e26107).
pub const ILLNESS_LOG_RMSSD_DROP: f64 = 0.3;
/// Extra sleep at full illness, hours (Mishra et al. 2020, Nat Biomed Eng
/// 4:1208, saw sleep lengthen alongside the heart-rate rise).
pub const ILLNESS_EXTRA_SLEEP_H: f64 = 1.0;
/// Fraction of usual steps lost at full illness (Mishra et al. 2020: steps
/// fall as resting heart rate rises).
pub const ILLNESS_STEPS_LOSS: f64 = 0.6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illness_course_rises_plateaus_and_falls() {
        assert_eq!(illness_time_course(-0.1), 0.0);
        assert_eq!(illness_time_course(0.0), 0.0);
        assert!((illness_time_course(0.1) - 0.5).abs() < 1e-9);
        assert_eq!(illness_time_course(0.5), 1.0);
        assert!((illness_time_course(0.85) - 0.5).abs() < 1e-9);
        assert_eq!(illness_time_course(1.0), 0.0);
    }

    #[test]
    fn rmssd_falls_with_age_and_resting_rate() {
        assert!(typical_rmssd_ms(25.0, 65.0) > typical_rmssd_ms(60.0, 65.0));
        assert!(typical_rmssd_ms(40.0, 55.0) > typical_rmssd_ms(40.0, 75.0));
        let mid_life = typical_rmssd_ms(45.0, RESTING_HR_MEAN_BPM);
        assert!((35.0..50.0).contains(&mid_life), "{mid_life}");
    }

    #[test]
    fn walking_at_100_spm_is_about_3_mets() {
        assert!((walking_mets(100.0) - 3.0).abs() < 1e-9);
        assert!((walking_mets(130.0) - 6.0).abs() < 1e-9);
        assert!(walking_mets(40.0) < 2.5);
    }

    #[test]
    fn hour_at_intensity_factor_one_is_100_tss() {
        assert!((training_stress_score(60.0, 1.0) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn blood_pressure_follows_framingham_shape() {
        let (s30, d30) = typical_blood_pressure_mm_hg(30.0, false, 25.0);
        let (s70, d70) = typical_blood_pressure_mm_hg(70.0, false, 25.0);
        let (_, d55) = typical_blood_pressure_mm_hg(55.0, false, 25.0);
        assert!(s70 > s30 + 10.0);
        assert!(d55 > d30 && d70 < d55);
    }
}
