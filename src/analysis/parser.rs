//! Iterative parser: tokens → arena IR, with the nesting limits enforced during the pass.
//!
//! # Threats
//! Nesting is where recursive parsers die: `async-graphql-parser` overflows the stack on a ~3 KB
//! list value nested 1,600 deep. Nothing here recurses. Selection sets are parsed with an
//! explicit stack of open sets, values with a stack of open lists/objects and type references
//! with a bracket counter; every stack is bounded by the token budget, and value nesting and
//! field depth have their own limits checked as soon as they are exceeded (early exit).
//!
//! Only executable documents are accepted: type-system definitions in a request are refused.

use super::ir::{
    Argument, Condition, Definition, DefinitionKind, Ir, NONE, Node, NodeKind, Span, TypeReference,
    ValueSummary, VariableDefinition,
};
use super::lexer::{Lexer, Token, TokenKind, syntax_error, to_u32};
use super::{AnalysisError, Limits, OperationKind};

/// Parse a whole document. Returns the IR and the number of tokens scanned.
pub(crate) fn parse(src: &str, limits: &Limits) -> Result<(Ir, u32), AnalysisError> {
    if let Some(limit) = limits.max_tokens
        && src.len() > limit as usize
    {
        // Only a document with more bytes than the token budget can exceed it. Count its
        // tokens before building anything, so a hostile body costs a bare scan up to the limit.
        // (When a document breaks both the budget and the grammar, the budget is reported.)
        let mut scan = Lexer::new(src, Some(limit));
        while scan.next_token()?.kind != TokenKind::Eof {}
    }
    let mut lexer = Lexer::new(src, limits.max_tokens);
    let current = lexer.next_token()?;
    // Typical documents spend about eight bytes per selection; reserving that up front saves
    // repeated growth, and the budget (or a fixed cap) bounds the reservation.
    let nodes = (src.len() / 8).min(limits.max_tokens.map_or(usize::MAX, |t| t as usize));
    let mut ir = Ir::default();
    ir.nodes.reserve(nodes.min(MAX_RESERVED_NODES));
    let mut parser = Parser {
        src,
        lexer,
        current,
        limits,
        ir,
        previous_end: 0,
    };
    parser.document()?;
    let tokens = parser.lexer.tokens();
    Ok((parser.ir, tokens))
}

/// Upper bound of the up-front reservation when the token budget is off.
const MAX_RESERVED_NODES: usize = 1 << 16;

struct Parser<'a, 'l> {
    src: &'a str,
    lexer: Lexer<'a>,
    current: Token,
    limits: &'l Limits,
    ir: Ir,
    /// End of the last token consumed.
    previous_end: u32,
}

/// An open selection set on the explicit stack.
struct Frame {
    /// Node owning the set (field or inline fragment), `NONE` for a definition's root.
    owner: u32,
    level: u32,
    empty: bool,
}

impl Parser<'_, '_> {
    fn advance(&mut self) -> Result<Token, AnalysisError> {
        let token = self.current;
        self.previous_end = token.end;
        self.current = self.lexer.next_token()?;
        Ok(token)
    }

    fn error(&self, message: &'static str) -> AnalysisError {
        syntax_error(self.src.as_bytes(), message, self.current.start as usize)
    }

    fn at(&self, kind: TokenKind) -> bool {
        self.current.kind == kind
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.at(TokenKind::Name) && self.text(self.current) == keyword
    }

    fn text(&self, token: Token) -> &str {
        span(token).text(self.src)
    }

    fn expect(&mut self, kind: TokenKind, message: &'static str) -> Result<Token, AnalysisError> {
        if self.at(kind) {
            self.advance()
        } else {
            Err(self.error(message))
        }
    }

