//! Actual cost of a response, measured while its bytes stream through: Apollo Router's
//! `by_response_shape` rules, so that it can be set against the estimate.
//!
//! # Why
//! The estimate is only worth enforcing if it is an upper bound of the work the backend does;
//! measuring every response proves it continuously (an `underestimated` response is a bug in
//! the schema's annotations or in the firewall). The rules: each object in `data` costs its
//! field's `@cost` (or its type's) or the object weight (1), each leaf (scalar, enum, `null`)
//! its `@cost` or the scalar weight (0), lists per element, arguments' cost once per field
//! occurrence; `__typename`, introspection and keys the operation did not ask for cost nothing.
//!
//! # Threats
//! Responses are large and upstream-controlled. The walk is one pass over the bytes as they
//! arrive (`crate::json_scan`: no DOM, nothing copied but a key's name; what the operation did
//! not ask for is skipped in the scanner's tight loop), keys are looked up in the operation's
//! precomputed shapes, and nesting is bounded by `MAX_NESTING` (deeper responses are reported,
//! not followed). Memory is the nesting stack, whatever the size of a string in the response.

use std::sync::Arc;

use crate::json_scan::{Container, Event, ScanError, Scanner};
use serde_json::{Map, Value};

use super::Operation;
use super::cost::{Entry, ResponseShape};
use super::ir::NONE;

/// Nesting of a response's JSON followed at most.
pub const MAX_NESTING: usize = 512;

/// Why a response's actual cost is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActualCostError {
    /// The response is not one JSON object (a syntax error, trailing bytes, or a batch).
    #[error("the response is not a single JSON object")]
    Malformed,
    /// The response nests deeper than [`MAX_NESTING`].
    #[error("the response nests deeper than {MAX_NESTING}")]
    TooDeep,
    /// The operation's fragments describe more response positions than are mapped.
    #[error("the operation is too complex to map its response")]
    Unmapped,
}

impl ActualCostError {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ActualCostError::Malformed => "malformed",
            ActualCostError::TooDeep => "too_deep",
            ActualCostError::Unmapped => "unmapped",
        }
    }
}

/// The counting rules both walks share: what a key means where it occurs, and what a field's
/// arguments cost.
struct Rules<'a> {
    shape: &'a ResponseShape,
    /// Per plan node: arguments' cost with the request's variables (empty: none).
    arguments: &'a [u64],
}

impl Rules<'_> {
    fn lookup(&self, shape: u32, key: &[u8]) -> Option<Entry> {
        self.shape.lookup(shape, key).copied()
    }

    /// Arguments' cost, counted once per occurrence of the field.
    fn arguments_cost(&self, entry: &Entry) -> u64 {
        match entry.arguments_of {
            NONE => 0,
            node => self.arguments.get(node as usize).copied().unwrap_or(0),
        }
    }
}

/// What a JSON value in the response is.
#[derive(Clone, Copy, Debug)]
enum Frame {
    /// The top-level response object.
    Response,
    /// An object whose keys map through `shape`.
    Object { shape: u32 },
    /// The elements of a list field.
    List { entry: Entry },
}

/// What the next value is, once its key has been read.
#[derive(Clone, Copy, Debug)]
enum Next {
    Data,
    Field { entry: Entry, occurrence: bool },
    Skip,
}

/// Streams one response (`push` its chunks in order, then `finish`) and counts its actual cost.
pub struct ActualCost {
    shape: Option<Arc<ResponseShape>>,
    /// Per plan node: arguments' cost with the request's variables (empty: none).
    arguments: Vec<u64>,
    scanner: Scanner,
    stack: Vec<Frame>,
    next: Option<Next>,
    cost: u64,
    failed: Option<ActualCostError>,
}

