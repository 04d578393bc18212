//! Static cost: a variable-free cost plan compiled once per document, finished per request.
//!
//! # Why
//! Cost follows the IBM GraphQL cost directives as Apollo Router's demand control implements
//! them: a field costs its weight (composite 1, scalar/enum 0, mutation root field 10, or
//! `@cost(weight:)`) plus its arguments' cost (`input`, once per field), and a list field
//! multiplies its own weight plus its subtree by the list size:
//! - with `@listSize(slicingArguments:)`, the largest slicing argument given (literal, the
//!   request's variable, that variable's default, else the argument's schema default); a
//!   list-typed slicing argument counts by its length. With `requireOneSlicingArgument` (the
//!   spec's default) exactly one must be given, or the request is refused;
//! - else `@listSize(assumedSize:)`;
//! - else, without `@listSize`, the length of the field's only list-typed argument
//!   (`usersByIds(ids: [ID!]!): [User]!` returns one entry per id);
//! - else the configured default list size.
//!
//! `@skip(if: true)` / `@include(if: false)` written as literals make a selection free; with a
//! variable the request's value decides (an undecidable condition counts the field). Sizes that
//! come from `$variables` are only known per request, so the cache holds a plan: one node per
//! selection (same indices as the IR), and finishing it is one backward scan per definition
//! with each fragment's cost memoised, i.e. linear in the plan even when fragments fan out
//! exponentially. `@listSize(sizedFields:)` (the connection pattern: `posts(first: $n) { edges
//! … }`) also reaches into named fragments spread directly below the sized field: those
//! fragments' tops are re-costed in that context, memoised per context, so a fragment cannot
//! hide a large `first`.
//!
//! Without a schema, a field with a selection set is composite and a field with a slicing
//! argument (`first`, `last`, …) is a list of that size.
//!
//! # Threats
//! A size the firewall reads differently from the backend is a bypass: variables are coerced
//! as GraphQL does (`coerce`: `1e3` is 1000, `"1000"` is refused), and a size that cannot be
//! known is the worst case (`max_list_size`), never a value the client chose. All arithmetic
//! saturates.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::coerce::{Declared, Scalar};
use super::ir::{
    Argument, Condition, DefinitionKind, Ir, NONE, Node, NodeKind, Span, ValueSummary,
};
use super::schema::{FieldInfo, Schema};
use super::typing::{Typing, is_meta_field};
use super::{CostSettings, OperationKind};

mod evaluate;
mod input;
mod response;
mod sizes;

pub use evaluate::Contribution;
pub(crate) use response::{Entry, ResponseShape};

/// Why a request's cost cannot be computed; the request is refused. Names taken from the input
/// are truncated to 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    /// A variable that sizes the operation (or decides a `@skip`/`@include`) does not coerce to
    /// its declared type.
    #[error("variable `${variable}` is {reason} (expected `{expected}`)")]
    VariableInvalid {
        variable: String,
        expected: &'static str,
        reason: &'static str,
    },
    /// A field with `@listSize(requireOneSlicingArgument: true)` got no or several slicing
    /// arguments.
    #[error("field `{field}` takes exactly one slicing argument, got {found}")]
    InvalidSlicing { field: String, found: u32 },
}

/// Where a list size comes from.
#[derive(Clone, Copy, Debug)]
enum SizeSource {
    /// Known from the document: a literal, the argument's schema default, or the worst case.
    Const(u64),
    /// A literal `null`: the argument counts as not given.
    Null,
    /// `$variable` where an `Int` is expected; `default` is the argument's schema default,
    /// which applies when the variable is absent.
    Int { variable: u32, default: Option<u64> },
    /// `$variable` where a list is expected: its length.
    Length { variable: u32, default: Option<u64> },
}

/// How many instances of a field are expected.
#[derive(Clone, Copy, Debug)]
enum Multiplier {
    One,
    /// Max over `sizes[start..start + len]` that resolve, else `fallback`. `required` indexes
    /// `CostPlan::labels` when exactly one must resolve (`NONE` otherwise).
    Size {
        start: u32,
        len: u32,
        fallback: u64,
        required: u32,
    },
}

