//! Static cost: a variable-free cost plan compiled once per document, finished per request.
//!
//! # Why
//! Cost follows the IBM GraphQL cost directives as Apollo Router's demand control implements
//! them: a field costs its weight (composite 1, scalar/enum 0, mutation root field 10, or
//! `@cost(weight:)`), and a list field multiplies its own weight plus its subtree by the list
//! size: the largest slicing argument (literal, the request's variable, or that variable's
//! default), else `@listSize(assumedSize:)`, else the configured default. Sizes that come from
//! `$variables` are only known per request, so the cache holds a plan: one node per selection
//! (same indices as the IR), and finishing it is one backward scan per definition with each
//! fragment's cost memoised, i.e. linear in the plan even when fragments fan out exponentially.
//! `@listSize(sizedFields:)` (the connection pattern: `posts(first: $n) { edges … }`) also
//! reaches into named fragments spread directly below the sized field: those fragments' tops are
//! re-costed in that context, memoised per context, so a fragment cannot hide a large `first`.
//!
//! Without a schema, a field with a selection set is composite and a field with a slicing
//! argument (`first`, `last`, …) is a list of that size.
//!
//! # Threats
//! Client-chosen sizes are bounded to GraphQL's 32-bit `Int` (anything else is an invalid
//! request for the backend and falls back to the default), and all arithmetic saturates.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::CostSettings;
use super::OperationKind;
use super::ir::{Argument, DefinitionKind, Ir, NONE, Node, NodeKind, ValueSummary};
use super::schema::{FieldInfo, ListSize, Schema};
use super::typing::{Typing, is_meta_field};

/// Where a list size comes from.
#[derive(Clone, Copy, Debug)]
enum SizeSource {
    Const(u64),
    /// Index into `CostPlan::variables`.
    Variable(u32),
}

/// How many instances of a field are expected.
#[derive(Clone, Copy, Debug)]
enum Multiplier {
    One,
    /// Max over `sizes[start..start + len]` that resolve, else `fallback`.
    Size {
        start: u32,
        len: u32,
        fallback: u64,
    },
}

#[derive(Clone, Copy, Debug)]
enum PlanKind {
    /// `multiplier × (weight + children)`.
    Field,
    /// Inline fragment: the sum of its children.
    Pass,
    /// The memoised cost of fragment `target`; when the spread sits directly (through inline
    /// fragments only) under a field with `@listSize(sizedFields:)`, `context` indexes
    /// `CostPlan::contexts` and the fragment is costed in that context.
    Spread { target: u32, context: u32 },
    /// Introspection and `__typename`: free, whatever is below.
    Free,
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
}

/// `@listSize(sizedFields:)` of a field, applied to fragments spread directly below it.
#[derive(Debug)]
struct SizedContext {
    names: Vec<u32>,
    multiplier: Multiplier,
}

#[derive(Debug)]
struct PlanDefinition {
    nodes_start: u32,
    nodes_end: u32,
    /// Integer defaults of the operation's variables: `(variable index, value)`.
    defaults: Vec<(u32, u64)>,
}

/// The cacheable, variable-free part of cost for a whole document.
#[derive(Debug)]
pub(crate) struct CostPlan {
    nodes: Vec<PlanNode>,
    sizes: Vec<SizeSource>,
    variables: Vec<Box<str>>,
    definitions: Vec<PlanDefinition>,
    fragment_order: Vec<u32>,
    contexts: Vec<SizedContext>,
}

/// `@listSize(sizedFields:)` of the nearest enclosing field, with its size: the context a
/// node's selection set is costed in.
type Sized<'s> = Option<(&'s [String], Multiplier)>;

