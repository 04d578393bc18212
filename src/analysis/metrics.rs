//! Metrics of each operation, with fragments expanded semantically through memoised summaries.
//!
//! # Threats
//! Expanding fragments literally is exponential: 30 levels of `fragment Fn on Q { a: x ...Fn+1
//! b: x ...Fn+1 }` describe 2^30 fields in 1 KB. Each fragment is summarised once, in dependency
//! order, and a spread adds its fragment's summary (saturating), so measuring costs one linear
//! scan of the document whatever it expands to. A spread adds no depth by itself, a fragment
//! *named* `__schema` is just a name, and aliases of `__typename` count (they still cost CPU).
//! List depth counts list fields nested in list fields (`users { friends { posts } }` is 3):
//! the amplification factor graphql-protect calls "max list depth".

use super::Metrics;
use super::ir::{DefinitionKind, Ir, NodeKind};

/// Metrics per definition (same indices as `ir.definitions`): the executed operation's metrics
/// for operations, the summary used at each spread for fragments.
pub(crate) fn measure(
    src: &str,
    ir: &Ir,
    fragment_order: &[u32],
    unknown_nodes: &[u32],
    unknown_definitions: &[u32],
    list_levels: &[u32],
) -> Vec<Metrics> {
    let mut out = vec![Metrics::default(); ir.definitions.len()];
    let operations = ir
        .definitions
        .iter()
        .enumerate()
        .filter(|(_, d)| matches!(d.kind, DefinitionKind::Operation(_)))
        .map(|(i, _)| i);
    let order: Vec<usize> = fragment_order
        .iter()
        .map(|&i| i as usize)
        .chain(operations)
        .collect();
    for index in order {
        let facts = Facts {
            unknown_nodes,
            unknown_definitions,
            list_levels,
        };
        let summary = summarise(src, ir, index, &out, &facts);
        if let Some(slot) = out.get_mut(index) {
            *slot = summary;
        }
    }
    out
}

/// Per-node facts from typing and cost, indexed like the IR's nodes.
struct Facts<'a> {
    unknown_nodes: &'a [u32],
    unknown_definitions: &'a [u32],
    /// List fields from the definition's top down to the node, itself included.
    list_levels: &'a [u32],
}

fn summarise(
    src: &str,
    ir: &Ir,
    index: usize,
    summaries: &[Metrics],
    facts: &Facts<'_>,
) -> Metrics {
    let Some(definition) = ir.definitions.get(index) else {
        return Metrics::default();
    };
    let mut m = Metrics {
        directives: definition.directives,
        unknown_schema_names: facts.unknown_definitions.get(index).copied().unwrap_or(0),
        ..Metrics::default()
    };
    let first = definition.nodes_start as usize;
    let level = |at: usize| facts.list_levels.get(at).copied().unwrap_or(0);
    for (offset, node) in ir.nodes_of(definition).iter().enumerate() {
        let unknown = facts
            .unknown_nodes
            .get(first + offset)
            .copied()
            .unwrap_or(0);
        m.unknown_schema_names = m.unknown_schema_names.saturating_add(unknown);
        m.directives = m.directives.saturating_add(node.directives);
        match node.kind {
            NodeKind::Field => {
                let name = node.name.text(src);
                m.fields = m.fields.saturating_add(1);
                if node.alias.is_some() {
                    m.aliases = m.aliases.saturating_add(1);
                }
                if name == "__schema" || name == "__type" {
                    m.introspection_fields = m.introspection_fields.saturating_add(1);
                }
                if name != "__typename" {
                    m.depth = m.depth.max(node.level);
                }
                m.list_depth = m.list_depth.max(level(first + offset));
                if node.level == 1 {
                    m.root_fields = m.root_fields.saturating_add(1);
                }
            }
            NodeKind::Inline => {}
            NodeKind::Spread => {
                let f = summaries
                    .get(node.target as usize)
                    .copied()
                    .unwrap_or_default();
                m.directives = m.directives.saturating_add(f.directives);
                m.fields = m.fields.saturating_add(f.fields);
                m.aliases = m.aliases.saturating_add(f.aliases);
                m.introspection_fields = m
                    .introspection_fields
                    .saturating_add(f.introspection_fields);
                m.unknown_schema_names = m
                    .unknown_schema_names
                    .saturating_add(f.unknown_schema_names);
                if f.list_depth > 0 {
                    let above = level(first + offset);
                    m.list_depth = m.list_depth.max(above.saturating_add(f.list_depth));
                }
                if f.depth > 0 {
                    m.depth = m
                        .depth
                        .max(node.level.saturating_sub(1).saturating_add(f.depth));
                }
                if node.level == 1 {
                    m.root_fields = m.root_fields.saturating_add(f.root_fields);
                }
            }
        }
    }
    m
}
