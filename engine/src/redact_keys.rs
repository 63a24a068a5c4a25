//! Redactions in object keys that would give two members of one object the same name. A
//! marker names the rule, not the secret (`[REDACTED:aws.access-key-id]`), so two tokens used
//! as keys of one map, or a token beside a key already spelled like its marker, would come
//! out as one name twice. RFC 8259 section 4 leaves such an object's meaning to each parser
//! (most keep the last member, some the first), so the rewrite would drop a member's value
//! rather than hide a secret: a message where that happens is blocked instead.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use crate::inspect::Finding;
use crate::mcp::{PathElem, Walk};
use crate::redact::{redact_bytes, RedactSpan};
use crate::rules::Action;
use crate::verdict::Policy;

/// The ids of the rules whose redactions in keys would make two names of one object equal
/// that were not equal as sent, sorted, each once; empty when no redaction does.
/// `findings[i]` lies in string `sources[i]` of `walk`; `buf` holds the decoded strings.
pub(crate) fn merging_rules<'f>(
    walk: &Walk,
    buf: &[u8],
    findings: &'f [Finding],
    sources: &[usize],
    policy: &Policy,
) -> Vec<&'f str> {
    let mut spans: HashMap<usize, Vec<RedactSpan<'f>>> = HashMap::new();
    for (f, &source) in findings.iter().zip(sources) {
        if f.action == Action::Redact && walk.strings[source].is_key {
            spans.entry(source).or_default().push(RedactSpan {
                start: f.start,
                end: f.end,
                rule_id: &f.rule_id,
            });
        }
    }
    if spans.is_empty() {
        return Vec::new();
    }
    let text = |i: usize| {
        let s = &walk.strings[i];
        &buf[s.start..s.start + s.len]
    };
    let renamed: HashMap<usize, Vec<u8>> = spans
        .iter_mut()
        .map(|(&k, sp)| (k, redact_bytes(text(k), sp, policy.redaction, &policy.salt)))
        .collect();
    let merged = merged_keys(walk, &text, &renamed);
    let mut ids: Vec<&str> = findings
        .iter()
        .zip(sources)
        .filter(|(f, s)| f.action == Action::Redact && merged.contains(*s))
        .map(|(f, _)| f.rule_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A member name in one object: the object's pointer and the name.
type Member<'a> = (&'a [PathElem], &'a [u8]);

/// The renamed keys (indices into `walk.strings`) whose new name equals that of another
/// member of their object, renamed or not, whose name as sent was different.
fn merged_keys<'b>(
    walk: &Walk,
    text: &impl Fn(usize) -> &'b [u8],
    renamed: &HashMap<usize, Vec<u8>>,
) -> HashSet<usize> {
    let objects: HashSet<&[PathElem]> = renamed
        .keys()
        .map(|&k| walk.path_of(&walk.strings[k]))
        .collect();
    // Per object and name after redaction: the name as sent and the key that first had it.
    let mut seen: HashMap<Member<'_>, (&[u8], usize)> = HashMap::new();
    let mut merged = HashSet::new();
    for (i, s) in walk.strings.iter().enumerate() {
        let object = walk.path_of(s);
        if !s.is_key || !objects.contains(object) {
            continue;
        }
        let before = text(i);
        let after = renamed.get(&i).map_or(before, Vec::as_slice);
        match seen.entry((object, after)) {
            Entry::Vacant(v) => {
                v.insert((before, i));
            }
            Entry::Occupied(o) if o.get().0 != before => {
                merged.extend(
                    [i, o.get().1]
                        .into_iter()
                        .filter(|k| renamed.contains_key(k)),
                );
            }
            Entry::Occupied(_) => {}
        }
    }
    merged
}
