//! Document-level checks: unique operations and fragments, defined spreads, no fragment cycles.
//!
//! # Threats
//! A fragment cycle (`fragment A on Q { ...A }`, or a long chain back to its start) makes a naive
//! expander loop forever or overflow its stack; peers have shipped both bugs. Cycles are found
//! here with an iterative depth-first search over the spread graph, and the same search yields
//! the topological order in which fragment summaries are memoised, so every later pass visits
//! each fragment exactly once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::AnalysisError;
use super::ir::{DefinitionKind, Ir, NodeKind};
use super::truncate;

/// Checks the document and resolves every spread's `target`. Returns the fragment definitions
/// (indices into `ir.definitions`) in dependency order: a fragment comes after every fragment
/// it spreads.
pub(crate) fn check(src: &str, ir: &mut Ir) -> Result<Vec<u32>, AnalysisError> {
    check_operations(src, ir)?;

    let mut fragments: HashMap<&str, u32> = HashMap::new();
    for (index, definition) in ir.definitions.iter().enumerate() {
        if definition.kind != DefinitionKind::Fragment {
            continue;
        }
        let name = definition.name.unwrap_or_default().text(src);
        match fragments.entry(name) {
            Entry::Occupied(_) => {
                return Err(AnalysisError::DuplicateFragment {
                    fragment: truncate(name),
                });
            }
            Entry::Vacant(entry) => {
                entry.insert(super::lexer::to_u32(index));
            }
        }
    }

    for node in &mut ir.nodes {
        if node.kind == NodeKind::Spread {
            let name = node.name.text(src);
            match fragments.get(name) {
                Some(&target) => node.target = target,
                None => {
                    return Err(AnalysisError::UnknownFragment {
                        fragment: truncate(name),
                    });
                }
            }
        }
    }

    topological_order(src, ir)
}

fn check_operations(src: &str, ir: &Ir) -> Result<(), AnalysisError> {
    let mut operations = 0usize;
    let mut anonymous = false;
    let mut names: HashMap<&str, ()> = HashMap::new();
    for definition in &ir.definitions {
        if !matches!(definition.kind, DefinitionKind::Operation(_)) {
            continue;
        }
        operations += 1;
        match definition.name {
            None => anonymous = true,
            Some(name) => {
                let name = name.text(src);
                if names.insert(name, ()).is_some() {
                    return Err(AnalysisError::DuplicateOperation {
                        operation: truncate(name),
                    });
                }
            }
        }
    }
    if operations == 0 {
        return Err(AnalysisError::NoOperation);
    }
    if anonymous && operations > 1 {
        return Err(AnalysisError::AnonymousNotAlone);
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    New,
    OnPath,
    Done,
}

/// Iterative DFS over fragment definitions; a spread back to a fragment still on the path is a
/// cycle. Edges are the spread nodes of a definition's (contiguous) node range, found with a
/// cursor, so the explicit stack holds only `(definition, cursor)` pairs.
fn topological_order(src: &str, ir: &Ir) -> Result<Vec<u32>, AnalysisError> {
    let mut marks = vec![Mark::New; ir.definitions.len()];
    let mut order = Vec::new();
    let mut stack: Vec<(u32, u32)> = Vec::new();
    for (index, definition) in ir.definitions.iter().enumerate() {
        let index = super::lexer::to_u32(index);
        if definition.kind != DefinitionKind::Fragment
            || marks.get(index as usize) != Some(&Mark::New)
        {
            continue;
        }
        set(&mut marks, index, Mark::OnPath);
        stack.push((index, definition.nodes_start));
        while let Some((current, cursor)) = stack.last_mut() {
            let Some(definition) = ir.definitions.get(*current as usize) else {
                break;
            };
            let mut next = None;
            while *cursor < definition.nodes_end {
                let node = ir.nodes.get(*cursor as usize);
                *cursor += 1;
                if let Some(node) = node
                    && node.kind == NodeKind::Spread
                {
                    next = Some(node.target);
                    break;
                }
            }
            match next {
                Some(target) => match marks.get(target as usize) {
                    Some(Mark::OnPath) => {
                        let name = ir
                            .definitions
                            .get(target as usize)
                            .and_then(|d| d.name)
                            .unwrap_or_default()
                            .text(src);
                        return Err(AnalysisError::FragmentCycle {
                            fragment: truncate(name),
                        });
                    }
                    Some(Mark::New) => {
                        set(&mut marks, target, Mark::OnPath);
                        let start = ir
                            .definitions
                            .get(target as usize)
                            .map_or(0, |d| d.nodes_start);
                        stack.push((target, start));
                    }
                    _ => {}
                },
                None => {
                    let done = *current;
                    stack.pop();
                    set(&mut marks, done, Mark::Done);
                    order.push(done);
                }
            }
        }
    }
    Ok(order)
}

fn set(marks: &mut [Mark], index: u32, mark: Mark) {
    if let Some(slot) = marks.get_mut(index as usize) {
        *slot = mark;
    }
}
