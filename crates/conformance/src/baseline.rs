//! The regression gate: recorded pass rates per profile and category, and the check that a
//! run hasn't dropped below them.
//!
//! The baseline is TOML, one table per profile (`["exact-portable/1"]`), one key per category.
//! Rates are recorded rounded down to four decimals, so the run that recorded them passes.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};

use crate::report::CategoryStats;

/// Minimum pass rate per category.
pub type Rates = BTreeMap<String, f64>;

/// Recorded rates, per profile name.
pub type Baseline = BTreeMap<String, Rates>;

const HEADER: &str = "\
# Pass rates of ONNX's backend tests under each engine profile, per category: the floor that
# `vouch-conformance --baseline` holds a run to. Written by `vouch-conformance --write-baseline`;
# see docs/conformance.md for the command, the onnx version and the measured rates.
";

/// Reads a baseline file.
pub fn read(path: &Path) -> Result<Baseline> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Records `stats` (the `all` row excluded) for `profile` in the baseline at `path`, keeping
/// other profiles' rates and categories that were not run.
pub fn write(path: &Path, profile: &str, stats: &[CategoryStats]) -> Result<()> {
    let mut baseline = if path.exists() {
        read(path)?
    } else {
        Baseline::new()
    };
    let rates = baseline.entry(profile.to_string()).or_default();
    for s in stats.iter().filter(|s| s.category != "all") {
        rates.insert(s.category.clone(), (s.rate * 1e4).floor() / 1e4);
    }
    let body = toml::to_string(&baseline).context("encoding the baseline")?;
    std::fs::write(path, format!("{HEADER}\n{body}"))
        .with_context(|| format!("writing {}", path.display()))
}

/// Parses `node=0.70,simple=0.3`.
pub fn parse_min_rates(spec: &str) -> Result<Rates> {
    spec.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|pair| {
            let (category, rate) = pair
                .split_once('=')
                .with_context(|| format!("{pair:?} is not CATEGORY=RATE"))?;
            let rate: f64 = rate
                .trim()
                .parse()
                .with_context(|| format!("{rate:?} is not a number"))?;
            if !(0.0..=1.0).contains(&rate) {
                bail!("rate {rate} for {category} is not between 0 and 1");
            }
            Ok((category.trim().to_string(), rate))
        })
        .collect()
}

/// The categories whose rate is below its minimum, as messages. Categories not run are not
/// checked; a minimum for `all` checks the total.
pub fn regressions(stats: &[CategoryStats], minimum: &Rates) -> Vec<String> {
    stats
        .iter()
        .filter_map(|s| {
            let min = *minimum.get(&s.category)?;
            // Rates are ratios of counts: allow for the rounding of a recorded rate.
            (s.rate + 1e-9 < min).then(|| {
                format!(
                    "{}: {}/{} = {:.4}, below the minimum {min:.4}",
                    s.category, s.passed, s.cases, s.rate
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(category: &str, cases: usize, passed: usize) -> CategoryStats {
        CategoryStats {
            category: category.into(),
            cases,
            passed,
            rate: passed as f64 / cases as f64,
            passed_with_constant_inputs: passed,
        }
    }

    #[test]
    fn min_rates_parse_and_gate() {
        let min = parse_min_rates("node=0.70, simple=0.3").unwrap();
        assert_eq!(min["node"], 0.70);
        assert!(parse_min_rates("node").is_err());
        assert!(parse_min_rates("node=1.5").is_err());
        let stats = vec![
            stat("node", 100, 69),
            stat("simple", 10, 3),
            stat("all", 110, 72),
        ];
        let failed = regressions(&stats, &min);
        assert_eq!(failed.len(), 1);
        assert!(failed[0].starts_with("node: 69/100"), "{failed:?}");
        assert!(regressions(&stats, &parse_min_rates("light=0.9").unwrap()).is_empty());
    }

    #[test]
    fn written_baseline_passes_its_own_run_and_keeps_other_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.toml");
        let stats = vec![stat("node", 3, 2), stat("all", 3, 2)];
        write(&path, "native/1", &[stat("node", 3, 3)]).unwrap();
        write(&path, "exact-portable/1", &stats).unwrap();
        let baseline = read(&path).unwrap();
        assert_eq!(baseline["exact-portable/1"]["node"], 0.6666);
        assert!(!baseline["exact-portable/1"].contains_key("all"));
        assert_eq!(baseline["native/1"]["node"], 1.0);
        assert!(regressions(&stats, &baseline["exact-portable/1"]).is_empty());
        assert_eq!(regressions(&stats, &baseline["native/1"]).len(), 1);
    }
}
