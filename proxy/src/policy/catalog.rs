//! Catalog allowlists and argument constraints: a client sees, in `tools/list`,
//! `resources/list` and `prompts/list`, only what both its own lists and the upstream's allow,
//! and a call outside them is refused before it reaches the upstream. Hiding a tool from the
//! list is not enough on its own: a client can call a tool by name without listing.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::glob::{self, Glob, GlobError};
use crate::config::gateway::{ArgumentConstraint, CatalogLists};

/// Why a catalog list or an argument constraint cannot be compiled. Messages name the argument,
/// never a value a call might send.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A list entry is not a valid glob.
    #[error(transparent)]
    Glob(#[from] GlobError),
    /// An argument's `pattern` is not a valid regular expression (`regex` crate syntax).
    #[error("argument `{name}`: pattern: {source}")]
    Pattern {
        /// The argument.
        name: String,
        /// The regex crate's reason.
        #[source]
        source: regex::Error,
    },
    /// An argument's `within` is a relative path.
    #[error("argument `{name}`: within = `{}` must be an absolute directory", within.display())]
    NotAbsolute {
        /// The argument.
        name: String,
        /// The configured directory.
        within: PathBuf,
    },
}

/// One kind of catalog entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A tool, named by `name`.
    Tool,
    /// A resource, named by its URI (or URI template).
    Resource,
    /// A prompt, named by `name`.
    Prompt,
}

impl Kind {
    /// The word for this kind in messages: `tool`, `resource`, `prompt`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Resource => "resource",
            Kind::Prompt => "prompt",
        }
    }

    /// The list method whose result holds this kind, and the result's array and key.
    pub fn of_list(method: &str) -> Option<(Kind, &'static str, &'static str)> {
        match method {
            "tools/list" => Some((Kind::Tool, "tools", "name")),
            "prompts/list" => Some((Kind::Prompt, "prompts", "name")),
            "resources/list" => Some((Kind::Resource, "resources", "uri")),
            "resources/templates/list" => {
                Some((Kind::Resource, "resourceTemplates", "uriTemplate"))
            }
            _ => None,
        }
    }
}

/// Compiled allowlists (absent list: everything).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tools: Option<Vec<Glob>>,
    resources: Option<Vec<Glob>>,
    prompts: Option<Vec<Glob>>,
}

impl Catalog {
    /// Compiles the lists. Errors: a pattern that does not compile (see [`Glob::new`]).
    pub fn new(lists: &CatalogLists) -> Result<Catalog, CatalogError> {
        Ok(Catalog {
            tools: glob::compile(&lists.tools)?,
            resources: glob::compile(&lists.resources)?,
            prompts: glob::compile(&lists.prompts)?,
        })
    }

    /// Whether every list is absent (everything allowed).
    pub fn is_open(&self) -> bool {
        self.tools.is_none() && self.resources.is_none() && self.prompts.is_none()
    }

    /// Whether the entry `name` of this kind is allowed.
    pub fn allows(&self, kind: Kind, name: &str) -> bool {
        let list = match kind {
            Kind::Tool => &self.tools,
            Kind::Resource => &self.resources,
            Kind::Prompt => &self.prompts,
        };
        glob::allowed(list.as_deref(), name)
    }
}

/// One argument's constraint, compiled.
#[derive(Debug, Clone)]
pub struct ArgCheck {
    name: String,
    within: Option<PathBuf>,
    one_of: Option<Vec<String>>,
    max_length: Option<usize>,
    pattern: Option<regex::Regex>,
    required: bool,
}

impl ArgCheck {
    /// Compiles the constraint on the argument `name`. Errors: [`CatalogError::Pattern`] (a
    /// `pattern` the regex crate refuses), [`CatalogError::NotAbsolute`] (a relative `within`).
    pub fn new(name: &str, c: &ArgumentConstraint) -> Result<ArgCheck, CatalogError> {
        let pattern = c
            .pattern
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|source| CatalogError::Pattern {
                name: name.to_string(),
                source,
            })?;
        if let Some(w) = &c.within {
            if !w.is_absolute() {
                return Err(CatalogError::NotAbsolute {
                    name: name.to_string(),
                    within: w.clone(),
                });
            }
        }
        Ok(ArgCheck {
            name: name.to_string(),
            within: c.within.as_deref().map(lexical),
            one_of: c.one_of.clone(),
            max_length: c.max_length,
            pattern,
            required: c.required,
        })
    }

    /// Why the call's arguments break this constraint, if they do. The message names the
    /// argument and the constraint, never the value (it may be a secret).
    pub fn violation(&self, arguments: Option<&Value>) -> Option<String> {
        let value = arguments.and_then(|a| a.get(&self.name));
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return self
                .required
                .then(|| format!("argument `{}` is required", self.name));
        };
        let constrained = self.within.is_some()
            || self.one_of.is_some()
            || self.max_length.is_some()
            || self.pattern.is_some();
        let Some(s) = value.as_str() else {
            return constrained.then(|| format!("argument `{}` must be a string", self.name));
        };
        if let Some(max) = self.max_length {
            if s.chars().count() > max {
                return Some(format!(
                    "argument `{}` is longer than {max} characters",
                    self.name
                ));
            }
        }
        if let Some(options) = &self.one_of {
            if !options.iter().any(|o| o == s) {
                return Some(format!(
                    "argument `{}` must be one of: {}",
                    self.name,
                    options.join(", ")
                ));
            }
        }
        if let Some(p) = &self.pattern {
            if !p.is_match(s) {
                return Some(format!(
                    "argument `{}` does not match the pattern `{}`",
                    self.name,
                    p.as_str()
                ));
            }
        }
        if let Some(dir) = &self.within {
            if !inside(dir, s) {
                return Some(format!(
                    "argument `{}` must be an absolute path inside {}",
                    self.name,
                    dir.display()
                ));
            }
        }
        None
    }
}