pub(crate) fn compile<'s>(
    src: &str,
    ir: &Ir,
    fragment_order: &[u32],
    settings: &CostSettings,
    schema: Option<&'s Schema>,
    typing: &Typing<'s>,
) -> CostPlan {
    let mut c = Compiler {
        src,
        ir,
        settings,
        schema,
        typing,
        nodes: Vec::with_capacity(ir.nodes.len()),
        sizes: Vec::new(),
        variables: Vec::new(),
        interned: HashMap::new(),
        sized_names: HashMap::new(),
        pending_contexts: Vec::new(),
        contexts: Vec::new(),
    };
    let mut definitions = Vec::with_capacity(ir.definitions.len());
    for definition in &ir.definitions {
        let mutation_root = schema.map_or("Mutation", Schema::mutation_root);
        let is_mutation_root = match definition.kind {
            DefinitionKind::Operation(kind) => kind == OperationKind::Mutation,
            DefinitionKind::Fragment => definition.type_condition.text(src) == mutation_root,
        };
        c.definition(
            definition.nodes_start,
            ir.nodes_of(definition),
            is_mutation_root,
            definition.kind == DefinitionKind::Fragment,
        );
        let defaults = definition
            .variables
            .iter()
            .filter_map(|v| match v.default {
                ValueSummary::Int(n) => Some((c.intern(v.name.text(src)), n)),
                _ => None,
            })
            .collect();
        definitions.push(PlanDefinition {
            nodes_start: definition.nodes_start,
            nodes_end: definition.nodes_end,
            defaults,
        });
    }
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
    CostPlan {
        nodes: c.nodes,
        sizes: c.sizes,
        variables: c.variables,
        definitions,
        fragment_order: fragment_order.to_vec(),
        contexts,
    }
}

struct Compiler<'a, 's, 't> {
    src: &'a str,
    ir: &'a Ir,
    settings: &'a CostSettings,
    schema: Option<&'s Schema>,
    typing: &'t Typing<'s>,
    nodes: Vec<PlanNode>,
    sizes: Vec<SizeSource>,
    variables: Vec<Box<str>>,
    interned: HashMap<&'a str, u32>,
    /// Names of list fields at fragments' tops (ids for `PlanNode::sized_name`).
    sized_names: HashMap<&'a str, u32>,
    /// Sized contexts of spreads, resolved to name ids once every definition is compiled.
    pending_contexts: Vec<(&'s [String], Multiplier)>,
    /// Scratch: sized contexts of the current definition's nodes.
    contexts: Vec<Sized<'s>>,
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
        self.contexts.clear();
        for (offset, node) in nodes.iter().enumerate() {
            let parent = if node.parent == NONE {
                None
            } else {
                self.contexts
                    .get(node.parent.wrapping_sub(first) as usize)
                    .copied()
                    .flatten()
            };
            let (mut plan, context) = match node.kind {
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
                    (self.plain(node, kind), parent)
                }
                NodeKind::Inline => (self.plain(node, PlanKind::Pass), parent),
                NodeKind::Field => {
                    let field = self.typing.field(first as usize + offset);
                    self.field(node, field, parent, mutation && node.level == 1)
                }
            };
            if fragment && plan.top && plan.sized_name != NONE {
                let next = super::lexer::to_u32(self.sized_names.len());
                plan.sized_name = *self
                    .sized_names
                    .entry(node.name.text(self.src))
                    .or_insert(next);
            } else {
                plan.sized_name = NONE;
            }
            self.nodes.push(plan);
            self.contexts.push(context);
        }
    }

    fn plain(&self, node: &Node, kind: PlanKind) -> PlanNode {
        self.plan(node, kind, 0, Multiplier::One, false)
    }

    fn field(
        &mut self,
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
            let is_slicing = |a: &Argument| {
                let arg = a.name.text(self.src);
                settings.slicing_arguments.iter().any(|s| s == arg)
            };
            let multiplier = if arguments.iter().any(is_slicing) {
                self.size(arguments, is_slicing, settings.default_list_size)
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
        let list_size: Option<&'s ListSize> = field.list_size.as_ref();
        let own_size = match list_size {
            Some(list_size) => {
                let src = self.src;
                let is_slicing = |a: &Argument| {
                    let arg = a.name.text(src);
                    list_size.slicing_arguments.iter().any(|s| s == arg)
                };
                let fallback = list_size.assumed_size.unwrap_or(settings.default_list_size);
                self.size(arguments, is_slicing, fallback)
            }
            None => self.size(&[], |_| false, settings.default_list_size),
        };
        let multiplier = if !field.list {
            Multiplier::One
        } else {
            match parent {
                Some((sized, size)) if sized.iter().any(|s| s == name) => size,
                _ => own_size,
            }
        };
        let context = list_size
            .filter(|l| !l.sized_fields.is_empty())
            .map(|l| (l.sized_fields.as_slice(), own_size));
        (
            self.plan(node, PlanKind::Field, weight, multiplier, field.list),
            context,
        )
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
        }
    }

    /// A size from the slicing arguments among `arguments`, with a fallback.
    fn size(
        &mut self,
        arguments: &'a [Argument],
        is_slicing: impl Fn(&Argument) -> bool,
        fallback: u64,
    ) -> Multiplier {
        let start = super::lexer::to_u32(self.sizes.len());
        for argument in arguments.iter().filter(|a| is_slicing(a)) {
            let source = match argument.value {
                ValueSummary::Int(n) => SizeSource::Const(n),
                ValueSummary::Variable(name) => {
                    SizeSource::Variable(self.intern(name.text(self.src)))
                }
                ValueSummary::Other => continue,
            };
            self.sizes.push(source);
        }
        let len = super::lexer::to_u32(self.sizes.len()).saturating_sub(start);
        Multiplier::Size {
            start,
            len,
            fallback,
        }
    }
}

