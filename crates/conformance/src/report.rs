//! Summaries of a run: per-category pass rates, failures counted by reason, and the same as a
//! terminal table, a JSON report and a Markdown summary.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::{Deserialize, Serialize};

use crate::{runner::CaseResult, suite::CATEGORIES};

/// Pass counts of one category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoryStats {
    /// Category name, or `all` for the total.
    pub category: String,
    /// Cases run.
    pub cases: usize,
    /// Cases passed.
    pub passed: usize,
    /// `passed / cases` (0 when there are no cases).
    pub rate: f64,
    /// Cases that pass, or would pass with their inputs baked in as constants: how far the
    /// engine could get by specialising a model on input values it needs constant.
    pub passed_with_constant_inputs: usize,
}

/// Failed cases sharing a reason group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReasonCount {
    /// The reason group, e.g. `unsupported-op:Unique` or `mismatch`.
    pub reason: String,
    /// Failed cases in it.
    pub count: usize,
    /// Some of them, as `category/name`.
    pub examples: Vec<String>,
}

/// Everything a run found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When the run ended, UTC, `YYYY-MM-DD HH:MM`.
    pub date: String,
    /// The engine and tract versions.
    pub engine: String,
    /// The profile the cases ran under.
    pub profile: String,
    /// The `onnx` package the data came from, when it could be told.
    pub onnx_version: Option<String>,
    /// The data directory.
    pub data_dir: String,
    /// The command line.
    pub command: String,
    /// Wall-clock seconds for the whole run.
    pub seconds: f64,
    /// Parallel case processes.
    pub jobs: usize,
    /// Per category (report order), then `all`.
    pub categories: Vec<CategoryStats>,
    /// Failures by reason group, most frequent first.
    pub reasons: Vec<ReasonCount>,
    /// Unsupported operators by number of cases naming them, most frequent first.
    pub unsupported_ops: Vec<ReasonCount>,
    /// Every case.
    pub cases: Vec<CaseResult>,
}

/// How many examples each reason keeps.
const EXAMPLES: usize = 5;

fn stats(category: &str, results: &[&CaseResult]) -> CategoryStats {
    let cases = results.len();
    let passed = results.iter().filter(|r| r.passed).count();
    let with_constants = results
        .iter()
        .filter(|r| r.passes_with_constant_inputs == Some(true))
        .count();
    CategoryStats {
        category: category.into(),
        cases,
        passed,
        passed_with_constant_inputs: passed + with_constants,
        rate: if cases == 0 {
            0.0
        } else {
            passed as f64 / cases as f64
        },
    }
}

/// Per-category stats in report order (categories with no cases left out), then `all`.
pub fn category_stats(results: &[CaseResult]) -> Vec<CategoryStats> {
    let mut out: Vec<CategoryStats> = CATEGORIES
        .iter()
        .map(|c| {
            let of: Vec<&CaseResult> = results.iter().filter(|r| r.category == *c).collect();
            stats(c, &of)
        })
        .filter(|s| s.cases > 0)
        .collect();
    out.push(stats("all", &results.iter().collect::<Vec<_>>()));
    out
}

