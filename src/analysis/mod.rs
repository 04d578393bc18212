//! Request-path document analysis: GraphQL text in, per-operation metrics and cost plans out.
//!
//! # Threats
//! The document is the attacker's main lever on a GraphQL firewall. Analysis must therefore cost
//! time linear in the input with early exit at the limits, never recurse (deep nesting must not
//! overflow a worker's stack), never panic on any `&str`, and never expand fragments literally
//! (exponential fan-out). The pipeline is: `lexer` (token budget) → `parser` (iterative, value
//! and depth limits, arena `ir`) → `document` checks (unique names, defined spreads, cycles)
//! → `typing` (schema fields, unknown names) → `cost` plan (`@cost`/`@listSize`) → `metrics`
//! (memoised fragment summaries). Everything is pure: no I/O, no logging, no variables, so the
//! result of [`analyse`] can be cached by the SHA-256 of the text; [`Operation::estimate`] finishes
//! the cost with the request's variables (read as GraphQL coerces them: `coerce`), and
//! [`ActualCost`] measures what a response really cost (`actual`), to be set against it.
//!
//! Input is `&str`: invalid UTF-8 never gets here (the HTTP layer decodes JSON or query strings,
//! which are UTF-8 by definition, and rejects the rest as `INVALID_REQUEST`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod access;
mod actual;
mod coerce;
mod cost;
mod document;
mod ir;
mod lexer;
mod metrics;
mod parser;
mod schema;
mod typing;
mod variables;

use std::sync::Arc;

pub use access::{Requirement, Restriction};
pub use actual::{ActualCost, ActualCostError, MAX_NESTING};
pub use cost::{Contribution, CostError};
pub use schema::{Schema, SchemaError};
pub use variables::{VariableMetrics, measure_variables};

/// Limits enforced during the pass, with early exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Lexical tokens, comments included (`None`: unlimited).
    pub max_tokens: Option<u32>,
    /// Raw field nesting of selection sets; the same number as the policy's depth limit (raw
    /// nesting is a lower bound of the expanded depth, so exceeding it is already a violation).
    pub max_depth: Option<u32>,
    /// List/object nesting in argument values, variable defaults, directive arguments and
    /// variable types.
    pub max_value_nesting: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tokens: Some(15_000),
            max_depth: Some(10),
            max_value_nesting: 32,
        }
    }
}

/// Weights and sizes for static cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostSettings {
    /// Size of a list without slicing argument or `@listSize(assumedSize:)`.
    pub default_list_size: u64,
    /// Size of a list whose size a request gives but cannot be known (a negative `first`, a
    /// string where an `Int` is expected): the worst case, never a value the client chose.
    pub max_list_size: u64,
    /// Schema-less mode: arguments whose value is a list's size.
    pub slicing_arguments: Vec<String>,
    /// Weight of a composite (object, interface, union) field.
    pub object_weight: u64,
    /// Weight of a scalar or enum field.
    pub scalar_weight: u64,
    /// Weight of a mutation's root field.
    pub mutation_weight: u64,
}

impl Default for CostSettings {
    fn default() -> Self {
        Self {
            default_list_size: 10,
            max_list_size: 1000,
            slicing_arguments: ["first", "last", "limit", "pageSize"]
                .map(String::from)
                .to_vec(),
            object_weight: 1,
            scalar_weight: 0,
            mutation_weight: 10,
        }
    }
}

/// Everything [`analyse`] needs besides the document.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub limits: Limits,
    pub cost: CostSettings,
    pub schema: Option<Arc<Schema>>,
}

/// Operation type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

impl OperationKind {
    /// `query`, `mutation` or `subscription`: the keyword, also a metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Query => "query",
            OperationKind::Mutation => "mutation",
            OperationKind::Subscription => "subscription",
        }
    }
}

/// Measurements of one executed operation, fragments expanded (saturating).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Metrics {
    /// Field nesting: a root field is 1; `__typename` adds nothing.
    pub depth: u32,
    /// Fields written with an alias (`__typename` included), expanded.
    pub aliases: u32,
    /// Fields of the operation's own selection set after expanding root-level fragments.
    pub root_fields: u32,
    /// Directive usages anywhere in the executed operation, expanded.
    pub directives: u32,
    /// Fields, expanded (`__typename` included).
    pub fields: u32,
    /// `__schema` and `__type` fields anywhere.
    pub introspection_fields: u32,
    /// With a schema: fields, arguments and type conditions the schema does not define.
    pub unknown_schema_names: u32,
    /// List fields nested in list fields, fragments expanded: `{ users { friends { id } } }` is
    /// 2. A list field is one the schema types as a list; without a schema, a field with a
    /// slicing argument.
    pub list_depth: u32,
}