impl CostPlan {
    /// Cost of definition `operation` with the request's variables.
    pub(crate) fn evaluate(&self, operation: u32, variables: Option<&Map<String, Value>>) -> u64 {
        let Some(definition) = self.definitions.get(operation as usize) else {
            return 0;
        };
        let mut eval = Evaluation {
            plan: self,
            resolved: (0..self.variables.len())
                .map(|i| self.resolve(i, definition, variables))
                .collect(),
            memo: vec![0; self.definitions.len()],
            below: vec![0; self.nodes.len()],
            in_context: Vec::new(),
            context_below: Vec::new(),
        };
        for &fragment in &self.fragment_order {
            let cost = eval.definition(fragment);
            if let Some(slot) = eval.memo.get_mut(fragment as usize) {
                *slot = cost;
            }
        }
        eval.definition(operation)
    }

    /// A variable's size: the request's value if it is a valid non-negative `Int`, else the
    /// operation's default, else unresolved.
    fn resolve(
        &self,
        index: usize,
        definition: &PlanDefinition,
        variables: Option<&Map<String, Value>>,
    ) -> Option<u64> {
        let name = self.variables.get(index)?;
        let given = variables
            .and_then(|v| v.get(name.as_ref()))
            .and_then(Value::as_u64)
            .filter(|&n| n <= i32::MAX.unsigned_abs().into());
        given.or_else(|| {
            definition
                .defaults
                .iter()
                .find(|(v, _)| *v as usize == index)
                .map(|&(_, n)| n)
        })
    }

    fn multiplier(&self, multiplier: Multiplier, resolved: &[Option<u64>]) -> u64 {
        match multiplier {
            Multiplier::One => 1,
            Multiplier::Size {
                start,
                len,
                fallback,
            } => self
                .sizes
                .get(start as usize..start as usize + len as usize)
                .unwrap_or_default()
                .iter()
                .filter_map(|source| match *source {
                    SizeSource::Const(n) => Some(n),
                    SizeSource::Variable(v) => resolved.get(v as usize).copied().flatten(),
                })
                .max()
                .unwrap_or(fallback),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<PlanNode>()
            + self.sizes.capacity() * size_of::<SizeSource>()
            + self
                .variables
                .iter()
                .map(|v| v.len() + size_of::<Box<str>>())
                .sum::<usize>()
            + self
                .definitions
                .iter()
                .map(|d| size_of::<PlanDefinition>() + d.defaults.capacity() * 16)
                .sum::<usize>()
            + self.fragment_order.capacity() * 4
            + self
                .contexts
                .iter()
                .map(|c| size_of::<SizedContext>() + c.names.capacity() * 4)
                .sum::<usize>()
    }
}

/// Per-request evaluation state: every array is indexed like the plan, nothing recurses.
struct Evaluation<'p> {
    plan: &'p CostPlan,
    resolved: Vec<Option<u64>>,
    /// Context-free cost of each fragment definition.
    memo: Vec<u64>,
    /// Context-free sum of each node's children.
    below: Vec<u64>,
    /// Fragment costs in a sized context: `(context + 1, cost)` per definition (0 = unset).
    in_context: Vec<(u32, u64)>,
    /// Scratch sums for inline fragments at a fragment's top, in a sized context.
    context_below: Vec<u64>,
}