impl std::fmt::Debug for ActualCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActualCost")
            .field("cost", &self.cost)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl ActualCost {
    /// A meter for a response to `operation` executed with `variables`.
    pub fn new(operation: &Operation, variables: Option<&Map<String, Value>>) -> ActualCost {
        let shape = operation.response_shape().cloned();
        ActualCost {
            failed: shape.is_none().then_some(ActualCostError::Unmapped),
            arguments: if shape.is_some() {
                operation.argument_costs(variables)
            } else {
                Vec::new()
            },
            shape,
            // Deeper than ours, so that ours reports it.
            scanner: Scanner::new(MAX_NESTING + 8),
            stack: Vec::new(),
            next: None,
            cost: 0,
        }
    }

    /// Feeds the next chunk of the response body.
    pub fn push(&mut self, chunk: &[u8]) {
        let mut at = 0;
        while self.failed.is_none() {
            match self.scanner.next(chunk, &mut at) {
                Ok(Event::NeedMore) => return,
                Ok(event) => self.event(event),
                Err(ScanError::TooDeep { .. }) => self.failed = Some(ActualCostError::TooDeep),
                Err(_) => self.failed = Some(ActualCostError::Malformed),
            }
        }
    }

    /// The actual cost of `body`, a whole response (nothing pushed before): what `push(body)`
    /// then `finish()` would say, found faster ([`whole`]) when the body is well-formed.
    pub fn measure(mut self, body: &[u8]) -> Result<u64, ActualCostError> {
        if self.failed.is_none()
            && !self.scanner.has_started()
            && let Some(rules) = self.rules()
            && let Some(cost) = whole::measure(&rules, body)
        {
            return Ok(cost);
        }
        self.push(body);
        self.finish()
    }

    fn rules(&self) -> Option<Rules<'_>> {
        Some(Rules {
            shape: self.shape.as_deref()?,
            arguments: &self.arguments,
        })
    }

    /// The actual cost, once the whole body has been pushed.
    pub fn finish(mut self) -> Result<u64, ActualCostError> {
        if self.failed.is_none() && self.scanner.finish().is_err() {
            self.failed = Some(ActualCostError::Malformed);
        }
        match self.failed {
            Some(error) => Err(error),
            None if self.stack.is_empty() => Ok(self.cost),
            None => Err(ActualCostError::Malformed),
        }
    }

    fn event(&mut self, event: Event) {
        let container = match event {
            Event::Key => {
                let next = self.key();
                if matches!(next, Next::Skip) {
                    // A key the operation did not ask for costs nothing, whatever is below it.
                    self.scanner.skip_value();
                } else {
                    self.next = Some(next);
                }
                return;
            }
            Event::Close(_) => {
                self.stack.pop();
                return;
            }
            Event::Skipped | Event::NeedMore => return,
            Event::Open(container) => Some(container),
            Event::Scalar => None,
        };
        // A value: what it is follows from its key, or from the list holding it.
        let next = match (self.next.take(), self.stack.last()) {
            (Some(next), _) => next,
            (None, Some(Frame::List { entry })) => Next::Field {
                entry: *entry,
                occurrence: false,
            },
            (None, None) => {
                if container != Some(Container::Object) {
                    self.failed = Some(ActualCostError::Malformed);
                    return;
                }
                return self.open(Frame::Response);
            }
            (None, Some(_)) => Next::Skip,
        };
        match next {
            Next::Skip => {
                if container.is_some() {
                    self.scanner.skip_container();
                }
            }
            Next::Data => match container {
                Some(Container::Object) => self.open(Frame::Object {
                    shape: ResponseShape::ROOT,
                }),
                Some(Container::Array) => self.scanner.skip_container(),
                None => {}
            },
            Next::Field { entry, occurrence } => {
                if occurrence {
                    let arguments = self.rules().map_or(0, |rules| rules.arguments_cost(&entry));
                    self.add(arguments);
                }
                match container {
                    Some(Container::Array) => self.open(Frame::List { entry }),
                    Some(Container::Object) => {
                        self.add(entry.object);
                        match entry.child {
                            NONE => self.scanner.skip_container(),
                            shape => self.open(Frame::Object { shape }),
                        }
                    }
                    None => self.add(entry.leaf),
                }
            }
        }
    }

    /// What the value after the key just read is.
    fn key(&mut self) -> Next {
        match self.stack.last() {
            Some(Frame::Response) => match self.scanner.key() {
                Some(b"data") => Next::Data,
                _ => Next::Skip,
            },
            Some(Frame::Object { shape }) => {
                let Some(key) = self.scanner.key() else {
                    // A key too long to be decoded may be a field the operation asked for: the
                    // answer cannot be measured, rather than measured low.
                    self.failed = Some(ActualCostError::Unmapped);
                    return Next::Skip;
                };
                let entry = self.rules().and_then(|rules| rules.lookup(*shape, key));
                match entry {
                    Some(entry) => Next::Field {
                        entry,
                        occurrence: true,
                    },
                    None => Next::Skip,
                }
            }
            _ => Next::Skip,
        }
    }

    fn open(&mut self, frame: Frame) {
        if self.stack.len() >= MAX_NESTING {
            self.failed = Some(ActualCostError::TooDeep);
            return;
        }
        self.stack.push(frame);
    }

    fn add(&mut self, weight: u64) {
        self.cost = self.cost.saturating_add(weight);
    }
}

mod whole;

#[cfg(test)]
mod tests;
