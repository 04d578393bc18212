//! The backend's schema as the analyser needs it: field types, arguments, `@cost`, `@listSize`,
//! and who may select what (`@authenticated`, `@requiresScopes`, `DENY_FIELDS`: see
//! [`super::access`]).
//!
//! # Why
//! Built once at start-up from the operator's SDL (trusted input, parsed with
//! `async-graphql-parser`), then shared read-only by every request. It lets cost know which
//! fields are lists and how they are sliced, and lets the analyser count names the schema does
//! not define: schema probing (guessing field names until one works) is a reconnaissance attack,
//! and a schema-aware firewall can refuse it before the backend answers with suggestions.

use std::collections::HashMap;

use async_graphql_parser::Positioned;
use async_graphql_parser::parse_schema;
use async_graphql_parser::types::{
    BaseType, ConstDirective, FieldDefinition, InputValueDefinition, SchemaDefinition, Type,
    TypeDefinition, TypeKind as SdlTypeKind, TypeSystemDefinition,
};
use serde_json::Value;

use super::access::{Requirement, Restriction};

/// Why the SDL could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The SDL is not valid GraphQL.
    #[error("the schema SDL does not parse: {0}")]
    Parse(String),
    /// A field, argument or input field of a type the SDL does not define: a typo such as
    /// `a: Strin` would otherwise make every operation selecting below it unknown to the schema.
    #[error("type `{type_name}` is not defined (used by {used_by}{})", if *.more > 0 { format!(" and {more} other undefined type use(s)") } else { String::new() })]
    UndefinedType {
        type_name: String,
        used_by: String,
        /// Further undefined uses, counted rather than listed.
        more: usize,
    },
    /// `DENY_FIELDS` names a type or field the schema does not define.
    #[error("DENY_FIELDS: `{0}` is not a type or a field (Type.field) of the schema")]
    UnknownCoordinate(String),
    /// A directive argument has the wrong shape (e.g. `@cost(weight: "x")`).
    #[error("invalid `@{directive}` on `{location}`: {reason}")]
    Directive {
        directive: &'static str,
        location: String,
        reason: &'static str,
    },
}

/// A type's kind, as far as the analyser cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Interface,
    Union,
    Enum,
    Scalar,
    InputObject,
}

#[derive(Debug)]
pub(crate) struct TypeInfo {
    pub(crate) kind: Kind,
    pub(crate) fields: HashMap<String, FieldInfo>,
    /// Fields of an input object.
    pub(crate) input_fields: HashMap<String, InputInfo>,
    pub(crate) cost: Option<u64>,
    /// Interfaces an object or interface implements.
    pub(crate) implements: Vec<String>,
    /// `@authenticated` / `@requiresScopes` / `DENY_FIELDS` on the type itself.
    pub(crate) access: Requirement,
}

#[derive(Debug)]
pub(crate) struct FieldInfo {
    /// Innermost named type.
    pub(crate) type_name: String,
    pub(crate) list: bool,
    pub(crate) arguments: Vec<InputInfo>,
    pub(crate) cost: Option<u64>,
    pub(crate) list_size: Option<ListSize>,
    /// Index in `arguments` of the only list-typed argument, if there is exactly one: without
    /// `@listSize`, it sizes a list field (`usersByIds(ids: [ID!]!): [User]!`).
    pub(crate) list_argument: Option<usize>,
    /// Whether any argument can cost something (`@cost` on it, on its type or on an input field
    /// below it, or an input object, which costs 1 as in Apollo Router): settled once the whole
    /// SDL is read.
    pub(crate) arguments_cost: bool,
    /// `@authenticated` / `@requiresScopes` / `DENY_FIELDS` written on this field.
    pub(crate) own_access: Requirement,
    /// What selecting this field requires, settled once the whole SDL is read: its own rules,
    /// its type's and its return type's, and those of the same field on every interface it
    /// implements and every implementation of it (a field reached through an interface may
    /// resolve on any implementation). `None`: anyone may select it.
    pub(crate) access: Option<std::sync::Arc<Restriction>>,
}