/// Why a document was refused. Names taken from the input are truncated to 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnalysisError {
    /// The document is not valid GraphQL syntax.
    #[error("syntax error at {line}:{column}: {message}")]
    Syntax {
        message: &'static str,
        line: u32,
        column: u32,
    },
    /// The document is larger than 4 GiB (positions are 32-bit).
    #[error("document too large")]
    TooLarge,
    /// More lexical tokens than allowed; scanning stopped at `at_least`.
    #[error("token limit {limit} exceeded (at least {at_least} tokens)")]
    TokenLimit { limit: u32, at_least: u32 },
    /// Selection sets nested deeper than allowed.
    #[error("depth limit {limit} exceeded (at least {at_least})")]
    DepthLimit { limit: u32, at_least: u32 },
    /// Lists/objects in a value (or a type) nested deeper than allowed.
    #[error("value nesting limit {limit} exceeded")]
    ValueNestingLimit { limit: u32 },
    /// Fragments spread each other in a loop.
    #[error("fragment `{fragment}` spreads itself")]
    FragmentCycle { fragment: String },
    /// A spread names no fragment of the document.
    #[error("unknown fragment `{fragment}`")]
    UnknownFragment { fragment: String },
    /// Two fragments share a name.
    #[error("fragment `{fragment}` is defined twice")]
    DuplicateFragment { fragment: String },
    /// Two operations share a name.
    #[error("operation `{operation}` is defined twice")]
    DuplicateOperation { operation: String },
    /// An anonymous operation is not the only operation.
    #[error("an anonymous operation must be the only operation")]
    AnonymousNotAlone,
    /// `operationName` is missing while several operations exist, or names none of them.
    #[error("operation not found")]
    OperationNotFound { operation: Option<String> },
    /// The document has fragments but no operation.
    #[error("the document contains no operation")]
    NoOperation,
    /// A type-system definition (schema, type, directive…) in a request.
    #[error("type-system definition at {line}:{column} in an executable document")]
    NotExecutable { line: u32, column: u32 },
}

/// Analysis of a whole document: cacheable, variable-free.
#[derive(Debug)]
pub struct Document {
    tokens: u32,
    operations: Vec<Operation>,
    /// Indices into `operations`, sorted by name (named operations only).
    by_name: Vec<u32>,
    plan: Arc<cost::CostPlan>,
}

impl Document {
    /// Lexical tokens of the whole document, comments included.
    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    /// GraphQL's GetOperation: `None` only when the document has exactly one operation.
    pub fn operation(&self, operation_name: Option<&str>) -> Result<&Operation, AnalysisError> {
        let not_found = || AnalysisError::OperationNotFound {
            operation: operation_name.map(truncate),
        };
        match operation_name {
            None if self.operations.len() == 1 => self.operations.first().ok_or_else(not_found),
            None => Err(not_found()),
            Some(name) => self
                .by_name
                .binary_search_by(|&i| self.name_of(i).cmp(&Some(name)))
                .ok()
                .and_then(|at| self.by_name.get(at))
                .and_then(|&i| self.operations.get(i as usize))
                .ok_or_else(not_found),
        }
    }

    fn name_of(&self, index: u32) -> Option<&str> {
        self.operations
            .get(index as usize)
            .and_then(Operation::name)
    }

    /// All operations, in document order.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.iter()
    }

    /// Approximate heap memory (the analysis cache's weight).
    pub fn heap_bytes(&self) -> usize {
        size_of::<Self>()
            + self.plan.heap_bytes()
            + self.by_name.capacity() * 4
            + self
                .operations
                .iter()
                .map(|o| {
                    size_of::<Operation>()
                        + o.name.as_ref().map_or(0, |n| n.len())
                        + o.restricted.capacity() * size_of::<Arc<Restriction>>()
                })
                .sum::<usize>()
    }
}

/// One operation of a document.
#[derive(Debug)]
pub struct Operation {
    name: Option<Box<str>>,
    kind: OperationKind,
    metrics: Metrics,
    plan: Arc<cost::CostPlan>,
    definition: u32,
    response_shape: std::sync::OnceLock<Option<Arc<cost::ResponseShape>>>,
    /// The restricted schema coordinates the operation reaches (empty without access rules).
    restricted: Vec<Arc<Restriction>>,
}

