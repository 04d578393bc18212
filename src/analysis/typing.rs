//! Type resolution: which schema field each selection names, and the names the schema lacks.
//!
//! # Threats
//! Schema probing (guessing field names until one works) is reconnaissance: every field,
//! argument and type condition the schema does not define is counted here, so the policy can
//! refuse a prober before the backend answers with "Did you mean …?". Below an unknown name
//! nothing more is checked (its type is unknown), so one guess counts once however much is
//! nested under it.
//!
//! One forward scan per definition in pre-order (a parent's selection type is known before its
//! children), no recursion. Without a schema nothing resolves and nothing is counted: cost then
//! falls back to structural heuristics.

use super::OperationKind;
use super::ir::{DefinitionKind, Ir, NONE, NodeKind};
use super::schema::{FieldInfo, Schema};

/// What the schema says about each node of a document.
pub(crate) struct Typing<'s> {
    /// Per IR node (same indices; empty without a schema): the schema field a field node
    /// names, when its parent's type is known and defines it.
    pub(crate) fields: Vec<Option<&'s FieldInfo>>,
    /// Per IR node: fields, arguments and type conditions the schema does not define.
    pub(crate) unknown_nodes: Vec<u32>,
    /// Per definition: 1 when a fragment's type condition names no type of the schema.
    pub(crate) unknown_definitions: Vec<u32>,
}

impl<'s> Typing<'s> {
    /// The schema field of node `index`, if it resolved.
    pub(crate) fn field(&self, index: usize) -> Option<&'s FieldInfo> {
        self.fields.get(index).copied().flatten()
    }
}

/// Fields whose selection is never checked against the schema (introspection and `__typename`).
pub(crate) fn is_meta_field(name: &str) -> bool {
    matches!(name, "__typename" | "__schema" | "__type")
}

/// Resolves every node of `ir` against `schema`.
pub(crate) fn resolve<'s>(src: &str, ir: &Ir, schema: Option<&'s Schema>) -> Typing<'s> {
    let mut typing = Typing {
        fields: Vec::new(),
        unknown_nodes: Vec::new(),
        unknown_definitions: vec![0; ir.definitions.len()],
    };
    let Some(schema) = schema else {
        return typing;
    };
    typing.fields = vec![None; ir.nodes.len()];
    typing.unknown_nodes = vec![0; ir.nodes.len()];
    // Scratch: type of each node's selection set in the current definition (`None`: unknown or
    // unchecked).
    let mut selection_types: Vec<Option<&'s str>> = Vec::new();
    for (index, definition) in ir.definitions.iter().enumerate() {
        let root = match definition.kind {
            DefinitionKind::Operation(kind) => Some(match kind {
                OperationKind::Query => schema.query_root(),
                OperationKind::Mutation => schema.mutation_root(),
                OperationKind::Subscription => schema.subscription_root(),
            }),
            DefinitionKind::Fragment => {
                let (condition, unknown) =
                    type_condition(schema, definition.type_condition.text(src));
                if let Some(slot) = typing.unknown_definitions.get_mut(index) {
                    *slot = unknown;
                }
                condition
            }
        };
        let first = definition.nodes_start;
        selection_types.clear();
        for (offset, node) in ir.nodes_of(definition).iter().enumerate() {
            let parent = if node.parent == NONE {
                root
            } else {
                selection_types
                    .get(node.parent.wrapping_sub(first) as usize)
                    .copied()
                    .flatten()
            };
            let (selection_type, field, unknown) = match node.kind {
                NodeKind::Spread => (parent, None, 0),
                NodeKind::Inline if node.name == Default::default() => (parent, None, 0),
                NodeKind::Inline => {
                    let (condition, unknown) = type_condition(schema, node.name.text(src));
                    (condition, None, unknown)
                }
                NodeKind::Field => {
                    let name = node.name.text(src);
                    match parent {
                        _ if is_meta_field(name) => (None, None, 0),
                        None => (None, None, 0),
                        Some(parent) => {
                            match schema.type_info(parent).and_then(|t| t.fields.get(name)) {
                                None => (None, None, 1),
                                Some(field) => {
                                    let unknown_arguments = ir
                                        .arguments_of(node)
                                        .iter()
                                        .filter(|a| {
                                            let argument = a.name.text(src);
                                            !field.arguments.iter().any(|n| n.name == argument)
                                        })
                                        .count();
                                    (
                                        schema.type_name(&field.type_name),
                                        Some(field),
                                        super::lexer::to_u32(unknown_arguments),
                                    )
                                }
                            }
                        }
                    }
                }
            };
            selection_types.push(selection_type);
            let at = first as usize + offset;
            if let Some(slot) = typing.fields.get_mut(at) {
                *slot = field;
            }
            if let Some(slot) = typing.unknown_nodes.get_mut(at) {
                *slot = unknown;
            }
        }
    }
    typing
}

/// A type condition: the schema's copy of the name, or one unknown name.
fn type_condition<'s>(schema: &'s Schema, name: &str) -> (Option<&'s str>, u32) {
    match schema.type_name(name) {
        Some(name) => (Some(name), 0),
        None => (None, 1),
    }
}
