//! `graphql-firewall manifest build <dir>`: reads a client's `.graphql`/`.gql` files
//! ([`collect_sources`]) and composes the Apollo persisted-query manifest that allowlists exactly
//! their operations ([`build_manifest`], pure).
//!
//! Like client build tools, it treats all files as one pool of definitions: each named operation
//! becomes one entry whose body is the operation followed by every fragment it uses, directly or
//! through other fragments.
//!
//! # Body composition
//! - An operation's and a fragment's text is its exact source text, from the first character of
//!   its keyword (`query`, `mutation`, `subscription`, `fragment`) to the last character of its
//!   last token. Comments and commas *inside* a definition are kept verbatim; comments and blank
//!   lines *between* definitions (and file headers) belong to no definition and are dropped. A
//!   comment above a definition usually documents that definition, so gluing it to the end of the
//!   previous one (the naive "up to the next definition" cut) would be wrong, and attaching it to
//!   the next one would make ids change when documentation changes.
//! - Body = operation text, then each used fragment once, in fragment-name order, all joined with
//!   a blank line (`"\n\n"`); no trailing newline. The order depends only on names, never on
//!   which file a fragment lives in, so moving definitions between files keeps every id.
//! - Nothing is re-printed or normalised (no `__typename` is added): the id is SHA-256 of the
//!   source text, and clients must send this exact body (or its id).
//!
//! # Why
//! The manifest is the allowlist, so building it must fail rather than guess: anonymous
//! operations, names defined twice, spreads of unknown fragments, fragment cycles and syntax
//! errors are all errors naming the file. The output is deterministic (operations by name) so
//! that a committed manifest can be checked for staleness byte for byte.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use async_graphql_parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql_parser::{Error as ParseError, Pos, parse_query};
use serde::Serialize;

use super::hash_document;
use super::manifest::{APOLLO_FORMAT, APOLLO_VERSION};
use crate::files::{Depth, list};

/// Why a manifest could not be built. Each message names the file(s) involved.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    /// `location` is the file, with the line and column when the parser gives one.
    #[error("{location}: {message}")]
    Syntax { location: String, message: String },
    #[error("{file}: anonymous operation (every operation needs a name to be allowlisted)")]
    AnonymousOperation { file: String },
    #[error("operation {name} is defined in {first} and in {second}")]
    DuplicateOperation {
        name: String,
        first: String,
        second: String,
    },
    #[error("fragment {name} is defined in {first} and in {second}")]
    DuplicateFragment {
        name: String,
        first: String,
        second: String,
    },
    #[error("{file}: {user} spreads unknown fragment {fragment}")]
    UnknownFragment {
        file: String,
        user: String,
        fragment: String,
    },
    #[error("{file}: fragment cycle {cycle}")]
    FragmentCycle { file: String, cycle: String },
    #[error("no operations found in the sources")]
    NoOperations,
    #[error("cannot write the manifest: {0}")]
    Json(#[from] serde_json::Error),
}

/// Every `*.graphql` and `*.gql` file under `dir`, recursively, as (path relative to `dir` with
/// `/` separators, text), sorted by path. Symbolic links to directories are not followed, so a
/// link cycle cannot make this loop.
pub fn collect_sources(dir: &Path) -> Result<Vec<(String, String)>, BuildError> {
    let files =
        list(dir, &["graphql", "gql"], Depth::Recursive).map_err(|error| BuildError::Io {
            path: error.path,
            source: error.source,
        })?;
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).map_err(|source| BuildError::Io {
                path: path.clone(),
                source,
            })?;
            Ok((relative_name(dir, &path), text))
        })
        .collect()
}

fn relative_name(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    let parts: Vec<_> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

/// Builds the Apollo persisted-query manifest (pretty JSON with a trailing newline) for every
/// named operation in `sources` ((file name, text) pairs, in any order).
pub fn build_manifest(sources: &[(String, String)]) -> Result<String, BuildError> {
    let operations = compose_operations(sources)?;
    let manifest = Manifest {
        format: APOLLO_FORMAT,
        version: APOLLO_VERSION,
        operations: operations
            .iter()
            .map(|operation| ManifestOperation {
                id: hex::encode(hash_document(&operation.body)),
                name: &operation.name,
                kind: operation.kind,
                body: &operation.body,
            })
            .collect(),
    };
    let mut json = serde_json::to_string_pretty(&manifest)?;
    json.push('\n');
    Ok(json)
}

/// One named operation of the sources, as a client sends it: its text followed by every fragment
/// it uses, wherever those are defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedOperation {
    pub name: String,
    /// `"query"`, `"mutation"` or `"subscription"`.
    pub kind: &'static str,
    pub body: String,
}

