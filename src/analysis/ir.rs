//! Compact arena IR of an executable document: what the measurements need, nothing more.
//!
//! # Why
//! Every node lives in one `Vec` and refers to others by `u32` index; names are byte ranges
//! into the source, so building the IR allocates a handful of vectors whatever the document
//! holds. Nodes of one definition are contiguous and in pre-order (a parent comes before its
//! children), and each node records its field nesting level: metrics are one forward scan and
//! cost is one backward scan, with no tree walk and no recursion.

use super::OperationKind;

/// "No node" marker for `parent`.
pub(crate) const NONE: u32 = u32::MAX;

/// A byte range of the source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn text(self, src: &str) -> &str {
        src.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Field,
    /// `...Name`; `name` is the fragment name and `target` its definition once resolved.
    Spread,
    /// `... on T { }` or `... { }`; `name` is the type condition (empty span when absent).
    Inline,
}

/// One selection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) alias: Option<Span>,
    pub(crate) name: Span,
    /// Enclosing node (field or inline fragment) in the same definition, or `NONE`.
    pub(crate) parent: u32,
    /// Field nesting level of the selection set holding this node: 1 at the top of a
    /// definition; inline fragments do not add a level.
    pub(crate) level: u32,
    /// Arguments: `arguments[args_start..args_start + args_len]`.
    pub(crate) args_start: u32,
    pub(crate) args_len: u32,
    pub(crate) directives: u32,
    pub(crate) has_selection: bool,
    /// Resolved fragment definition of a spread.
    pub(crate) target: u32,
}

/// What the analyser needs to know about an argument value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueSummary {
    /// An integer literal that fits GraphQL's 32-bit `Int`.
    Int(i64),
    /// `$name`
    Variable(Span),
    /// A list literal with this many items.
    List(u32),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// Anything else (strings, floats, enums, objects, out-of-range integers).
    Other,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Argument {
    pub(crate) name: Span,
    pub(crate) value: ValueSummary,
    /// The whole value's text (input-object literals are re-read from it when they cost).
    pub(crate) value_span: Span,
}

/// A variable's declared type: `[[T!]]!` is `T`, two lists deep, non-null.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TypeReference {
    pub(crate) name: Span,
    pub(crate) list_depth: u32,
    pub(crate) non_null: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct VariableDefinition {
    pub(crate) name: Span,
    pub(crate) ty: TypeReference,
    /// `None`: no default value.
    pub(crate) default: Option<ValueSummary>,
    pub(crate) default_span: Span,
}

/// `@skip(if: …)` (`skip`) or `@include(if: …)` on selection `node`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Condition {
    pub(crate) node: u32,
    pub(crate) skip: bool,
    pub(crate) value: ValueSummary,
}

/// An operation or a fragment definition.
#[derive(Clone, Debug)]
pub(crate) struct Definition {
    pub(crate) kind: DefinitionKind,
    pub(crate) name: Option<Span>,
    /// Fragment type condition.
    pub(crate) type_condition: Span,
    /// Directives on the definition itself and on its variable definitions.
    pub(crate) directives: u32,
    pub(crate) variables: Vec<VariableDefinition>,
    /// Nodes `nodes_start..nodes_end`.
    pub(crate) nodes_start: u32,
    pub(crate) nodes_end: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DefinitionKind {
    Operation(OperationKind),
    Fragment,
}

/// The parsed document.
#[derive(Debug, Default)]
pub(crate) struct Ir {
    pub(crate) definitions: Vec<Definition>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) arguments: Vec<Argument>,
    /// `@skip` / `@include` of selections, in node order.
    pub(crate) conditions: Vec<Condition>,
}

impl Ir {
    pub(crate) fn nodes_of(&self, definition: &Definition) -> &[Node] {
        self.nodes
            .get(definition.nodes_start as usize..definition.nodes_end as usize)
            .unwrap_or_default()
    }

    pub(crate) fn arguments_of(&self, node: &Node) -> &[Argument] {
        let start = node.args_start as usize;
        self.arguments
            .get(start..start + node.args_len as usize)
            .unwrap_or_default()
    }
}
