//! The results: one row per measured number, with the baseline measured in
//! the same run, their ratio, the goal and whether it was met.
//!
//! A row is judged on what its goal names (the value itself or the ratio to
//! the baseline), so a busy shared machine, which slows measurement and
//! baseline alike, moves a ratio goal far less than an absolute one. Rows
//! without a goal are information. The same rows are printed as a Markdown
//! table (readable in a terminal, pasted as is into docs/performance.md)
//! and written as JSON for tools.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

/// What a goal bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Value,
    Ratio,
}

/// A bound: `value <= limit` (or `>=`), on the value or on the ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub subject: Subject,
    pub at_most: bool,
    pub limit: f64,
}

impl Goal {
    fn met(&self, value: f64, ratio: Option<f64>) -> Option<bool> {
        let x = match self.subject {
            Subject::Value => value,
            Subject::Ratio => ratio?,
        };
        Some(if self.at_most {
            x <= self.limit
        } else {
            x >= self.limit
        })
    }

    fn text(&self, unit: &str) -> String {
        let op = if self.at_most { "≤" } else { "≥" };
        match self.subject {
            Subject::Ratio => format!("ratio {op} {}", num(self.limit)),
            Subject::Value => format!("{op} {} {unit}", num(self.limit)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub value: f64,
    pub unit: String,
    /// What was measured as the baseline, in a few words.
    pub what: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Miss,
    Info,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub item: u8,
    pub what: String,
    pub value: f64,
    pub unit: String,
    pub baseline: Option<Baseline>,
    pub ratio: Option<f64>,
    pub goal: Option<Goal>,
    pub verdict: Verdict,
}

impl Row {
    pub fn new(item: u8, what: impl Into<String>, value: f64, unit: &str) -> Row {
        Row {
            item,
            what: what.into(),
            value,
            unit: unit.to_owned(),
            baseline: None,
            ratio: None,
            goal: None,
            verdict: Verdict::Info,
        }
    }

    /// The baseline, in the same unit as the value (so the ratio means
    /// something).
    pub fn baseline(mut self, value: f64, what: impl Into<String>) -> Row {
        self.ratio = (value != 0.0).then(|| self.value / value);
        self.baseline = Some(Baseline {
            value,
            unit: self.unit.clone(),
            what: what.into(),
        });
        self.judge()
    }

    /// A baseline in another unit (e.g. fsyncs/s next to jobs/s); the ratio
    /// is still value / baseline.
    pub fn baseline_in(mut self, value: f64, unit: &str, what: impl Into<String>) -> Row {
        self = self.baseline(value, what);
        if let Some(b) = self.baseline.as_mut() {
            b.unit = unit.to_owned();
        }
        self
    }

    pub fn at_most(self, limit: f64) -> Row {
        self.goal(Subject::Value, true, limit)
    }

    pub fn ratio_at_most(self, limit: f64) -> Row {
        self.goal(Subject::Ratio, true, limit)
    }

    fn goal(mut self, subject: Subject, at_most: bool, limit: f64) -> Row {
        self.goal = Some(Goal {
            subject,
            at_most,
            limit,
        });
        self.judge()
    }

    fn judge(mut self) -> Row {
        self.verdict = match self
            .goal
            .as_ref()
            .and_then(|g| g.met(self.value, self.ratio))
        {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Miss,
            None => Verdict::Info,
        };
        self
    }
}

/// Everything one item produced: rows, and notes on how it was measured or
/// why something is missing.
#[derive(Debug, Default, Serialize)]
pub struct ItemResult {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl ItemResult {
    pub fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

/// A number with about four significant digits and no trailing zeros.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    let decimals = if a == 0.0 || a >= 1000.0 {
        0
    } else if a >= 100.0 {
        1
    } else if a >= 10.0 {
        2
    } else if a >= 1.0 {
        3
    } else {
        4
    };
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out =
        String::from("| # | measure | value | baseline | ratio | goal | result |\n|---|---|---|---|---|---|---|\n");
    for r in rows {
        let baseline = r.baseline.as_ref().map_or_else(
            || "—".to_owned(),
            |b| format!("{} {} ({})", num(b.value), b.unit, b.what),
        );
        let ratio = r.ratio.map_or_else(|| "—".to_owned(), num);
        let goal = r
            .goal
            .as_ref()
            .map_or_else(|| "—".to_owned(), |g| g.text(&r.unit));
        let verdict = match r.verdict {
            Verdict::Pass => "pass",
            Verdict::Miss => "**miss**",
            Verdict::Info => "info",
        };
        // `writeln!` into a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | {} | {} {} | {baseline} | {ratio} | {goal} | {verdict} |",
            r.item,
            r.what,
            num(r.value),
            r.unit
        );
    }
    out
}

/// The whole run as written to the JSON file.
#[derive(Debug, Serialize)]
pub struct Run<'a> {
    pub date: String,
    pub mode: &'a str,
    pub machine: &'a crate::procfs::Machine,
    pub load_after: String,
    pub seconds: f64,
    pub rows: Vec<&'a Row>,
    pub notes: Vec<(u8, &'a str)>,
    pub failures: &'a [String],
}

pub fn write_json(path: &Path, run: &Run<'_>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(run)? + "\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_goals_judge_the_ratio_and_value_goals_the_value() {
        let r = Row::new(1, "x", 110.0, "ms")
            .baseline(100.0, "direct")
            .ratio_at_most(1.1);
        assert_eq!(r.verdict, Verdict::Pass);
        let r = Row::new(1, "x", 120.0, "ms")
            .baseline(100.0, "direct")
            .ratio_at_most(1.1);
        assert_eq!(r.verdict, Verdict::Miss);
        let r = Row::new(3, "rss", 17.0, "MiB").at_most(16.0);
        assert_eq!(r.verdict, Verdict::Miss);
        assert_eq!(Row::new(5, "cpu", 1.0, "s").verdict, Verdict::Info);
    }

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(num(1234.56), "1235");
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(0.012345), "0.0123");
        assert_eq!(num(12.0), "12");
    }
}