/// Every named operation in `sources` ((file name, text) pairs, in any order), sorted by name,
/// with the fragments it uses resolved across all the sources: what `manifest build` writes and
/// what `analyse` measures when given several files or a directory.
pub fn compose_operations(
    sources: &[(String, String)],
) -> Result<Vec<ComposedOperation>, BuildError> {
    // Sorted so that "first" and "second" in duplicate errors do not depend on the caller's order.
    let mut sources: Vec<&(String, String)> = sources.iter().collect();
    sources.sort();

    let mut operations: BTreeMap<String, Definition<'_>> = BTreeMap::new();
    let mut fragments: BTreeMap<String, Definition<'_>> = BTreeMap::new();
    for (file, text) in sources {
        for definition in split_file(file, text)? {
            let table = match definition.kind {
                Kind::Operation(_) => &mut operations,
                Kind::Fragment => &mut fragments,
            };
            if let Some(first) = table.get(&definition.name) {
                let (name, first, second) = (definition.name, first.file.to_owned(), file.clone());
                return Err(match definition.kind {
                    Kind::Operation(_) => BuildError::DuplicateOperation {
                        name,
                        first,
                        second,
                    },
                    Kind::Fragment => BuildError::DuplicateFragment {
                        name,
                        first,
                        second,
                    },
                });
            }
            table.insert(definition.name.clone(), definition);
        }
    }
    if operations.is_empty() {
        return Err(BuildError::NoOperations);
    }
    for (name, definition) in operations.iter().chain(&fragments) {
        check_spreads(name, definition, &fragments)?;
    }
    check_fragment_cycles(&fragments)?;

    Ok(operations
        .iter()
        .filter_map(|(name, operation)| match operation.kind {
            Kind::Operation(kind) => Some(ComposedOperation {
                name: name.clone(),
                kind,
                body: compose_body(operation, &fragments),
            }),
            // Only operations are in this table.
            Kind::Fragment => None,
        })
        .collect())
}

#[derive(Serialize)]
struct Manifest<'a> {
    format: &'static str,
    version: u64,
    operations: Vec<ManifestOperation<'a>>,
}

#[derive(Serialize)]
struct ManifestOperation<'a> {
    id: String,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    body: &'a str,
}

// === Splitting files into definitions ===

#[derive(Clone, Copy)]
enum Kind {
    /// `"query"`, `"mutation"` or `"subscription"`.
    Operation(&'static str),
    Fragment,
}

/// One operation or fragment: its exact source text and the fragments it spreads directly.
struct Definition<'a> {
    kind: Kind,
    name: String,
    file: &'a str,
    text: &'a str,
    spreads: BTreeSet<String>,
}

/// The operations and fragments of one file, each with its exact source text.
fn split_file<'a>(file: &'a str, text: &'a str) -> Result<Vec<Definition<'a>>, BuildError> {
    // The parser's columns treat a lone `\r` as a new column 1 on the same line, which makes
    // positions ambiguous; no editor writes those any more, so refuse rather than mis-slice.
    if text.split("\r\n").any(|part| part.contains('\r')) {
        return Err(BuildError::Syntax {
            location: file.to_owned(),
            message: "lone carriage-return line endings are not supported".to_owned(),
        });
    }
    if trim_ignored_tail(text).is_empty() {
        // Only comments, or nothing: no definitions, which the parser would call a syntax error.
        return Ok(Vec::new());
    }
    let document = parse_file(file, text)?;

    // (position, kind, name, spreads), later sorted into file order.
    let mut found: Vec<(Pos, Kind, String, BTreeSet<String>)> = Vec::new();
    match &document.operations {
        DocumentOperations::Single(_) => {
            return Err(BuildError::AnonymousOperation {
                file: file.to_owned(),
            });
        }
        DocumentOperations::Multiple(operations) => {
            for (name, operation) in operations {
                let kind = match operation.node.ty {
                    OperationType::Query => "query",
                    OperationType::Mutation => "mutation",
                    OperationType::Subscription => "subscription",
                };
                found.push((
                    operation.pos,
                    Kind::Operation(kind),
                    name.to_string(),
                    direct_spreads(&operation.node.selection_set.node),
                ));
            }
        }
    }
    for (name, fragment) in &document.fragments {
        found.push((
            fragment.pos,
            Kind::Fragment,
            name.to_string(),
            direct_spreads(&fragment.node.selection_set.node),
        ));
    }
    found.sort_by_key(|(pos, ..)| *pos);

    let positions: Vec<Pos> = found.iter().map(|(pos, ..)| *pos).collect();
    let starts = byte_offsets(text, &positions).ok_or_else(|| BuildError::Syntax {
        location: file.to_owned(),
        message: "cannot locate the definitions in the text".to_owned(),
    })?;
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    let mut definitions = Vec::with_capacity(found.len());
    for ((_, kind, name, spreads), (start, end)) in found.into_iter().zip(starts.iter().zip(ends)) {
        let text = text
            .get(*start..end)
            .map(trim_ignored_tail)
            .unwrap_or_default();
        definitions.push(Definition {
            kind,
            name,
            file,
            text,
            spreads,
        });
    }
    Ok(definitions)
}

