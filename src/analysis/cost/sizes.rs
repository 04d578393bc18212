//! Compiling a field's list size and arguments' cost into the plan: which arguments slice,
//! what a written value says about a size, and which argument values are scored now or per
//! request.

use super::super::coerce;
use super::super::ir::{Argument, NONE, Node, ValueSummary};
use super::super::lexer::to_u32;
use super::super::schema::{FieldInfo, InputInfo, Schema};
use super::{ArgumentCost, Compiler, Multiplier, SizeSource, View, input};

impl<'a, 's> Compiler<'a, 's, '_> {
    /// The size a field's own arguments and `@listSize` give (see the module doc for the rules).
    pub(super) fn own_size(
        &mut self,
        node: &Node,
        arguments: &[Argument],
        field: &'s FieldInfo,
    ) -> Multiplier {
        let default_list_size = self.settings.default_list_size;
        let start = to_u32(self.sizes.len());
        match &field.list_size {
            Some(list_size) if !list_size.slicing_arguments.is_empty() => {
                for name in &list_size.slicing_arguments {
                    let definition = field.arguments.iter().find(|a| &a.name == name);
                    self.slicing(arguments, name, definition);
                }
                let required = if list_size.require_one_slicing_argument {
                    self.labels.push(node.name.text(self.src).into());
                    to_u32(self.labels.len() - 1)
                } else {
                    NONE
                };
                let fallback = list_size.assumed_size.unwrap_or(default_list_size);
                self.sized(start, fallback, required)
            }
            Some(list_size) if list_size.assumed_size.is_some() => self.sized(
                start,
                list_size.assumed_size.unwrap_or(default_list_size),
                NONE,
            ),
            _ => {
                let list_argument = field
                    .list_argument
                    .filter(|_| field.list)
                    .and_then(|i| field.arguments.get(i));
                if let Some(definition) = list_argument {
                    self.slicing(arguments, &definition.name, Some(definition));
                }
                self.sized(start, default_list_size, NONE)
            }
        }
    }

    /// Pushes the size source of slicing argument `name`: the written value, else the
    /// argument's schema default, else nothing (not given).
    fn slicing(&mut self, arguments: &[Argument], name: &str, definition: Option<&InputInfo>) {
        let view = match definition {
            Some(definition) if definition.list => View::Length,
            _ => View::Int,
        };
        let default = definition.and_then(|d| d.default_size);
        let written = arguments.iter().find(|a| a.name.text(self.src) == name);
        let source = match (written, default) {
            (Some(argument), _) => self.source(argument.value, view, default),
            (None, Some(default)) => SizeSource::Const(default),
            (None, None) => return,
        };
        self.sizes.push(source);
    }

    pub(super) fn sized(&self, start: u32, fallback: u64, required: u32) -> Multiplier {
        Multiplier::Size {
            start,
            len: to_u32(self.sizes.len()).saturating_sub(start),
            fallback,
            required,
        }
    }

    /// What a written argument value says about a size.
    pub(super) fn source(
        &mut self,
        value: ValueSummary,
        view: View,
        default: Option<u64>,
    ) -> SizeSource {
        let worst = self.settings.max_list_size;
        match (value, view) {
            (ValueSummary::Null, _) => SizeSource::Null,
            (ValueSummary::Variable(name), view) => {
                let variable = self.intern(name.text(self.src));
                match view {
                    View::Int => SizeSource::Int { variable, default },
                    View::Length => SizeSource::Length { variable, default },
                }
            }
            (ValueSummary::Int(n), View::Int) => SizeSource::Const(coerce::size_of_int(n, worst)),
            (ValueSummary::List(items), View::Length) => SizeSource::Const(items.into()),
            // A single value where a list is expected is a list of one.
            (_, View::Length) => SizeSource::Const(1),
            // Not an `Int` (a string, float, enum, list): unknowable, so the worst case.
            (_, View::Int) => SizeSource::Const(worst),
        }
    }

    /// Arguments' cost: literals without variables are scored now, the rest per request.
    pub(super) fn arguments_cost(
        &mut self,
        schema: &Schema,
        arguments: &[Argument],
        field: &FieldInfo,
    ) {
        self.has_extra = true;
        self.extra.arguments_start = to_u32(self.arguments.len());
        for argument in arguments {
            let name = argument.name.text(self.src);
            let Some(definition) = field.arguments.iter().find(|a| a.name == name) else {
                continue;
            };
            let slot = input::Slot {
                cost: definition.cost,
                type_name: definition.type_name.as_str().into(),
            };
            let text: &'a str = argument.value_span.text(self.src);
            let Some(value) = input::literal(text, |n| self.intern(n)) else {
                continue;
            };
            if input::has_variables(&value) {
                self.arguments.push(ArgumentCost { value, slot });
            } else {
                let cost = input::score(schema, &value, &slot, |_| None);
                self.extra.arguments_const = self.extra.arguments_const.saturating_add(cost);
            }
        }
        self.extra.arguments_len =
            to_u32(self.arguments.len()).saturating_sub(self.extra.arguments_start);
    }
}