impl Evaluation<'_> {
    fn node(&self, index: usize) -> Option<&PlanNode> {
        self.plan.nodes.get(index)
    }

    fn range(&self, definition: u32) -> std::ops::Range<usize> {
        self.plan
            .definitions
            .get(definition as usize)
            .map_or(0..0, |d| d.nodes_start as usize..d.nodes_end as usize)
    }

    /// Backward scan: children follow their parent in pre-order, so by the time a node is
    /// reached the sum of its children is complete.
    fn definition(&mut self, definition: u32) -> u64 {
        let mut total = 0u64;
        for index in self.range(definition).rev() {
            let Some(&node) = self.node(index) else {
                continue;
            };
            let below = self.below.get(index).copied().unwrap_or(0);
            let value = match node.kind {
                PlanKind::Field => self
                    .plan
                    .multiplier(node.multiplier, &self.resolved)
                    .saturating_mul(node.weight.saturating_add(below)),
                PlanKind::Pass => below,
                PlanKind::Spread { target, context } if context == NONE => {
                    self.memo.get(target as usize).copied().unwrap_or(0)
                }
                PlanKind::Spread { target, context } => self.in_context(target, context),
                PlanKind::Free => 0,
            };
            let slot = if node.parent == NONE {
                Some(&mut total)
            } else {
                self.below.get_mut(node.parent as usize)
            };
            if let Some(slot) = slot {
                *slot = slot.saturating_add(value);
            }
        }
        total
    }

    /// Cost of fragment `target` spread under a sized field: its top-level list fields named
    /// in the context take the context's size, and so do those of fragments it spreads at its
    /// top. Everything inside fields is context-free and already in `below`. Dependencies are
    /// visited with an explicit stack; results are memoised per context.
    fn in_context(&mut self, target: u32, context: u32) -> u64 {
        let Some(sized) = self.plan.contexts.get(context as usize) else {
            return self.memo.get(target as usize).copied().unwrap_or(0);
        };
        let key = context.saturating_add(1);
        if self.in_context.is_empty() {
            self.in_context = vec![(0, 0); self.plan.definitions.len()];
            self.context_below = vec![0; self.plan.nodes.len()];
        }
        let done =
            |this: &Self, f: u32| this.in_context.get(f as usize).is_some_and(|e| e.0 == key);
        let size = self.plan.multiplier(sized.multiplier, &self.resolved);
        let mut stack = vec![(target, false)];
        while let Some((fragment, expanded)) = stack.pop() {
            if done(self, fragment) {
                continue;
            }
            let range = self.range(fragment);
            if !expanded {
                stack.push((fragment, true));
                for index in range {
                    if let Some(PlanNode {
                        kind: PlanKind::Spread { target, .. },
                        top: true,
                        ..
                    }) = self.node(index)
                        && !done(self, *target)
                    {
                        stack.push((*target, false));
                    }
                }
                continue;
            }
            for index in range.clone() {
                if let Some(slot) = self.context_below.get_mut(index) {
                    *slot = 0;
                }
            }
            let mut total = 0u64;
            for index in range.rev() {
                let Some(&node) = self.node(index) else {
                    continue;
                };
                if !node.top {
                    continue;
                }
                let value = match node.kind {
                    PlanKind::Field => {
                        let multiplier = if sized.names.contains(&node.sized_name) {
                            size
                        } else {
                            self.plan.multiplier(node.multiplier, &self.resolved)
                        };
                        let below = self.below.get(index).copied().unwrap_or(0);
                        multiplier.saturating_mul(node.weight.saturating_add(below))
                    }
                    PlanKind::Pass => self.context_below.get(index).copied().unwrap_or(0),
                    PlanKind::Spread { target, .. } => self
                        .in_context
                        .get(target as usize)
                        .map_or(0, |&(_, cost)| cost),
                    PlanKind::Free => 0,
                };
                let slot = if node.parent == NONE {
                    Some(&mut total)
                } else {
                    self.context_below.get_mut(node.parent as usize)
                };
                if let Some(slot) = slot {
                    *slot = slot.saturating_add(value);
                }
            }
            if let Some(entry) = self.in_context.get_mut(fragment as usize) {
                *entry = (key, total);
            }
        }
        self.in_context
            .get(target as usize)
            .map_or(0, |&(_, cost)| cost)
    }
}
