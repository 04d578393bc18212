//! Who may select what: the schema's access rules (Apollo's `@authenticated` and
//! `@requiresScopes`, and the operator's `DENY_FIELDS`) and, per operation, the restricted schema
//! coordinates it reaches.
//!
//! # Threats
//! A rule that holds only for the field as written is no rule: the same field is reachable under
//! an alias, through a named fragment, an inline fragment, an interface (whose field may resolve on
//! any implementation) or a union member. So the pass works on resolved schema fields, not on
//! names: every field node that [`super::typing`] resolved counts, in the operation and in every
//! fragment it spreads (transitively), whatever its alias, and `@skip`/`@include` are ignored (a
//! variable can turn them either way). The requirements of a field already include its
//! interfaces' and implementations' ([`super::schema`]), so a rule on `Node.secret` holds for
//! `... on User { secret }` and one on `User.secret` for `node { secret }`.
//!
//! The pass is part of the cached analysis (pure, variable-free); what a request pays is one check
//! per restricted coordinate the operation reaches, against the caller.

use std::sync::Arc;

use super::ir::{DefinitionKind, Ir, NodeKind};
use super::typing::Typing;

/// What selecting a schema coordinate requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    /// `DENY_FIELDS`: nobody.
    pub denied: bool,
    /// `@authenticated` (implied by `@requiresScopes`): a verified caller.
    pub authenticated: bool,
    /// `@requiresScopes`, each one met: one of its alternatives held entirely.
    pub scopes: Vec<Vec<Vec<String>>>,
}

impl Requirement {
    pub fn is_empty(&self) -> bool {
        !self.denied && !self.authenticated && self.scopes.is_empty()
    }

    /// Both requirements at once.
    pub(crate) fn merge(&mut self, other: &Requirement) {
        self.denied |= other.denied;
        self.authenticated |= other.authenticated;
        for scopes in &other.scopes {
            if !self.scopes.contains(scopes) {
                self.scopes.push(scopes.clone());
            }
        }
    }

    /// Whether a caller (`authenticated`, holding the scopes `holds` says yes to) may select it.
    pub fn allows(&self, authenticated: bool, holds: &dyn Fn(&str) -> bool) -> bool {
        if self.denied || (self.authenticated && !authenticated) {
            return false;
        }
        self.scopes.iter().all(|alternatives| {
            alternatives
                .iter()
                .any(|all| all.iter().all(|scope| holds(scope)))
        })
    }
}

/// A restricted schema coordinate (`Type.field`) and what it requires.
#[derive(Debug, PartialEq, Eq)]
pub struct Restriction {
    /// Named only in the audit log, never to the client.
    pub coordinate: Box<str>,
    pub requirement: Requirement,
}

/// Per definition of `ir` (same indices): the restricted coordinates an *operation* reaches,
/// through every fragment it spreads, each once. Fragments get an empty list.
pub(crate) fn restrictions(ir: &Ir, typing: &Typing<'_>) -> Vec<Vec<Arc<Restriction>>> {
    // Restricted fields written directly in each definition, and the fragments it spreads.
    let mut own: Vec<Vec<Arc<Restriction>>> = vec![Vec::new(); ir.definitions.len()];
    let mut spreads: Vec<Vec<u32>> = vec![Vec::new(); ir.definitions.len()];
    for (index, definition) in ir.definitions.iter().enumerate() {
        let first = definition.nodes_start as usize;
        for (offset, node) in ir.nodes_of(definition).iter().enumerate() {
            match node.kind {
                NodeKind::Field => {
                    let restriction = typing
                        .field(first + offset)
                        .and_then(|field| field.access.as_ref());
                    if let (Some(restriction), Some(list)) = (restriction, own.get_mut(index)) {
                        push_once(list, restriction);
                    }
                }
                NodeKind::Spread => {
                    if let Some(list) = spreads.get_mut(index) {
                        list.push(node.target);
                    }
                }
                NodeKind::Inline => {}
            }
        }
    }
    // Each operation: its own, then every fragment reachable from it (a visited set; fragment
    // cycles were refused before this pass, and visiting once makes it linear anyway).
    let mut reached: Vec<Vec<Arc<Restriction>>> = vec![Vec::new(); ir.definitions.len()];
    let mut visited = vec![false; ir.definitions.len()];
    let mut stack: Vec<u32> = Vec::new();
    for (index, definition) in ir.definitions.iter().enumerate() {
        if definition.kind == DefinitionKind::Fragment {
            continue;
        }
        visited.iter_mut().for_each(|v| *v = false);
        let mut list: Vec<Arc<Restriction>> = Vec::new();
        stack.clear();
        stack.push(super::lexer::to_u32(index));
        while let Some(current) = stack.pop() {
            let Some(seen) = visited.get_mut(current as usize) else {
                continue;
            };
            if *seen {
                continue;
            }
            *seen = true;
            for restriction in own.get(current as usize).into_iter().flatten() {
                push_once(&mut list, restriction);
            }
            stack.extend(spreads.get(current as usize).into_iter().flatten());
        }
        if let Some(slot) = reached.get_mut(index) {
            *slot = list;
        }
    }
    reached
}

fn push_once(list: &mut Vec<Arc<Restriction>>, restriction: &Arc<Restriction>) {
    if !list.iter().any(|known| Arc::ptr_eq(known, restriction)) {
        list.push(Arc::clone(restriction));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(alternatives: &[&[&str]]) -> Vec<Vec<String>> {
        alternatives
            .iter()
            .map(|all| all.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    #[test]
    fn a_requirement_is_met_by_one_alternative_of_each_scope_rule() {
        let requirement = Requirement {
            denied: false,
            authenticated: true,
            scopes: vec![
                scopes(&[&["read:users"], &["admin"]]),
                scopes(&[&["read:email", "pii"]]),
            ],
        };
        let holding = |held: &'static [&'static str]| move |scope: &str| held.contains(&scope);
        assert!(requirement.allows(true, &holding(&["read:users", "read:email", "pii"])));
        assert!(requirement.allows(true, &holding(&["admin", "read:email", "pii"])));
        assert!(!requirement.allows(true, &holding(&["admin", "read:email"])));
        assert!(!requirement.allows(false, &holding(&["admin", "read:email", "pii"])));
        let denied = Requirement {
            denied: true,
            ..Requirement::default()
        };
        assert!(!denied.allows(true, &holding(&["admin"])));
        assert!(Requirement::default().allows(false, &holding(&[])));
    }
}
