//! `schema/demo.graphql` is what the firewall's cost analysis reads; it must describe the demo
//! backend the code serves. Directives and descriptions are the file's annotations and are ignored.

use std::collections::BTreeMap;

use async_graphql_parser::types::{TypeKind, TypeSystemDefinition};

/// type name → sorted lines describing its shape ("field(arg: Type = default): Type", "member X", "root query: Q").
fn shape(sdl: &str) -> BTreeMap<String, Vec<String>> {
    let document = async_graphql_parser::parse_schema(sdl).expect("SDL parses");
    let mut shape: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for definition in document.definitions {
        match definition {
            TypeSystemDefinition::Schema(schema) => {
                let schema = schema.node;
                let roots = [
                    ("query", schema.query),
                    ("mutation", schema.mutation),
                    ("subscription", schema.subscription),
                ];
                for (root, name) in roots {
                    if let Some(name) = name {
                        shape
                            .entry("schema".into())
                            .or_default()
                            .push(format!("{root}: {}", name.node));
                    }
                }
            }
            TypeSystemDefinition::Type(ty) => {
                let ty = ty.node;
                let lines = shape.entry(ty.name.node.to_string()).or_default();
                match ty.kind {
                    TypeKind::Object(object) => {
                        for field in object.fields {
                            let field = field.node;
                            let args: Vec<String> = field
                                .arguments
                                .iter()
                                .map(|arg| {
                                    let default = arg
                                        .node
                                        .default_value
                                        .as_ref()
                                        .map(|d| format!(" = {}", d.node))
                                        .unwrap_or_default();
                                    format!("{}: {}{default}", arg.node.name.node, arg.node.ty.node)
                                })
                                .collect();
                            lines.push(format!(
                                "{}({}): {}",
                                field.name.node,
                                args.join(", "),
                                field.ty.node
                            ));
                        }
                    }
                    TypeKind::Union(union) => {
                        lines.extend(union.members.iter().map(|m| format!("member {}", m.node)));
                    }
                    other => lines.push(format!("{other:?}")),
                }
                lines.sort();
            }
            TypeSystemDefinition::Directive(_) => {}
        }
    }
    shape
}

#[test]
fn committed_sdl_matches_the_demo_backend() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/demo.graphql"))
            .unwrap();
    let served = graphql_firewall::demo::schema::build().sdl();
    assert_eq!(shape(&committed), shape(&served));
}