#[derive(Clone, Copy, Debug)]
enum PlanKind {
    /// `multiplier × (weight + children) + arguments`.
    Field,
    /// Inline fragment: the sum of its children.
    Pass,
    /// The memoised cost of fragment `target`; when the spread sits directly (through inline
    /// fragments only) under a field with `@listSize(sizedFields:)`, `context` indexes
    /// `CostPlan::contexts` and the fragment is costed in that context.
    Spread { target: u32, context: u32 },
    /// Introspection, `__typename`, and whatever a literal `@skip`/`@include` leaves out: free,
    /// with everything below.
    Free,
}

/// What the breakdown and the response walk need of a node, kept apart from the nodes the
/// per-request scan reads.
#[derive(Clone, Copy, Debug)]
struct NodeFacts {
    /// The field's name and response key (alias or name) in the source.
    name: Span,
    key: Span,
}

/// The rarer parts of a node: variable conditions and arguments' cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Extra {
    /// Variable `@skip`/`@include`: `conditions[conditions_start..][..conditions_len]`.
    conditions_start: u32,
    conditions_len: u32,
    /// Arguments' cost: a constant part plus `arguments[arguments_start..][..arguments_len]`,
    /// scored per request.
    arguments_const: u64,
    arguments_start: u32,
    arguments_len: u32,
}

#[derive(Clone, Copy, Debug)]
struct PlanNode {
    parent: u32,
    kind: PlanKind,
    weight: u64,
    multiplier: Multiplier,
    /// Not inside any field of its definition (the part a sized context reaches).
    top: bool,
    /// For list fields at a fragment's top: id of the field name, so that a sized context can
    /// recognise it; `NONE` otherwise.
    sized_name: u32,
    /// Index in `CostPlan::extras`, or `NONE`.
    extra: u32,
}

/// `@skip(if: $v)` (`skip`) or `@include(if: $v)`.
#[derive(Clone, Copy, Debug)]
struct VariableCondition {
    variable: u32,
    skip: bool,
}

/// An argument value holding variables, scored per request.
#[derive(Debug)]
struct ArgumentCost {
    value: Value,
    slot: input::Slot,
}

/// `@listSize(sizedFields:)` of a field, applied to fragments spread directly below it.
#[derive(Debug)]
struct SizedContext {
    names: Vec<u32>,
    multiplier: Multiplier,
}

/// A variable the operation declares.
#[derive(Debug)]
struct PlanVariable {
    variable: u32,
    declared: Declared,
    /// The default value, as JSON.
    default: Option<Value>,
}

#[derive(Debug)]
struct PlanDefinition {
    /// A fragment's name (empty for operations).
    name: Span,
    nodes_start: u32,
    nodes_end: u32,
    /// Declared variables (operations only).
    variables: Vec<PlanVariable>,
    /// Fragments this definition spreads: `CostPlan::spreads[spreads_start..][..spreads_len]`.
    spreads_start: u32,
    spreads_len: u32,
}

/// The cacheable, variable-free part of cost for a whole document.
#[derive(Debug)]
pub(crate) struct CostPlan {
    nodes: Vec<PlanNode>,
    extras: Vec<Extra>,
    facts: Vec<NodeFacts>,
    /// `@cost` (field's or type's) of the fields that have one, by node: what their objects
    /// and leaves weigh in a response (others: the configured object and scalar weights).
    response_weights: Vec<(u32, u64)>,
    object_weight: u64,
    scalar_weight: u64,
    spreads: Vec<u32>,
    /// Operations in the document.
    operations: usize,
    /// With a single operation: the definitions it reaches (empty otherwise).
    reachable: Vec<bool>,
    sizes: Vec<SizeSource>,
    variables: Vec<Box<str>>,
    definitions: Vec<PlanDefinition>,
    fragment_order: Vec<u32>,
    contexts: Vec<SizedContext>,
    conditions: Vec<VariableCondition>,
    arguments: Vec<ArgumentCost>,
    /// Field names for `CostError::InvalidSlicing`.
    labels: Vec<Box<str>>,
    /// Per IR node: the field returns a list (for `Metrics::list_depth`).
    /// Per IR node: list fields from its definition's top down to it, itself included (for
    /// `Metrics::list_depth`).
    pub(crate) list_levels: Vec<u32>,
    /// Kept when argument values must be scored per request.
    schema: Option<Arc<Schema>>,
    max_list_size: u64,
    /// The document's text: names for the breakdown, response keys for the actual cost.
    source: Box<str>,
}

