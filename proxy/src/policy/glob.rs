//! `*` globs for tool names, prompt names, resource URIs and host names: `*` matches any run
//! of characters (including none), everything else matches itself.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, text: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or("");
        let Some(mut rest) = text.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty(); // no `*`: exact
        };
        for p in middle {
            match rest.find(p) {
                Some(i) => rest = &rest[i + p.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// Whether `name` is allowed by an optional list (absent: everything).
pub fn allowed(list: Option<&[Glob]>, name: &str) -> bool {
    match list {
        None => true,
        Some(globs) => globs.iter().any(|g| g.matches(name)),
    }
}

pub fn compile(list: &Option<Vec<String>>) -> Option<Vec<Glob>> {
    list.as_ref()
        .map(|l| l.iter().map(|s| Glob::new(s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_runs() {
        let g = Glob::new("read_*");
        assert!(g.matches("read_file") && g.matches("read_"));
        assert!(!g.matches("xread_file") && !g.matches("write_file"));
        let g = Glob::new("file:///srv/*/docs/*.md");
        assert!(g.matches("file:///srv/a/docs/x.md"));
        assert!(!g.matches("file:///srv/a/docs/x.txt"));
        assert!(!g.matches("file:///etc/passwd"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("exact").matches("exact") && !Glob::new("exact").matches("exact2"));
        assert!(!Glob::new("a*a").matches("a"));
        assert!(allowed(None, "anything"));
        assert!(!allowed(Some(&[]), "anything"));
    }
}
