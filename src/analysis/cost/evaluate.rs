//! Finishing a cost plan with a request's variables: the total, and its breakdown by field.
//!
//! Both are linear in the plan: every array is indexed like the plan's nodes or definitions, each
//! fragment is costed once (per sized context), and nothing recurses.

use serde_json::{Map, Value};

use super::super::coerce::{self, Declared, Invalid, Size};
use super::super::ir::{NONE, Span};
use super::{CostError, CostPlan, Multiplier, PlanKind, PlanNode, SizeSource, input};

/// One field's share of an operation's estimated cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contribution {
    /// Field names from the top of the operation or of a fragment (`...Fragment/field`).
    pub path: String,
    /// How many times the field is expected to resolve: the product of the list sizes above it
    /// and its own, summed over every place its fragment is spread.
    pub multiplier: u64,
    /// The field's own weight.
    pub weight: u64,
    /// `multiplier × weight`, plus its arguments' cost once per enclosing instance.
    pub subtotal: u64,
}

/// What the operation sees of the request's variables.
struct Given<'a> {
    /// Per interned variable: its value (the request's, else its default) and declared type.
    values: Vec<(Option<&'a Value>, Option<Declared>)>,
    /// Judging the document alone, without a request: a required variable is not given (rather
    /// than refused), and `requireOneSlicingArgument` is not checked.
    document_only: bool,
}

impl<'a> Given<'a> {
    fn get(&self, variable: u32) -> (Option<&'a Value>, Option<Declared>) {
        self.values
            .get(variable as usize)
            .copied()
            .unwrap_or((None, None))
    }
}

impl CostPlan {
    /// Cost of definition `operation` with the request's variables.
    pub(crate) fn evaluate(
        &self,
        operation: u32,
        variables: Option<&Map<String, Value>>,
    ) -> Result<u64, CostError> {
        let mut eval = Evaluation::new(self, operation, variables);
        self.finish(&mut eval)
    }

    /// Cost of definition `operation` from its text alone: variables at their defaults, a
    /// required variable without default as not given.
    pub(crate) fn document_only(&self, operation: u32) -> u64 {
        let mut eval = Evaluation::new(self, operation, None);
        eval.given.document_only = true;
        self.finish(&mut eval).unwrap_or(u64::MAX)
    }

    fn finish(&self, eval: &mut Evaluation<'_>) -> Result<u64, CostError> {
        let operation = eval.operation;
        for &fragment in &self.fragment_order {
            if !eval.reachable(fragment) {
                continue;
            }
            let cost = eval.definition(fragment)?;
            if let Some(slot) = eval.memo.get_mut(fragment as usize) {
                *slot = cost;
            }
        }
        eval.definition(operation)
    }

    /// The `top` largest contributions to the cost of `operation`.
    pub(crate) fn breakdown(
        &self,
        operation: u32,
        variables: Option<&Map<String, Value>>,
        top: usize,
    ) -> Result<Vec<Contribution>, CostError> {
        let eval = Evaluation::new(self, operation, variables);
        let mut found: Vec<(u64, u64, usize)> = Vec::new();
        // Instances entering each fragment, per sized context: `(context, instances)`.
        let mut entries: Vec<Vec<(u32, u64)>> = vec![Vec::new(); self.definitions.len()];
        if let Some(slot) = entries.get_mut(operation as usize) {
            slot.push((NONE, 1));
        }
        // How many times each node's selection set is entered (fields: their instances).
        let mut entered: Vec<u64> = vec![0; self.nodes.len()];
        let order = std::iter::once(operation).chain(
            self.fragment_order
                .iter()
                .rev()
                .copied()
                .filter(|&f| eval.reachable(f)),
        );
        for definition in order {
            let here = std::mem::take(
                entries
                    .get_mut(definition as usize)
                    .unwrap_or(&mut Vec::new()),
            );
            let total: u64 = here.iter().fold(0, |sum, e| sum.saturating_add(e.1));
            for index in eval.range(definition) {
                let Some(&node) = self.nodes.get(index) else {
                    continue;
                };
                let base = if node.parent == NONE {
                    total
                } else {
                    entered.get(node.parent as usize).copied().unwrap_or(0)
                };
                if base == 0 || eval.skipped(&node)? {
                    continue;
                }
                let instances = match node.kind {
                    PlanKind::Field if node.top => {
                        let mut sum = 0u64;
                        for &(context, n) in &here {
                            let multiplier = eval.multiplier_in(&node, context)?;
                            sum = sum.saturating_add(n.saturating_mul(multiplier));
                        }
                        sum
                    }
                    PlanKind::Field => {
                        base.saturating_mul(self.multiplier(node.multiplier, &eval.given)?)
                    }
                    PlanKind::Pass => base,
                    PlanKind::Spread { target, context } => {
                        if let Some(slot) = entries.get_mut(target as usize) {
                            if node.top {
                                // Contexts pass through a fragment's top.
                                slot.extend(here.iter().copied());
                            } else {
                                slot.push((context, base));
                            }
                        }
                        0
                    }
                    PlanKind::Free => 0,
                };
                if let Some(slot) = entered.get_mut(index) {
                    *slot = instances;
                }
                if matches!(node.kind, PlanKind::Field) {
                    let arguments = eval.arguments(&node);
                    let subtotal = instances
                        .saturating_mul(node.weight)
                        .saturating_add(base.saturating_mul(arguments));
                    if subtotal > 0 {
                        found.push((subtotal, instances, index));
                    }
                }
            }
        }
        found.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
        found.truncate(top);
        Ok(found
            .into_iter()
            .map(|(subtotal, multiplier, index)| Contribution {
                path: self.path(index),
                multiplier,
                weight: self.nodes.get(index).map_or(0, |n| n.weight),
                subtotal,
            })
            .collect())
    }