impl CostPlan {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<PlanNode>()
            + self.extras.capacity() * size_of::<Extra>()
            + self.response_weights.capacity() * 16
            + self.facts.capacity() * size_of::<NodeFacts>()
            + self.sizes.capacity() * size_of::<SizeSource>()
            + self
                .variables
                .iter()
                .map(|v| v.len() + size_of::<Box<str>>())
                .sum::<usize>()
            + self
                .definitions
                .iter()
                .map(|d| {
                    size_of::<PlanDefinition>()
                        + d.variables.capacity() * size_of::<PlanVariable>()

                })
                .sum::<usize>()
            + self.fragment_order.capacity() * 4
            + self.spreads.capacity() * 4
            + self.reachable.capacity()
            + self
                .contexts
                .iter()
                .map(|c| size_of::<SizedContext>() + c.names.capacity() * 4)
                .sum::<usize>()
            + self.conditions.capacity() * size_of::<VariableCondition>()
            // Argument values are small JSON trees; count their nodes roughly.
            + self.arguments.len() * 256
            + self.labels.iter().map(|l| l.len() + 16).sum::<usize>()
            + self.list_levels.capacity() * 4
            + self.source.len()
    }
}

/// `@listSize(sizedFields:)` of the nearest enclosing field, with its size: the context a
/// node's selection set is costed in.
type Sized<'s> = Option<(&'s [String], Multiplier)>;

/// What a slicing argument's value is read as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    Int,
    Length,
}