    fn eat(&mut self, kind: TokenKind) -> Result<bool, AnalysisError> {
        if self.at(kind) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn document(&mut self) -> Result<(), AnalysisError> {
        if self.at(TokenKind::Eof) {
            return Err(self.error("empty document"));
        }
        while !self.at(TokenKind::Eof) {
            self.definition()?;
        }
        Ok(())
    }

    fn definition(&mut self) -> Result<(), AnalysisError> {
        if self.at(TokenKind::BraceL) {
            return self.operation(OperationKind::Query, false);
        }
        if !self.at(TokenKind::Name) {
            return Err(self.error("expected an operation or a fragment definition"));
        }
        match self.text(self.current) {
            "query" => self.operation(OperationKind::Query, true),
            "mutation" => self.operation(OperationKind::Mutation, true),
            "subscription" => self.operation(OperationKind::Subscription, true),
            "fragment" => self.fragment(),
            "schema" | "scalar" | "type" | "interface" | "union" | "enum" | "input"
            | "directive" | "extend" => {
                let (line, column) =
                    super::lexer::line_column(self.src.as_bytes(), self.current.start as usize);
                Err(AnalysisError::NotExecutable { line, column })
            }
            _ => Err(self.error("expected an operation or a fragment definition")),
        }
    }

    fn operation(&mut self, kind: OperationKind, keyword: bool) -> Result<(), AnalysisError> {
        let mut name = None;
        let mut directives = 0u32;
        let mut variables = Vec::new();
        if keyword {
            self.advance()?;
            if self.at(TokenKind::Name) {
                name = Some(span(self.advance()?));
            }
            if self.eat(TokenKind::ParenL)? {
                loop {
                    self.expect(TokenKind::Dollar, "expected a variable definition")?;
                    let var = span(self.expect(TokenKind::Name, "expected a variable name")?);
                    self.expect(TokenKind::Colon, "expected `:`")?;
                    let ty = self.type_reference()?;
                    let (default, default_span) = if self.eat(TokenKind::Equals)? {
                        let start = self.current.start;
                        let value = self.value(true)?;
                        (Some(value), self.span_from(start))
                    } else {
                        (None, Span::default())
                    };
                    directives = directives.saturating_add(self.directives(true, NONE)?);
                    variables.push(VariableDefinition {
                        name: var,
                        ty,
                        default,
                        default_span,
                    });
                    if self.eat(TokenKind::ParenR)? {
                        break;
                    }
                }
            }
            directives = directives.saturating_add(self.directives(false, NONE)?);
        }
        let nodes_start = to_u32(self.ir.nodes.len());
        self.selection_set()?;
        self.ir.definitions.push(Definition {
            kind: DefinitionKind::Operation(kind),
            name,
            type_condition: Span::default(),
            directives,
            variables,
            nodes_start,
            nodes_end: to_u32(self.ir.nodes.len()),
        });
        Ok(())
    }

    fn fragment(&mut self) -> Result<(), AnalysisError> {
        self.advance()?;
        if self.at_keyword("on") {
            return Err(self.error("a fragment cannot be named `on`"));
        }
        let name = span(self.expect(TokenKind::Name, "expected a fragment name")?);
        if !self.at_keyword("on") {
            return Err(self.error("expected `on`"));
        }
        self.advance()?;
        let type_condition = span(self.expect(TokenKind::Name, "expected a type name")?);
        let directives = self.directives(false, NONE)?;
        let nodes_start = to_u32(self.ir.nodes.len());
        self.selection_set()?;
        self.ir.definitions.push(Definition {
            kind: DefinitionKind::Fragment,
            name: Some(name),
            type_condition,
            directives,
            variables: Vec::new(),
            nodes_start,
            nodes_end: to_u32(self.ir.nodes.len()),
        });
        Ok(())
    }

    /// `Type : NamedType | [Type] | Type!`, with a bracket counter instead of recursion.
    fn type_reference(&mut self) -> Result<TypeReference, AnalysisError> {
        let mut open: u32 = 0;
        while self.eat(TokenKind::BracketL)? {
            open += 1;
            if open > self.limits.max_value_nesting {
                return Err(AnalysisError::ValueNestingLimit {
                    limit: self.limits.max_value_nesting,
                });
            }
        }
        let name = span(self.expect(TokenKind::Name, "expected a type name")?);
        let mut non_null = self.eat(TokenKind::Bang)?;
        for _ in 0..open {
            self.expect(TokenKind::BracketR, "expected `]`")?;
            non_null = self.eat(TokenKind::Bang)?;
        }
        Ok(TypeReference {
            name,
            list_depth: open,
            non_null,
        })
    }

    /// Zero or more `@name(args)`; returns how many. `@skip(if:)` / `@include(if:)` of selection
    /// `node` (`NONE` elsewhere) are recorded as conditions.
    fn directives(&mut self, constant: bool, node: u32) -> Result<u32, AnalysisError> {
        let mut count = 0u32;
        while self.eat(TokenKind::At)? {
            let name = self.expect(TokenKind::Name, "expected a directive name")?;
            let skip = match self.text(name) {
                "skip" => Some(true),
                "include" => Some(false),
                _ => None,
            };
            let (start, len) = self.arguments(constant)?;
            if let Some(skip) = skip
                && node != NONE
            {
                let condition = self
                    .ir
                    .arguments
                    .get(start as usize..start as usize + len as usize)
                    .unwrap_or_default()
                    .iter()
                    .find(|a| a.name.text(self.src) == "if");
                if let Some(argument) = condition {
                    let value = argument.value;
                    self.ir.conditions.push(Condition { node, skip, value });
                }
            }
            count = count.saturating_add(1);
        }
        Ok(count)
    }

    /// The source from byte `start` to the end of the previous token.
    fn span_from(&self, start: u32) -> Span {
        Span {
            start,
            end: self.previous_end,
        }
    }

    /// Optional `(name: value …)`; returns the range pushed to the argument arena.
    fn arguments(&mut self, constant: bool) -> Result<(u32, u32), AnalysisError> {
        let start = to_u32(self.ir.arguments.len());
        if self.eat(TokenKind::ParenL)? {
            loop {
                let name = span(self.expect(TokenKind::Name, "expected an argument name")?);
                self.expect(TokenKind::Colon, "expected `:`")?;
                let start = self.current.start;
                let value = self.value(constant)?;
                let value_span = self.span_from(start);
                self.ir.arguments.push(Argument {
                    name,
                    value,
                    value_span,
                });
                if self.eat(TokenKind::ParenR)? {
                    break;
                }
            }
        }
        Ok((start, to_u32(self.ir.arguments.len()).saturating_sub(start)))
    }

    /// One value, iteratively: `stack` holds the open lists (`false`) and objects (`true`).
    fn value(&mut self, constant: bool) -> Result<ValueSummary, AnalysisError> {
        let mut stack: Vec<bool> = Vec::new();
        let mut summary = ValueSummary::Other;
        // Items of a top-level list literal.
        let mut items = 0u32;
        loop {
            let token = self.current;
            if stack.len() == 1 && stack.first() == Some(&false) {
                items = items.saturating_add(1);
            }
            match token.kind {
                TokenKind::BracketL | TokenKind::BraceL => {
                    if to_u32(stack.len()) >= self.limits.max_value_nesting {
                        return Err(AnalysisError::ValueNestingLimit {
                            limit: self.limits.max_value_nesting,
                        });
                    }
                    if stack.is_empty() && token.kind == TokenKind::BracketL {
                        summary = ValueSummary::List(0);
                    }
                    stack.push(token.kind == TokenKind::BraceL);
                    self.advance()?;
                }
                TokenKind::Dollar => {
                    if constant {
                        return Err(self.error("variables are not allowed in constant values"));
                    }
                    self.advance()?;
                    let name = span(self.expect(TokenKind::Name, "expected a variable name")?);
                    if stack.is_empty() {
                        summary = ValueSummary::Variable(name);
                    }
                }
                TokenKind::Int => {
                    self.advance()?;
                    if stack.is_empty() {
                        summary = int_summary(self.text(token));
                    }
                }
                TokenKind::Name => {
                    self.advance()?;
                    if stack.is_empty() {
                        summary = match self.text(token) {
                            "true" => ValueSummary::Bool(true),
                            "false" => ValueSummary::Bool(false),
                            "null" => ValueSummary::Null,
                            _ => ValueSummary::Other,
                        };
                    }
                }
                TokenKind::Float | TokenKind::String | TokenKind::BlockString => {
                    self.advance()?;
                }
                _ => return Err(self.error("expected a value")),
            }
            // Close finished containers; stop where the next value starts.
            loop {
                match stack.last() {
                    None if summary == ValueSummary::List(0) => {
                        return Ok(ValueSummary::List(items));
                    }
                    None => return Ok(summary),
                    Some(false) => {
                        if self.eat(TokenKind::BracketR)? {
                            stack.pop();
                        } else {
                            break;
                        }
                    }
                    Some(true) => {
                        if self.eat(TokenKind::BraceR)? {
                            stack.pop();
                        } else {
                            self.expect(TokenKind::Name, "expected an object field name")?;
                            self.expect(TokenKind::Colon, "expected `:`")?;
                            break;
                        }
                    }
                }
            }
        }
    }

    /// A selection set and everything nested in it, with an explicit stack.
    fn selection_set(&mut self) -> Result<(), AnalysisError> {
        self.expect(TokenKind::BraceL, "expected `{`")?;
        let mut stack = vec![Frame {
            owner: NONE,
            level: 1,
            empty: true,
        }];
        loop {
            let Some(frame) = stack.last_mut() else {
                return Ok(());
            };
            if self.at(TokenKind::BraceR) {
                if frame.empty {
                    return Err(self.error("a selection set cannot be empty"));
                }
                self.advance()?;
                stack.pop();
                continue;
            }
            frame.empty = false;
            let (owner, level) = (frame.owner, frame.level);
            let index = to_u32(self.ir.nodes.len());
            let mut node = Node {
                kind: NodeKind::Field,
                alias: None,
                name: Span::default(),
                parent: owner,
                level,
                args_start: 0,
                args_len: 0,
                directives: 0,
                has_selection: false,
                target: NONE,
            };
            if self.eat(TokenKind::Spread)? {
                if self.at_keyword("on") {
                    self.advance()?;
                    node.kind = NodeKind::Inline;
                    node.name = span(self.expect(TokenKind::Name, "expected a type name")?);
                } else if self.at(TokenKind::Name) {
                    node.kind = NodeKind::Spread;
                    node.name = span(self.advance()?);
                } else {
                    node.kind = NodeKind::Inline;
                }
                node.directives = self.directives(false, index)?;
                if node.kind == NodeKind::Inline {
                    self.expect(TokenKind::BraceL, "expected `{`")?;
                    node.has_selection = true;
                    self.ir.nodes.push(node);
                    stack.push(Frame {
                        owner: index,
                        level,
                        empty: true,
                    });
                } else {
                    self.ir.nodes.push(node);
                }
                continue;
            }
            let first = span(self.expect(TokenKind::Name, "expected a field")?);
            if self.eat(TokenKind::Colon)? {
                node.alias = Some(first);
                node.name = span(self.expect(TokenKind::Name, "expected a field name")?);
            } else {
                node.name = first;
            }
            if let Some(limit) = self.limits.max_depth
                && level > limit
                && node.name.text(self.src) != "__typename"
            {
                return Err(AnalysisError::DepthLimit {
                    limit,
                    at_least: level,
                });
            }
            (node.args_start, node.args_len) = self.arguments(false)?;
            node.directives = self.directives(false, index)?;
            if self.eat(TokenKind::BraceL)? {
                node.has_selection = true;
                stack.push(Frame {
                    owner: index,
                    level: level.saturating_add(1),
                    empty: true,
                });
            }
            self.ir.nodes.push(node);
        }
    }
}

fn span(token: Token) -> Span {
    Span {
        start: token.start,
        end: token.end,
    }
}

/// Integer literals are GraphQL `Int`s only within 32 bits; the backend rejects larger ones.
fn int_summary(text: &str) -> ValueSummary {
    match text.parse::<i32>() {
        Ok(n) => ValueSummary::Int(n.into()),
        _ => ValueSummary::Other,
    }
}

#[cfg(test)]
mod tests;