/// Whether `path` names something inside `dir` once `.` and `..` are resolved. Relative
/// paths are refused: what they are relative to is the server's business, not sluice's.
/// `file://` URIs are read as their path. Symbolic links inside `dir` are the server's to
/// resolve; sluice cannot see its file system.
fn inside(dir: &Path, path: &str) -> bool {
    let path = path.strip_prefix("file://").unwrap_or(path);
    if path.contains('\0') || path.contains('\\') {
        return false;
    }
    let p = Path::new(path);
    p.is_absolute() && lexical(p).starts_with(dir)
}

/// `.` and `..` resolved without touching the file system (`..` above the root stays at it).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Keeps the entries of a list result that `keep` allows; `None` when nothing was removed
/// (the original bytes then go on untouched). The names removed come back for the audit row.
pub fn filter_list(
    message: &mut Value,
    array: &str,
    key: &str,
    mut keep: impl FnMut(&str, &Value) -> bool,
) -> Vec<String> {
    let Some(items) = message
        .get_mut("result")
        .and_then(|r| r.get_mut(array))
        .and_then(Value::as_array_mut)
    else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    items.retain(|item| {
        let name = item.get(key).and_then(Value::as_str).unwrap_or("");
        let ok = keep(name, item);
        if !ok {
            removed.push(name.to_string());
        }
        ok
    });
    removed
}

/// The catalog control: a tool, resource or prompt hidden from this client's lists cannot be
/// used by name either.
pub struct CatalogStep;

impl super::Control for CatalogStep {
    fn kind(&self) -> super::ControlKind {
        super::ControlKind::Catalog
    }

    fn check<'a>(
        &'a self,
        g: &'a super::Gateway,
        _rt: &'a super::Runtime,
        call: &'a super::Call<'a>,
    ) -> super::control::StepFuture<'a> {
        use super::Ask;
        let refused = match call.ask {
            Ask::Tool { name, .. } => (!g.visible(call.caller, Kind::Tool, name))
                .then(|| format!("tool `{name}` is not available to this client")),
            Ask::Resource(uri) => (!g.visible(call.caller, Kind::Resource, uri))
                .then(|| "resource not available to this client".to_string()),
            Ask::Prompt(name) => (!g.visible(call.caller, Kind::Prompt, name))
                .then(|| format!("prompt `{name}` is not available to this client")),
            Ask::Other => None,
        };
        super::control::ready(match refused {
            Some(why) => super::Step::Deny(super::Denial::new(self.kind(), why)),
            None => super::Step::Pass,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(c: ArgumentConstraint) -> ArgCheck {
        ArgCheck::new("path", &c).unwrap()
    }

    #[test]
    fn paths_stay_inside_their_directory() {
        let c = check(ArgumentConstraint {
            within: Some("/srv/data".into()),
            ..Default::default()
        });
        let v = |p: &str| c.violation(Some(&json!({ "path": p })));
        assert_eq!(v("/srv/data/report.txt"), None);
        assert_eq!(v("/srv/data/a/../b.txt"), None);
        assert_eq!(v("file:///srv/data/x"), None);
        for bad in [
            "/srv/data/../../etc/passwd",
            "/etc/passwd",
            "/srv/database/x",
            "report.txt",
            "../data/x",
            "/srv/data/\0x",
        ] {
            let why = v(bad).unwrap_or_else(|| panic!("{bad:?} allowed"));
            assert!(why.contains("inside /srv/data"), "{why}");
        }
        assert!(c.violation(Some(&json!({ "path": 7 }))).is_some());
        assert_eq!(c.violation(Some(&json!({}))), None);
    }

    #[test]
    fn enums_lengths_patterns_and_required() {
        let c = check(ArgumentConstraint {
            one_of: Some(vec!["r".into(), "ro".into()]),
            ..Default::default()
        });
        assert_eq!(c.violation(Some(&json!({"path": "ro"}))), None);
        assert!(c.violation(Some(&json!({"path": "rw"}))).is_some());
        let c = check(ArgumentConstraint {
            max_length: Some(3),
            required: true,
            ..Default::default()
        });
        assert_eq!(c.violation(Some(&json!({"path": "äöü"}))), None);
        assert!(c.violation(Some(&json!({"path": "abcd"}))).is_some());
        assert!(c.violation(None).unwrap().contains("required"));
        let c = check(ArgumentConstraint {
            pattern: Some("^[a-z]+$".into()),
            ..Default::default()
        });
        let why = c
            .violation(Some(&json!({"path": "sk_live_secret1"})))
            .unwrap();
        assert!(
            !why.contains("sk_live"),
            "the value must not be echoed: {why}"
        );
    }

    #[test]
    fn lists_are_filtered_by_name() {
        let mut m = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[
            {"name":"search"},{"name":"delete_repo"},{"name":"read_file"}]}});
        let cat = Catalog::new(&CatalogLists {
            tools: Some(vec!["search".into(), "read_*".into()]),
            ..Default::default()
        })
        .unwrap();
        let removed = filter_list(&mut m, "tools", "name", |n, _| cat.allows(Kind::Tool, n));
        assert_eq!(removed, vec!["delete_repo"]);
        assert_eq!(m["result"]["tools"].as_array().unwrap().len(), 2);
        assert!(cat.allows(Kind::Prompt, "anything"));
    }
}
