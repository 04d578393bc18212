//! What a response's keys mean: for an operation, each JSON object position of its response
//! (a "shape") maps response keys (aliases or field names) to the field's weights and to the
//! shape of the objects below it.
//!
//! # Why
//! Response keys are aliases, and the same key can come from several selections merged through
//! fragments and inline fragments; the actual cost needs the schema field behind each key. A
//! shape is the set of field selections whose selection sets make up one object position,
//! interned by that set, so list items and repeated positions share it and the per-response
//! walk is a lookup per key. Shapes are built on first use (not during `analyse`), each one
//! by flattening its selections through inline fragments and spreads with an explicit stack.
//!
//! # Threats
//! Fragment fan-out describes response trees exponential in the document's size; interning
//! shapes by their set of selections folds the repeated paths (a fragment spread a million
//! times is one shape), and building stops at `MAX_SHAPES` shapes or `MAX_ENTRIES` keys all the
//! same: the operation is then not measured (its estimate is what refuses it).

use std::collections::HashMap;

use super::super::ir::NONE;
use super::{CostPlan, PlanKind};

/// Shapes built for one operation at most.
const MAX_SHAPES: usize = 10_000;
/// Keys over all shapes at most.
const MAX_ENTRIES: usize = 200_000;
/// Shapes with at most this many keys are looked up by a scan.
const LINEAR_LOOKUP: usize = 8;
/// Marks a definition's top level in an owner set (node indices stay below it).
const ROOT: u32 = 1 << 31;

/// A response key's meaning in one shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// Weight of an object value (each list item counts).
    pub(crate) object: u64,
    /// Weight of a scalar, enum or `null` value.
    pub(crate) leaf: u64,
    /// Plan node whose arguments' cost applies once per occurrence of the key (`NONE`: none).
    pub(crate) arguments_of: u32,
    /// Shape of the objects below (`NONE`: the field has no selection set).
    pub(crate) child: u32,
}

#[derive(Debug, Default)]
struct Shape {
    /// Sorted by [`key_order`].
    keys: Vec<(Box<str>, Entry)>,
}

/// Shorter keys first, then bytewise: a lookup compares lengths, and bytes only of keys as long
/// as the one looked up (a per-key cost in every response).
fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Every shape of one operation's response; shape 0 is `data`.
#[derive(Debug)]
pub(crate) struct ResponseShape {
    shapes: Vec<Shape>,
}

impl ResponseShape {
    /// The shape of `data`.
    pub(crate) const ROOT: u32 = 0;

    /// What `key` means in objects of shape `shape`.
    pub(crate) fn lookup(&self, shape: u32, key: &[u8]) -> Option<&Entry> {
        let keys = &self.shapes.get(shape as usize)?.keys;
        let found = if keys.len() <= LINEAR_LOOKUP {
            // Most selection sets are a few fields: a scan that mostly compares lengths beats
            // the search's branches.
            keys.iter()
                .find(|(k, _)| k.len() == key.len() && k.as_bytes() == key)
        } else {
            let at = keys
                .binary_search_by(|(k, _)| key_order(k.as_bytes(), key))
                .ok()?;
            keys.get(at)
        };
        found.map(|(_, entry)| entry)
    }