impl Operation {
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn kind(&self) -> OperationKind {
        self.kind
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The restricted schema coordinates the operation selects, through aliases, fragments,
    /// interfaces and unions, each once: the caller must meet each one's requirement.
    pub fn restricted(&self) -> &[Arc<Restriction>] {
        &self.restricted
    }

    /// Static cost with the request's variables: linear in the plan, fragments memoised,
    /// saturating, never panics. Refused ([`CostError`]) when a variable that sizes the operation
    /// does not coerce to its type, or a `@listSize(requireOneSlicingArgument:)` field does not
    /// get exactly one slicing argument.
    pub fn estimate(
        &self,
        variables: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<u64, CostError> {
        self.plan.evaluate(self.definition, variables)
    }

    /// The cost of the document alone (manifest review, `analyse`): variables at their
    /// defaults, a required variable without default as not given, `requireOneSlicingArgument`
    /// unchecked. A request's cost is [`Operation::estimate`]'s.
    pub fn document_cost(&self) -> u64 {
        self.plan.document_only(self.definition)
    }

    /// The `top` fields contributing most to [`Operation::estimate`], largest first, each with
    /// the number of times it is expected to resolve.
    pub fn cost_breakdown(
        &self,
        variables: Option<&serde_json::Map<String, serde_json::Value>>,
        top: usize,
    ) -> Result<Vec<Contribution>, CostError> {
        self.plan.breakdown(self.definition, variables, top)
    }

    /// What the response's keys map to, built on first use and kept with the operation (so
    /// with the analysis cache entry); `None` when the operation is too complex to map.
    pub(crate) fn response_shape(&self) -> Option<&Arc<cost::ResponseShape>> {
        self.response_shape
            .get_or_init(|| cost::ResponseShape::build(&self.plan, self.definition).map(Arc::new))
            .as_ref()
    }

    /// Per plan node: arguments' cost with the request's variables (empty when none cost).
    pub(crate) fn argument_costs(
        &self,
        variables: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Vec<u64> {
        self.plan.argument_costs(self.definition, variables)
    }
}

/// Analyse a document. Pure and variable-free, so the result can be cached by the SHA-256 of the
/// text.
pub fn analyse(document: &str, settings: &Settings) -> Result<Document, AnalysisError> {
    if u32::try_from(document.len()).is_err() {
        return Err(AnalysisError::TooLarge);
    }
    let (mut ir, tokens) = parser::parse(document, &settings.limits)?;
    let fragment_order = document::check(document, &mut ir)?;
    let typing = typing::resolve(document, &ir, settings.schema.as_deref());
    let plan = cost::compile(
        document,
        &ir,
        &fragment_order,
        &settings.cost,
        settings.schema.as_ref(),
        &typing,
    );
    let metrics = metrics::measure(
        document,
        &ir,
        &fragment_order,
        &typing.unknown_nodes,
        &typing.unknown_definitions,
        &plan.list_levels,
    );
    let mut restrictions = match settings.schema.as_deref() {
        Some(schema) if schema.has_access_rules() => access::restrictions(&ir, &typing),
        _ => Vec::new(),
    };
    let plan = Arc::new(plan);
    let mut operations = Vec::new();
    for (index, definition) in ir.definitions.iter().enumerate() {
        if let ir::DefinitionKind::Operation(kind) = definition.kind {
            operations.push(Operation {
                name: definition.name.map(|n| n.text(document).into()),
                kind,
                metrics: metrics.get(index).copied().unwrap_or_default(),
                plan: Arc::clone(&plan),
                definition: lexer::to_u32(index),
                response_shape: std::sync::OnceLock::new(),
                restricted: restrictions
                    .get_mut(index)
                    .map(std::mem::take)
                    .unwrap_or_default(),
            });
        }
    }
    let mut by_name: Vec<u32> = (0..lexer::to_u32(operations.len()))
        .filter(|&i| operations.get(i as usize).is_some_and(|o| o.name.is_some()))
        .collect();
    by_name.sort_unstable_by(|&a, &b| {
        let name = |i: u32| operations.get(i as usize).and_then(Operation::name);
        name(a).cmp(&name(b))
    });
    Ok(Document {
        tokens,
        operations,
        by_name,
        plan,
    })
}

/// Longest excerpt of a client-supplied name that errors and logs carry.
pub const EXCERPT_BYTES: usize = 64;

/// At most [`EXCERPT_BYTES`] of a client-supplied name, cut on a character boundary (JSON and log
/// encoders escape it when it is written).
pub fn excerpt(name: &str) -> &str {
    let mut end = name.len().min(EXCERPT_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.get(..end).unwrap_or_default()
}

fn truncate(name: &str) -> String {
    excerpt(name).to_owned()
}

#[cfg(test)]
mod tests;