/// Parses one file. A file holding only fragments is normal in client code, but the parser
/// insists on an operation; for such a file, an anonymous `{__typename}` is appended after the
/// text and then ignored (the real definitions keep their positions, since they come first).
fn parse_file(file: &str, text: &str) -> Result<ExecutableDocument, BuildError> {
    let document = match parse_query(text) {
        Err(ParseError::MissingOperation) => {
            parse_query(format!("{text}\n{{__typename}}")).map(|mut document| {
                document.operations = DocumentOperations::Multiple(HashMap::new());
                document
            })
        }
        parsed => parsed,
    };
    document.map_err(|error| match error {
        ParseError::MultipleOperations { .. } => BuildError::AnonymousOperation {
            file: file.to_owned(),
        },
        ParseError::OperationDuplicated {
            operation,
            first,
            second,
        } => BuildError::DuplicateOperation {
            name: operation.to_string(),
            first: format!("{file}:{first}"),
            second: format!("{file}:{second}"),
        },
        ParseError::FragmentDuplicated {
            fragment,
            first,
            second,
        } => BuildError::DuplicateFragment {
            name: fragment.to_string(),
            first: format!("{file}:{first}"),
            second: format!("{file}:{second}"),
        },
        other => BuildError::Syntax {
            location: match other.positions().next() {
                Some(pos) => format!("{file}:{pos}"),
                None => file.to_owned(),
            },
            message: other.to_string(),
        },
    })
}

/// Maps parser positions (sorted, 1-based line and column counted in characters, exactly as the
/// parser counts them) to byte offsets. `None` if one cannot be found at a definition's first
/// character, which would mean the two counts disagree.
fn byte_offsets(text: &str, positions: &[Pos]) -> Option<Vec<usize>> {
    let mut offsets = Vec::with_capacity(positions.len());
    let mut wanted = positions.iter().peekable();
    let (mut line, mut column) = (1, 1);
    for (offset, ch) in text.char_indices() {
        if let Some(pos) = wanted.peek() {
            if pos.line == line && pos.column == column && matches!(ch, 'q' | 'm' | 's' | 'f') {
                offsets.push(offset);
                wanted.next();
            }
        } else {
            break;
        }
        match ch {
            '\n' => (line, column) = (line + 1, 1),
            '\r' => column = 1,
            _ => column += 1,
        }
    }
    (offsets.len() == positions.len()).then_some(offsets)
}

/// Cuts a definition's slice (which runs up to the next definition) just after its last token,
/// dropping trailing whitespace, commas and comments. The slice has already been parsed, so only
/// the lexical rules that decide where a comment starts are needed: `#` outside strings.
fn trim_ignored_tail(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut end = 0;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let rest = bytes.get(i..).unwrap_or_default();
        match byte {
            b' ' | b'\t' | b',' | b'\n' | b'\r' => i += 1,
            // The byte order mark is ignored like whitespace.
            _ if rest.starts_with("\u{feff}".as_bytes()) => i += 3,
            b'#' => {
                i += rest
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .unwrap_or(rest.len())
            }
            b'"' if rest.starts_with(b"\"\"\"") => {
                i += 3 + block_string_len(rest.get(3..).unwrap_or_default());
                end = i;
            }
            b'"' => {
                i += 1 + string_len(rest.get(1..).unwrap_or_default());
                end = i;
            }
            _ => {
                i += 1;
                end = i;
            }
        }
    }
    // `end` follows an ASCII byte or a closing quote, so it is a character boundary.
    text.get(..end).unwrap_or(text)
}