/// An argument or an input object's field.
#[derive(Debug)]
pub(crate) struct InputInfo {
    pub(crate) name: String,
    /// Innermost named type.
    pub(crate) type_name: String,
    pub(crate) list: bool,
    /// The default value, as a size: an `Int`, or a list's length (a single value is a list of
    /// one); `None` without default or with a `null` one.
    pub(crate) default_size: Option<u64>,
    /// `@cost` on the definition, else on its named type (scalars, enums).
    pub(crate) cost: Option<u64>,
}

/// `@listSize` of the IBM cost directives spec.
#[derive(Debug, Default)]
pub(crate) struct ListSize {
    pub(crate) assumed_size: Option<u64>,
    pub(crate) slicing_arguments: Vec<String>,
    pub(crate) sized_fields: Vec<String>,
    /// Spec default `true` (applies when `slicing_arguments` is not empty).
    pub(crate) require_one_slicing_argument: bool,
}

/// Schema facts used by analysis and cost.
#[derive(Debug)]
pub struct Schema {
    types: HashMap<String, TypeInfo>,
    /// Some field has an access rule.
    access_rules: bool,
    query: String,
    mutation: String,
    subscription: String,
}

impl Schema {
    /// Parse SDL (extensions merged). Start-up only.
    pub fn from_sdl(sdl: &str) -> Result<Schema, SchemaError> {
        let document = parse_schema(sdl).map_err(|e| SchemaError::Parse(e.to_string()))?;
        let mut schema = Schema {
            types: HashMap::new(),
            access_rules: false,
            query: "Query".to_owned(),
            mutation: "Mutation".to_owned(),
            subscription: "Subscription".to_owned(),
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(definition) => schema.roots(&definition.node),
                TypeSystemDefinition::Type(definition) => schema.add_type(&definition.node)?,
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        schema.check_types_defined()?;
        schema.settle_input_costs();
        schema.settle_access();
        Ok(schema)
    }

    /// Every type a field, argument or input field names is defined (or built in); the first
    /// undefined one in name order is reported, so the message does not depend on hash order.
    fn check_types_defined(&self) -> Result<(), SchemaError> {
        let defined = |name: &str| {
            self.types.contains_key(name)
                || matches!(name, "Int" | "Float" | "String" | "Boolean" | "ID")
        };
        let mut undefined: Vec<(&str, String)> = Vec::new();
        for (type_name, info) in &self.types {
            for (field_name, field) in &info.fields {
                let at = || format!("{type_name}.{field_name}");
                if !defined(&field.type_name) {
                    undefined.push((&field.type_name, at()));
                }
                for argument in &field.arguments {
                    if !defined(&argument.type_name) {
                        undefined
                            .push((&argument.type_name, format!("{}({}:)", at(), argument.name)));
                    }
                }
            }
            for (input_name, input) in &info.input_fields {
                if !defined(&input.type_name) {
                    undefined.push((&input.type_name, format!("{type_name}.{input_name}")));
                }
            }
        }
        undefined.sort();
        match undefined.first() {
            None => Ok(()),
            Some((type_name, used_by)) => Err(SchemaError::UndefinedType {
                type_name: (*type_name).to_owned(),
                used_by: used_by.clone(),
                more: undefined.len() - 1,
            }),
        }
    }

    /// Denies schema coordinates to every caller (`DENY_FIELDS`): `Type.field`, or `Type` for
    /// every field of that type and every field returning it. An unknown coordinate is an error
    /// (a typo would otherwise deny nothing).
    pub fn deny(&mut self, coordinates: &[String]) -> Result<(), SchemaError> {
        for coordinate in coordinates {
            let unknown = || SchemaError::UnknownCoordinate(coordinate.clone());
            let (type_name, field) = match coordinate.split_once('.') {
                Some((type_name, field)) => (type_name, Some(field)),
                None => (coordinate.as_str(), None),
            };
            let info = self.types.get_mut(type_name).ok_or_else(unknown)?;
            match field {
                None => info.access.denied = true,
                Some(field) => {
                    info.fields
                        .get_mut(field)
                        .ok_or_else(unknown)?
                        .own_access
                        .denied = true;
                }
            }
        }
        self.settle_access();
        Ok(())
    }

    /// Whether any field has an access rule (the analysis skips the pass otherwise).
    pub(crate) fn has_access_rules(&self) -> bool {
        self.access_rules
    }

    /// Every field's [`FieldInfo::access`].
    fn settle_access(&mut self) {
        // Types related to `t` by implementation, either way (an interface's field may resolve on
        // any implementation; an implementation's field answers for the interface's).
        let mut related: HashMap<String, Vec<String>> = HashMap::new();
        for (name, info) in &self.types {
            for interface in &info.implements {
                related
                    .entry(name.clone())
                    .or_default()
                    .push(interface.clone());
                related
                    .entry(interface.clone())
                    .or_default()
                    .push(name.clone());
            }
        }
        let own = |types: &HashMap<String, TypeInfo>, type_name: &str, field: &str| {
            let mut requirement = Requirement::default();
            if let Some(info) = types.get(type_name) {
                requirement.merge(&info.access);
                if let Some(field) = info.fields.get(field) {
                    requirement.merge(&field.own_access);
                    if let Some(returned) = types.get(&field.type_name) {
                        requirement.merge(&returned.access);
                    }
                }
            }
            requirement
        };
        let mut settled: Vec<(String, String, Option<std::sync::Arc<Restriction>>)> = Vec::new();
        for (type_name, info) in &self.types {
            for field in info.fields.keys() {
                let mut requirement = own(&self.types, type_name, field);
                for other in related.get(type_name).into_iter().flatten() {
                    requirement.merge(&own(&self.types, other, field));
                }
                let restriction = (!requirement.is_empty()).then(|| {
                    std::sync::Arc::new(Restriction {
                        coordinate: format!("{type_name}.{field}").into(),
                        requirement,
                    })
                });
                settled.push((type_name.clone(), field.clone(), restriction));
            }
        }
        self.access_rules = settled.iter().any(|(_, _, r)| r.is_some());
        for (type_name, field, restriction) in settled {
            if let Some(info) = self
                .types
                .get_mut(&type_name)
                .and_then(|t| t.fields.get_mut(&field))
            {
                info.access = restriction;
            }
        }
    }

    /// Type costs of arguments and input fields, and which fields' arguments can cost: both
    /// need every type read first (`extend`, types declared after their use).
    fn settle_input_costs(&mut self) {
        let type_costs: HashMap<String, u64> = self
            .types
            .iter()
            .filter_map(|(name, t)| Some((name.clone(), t.cost?)))
            .collect();
        let inherit = |input: &mut InputInfo| {
            if input.cost.is_none() {
                input.cost = type_costs.get(&input.type_name).copied();
            }
        };
        for info in self.types.values_mut() {
            info.input_fields.values_mut().for_each(inherit);
            for field in info.fields.values_mut() {
                field.arguments.iter_mut().for_each(inherit);
            }
        }
        // An input object costs when it is one (1 by default) — every argument of that type.
        let input_objects: std::collections::HashSet<String> = self
            .types
            .iter()
            .filter(|(_, t)| t.kind == Kind::InputObject)
            .map(|(name, _)| name.clone())
            .collect();
        for info in self.types.values_mut() {
            for field in info.fields.values_mut() {
                field.arguments_cost = field
                    .arguments
                    .iter()
                    .any(|a| a.cost.is_some() || input_objects.contains(&a.type_name));
            }
        }
    }

    fn roots(&mut self, definition: &SchemaDefinition) {
        if let Some(name) = &definition.query {
            self.query = name.node.to_string();
        }
        if let Some(name) = &definition.mutation {
            self.mutation = name.node.to_string();
        }
        if let Some(name) = &definition.subscription {
            self.subscription = name.node.to_string();
        }
    }

    fn add_type(&mut self, definition: &TypeDefinition) -> Result<(), SchemaError> {
        let name = definition.name.node.to_string();
        let (kind, fields, implements): (Kind, &[Positioned<FieldDefinition>], &[_]) =
            match &definition.kind {
                SdlTypeKind::Object(object) => (Kind::Object, &object.fields, &object.implements),
                SdlTypeKind::Interface(interface) => {
                    (Kind::Interface, &interface.fields, &interface.implements)
                }
                SdlTypeKind::Union(_) => (Kind::Union, &[], &[]),
                SdlTypeKind::Enum(_) => (Kind::Enum, &[], &[]),
                SdlTypeKind::Scalar => (Kind::Scalar, &[], &[]),
                SdlTypeKind::InputObject(_) => (Kind::InputObject, &[], &[]),
            };
        let cost = cost_weight(&definition.directives, &name)?;
        let type_access = access(&definition.directives, &name)?;
        let entry = self.types.entry(name.clone()).or_insert_with(|| TypeInfo {
            kind,
            fields: HashMap::new(),
            input_fields: HashMap::new(),
            cost: None,
            implements: Vec::new(),
            access: Requirement::default(),
        });
        // `extend type` merges; a cost on either declaration applies, and every access rule.
        entry.cost = cost.or(entry.cost);
        entry.access.merge(&type_access);
        entry
            .implements
            .extend(implements.iter().map(|i| i.node.to_string()));
        if let SdlTypeKind::InputObject(input) = &definition.kind {
            for field in &input.fields {
                let location = format!("{name}.{}", field.node.name.node);
                let info = input_info(&field.node, &location)?;
                entry.input_fields.insert(info.name.clone(), info);
            }
        }
        for field in fields {
            let field = &field.node;
            let location = format!("{name}.{}", field.name.node);
            let (type_name, list) = unwrap_type(&field.ty.node);
            let arguments = field
                .arguments
                .iter()
                .map(|a| input_info(&a.node, &format!("{location}({}:)", a.node.name.node)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut list_arguments = arguments.iter().enumerate().filter(|(_, a)| a.list);
            let list_argument = match (list_arguments.next(), list_arguments.next()) {
                (Some((index, _)), None) => Some(index),
                _ => None,
            };
            let info = FieldInfo {
                type_name,
                list,
                arguments,
                cost: cost_weight(&field.directives, &location)?,
                list_size: list_size(&field.directives, &location)?,
                list_argument,
                arguments_cost: false,
                own_access: access(&field.directives, &location)?,
                access: None,
            };
            entry.fields.insert(field.name.node.to_string(), info);
        }
        Ok(())
    }

    pub(crate) fn type_info(&self, name: &str) -> Option<&TypeInfo> {
        self.types.get(name)
    }

    /// The schema's own copy of a type name, so that borrowers need not keep the request alive.
    pub(crate) fn type_name(&self, name: &str) -> Option<&str> {
        self.types.get_key_value(name).map(|(k, _)| k.as_str())
    }

    /// Whether a named type has fields to select (unknown names count as composite: safer cost).
    pub(crate) fn is_composite(&self, name: &str) -> bool {
        match self.types.get(name) {
            Some(info) => matches!(info.kind, Kind::Object | Kind::Interface | Kind::Union),
            None => !matches!(name, "Int" | "Float" | "String" | "Boolean" | "ID"),
        }
    }

    pub(crate) fn query_root(&self) -> &str {
        &self.query
    }

    pub(crate) fn mutation_root(&self) -> &str {
        &self.mutation
    }

    pub(crate) fn subscription_root(&self) -> &str {
        &self.subscription
    }
}

fn input_info(definition: &InputValueDefinition, location: &str) -> Result<InputInfo, SchemaError> {
    let (type_name, list) = unwrap_type(&definition.ty.node);
    let default_size = definition
        .default_value
        .as_ref()
        .and_then(|d| d.node.clone().into_json().ok())
        .and_then(|value| match value {
            Value::Null => None,
            Value::Array(items) if list => Some(items.len() as u64),
            _ if list => Some(1),
            Value::Number(n) => n.as_i64().and_then(|n| u64::try_from(n).ok()),
            _ => None,
        });
    Ok(InputInfo {
        name: definition.name.node.to_string(),
        type_name,
        list,
        default_size,
        cost: cost_weight(&definition.directives, location)?,
    })
}

/// `[[T!]]!` → (`T`, true). The SDL is trusted and small; a loop still avoids recursion.
fn unwrap_type(ty: &Type) -> (String, bool) {
    let mut current = ty;
    let mut list = false;
    loop {
        match &current.base {
            BaseType::Named(name) => return (name.to_string(), list),
            BaseType::List(inner) => {
                list = true;
                current = inner;
            }
        }
    }
}

fn find<'a>(
    directives: &'a [Positioned<ConstDirective>],
    name: &str,
) -> Option<&'a ConstDirective> {
    directives
        .iter()
        .map(|d| &d.node)
        .find(|d| d.name.node.as_str() == name)
}

fn cost_weight(
    directives: &[Positioned<ConstDirective>],
    location: &str,
) -> Result<Option<u64>, SchemaError> {
    let Some(directive) = find(directives, "cost") else {
        return Ok(None);
    };
    let error = |reason| SchemaError::Directive {
        directive: "cost",
        location: location.to_owned(),
        reason,
    };
    let weight = directive
        .get_argument("weight")
        .ok_or_else(|| error("missing `weight`"))?;
    // The spec types `weight` as a String holding a number; Apollo accepts an Int too.
    let number = match weight.node.clone().into_json() {
        Ok(Value::Number(n)) => n.as_f64(),
        Ok(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match number {
        Some(w) if w.is_finite() && w >= 0.0 => Ok(Some(w.round().min(u64::MAX as f64) as u64)),
        _ => Err(error("`weight` must be a non-negative number")),
    }
}

/// `@authenticated` and `@requiresScopes(scopes: [[String!]!]!)` (Apollo's directives).
fn access(
    directives: &[Positioned<ConstDirective>],
    location: &str,
) -> Result<Requirement, SchemaError> {
    let mut requirement = Requirement {
        authenticated: find(directives, "authenticated").is_some(),
        ..Requirement::default()
    };
    if let Some(directive) = find(directives, "requiresScopes") {
        let error = |reason| SchemaError::Directive {
            directive: "requiresScopes",
            location: location.to_owned(),
            reason,
        };
        let scopes = directive
            .get_argument("scopes")
            .ok_or_else(|| error("missing `scopes`"))?;
        let alternatives: Vec<Vec<String>> = match scopes.node.clone().into_json() {
            Ok(Value::Array(alternatives)) => alternatives
                .into_iter()
                .map(|alternative| match alternative {
                    Value::Array(all) => all
                        .into_iter()
                        .map(|scope| match scope {
                            Value::String(scope) => Ok(scope),
                            _ => Err(error("`scopes` must be a list of lists of strings")),
                        })
                        .collect(),
                    Value::String(scope) => Ok(vec![scope]),
                    _ => Err(error("`scopes` must be a list of lists of strings")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(error("`scopes` must be a list of lists of strings")),
        };
        requirement.authenticated = true;
        requirement.scopes.push(alternatives);
    }
    Ok(requirement)
}

fn list_size(
    directives: &[Positioned<ConstDirective>],
    location: &str,
) -> Result<Option<ListSize>, SchemaError> {
    let Some(directive) = find(directives, "listSize") else {
        return Ok(None);
    };
    let error = |reason| SchemaError::Directive {
        directive: "listSize",
        location: location.to_owned(),
        reason,
    };
    let mut out = ListSize {
        require_one_slicing_argument: true,
        ..ListSize::default()
    };
    for (name, value) in &directive.arguments {
        let value = value.node.clone().into_json().unwrap_or(Value::Null);
        match (name.node.as_str(), &value) {
            ("assumedSize", Value::Number(n)) => {
                out.assumed_size = Some(n.as_u64().ok_or_else(|| error("bad `assumedSize`"))?);
            }
            ("slicingArguments", value) => out.slicing_arguments = strings(value),
            ("sizedFields", value) => out.sized_fields = strings(value),
            ("requireOneSlicingArgument", Value::Bool(b)) => out.require_one_slicing_argument = *b,
            (_, Value::Null) => {}
            _ => return Err(error("unexpected argument or argument type")),
        }
    }
    Ok(Some(out))
}

/// A `[String]` argument; GraphQL input coercion also accepts a single string.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}