fn counted(groups: BTreeMap<String, Vec<String>>) -> Vec<ReasonCount> {
    let mut out: Vec<ReasonCount> = groups
        .into_iter()
        .map(|(reason, cases)| ReasonCount {
            reason,
            count: cases.len(),
            examples: cases.into_iter().take(EXAMPLES).collect(),
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    out
}

/// Failures by reason group, and unsupported operators by the cases naming each.
pub fn reason_counts(results: &[CaseResult]) -> (Vec<ReasonCount>, Vec<ReasonCount>) {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut ops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in results {
        let Some(failure) = &r.failure else { continue };
        let id = format!("{}/{}", r.category, r.name);
        groups.entry(failure.group()).or_default().push(id.clone());
        for op in failure.unsupported_ops() {
            ops.entry(op.clone()).or_default().push(id.clone());
        }
    }
    (counted(groups), counted(ops))
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

impl Report {
    /// The terminal summary: the category table, unsupported operators, then other reasons.
    pub fn to_text(&self, top: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<20} {:>6} {:>7} {:>7}   with constant inputs",
            "category", "cases", "passed", "rate"
        );
        for c in &self.categories {
            let _ = writeln!(
                s,
                "{:<20} {:>6} {:>7} {:>7}   {}",
                c.category,
                c.cases,
                c.passed,
                percent(c.rate),
                c.passed_with_constant_inputs
            );
        }
        if !self.unsupported_ops.is_empty() {
            let _ = writeln!(s, "\nunsupported operators (cases):");
            for r in self.unsupported_ops.iter().take(top) {
                let _ = writeln!(s, "{:>6}  {}", r.count, r.reason);
            }
            if self.unsupported_ops.len() > top {
                let _ = writeln!(s, "        … {} more", self.unsupported_ops.len() - top);
            }
        }
        let others: Vec<&ReasonCount> = self
            .reasons
            .iter()
            .filter(|r| !r.reason.starts_with("unsupported-op:"))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(s, "\nother failures:");
            for r in others.iter().take(top) {
                let _ = writeln!(
                    s,
                    "{:>6}  {:<28} e.g. {}",
                    r.count,
                    r.reason,
                    r.examples.join(", ")
                );
            }
        }
        let _ = writeln!(
            s,
            "\n{} under {}, {:.0} s with {} jobs",
            self.engine, self.profile, self.seconds, self.jobs
        );
        s
    }

    /// The Markdown summary.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# ONNX backend conformance: {}\n", self.profile);
        let _ = writeln!(
            s,
            "{} on {}; onnx {}; {:.0} s with {} jobs.\n\n`{}`\n",
            self.engine,
            self.date,
            self.onnx_version.as_deref().unwrap_or("(unknown version)"),
            self.seconds,
            self.jobs,
            self.command
        );
        let _ = writeln!(
            s,
            "| category | cases | passed | rate | passed with constant inputs |\n\
             |---|---:|---:|---:|---:|"
        );
        for c in &self.categories {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                c.category,
                c.cases,
                c.passed,
                percent(c.rate),
                c.passed_with_constant_inputs
            );
        }
        let table = |s: &mut String, title: &str, rows: &[&ReasonCount]| {
            if rows.is_empty() {
                return;
            }
            let _ = writeln!(
                s,
                "\n## {title}\n\n| cases | reason | examples |\n|---:|---|---|"
            );
            for r in rows {
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {} |",
                    r.count,
                    r.reason,
                    r.examples.join(", ")
                );
            }
        };
        let ops: Vec<&ReasonCount> = self.unsupported_ops.iter().collect();
        table(&mut s, "Unsupported operators", &ops);
        let others: Vec<&ReasonCount> = self
            .reasons
            .iter()
            .filter(|r| !r.reason.starts_with("unsupported-op:"))
            .collect();
        table(&mut s, "Other failures", &others);
        s
    }
}

/// `YYYY-MM-DD HH:MM` (UTC) for seconds since the Unix epoch.
pub fn utc_date(unix_seconds: u64) -> String {
    // Days to a civil date: Howard Hinnant's `civil_from_days`, for dates after 1970.
    let days = unix_seconds / 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let secs = unix_seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Failure;

    fn result(category: &str, name: &str, failure: Option<Failure>) -> CaseResult {
        CaseResult {
            category: category.into(),
            name: name.into(),
            passed: failure.is_none(),
            reason: failure.as_ref().map(Failure::code),
            failure,
            detail: String::new(),
            passes_with_constant_inputs: None,
            seconds: 0.0,
        }
    }

    #[test]
    fn rates_and_reasons() {
        let unique = || {
            Some(Failure::UnsupportedOp {
                ops: vec!["Unique".into()],
            })
        };
        let results = vec![
            result("node", "a", None),
            result("node", "b", unique()),
            result(
                "node",
                "c",
                Some(Failure::UnsupportedOp {
                    ops: vec!["Loop".into(), "Unique".into()],
                }),
            ),
            CaseResult {
                passes_with_constant_inputs: Some(true),
                ..result(
                    "light",
                    "d",
                    Some(Failure::LoadError {
                        stage: "typing".into(),
                    }),
                )
            },
            result("light", "e", None),
            result("light", "f", None),
        ];
        let stats = category_stats(&results);
        assert_eq!(
            stats
                .iter()
                .map(|s| (s.category.as_str(), s.cases, s.passed))
                .collect::<Vec<_>>(),
            vec![("node", 3, 1), ("light", 3, 2), ("all", 6, 3)]
        );
        assert!((stats[1].rate - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(stats[1].passed_with_constant_inputs, 3);
        assert_eq!(stats[2].passed_with_constant_inputs, 4);
        let (reasons, ops) = reason_counts(&results);
        assert_eq!(
            reasons
                .iter()
                .map(|r| (r.reason.as_str(), r.count))
                .collect::<Vec<_>>(),
            vec![
                ("load-error:typing", 1),
                ("unsupported-op:Loop", 1),
                ("unsupported-op:Unique", 1)
            ]
        );
        assert_eq!(
            ops.iter()
                .map(|r| (r.reason.as_str(), r.count))
                .collect::<Vec<_>>(),
            vec![("Unique", 2), ("Loop", 1)]
        );
        assert_eq!(ops[0].examples, vec!["node/b", "node/c"]);
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_date(1_790_000_000 + 3_660), "2026-09-21 15:14");
    }
}