/// Length of a block string's contents plus its closing `"""`; `\"""` is an escaped quote.
fn block_string_len(rest: &[u8]) -> usize {
    let mut i = 0;
    while i < rest.len() {
        let here = rest.get(i..).unwrap_or_default();
        if here.starts_with(b"\\\"\"\"") {
            i += 4;
        } else if here.starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    rest.len()
}

/// Length of a string's contents plus its closing `"`, skipping escaped characters.
fn string_len(rest: &[u8]) -> usize {
    let mut i = 0;
    while let Some(&byte) = rest.get(i) {
        match byte {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    rest.len()
}

// === Fragments ===

/// Names of the fragments spread anywhere in `set`, without following them. Uses an explicit
/// stack: selection sets can nest as deep as the parser allows, and recursion over them is how
/// stacks overflow.
fn direct_spreads(set: &SelectionSet) -> BTreeSet<String> {
    let mut spreads = BTreeSet::new();
    let mut pending = vec![set];
    while let Some(set) = pending.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => pending.push(&field.node.selection_set.node),
                Selection::InlineFragment(inline) => pending.push(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    spreads.insert(spread.node.fragment_name.node.to_string());
                }
            }
        }
    }
    spreads
}

fn check_spreads(
    name: &str,
    definition: &Definition<'_>,
    fragments: &BTreeMap<String, Definition<'_>>,
) -> Result<(), BuildError> {
    match definition
        .spreads
        .iter()
        .find(|spread| !fragments.contains_key(*spread))
    {
        Some(unknown) => Err(BuildError::UnknownFragment {
            file: definition.file.to_owned(),
            user: match definition.kind {
                Kind::Operation(_) => format!("operation {name}"),
                Kind::Fragment => format!("fragment {name}"),
            },
            fragment: unknown.clone(),
        }),
        None => Ok(()),
    }
}

/// Fails on the first fragment that spreads itself, directly or through others (depth-first
/// search with an explicit stack; every spread is known to exist by now).
fn check_fragment_cycles(fragments: &BTreeMap<String, Definition<'_>>) -> Result<(), BuildError> {
    enum Mark {
        OnPath,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    for (root, definition) in fragments {
        if marks.contains_key(root.as_str()) {
            continue;
        }
        marks.insert(root, Mark::OnPath);
        let mut path = vec![(root.as_str(), definition.spreads.iter())];
        while let Some((name, spreads)) = path.last_mut() {
            let name = *name;
            let Some(next) = spreads.next() else {
                marks.insert(name, Mark::Done);
                path.pop();
                continue;
            };
            match marks.get(next.as_str()) {
                Some(Mark::Done) => {}
                Some(Mark::OnPath) => {
                    let mut cycle: Vec<&str> = path
                        .iter()
                        .map(|(name, _)| *name)
                        .skip_while(|name| *name != next)
                        .collect();
                    cycle.push(next);
                    return Err(BuildError::FragmentCycle {
                        file: fragments
                            .get(next)
                            .map(|f| f.file)
                            .unwrap_or_default()
                            .to_owned(),
                        cycle: cycle.join(" -> "),
                    });
                }
                None => {
                    if let Some(fragment) = fragments.get(next) {
                        marks.insert(next, Mark::OnPath);
                        path.push((next, fragment.spreads.iter()));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The operation's text followed by each fragment it uses (transitively), once, by name.
fn compose_body(
    operation: &Definition<'_>,
    fragments: &BTreeMap<String, Definition<'_>>,
) -> String {
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut pending: Vec<&str> = operation.spreads.iter().map(String::as_str).collect();
    while let Some(name) = pending.pop() {
        if used.insert(name)
            && let Some(fragment) = fragments.get(name)
        {
            pending.extend(fragment.spreads.iter().map(String::as_str));
        }
    }
    let mut body = operation.text.to_owned();
    for fragment in used.iter().filter_map(|name| fragments.get(*name)) {
        body.push_str("\n\n");
        body.push_str(fragment.text);
    }
    body
}

#[cfg(test)]
mod tests;