    /// Builds the shapes of definition `operation`; `None` past the bounds.
    pub(crate) fn build(plan: &CostPlan, operation: u32) -> Option<ResponseShape> {
        let children = Children::of(plan);
        let mut shapes: Vec<Shape> = Vec::new();
        let mut owners: Vec<Vec<u32>> = Vec::new();
        let mut interned: HashMap<Vec<u32>, u32> = HashMap::new();
        let mut intern = |set: Vec<u32>, owners: &mut Vec<Vec<u32>>| -> u32 {
            let next = super::super::lexer::to_u32(owners.len());
            *interned.entry(set.clone()).or_insert_with(|| {
                owners.push(set);
                next
            })
        };
        intern(vec![ROOT | operation], &mut owners);
        let mut entries_total = 0usize;
        let mut next = 0usize;
        let mut found: Vec<(&str, u32)> = Vec::new();
        while let Some(set) = owners.get(next).cloned() {
            next += 1;
            if next > MAX_SHAPES {
                return None;
            }
            children.flatten(plan, &set, &mut found);
            found.sort_unstable();
            found.dedup();
            let mut shape = Shape::default();
            let mut at = 0;
            while let Some(&(key, _)) = found.get(at) {
                let same = found
                    .get(at..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|(k, _)| *k == key)
                    .count();
                let group = found.get(at..at + same).unwrap_or_default();
                at += same;
                let mut entry = Entry {
                    object: 0,
                    leaf: 0,
                    arguments_of: NONE,
                    child: NONE,
                };
                let mut below = Vec::new();
                for &(_, node) in group {
                    let Some(plan_node) = plan.nodes.get(node as usize) else {
                        continue;
                    };
                    let weights = plan.response_weights.binary_search_by_key(&node, |w| w.0);
                    let (object, leaf) = match weights {
                        Ok(at) => {
                            let explicit = plan.response_weights.get(at).map_or(0, |w| w.1);
                            (explicit, explicit)
                        }
                        Err(_) => (plan.object_weight, plan.scalar_weight),
                    };
                    entry.object = entry.object.max(object);
                    entry.leaf = entry.leaf.max(leaf);
                    let has_arguments = plan
                        .extras
                        .get(plan_node.extra as usize)
                        .is_some_and(|e| e.arguments_const > 0 || e.arguments_len > 0);
                    if entry.arguments_of == NONE && has_arguments {
                        entry.arguments_of = node;
                    }
                    if children.first(node) != NONE {
                        below.push(node);
                    }
                }
                if !below.is_empty() {
                    entry.child = intern(below, &mut owners);
                }
                shape.keys.push((key.into(), entry));
            }
            shape
                .keys
                .sort_unstable_by(|(a, _), (b, _)| key_order(a.as_bytes(), b.as_bytes()));
            entries_total += shape.keys.len();
            if entries_total > MAX_ENTRIES {
                return None;
            }
            shapes.push(shape);
        }
        Some(ResponseShape { shapes })
    }

    /// Number of shapes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shapes.len()
    }
}

/// First child and next sibling of every plan node, and the first top node of every
/// definition: linked lists over the pre-order arrays, built in one pass.
struct Children {
    first_child: Vec<u32>,
    next_sibling: Vec<u32>,
    first_top: Vec<u32>,
}

impl Children {
    fn of(plan: &CostPlan) -> Children {
        let mut first_child = vec![NONE; plan.nodes.len()];
        let mut next_sibling = vec![NONE; plan.nodes.len()];
        let mut first_top = vec![NONE; plan.definitions.len()];
        // Built backwards so that prepending keeps document order.
        for (definition, d) in plan.definitions.iter().enumerate() {
            for index in (d.nodes_start..d.nodes_end).rev() {
                let Some(node) = plan.nodes.get(index as usize) else {
                    continue;
                };
                let head = if node.parent == NONE {
                    first_top.get_mut(definition)
                } else {
                    first_child.get_mut(node.parent as usize)
                };
                if let Some(head) = head {
                    if let Some(next) = next_sibling.get_mut(index as usize) {
                        *next = *head;
                    }
                    *head = index;
                }
            }
        }
        Children {
            first_child,
            next_sibling,
            first_top,
        }
    }

    fn first(&self, node: u32) -> u32 {
        self.first_child.get(node as usize).copied().unwrap_or(NONE)
    }

    /// The fields (key, node) that make up the selection sets of `owners`, through inline
    /// fragments and spreads (each fragment once); selections a literal `@skip`/`@include` or
    /// introspection leaves out are not in a response.
    fn flatten<'p>(&self, plan: &'p CostPlan, owners: &[u32], found: &mut Vec<(&'p str, u32)>) {
        found.clear();
        let mut visited: Vec<u32> = Vec::new();
        let mut heads: Vec<u32> = owners.iter().map(|&owner| self.head(owner)).collect();
        while let Some(head) = heads.pop() {
            let mut at = head;
            while let Some(node) = plan.nodes.get(at as usize) {
                match node.kind {
                    PlanKind::Field => {
                        let key = plan
                            .facts
                            .get(at as usize)
                            .map_or("", |f| f.key.text(&plan.source));
                        found.push((key, at));
                    }
                    PlanKind::Pass => heads.push(self.first(at)),
                    PlanKind::Spread { target, .. } if !visited.contains(&target) => {
                        visited.push(target);
                        heads.push(self.head(ROOT | target));
                    }
                    PlanKind::Spread { .. } | PlanKind::Free => {}
                }
                at = self.next_sibling.get(at as usize).copied().unwrap_or(NONE);
            }
        }
    }

    fn head(&self, owner: u32) -> u32 {
        if owner & ROOT != 0 {
            self.first_top
                .get((owner & !ROOT) as usize)
                .copied()
                .unwrap_or(NONE)
        } else {
            self.first(owner)
        }
    }
}
