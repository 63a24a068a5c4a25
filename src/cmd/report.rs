//! Finding rows as printed by `scan` and written by `inspect --report`: text, JSON lines and
//! SARIF. Rows carry rule ids, positions and fingerprints, never matched text.

use std::io::Write;

use serde_json::json;
use sluice_engine::{CompiledRules, Severity};

#[derive(Debug, Clone)]
pub struct Row {
    pub file: String,
    pub line: usize,
    /// 1-based byte column, where known (text scans).
    pub column: Option<usize>,
    /// JSON pointer, for JSON-RPC messages.
    pub pointer: Option<String>,
    pub method: Option<String>,
    pub rule_id: String,
    pub category: &'static str,
    pub severity: Severity,
    pub action: Option<&'static str>,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

impl Row {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "method": self.method,
            "rule": self.rule_id,
            "category": self.category,
            "severity": self.severity.as_str(),
            "action": self.action,
            "fingerprint": self.fingerprint,
        })
    }

    pub fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        write!(out, "{}:{}", self.file, self.line)?;
        if let Some(c) = self.column {
            write!(out, ":{c}")?;
        }
        write!(
            out,
            ": {} ({}, {})",
            self.rule_id,
            self.category,
            self.severity.as_str()
        )?;
        if let Some(p) = &self.pointer {
            write!(out, " at {p}")?;
        }
        if let Some(m) = &self.method {
            write!(out, " in {m}")?;
        }
        writeln!(out, " fp={}", &self.fingerprint[..12])
    }
}

pub fn sarif(rows: &[Row], rules: &CompiledRules) -> serde_json::Value {
    let mut used: Vec<&str> = rows.iter().map(|r| r.rule_id.as_str()).collect();
    used.sort_unstable();
    used.dedup();
    let rule_defs: Vec<_> = used
        .iter()
        .filter_map(|id| rules.ruleset.get(id))
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.name},
                "properties": {"category": r.category.as_str(), "severity": r.severity.as_str()},
            })
        })
        .collect();
    let results: Vec<_> = rows
        .iter()
        .map(|r| {
            let mut region = json!({"startLine": r.line});
            if let Some(c) = r.column {
                region["startColumn"] = json!(c);
            }
            let mut loc = json!({
                "physicalLocation": {"artifactLocation": {"uri": r.file}, "region": region}
            });
            if let Some(p) = &r.pointer {
                loc["logicalLocations"] = json!([{"fullyQualifiedName": p, "kind": "member"}]);
            }
            json!({
                "ruleId": r.rule_id,
                "level": match r.severity {
                    Severity::Critical | Severity::High => "error",
                    Severity::Medium => "warning",
                    Severity::Low => "note",
                },
                "message": {"text": format!("{} ({})", r.rule_id, r.category)},
                "locations": [loc],
                "partialFingerprints": {"sluice/v1": r.fingerprint},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "sluice",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_defs,
            }},
            "results": results,
        }]
    })
}