pub(crate) fn compile<'s>(
    src: &str,
    ir: &Ir,
    fragment_order: &[u32],
    settings: &CostSettings,
    schema: Option<&'s Arc<Schema>>,
    typing: &Typing<'s>,
) -> CostPlan {
    let mut c = Compiler {
        src,
        ir,
        settings,
        schema: schema.map(|s| &**s),
        typing,
        nodes: Vec::with_capacity(ir.nodes.len()),
        facts: Vec::with_capacity(ir.nodes.len()),
        extras: Vec::new(),
        extra: Extra::default(),
        has_extra: false,
        response_weights: Vec::new(),
        list: None,
        sizes: Vec::new(),
        variables: Vec::new(),
        interned: HashMap::new(),
        sized_names: HashMap::new(),
        pending_contexts: Vec::new(),
        conditions: Vec::new(),
        arguments: Vec::new(),
        labels: Vec::new(),
        list_levels: vec![0; ir.nodes.len()],
        spreads: Vec::new(),
        spread_ranges: Vec::with_capacity(ir.definitions.len()),
        condition_cursor: 0,
        scratch: Vec::new(),
    };
    let mut definitions = Vec::with_capacity(ir.definitions.len());
    for definition in &ir.definitions {
        let mutation_root = c.schema.map_or("Mutation", Schema::mutation_root);
        let is_mutation_root = match definition.kind {
            DefinitionKind::Operation(kind) => kind == OperationKind::Mutation,
            DefinitionKind::Fragment => definition.type_condition.text(src) == mutation_root,
        };
        let spreads_start = super::lexer::to_u32(c.spreads.len());
        c.definition(
            definition.nodes_start,
            ir.nodes_of(definition),
            is_mutation_root,
            definition.kind == DefinitionKind::Fragment,
        );
        let spreads_len = super::lexer::to_u32(c.spreads.len()).saturating_sub(spreads_start);
        c.spread_ranges.push((spreads_start, spreads_len));
    }
    // Declared variables matter only where the plan reads them: sizes, conditions, arguments
    // (every definition is compiled by now, so fragments' uses are interned too).
    let mut ranges = c.spread_ranges.iter().copied();
    for definition in &ir.definitions {
        let variables = definition
            .variables
            .iter()
            .filter_map(|v| {
                let variable = *c.interned.get(v.name.text(src))?;
                let scalar = match v.ty.name.text(src) {
                    "Int" => Scalar::Int,
                    "Boolean" => Scalar::Boolean,
                    _ => Scalar::Other,
                };
                let default = match v.default {
                    None => None,
                    Some(ValueSummary::Int(n)) => Some(Value::from(n)),
                    Some(ValueSummary::Bool(b)) => Some(Value::Bool(b)),
                    Some(ValueSummary::Null) => Some(Value::Null),
                    Some(_) => input::literal(v.default_span.text(src), |_| NONE),
                };
                Some(PlanVariable {
                    variable,
                    declared: Declared {
                        scalar,
                        list_depth: v.ty.list_depth,
                        non_null: v.ty.non_null,
                    },
                    default,
                })
            })
            .collect();
        let (spreads_start, spreads_len) = ranges.next().unwrap_or((0, 0));
        let name = match definition.kind {
            DefinitionKind::Fragment => definition.name.unwrap_or_default(),
            DefinitionKind::Operation(_) => Span::default(),
        };
        definitions.push(PlanDefinition {
            name,
            nodes_start: definition.nodes_start,
            nodes_end: definition.nodes_end,
            variables,
            spreads_start,
            spreads_len,
        });
    }
    let operations = ir
        .definitions
        .iter()
        .filter(|d| matches!(d.kind, DefinitionKind::Operation(_)))
        .count();
    let contexts = c
        .pending_contexts
        .iter()
        .map(|&(names, multiplier)| SizedContext {
            names: names
                .iter()
                .filter_map(|n| c.sized_names.get(n.as_str()).copied())
                .collect(),
            multiplier,
        })
        .collect();
    let schema = schema.filter(|_| !c.arguments.is_empty()).cloned();
    let mut plan = CostPlan {
        spreads: c.spreads,
        nodes: c.nodes,
        extras: c.extras,
        facts: c.facts,
        response_weights: c.response_weights,
        object_weight: settings.object_weight,
        scalar_weight: settings.scalar_weight,
        operations,
        reachable: Vec::new(),
        sizes: c.sizes,
        variables: c.variables,
        definitions,
        fragment_order: fragment_order.to_vec(),
        contexts,
        conditions: c.conditions,
        arguments: c.arguments,
        labels: c.labels,
        list_levels: c.list_levels,
        schema,
        max_list_size: settings.max_list_size,
        source: src.into(),
    };
    if operations == 1
        && ir.definitions.len() > 1
        && let Some(operation) = ir
            .definitions
            .iter()
            .position(|d| matches!(d.kind, DefinitionKind::Operation(_)))
    {
        plan.reachable = plan.reachable_from(super::lexer::to_u32(operation));
    }
    plan
}