    /// Field names from the top of node `index`'s definition.
    fn path(&self, index: usize) -> String {
        let source = &*self.source;
        let mut names: Vec<&str> = Vec::new();
        let mut at = index as u32;
        while let Some(node) = self.nodes.get(at as usize) {
            if matches!(node.kind, PlanKind::Field) {
                names.push(
                    self.facts
                        .get(at as usize)
                        .map_or("", |f| f.name.text(source)),
                );
            }
            at = node.parent;
        }
        names.reverse();
        let fragment = self
            .definitions
            .iter()
            .find(|d| (d.nodes_start..d.nodes_end).contains(&(index as u32)))
            .map(|d| d.name)
            .filter(|name| *name != Span::default());
        match fragment {
            Some(name) => format!("...{}/{}", name.text(source), names.join(".")),
            None => names.join("."),
        }
    }

    /// Per plan node: its arguments' cost with the request's variables (empty when no field of
    /// the document has a costly argument). For the actual cost of a response.
    pub(crate) fn argument_costs(
        &self,
        operation: u32,
        variables: Option<&Map<String, Value>>,
    ) -> Vec<u64> {
        if self
            .extras
            .iter()
            .all(|e| e.arguments_const == 0 && e.arguments_len == 0)
        {
            return Vec::new();
        }
        let eval = Evaluation::new(self, operation, variables);
        self.nodes.iter().map(|n| eval.arguments(n)).collect()
    }

    /// Definitions reachable from `operation` through its spreads.
    pub(super) fn reachable_from(&self, operation: u32) -> Vec<bool> {
        let mut reachable = vec![false; self.definitions.len()];
        let mut stack = vec![operation];
        while let Some(definition) = stack.pop() {
            match reachable.get_mut(definition as usize) {
                Some(seen) if !*seen => *seen = true,
                _ => continue,
            }
            if let Some(d) = self.definitions.get(definition as usize) {
                let start = d.spreads_start as usize;
                let spreads = self.spreads.get(start..start + d.spreads_len as usize);
                stack.extend(spreads.unwrap_or_default().iter().copied());
            }
        }
        reachable
    }

    /// The value the operation sees for each interned variable, with its declaration.
    fn given<'a>(&'a self, operation: u32, variables: Option<&'a Map<String, Value>>) -> Given<'a> {
        let mut given = Given {
            values: self
                .variables
                .iter()
                .map(|name| (variables.and_then(|v| v.get(name.as_ref())), None))
                .collect(),
            document_only: false,
        };
        if let Some(definition) = self.definitions.get(operation as usize) {
            for declared in &definition.variables {
                if let Some(slot) = given.values.get_mut(declared.variable as usize) {
                    slot.1 = Some(declared.declared);
                    // The default applies only when the variable is absent (`null` is a value).
                    if slot.0.is_none() {
                        slot.0 = declared.default.as_ref();
                    }
                }
            }
        }
        given
    }

    fn invalid(&self, variable: u32, expected: &'static str, why: Invalid) -> CostError {
        let name = self
            .variables
            .get(variable as usize)
            .map_or("", |n| n.as_ref());
        CostError::VariableInvalid {
            variable: super::super::truncate(name),
            expected,
            reason: why.describe(),
        }
    }

