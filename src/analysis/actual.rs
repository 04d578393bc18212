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
//! arrive (push-based `actson` parser: no DOM, nothing buffered but the current token), keys
//! are looked up in the operation's precomputed shapes, and nesting is bounded by
//! `MAX_NESTING` (deeper responses are reported, not followed). Memory is the nesting stack plus
//! the longest single string or number in the response (the parser holds one token at a time).

use std::sync::Arc;

use actson::feeder::PushJsonFeeder;
use actson::options::JsonParserOptionsBuilder;
use actson::{JsonEvent, JsonParser};
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

/// What a JSON value in the response is.
#[derive(Clone, Copy, Debug)]
enum Frame {
    /// The top-level response object.
    Response,
    /// An object whose keys map through `shape`.
    Object { shape: u32 },
    /// The elements of a list field.
    List { entry: Entry },
    /// A value that costs nothing, down to its end.
    Skip,
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
    parser: JsonParser<PushJsonFeeder>,
    stack: Vec<Frame>,
    next: Option<Next>,
    cost: u64,
    failed: Option<ActualCostError>,
}

impl ActualCost {
    /// A meter for a response to `operation` executed with `variables`.
    pub fn new(operation: &Operation, variables: Option<&Map<String, Value>>) -> ActualCost {
        let shape = operation.response_shape().cloned();
        let options = JsonParserOptionsBuilder::default()
            // Deeper than ours, so that ours reports it.
            .with_max_depth(MAX_NESTING + 8)
            .build();
        ActualCost {
            failed: shape.is_none().then_some(ActualCostError::Unmapped),
            arguments: if shape.is_some() {
                operation.argument_costs(variables)
            } else {
                Vec::new()
            },
            shape,
            parser: JsonParser::new_with_options(PushJsonFeeder::new(), options),
            stack: Vec::new(),
            next: None,
            cost: 0,
        }
    }

    /// Feeds the next chunk of the response body.
    pub fn push(&mut self, mut chunk: &[u8]) {
        while self.failed.is_none() {
            let accepted = self.parser.feeder.push_bytes(chunk);
            chunk = chunk.get(accepted..).unwrap_or_default();
            self.drain();
            if chunk.is_empty() {
                return;
            }
        }
    }

    /// The actual cost, once the whole body has been pushed.
    pub fn finish(mut self) -> Result<u64, ActualCostError> {
        if self.failed.is_none() {
            self.parser.feeder.done();
            self.drain();
        }
        match self.failed {
            Some(error) => Err(error),
            None if self.stack.is_empty() => Ok(self.cost),
            None => Err(ActualCostError::Malformed),
        }
    }

    /// Consumes events until the parser needs more input or the document ends.
    fn drain(&mut self) {
        while self.failed.is_none() {
            match self.parser.next_event() {
                Ok(Some(JsonEvent::NeedMoreInput)) | Ok(None) => return,
                Ok(Some(event)) => self.event(event),
                Err(_) => self.failed = Some(ActualCostError::Malformed),
            }
        }
    }

    fn event(&mut self, event: JsonEvent) {
        if event == JsonEvent::FieldName {
            self.next = Some(self.key());
            return;
        }
        if matches!(event, JsonEvent::EndObject | JsonEvent::EndArray) {
            self.stack.pop();
            return;
        }
        // A value: what it is follows from its key, or from the list holding it.
        let next = match (self.next.take(), self.stack.last()) {
            (Some(next), _) => next,
            (None, Some(Frame::List { entry })) => Next::Field {
                entry: *entry,
                occurrence: false,
            },
            (None, None) => {
                if event != JsonEvent::StartObject {
                    self.failed = Some(ActualCostError::Malformed);
                    return;
                }
                return self.open(Frame::Response);
            }
            (None, Some(_)) => Next::Skip,
        };
        let container = matches!(event, JsonEvent::StartObject | JsonEvent::StartArray);
        match next {
            Next::Skip if container => self.open(Frame::Skip),
            Next::Skip => {}
            Next::Data if event == JsonEvent::StartObject => self.open(Frame::Object {
                shape: ResponseShape::ROOT,
            }),
            Next::Data if container => self.open(Frame::Skip),
            Next::Data => {}
            Next::Field { entry, occurrence } => {
                if occurrence && entry.arguments_of != NONE {
                    let arguments = self.arguments.get(entry.arguments_of as usize);
                    self.add(arguments.copied().unwrap_or(0));
                }
                match event {
                    JsonEvent::StartArray => self.open(Frame::List { entry }),
                    JsonEvent::StartObject => {
                        self.add(entry.object);
                        let frame = match entry.child {
                            NONE => Frame::Skip,
                            shape => Frame::Object { shape },
                        };
                        self.open(frame);
                    }
                    _ => self.add(entry.leaf),
                }
            }
        }
    }

    /// What the value after the key just read is.
    fn key(&self) -> Next {
        match self.stack.last() {
            Some(Frame::Response) => match self.parser.current_str() {
                Ok("data") => Next::Data,
                _ => Next::Skip,
            },
            Some(Frame::Object { shape }) => {
                let entry = match (&self.shape, self.parser.current_str()) {
                    (Some(shapes), Ok(key)) => shapes.lookup(*shape, key).copied(),
                    _ => None,
                };
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

#[cfg(test)]
mod tests;