struct Compiler<'a, 's, 't> {
    src: &'a str,
    ir: &'a Ir,
    settings: &'a CostSettings,
    schema: Option<&'s Schema>,
    typing: &'t Typing<'s>,
    nodes: Vec<PlanNode>,
    facts: Vec<NodeFacts>,
    extras: Vec<Extra>,
    /// The extra of the node being compiled, and whether it was written.
    extra: Extra,
    has_extra: bool,
    response_weights: Vec<(u32, u64)>,
    /// Whether the field being compiled is a list, when `field` found out.
    list: Option<bool>,
    sizes: Vec<SizeSource>,
    variables: Vec<Box<str>>,
    interned: HashMap<&'a str, u32>,
    /// Names of list fields at fragments' tops (ids for `PlanNode::sized_name`).
    sized_names: HashMap<&'a str, u32>,
    /// Sized contexts of spreads, resolved to name ids once every definition is compiled.
    pending_contexts: Vec<(&'s [String], Multiplier)>,
    conditions: Vec<VariableCondition>,
    arguments: Vec<ArgumentCost>,
    labels: Vec<Box<str>>,
    list_levels: Vec<u32>,
    /// Targets of the spreads compiled live (a literal `@skip`/`@include` leaves the others
    /// reaching nothing), and each definition's range of them.
    spreads: Vec<u32>,
    spread_ranges: Vec<(u32, u32)>,
    /// Next unread entry of `ir.conditions` (nodes are compiled in index order).
    condition_cursor: usize,
    /// Scratch, per node of the current definition: its selection's sized context, and whether
    /// everything below it is free.
    scratch: Vec<(Sized<'s>, bool, u32)>,
}

impl<'a, 's> Compiler<'a, 's, '_> {
    fn intern(&mut self, name: &'a str) -> u32 {
        let next = super::lexer::to_u32(self.variables.len());
        *self.interned.entry(name).or_insert_with(|| {
            self.variables.push(name.into());
            next
        })
    }

    /// One definition's nodes, in pre-order, so each parent's context is ready before its
    /// children.
    fn definition(&mut self, first: u32, nodes: &'a [Node], mutation: bool, fragment: bool) {
        self.scratch.clear();
        for (offset, node) in nodes.iter().enumerate() {
            let index = first as usize + offset;
            let (parent, parent_free, mut level) = if node.parent == NONE {
                (None, false, 0)
            } else {
                self.scratch
                    .get(node.parent.wrapping_sub(first) as usize)
                    .copied()
                    .unwrap_or((None, false, 0))
            };
            let field = self.typing.field(index);
            self.list = None;
            let (conditions_start, conditions_len, skipped) = self.conditions_of(index);
            if self.has_extra {
                self.extra = Extra::default();
                self.has_extra = false;
            }
            let (mut plan, context, free_below) = if parent_free || skipped {
                (self.plain(node, PlanKind::Free), None, true)
            } else {
                match node.kind {
                    NodeKind::Spread => {
                        let context = match parent {
                            Some(sized) => {
                                self.pending_contexts.push(sized);
                                super::lexer::to_u32(self.pending_contexts.len() - 1)
                            }
                            None => NONE,
                        };
                        let kind = PlanKind::Spread {
                            target: node.target,
                            context,
                        };
                        (self.plain(node, kind), parent, false)
                    }
                    NodeKind::Inline => (self.plain(node, PlanKind::Pass), parent, false),
                    NodeKind::Field => {
                        let (plan, context) =
                            self.field(index, node, field, parent, mutation && node.level == 1);
                        let free = matches!(plan.kind, PlanKind::Free);
                        (plan, context, free)
                    }
                }
            };
            if !parent_free && !skipped && conditions_len > 0 {
                self.extra.conditions_start = conditions_start;
                self.extra.conditions_len = conditions_len;
                self.has_extra = true;
            }
            if fragment && plan.top && plan.sized_name != NONE {
                let next = super::lexer::to_u32(self.sized_names.len());
                plan.sized_name = *self
                    .sized_names
                    .entry(node.name.text(self.src))
                    .or_insert(next);
            } else {
                plan.sized_name = NONE;
            }
            if node.kind == NodeKind::Field {
                // Known from `field` on the usual path; found here for the rest.
                let list = match (self.list, field) {
                    (Some(list), _) => list,
                    (None, Some(field)) => field.list,
                    (None, None) => self
                        .ir
                        .arguments_of(node)
                        .iter()
                        .any(|a| self.is_slicing(a)),
                };
                level = level.saturating_add(u32::from(list));
            }
            if let Some(slot) = self.list_levels.get_mut(index) {
                *slot = level;
            }
            if self.has_extra && self.extra != Extra::default() {
                plan.extra = super::lexer::to_u32(self.extras.len());
                self.extras.push(self.extra);
            }
            if let PlanKind::Spread { target, .. } = plan.kind {
                self.spreads.push(target);
            }
            self.nodes.push(plan);
            self.facts.push(NodeFacts {
                name: node.name,
                key: node.alias.unwrap_or(node.name),
            });
            self.scratch.push((context, free_below, level));
        }
    }

    /// Node `index`'s `@skip`/`@include`: the range of its variable conditions, and whether a
    /// literal one leaves it out.
    fn conditions_of(&mut self, index: usize) -> (u32, u32, bool) {
        if self.ir.conditions.len() <= self.condition_cursor {
            return (0, 0, false);
        }
        let start = super::lexer::to_u32(self.conditions.len());
        let mut skipped = false;
        while let Some(&Condition { node, skip, value }) =
            self.ir.conditions.get(self.condition_cursor)
        {
            if node as usize > index {
                break;
            }
            self.condition_cursor += 1;
            if node as usize != index {
                continue;
            }
            match value {
                ValueSummary::Bool(b) => skipped |= b == skip,
                ValueSummary::Variable(name) => {
                    let variable = self.intern(name.text(self.src));
                    self.conditions.push(VariableCondition { variable, skip });
                }
                // `null` or a mistyped literal: the backend refuses the document; count it.
                _ => {}
            }
        }
        let len = super::lexer::to_u32(self.conditions.len()).saturating_sub(start);
        (start, len, skipped)
    }

    fn plain(&self, node: &Node, kind: PlanKind) -> PlanNode {
        self.plan(node, kind, 0, Multiplier::One, false)
    }

    fn is_slicing(&self, argument: &Argument) -> bool {
        let name = argument.name.text(self.src);
        self.settings.slicing_arguments.iter().any(|s| s == name)
    }

    fn field(
        &mut self,
        index: usize,
        node: &Node,
        field: Option<&'s FieldInfo>,
        parent: Sized<'s>,
        mutation_root: bool,
    ) -> (PlanNode, Sized<'s>) {
        let name = node.name.text(self.src);
        if is_meta_field(name) {
            return (self.plain(node, PlanKind::Free), None);
        }
        let arguments = self.ir.arguments_of(node);
        let settings = self.settings;
        let (Some(schema), Some(field)) = (self.schema, field) else {
            // No schema, or below something unknown: structural heuristics.
            let weight = if mutation_root {
                settings.mutation_weight
            } else if node.has_selection {
                settings.object_weight
            } else {
                settings.scalar_weight
            };
            let list = arguments.iter().any(|a| self.is_slicing(a));
            self.list = Some(list);
            let multiplier = if list {
                let start = super::lexer::to_u32(self.sizes.len());
                for argument in arguments {
                    if self.is_slicing(argument) {
                        let source = self.source(argument.value, View::Int, None);
                        self.sizes.push(source);
                    }
                }
                self.sized(start, settings.default_list_size, NONE)
            } else {
                Multiplier::One
            };
            let plan = self.plan(node, PlanKind::Field, weight, multiplier, false);
            return (plan, None);
        };
        let type_weight = schema.type_info(&field.type_name).and_then(|t| t.cost);
        let weight = match field.cost.or(type_weight) {
            Some(weight) => weight,
            None if mutation_root => settings.mutation_weight,
            None if schema.is_composite(&field.type_name) => settings.object_weight,
            None => settings.scalar_weight,
        };
        let own_size = self.own_size(node, arguments, field);
        let multiplier = if !field.list {
            Multiplier::One
        } else {
            match parent {
                Some((sized, size)) if sized.iter().any(|s| s == name) => size,
                _ => own_size,
            }
        };
        let context = field
            .list_size
            .as_ref()
            .filter(|l| !l.sized_fields.is_empty())
            .map(|l| (l.sized_fields.as_slice(), own_size));
        let plan = self.plan(node, PlanKind::Field, weight, multiplier, field.list);
        if let Some(explicit) = field.cost.or(type_weight) {
            self.response_weights
                .push((super::lexer::to_u32(index), explicit));
        }
        if field.arguments_cost {
            self.arguments_cost(schema, arguments, field);
        }
        (plan, context)
    }

    /// `list` marks list fields (candidates for a sized context; resolved by the caller).
    fn plan(
        &self,
        node: &Node,
        kind: PlanKind,
        weight: u64,
        multiplier: Multiplier,
        list: bool,
    ) -> PlanNode {
        PlanNode {
            parent: node.parent,
            kind,
            weight,
            multiplier,
            top: node.level == 1,
            sized_name: if list { 0 } else { NONE },
            extra: NONE,
        }
    }
}