    fn size(&self, source: SizeSource, given: &Given<'_>) -> Result<Option<u64>, CostError> {
        let lookup = |variable: u32| given.get(variable);
        let lenient = |result: Result<Size, Invalid>| match result {
            Err(Invalid::MissingRequired) if given.document_only => Ok(Size::Absent),
            other => other,
        };
        let size = match source {
            SizeSource::Const(n) => return Ok(Some(n)),
            SizeSource::Null => return Ok(None),
            SizeSource::Int { variable, default } => {
                let (value, declared) = lookup(variable);
                match lenient(coerce::int_size(value, declared, self.max_list_size)) {
                    Ok(size) => (size, default),
                    Err(why) => return Err(self.invalid(variable, "Int", why)),
                }
            }
            SizeSource::Length { variable, default } => {
                let (value, declared) = lookup(variable);
                match lenient(coerce::list_length(value, declared)) {
                    Ok(size) => (size, default),
                    Err(why) => return Err(self.invalid(variable, "list", why)),
                }
            }
        };
        Ok(match size {
            (Size::Known(n), _) => Some(n),
            (Size::Null, _) => None,
            (Size::Absent, default) => default,
        })
    }

    fn multiplier(&self, multiplier: Multiplier, given: &Given<'_>) -> Result<u64, CostError> {
        let Multiplier::Size {
            start,
            len,
            fallback,
            required,
        } = multiplier
        else {
            return Ok(1);
        };
        let sources = self
            .sizes
            .get(start as usize..start as usize + len as usize)
            .unwrap_or_default();
        let mut largest: Option<u64> = None;
        let mut given_count = 0u32;
        for &source in sources {
            if let Some(n) = self.size(source, given)? {
                given_count += 1;
                largest = Some(largest.map_or(n, |m| m.max(n)));
            }
        }
        if required != NONE && given_count != 1 && !given.document_only {
            let field = self
                .labels
                .get(required as usize)
                .map_or("", |l| l.as_ref());
            return Err(CostError::InvalidSlicing {
                field: super::super::truncate(field),
                found: given_count,
            });
        }
        Ok(largest.unwrap_or(fallback))
    }
}

/// Per-request evaluation state: every array is indexed like the plan, nothing recurses.
struct Evaluation<'p> {
    plan: &'p CostPlan,
    operation: u32,
    given: Given<'p>,
    /// Definitions reachable from the operation (only their fields are checked); empty: the
    /// plan's (a single operation's).
    reachable: Vec<bool>,
    /// Context-free cost of each fragment definition.
    memo: Vec<u64>,
    /// Context-free sum of each node's children.
    below: Vec<u64>,
    /// Fragment costs in a sized context: `(context + 1, cost)` per definition (0 = unset).
    in_context: Vec<(u32, u64)>,
    /// Scratch sums for inline fragments at a fragment's top, in a sized context.
    context_below: Vec<u64>,
}

impl<'p> Evaluation<'p> {
    fn new(plan: &'p CostPlan, operation: u32, variables: Option<&'p Map<String, Value>>) -> Self {
        // With one operation, reachability was settled at compile time.
        let reachable = if plan.operations > 1 {
            plan.reachable_from(operation)
        } else {
            Vec::new()
        };
        Evaluation {
            plan,
            operation,
            given: plan.given(operation, variables),
            reachable,
            memo: vec![0; plan.definitions.len()],
            below: vec![0; plan.nodes.len()],
            in_context: Vec::new(),
            context_below: Vec::new(),
        }
    }

    fn reachable(&self, definition: u32) -> bool {
        let reachable = if self.reachable.is_empty() {
            &self.plan.reachable
        } else {
            &self.reachable
        };
        // Empty for a document that is a single operation and nothing else.
        reachable.is_empty() || reachable.get(definition as usize) == Some(&true)
    }

    fn node(&self, index: usize) -> Option<&PlanNode> {
        self.plan.nodes.get(index)
    }

    fn range(&self, definition: u32) -> std::ops::Range<usize> {
        self.plan
            .definitions
            .get(definition as usize)
            .map_or(0..0, |d| d.nodes_start as usize..d.nodes_end as usize)
    }

    /// Whether a variable `@skip`/`@include` leaves the node out for this request.
    fn skipped(&self, node: &PlanNode) -> Result<bool, CostError> {
        let Some(extra) = self.plan.extras.get(node.extra as usize) else {
            return Ok(false);
        };
        let start = extra.conditions_start as usize;
        let conditions = self
            .plan
            .conditions
            .get(start..start + extra.conditions_len as usize)
            .unwrap_or_default();
        for condition in conditions {
            let (value, declared) = self.given.get(condition.variable);
            match coerce::boolean(value, declared) {
                Ok(Some(b)) if b == condition.skip => return Ok(true),
                Ok(_) => {}
                Err(why) => return Err(self.plan.invalid(condition.variable, "Boolean", why)),
            }
        }
        Ok(false)
    }

    /// The arguments' cost of one instance of the field.
    fn arguments(&self, node: &PlanNode) -> u64 {
        let Some(extra) = self.plan.extras.get(node.extra as usize) else {
            return 0;
        };
        if extra.arguments_len == 0 {
            return extra.arguments_const;
        }
        let start = extra.arguments_start as usize;
        let parts = self
            .plan
            .arguments
            .get(start..start + extra.arguments_len as usize)
            .unwrap_or_default();
        let Some(schema) = self.plan.schema.as_deref() else {
            return extra.arguments_const;
        };
        parts.iter().fold(extra.arguments_const, |sum, part| {
            let variable = |v: u32| self.given.get(v).0;
            sum.saturating_add(input::score(schema, &part.value, &part.slot, variable))
        })
    }

    /// A field's multiplier when its fragment is costed in sized context `context`.
    fn multiplier_in(&self, node: &PlanNode, context: u32) -> Result<u64, CostError> {
        match self.plan.contexts.get(context as usize) {
            Some(sized) if node.top && sized.names.contains(&node.sized_name) => {
                self.plan.multiplier(sized.multiplier, &self.given)
            }
            _ => self.plan.multiplier(node.multiplier, &self.given),
        }
    }

    fn field(&self, node: &PlanNode, multiplier: u64, below: u64) -> u64 {
        multiplier
            .saturating_mul(node.weight.saturating_add(below))
            .saturating_add(self.arguments(node))
    }

    /// Backward scan: children follow their parent in pre-order, so by the time a node is
    /// reached the sum of its children is complete.
    fn definition(&mut self, definition: u32) -> Result<u64, CostError> {
        let mut total = 0u64;
        for index in self.range(definition).rev() {
            let Some(&node) = self.node(index) else {
                continue;
            };
            let below = self.below.get(index).copied().unwrap_or(0);
            // A field's sizes are checked even when a variable condition leaves it out (GraphQL
            // coerces every variable, used or not).
            let multiplier = match node.kind {
                PlanKind::Field => self.plan.multiplier(node.multiplier, &self.given)?,
                _ => 1,
            };
            let value = match node.kind {
                _ if node.extra != NONE && self.skipped(&node)? => 0,
                PlanKind::Field => self.field(&node, multiplier, below),
                PlanKind::Pass => below,
                PlanKind::Spread { target, context } if context == NONE => {
                    self.memo.get(target as usize).copied().unwrap_or(0)
                }
                PlanKind::Spread { target, context } => self.in_context(target, context)?,
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
        Ok(total)
    }

    /// Cost of fragment `target` spread under a sized field: its top-level list fields named
    /// in the context take the context's size, and so do those of fragments it spreads at its
    /// top. Everything inside fields is context-free and already in `below`. Dependencies are
    /// visited with an explicit stack; results are memoised per context.
    fn in_context(&mut self, target: u32, context: u32) -> Result<u64, CostError> {
        if self.plan.contexts.get(context as usize).is_none() {
            return Ok(self.memo.get(target as usize).copied().unwrap_or(0));
        }
        let key = context.saturating_add(1);
        if self.in_context.is_empty() {
            self.in_context = vec![(0, 0); self.plan.definitions.len()];
            self.context_below = vec![0; self.plan.nodes.len()];
        }
        let done =
            |this: &Self, f: u32| this.in_context.get(f as usize).is_some_and(|e| e.0 == key);
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
                let multiplier = match node.kind {
                    PlanKind::Field => self.multiplier_in(&node, context)?,
                    _ => 1,
                };
                let value = match node.kind {
                    _ if node.extra != NONE && self.skipped(&node)? => 0,
                    PlanKind::Field => {
                        let below = self.below.get(index).copied().unwrap_or(0);
                        self.field(&node, multiplier, below)
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
        Ok(self
            .in_context
            .get(target as usize)
            .map_or(0, |&(_, cost)| cost))
    }
}
