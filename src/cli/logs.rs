//! The logger: `LOG_FORMAT=pretty` for people (colours only on a terminal), `json` for machines
//! (one object per line).
//!
//! The JSON writer is ours rather than `tracing-subscriber`'s because tracing's fields are flat
//! values: a map such as the start-up `settings` would arrive as a string holding a map, which a
//! log pipeline cannot query. Fields named in [`JSON_FIELDS`] carry JSON text and are embedded as
//! JSON; every other field keeps its type (numbers stay numbers).

use std::io::IsTerminal;

use graphql_firewall::config::{Config, LogFormat};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields whose value is JSON text, embedded as JSON in `LOG_FORMAT=json`.
pub const JSON_FIELDS: &[&str] = &["settings"];

pub fn init(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.server.log_filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.server.log_format {
        LogFormat::Json => builder.event_format(JsonLines).init(),
        // Colour codes are noise in a file, a pipe or a container log collector.
        LogFormat::Pretty => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// One JSON object per event: `timestamp`, `level`, the event's fields (`message` among them),
/// `target`.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let metadata = event.metadata();
        let mut object = Map::new();
        object.insert("timestamp".to_owned(), Value::String(timestamp));
        object.insert("level".to_owned(), metadata.level().as_str().into());
        event.record(&mut Fields(&mut object));
        object.insert("target".to_owned(), metadata.target().into());
        writeln!(writer, "{}", Value::Object(object))
    }
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let value = match JSON_FIELDS.contains(&field.name()) {
            true => serde_json::from_str(value).unwrap_or_else(|_| value.into()),
            false => value.into(),
        };
        self.0.insert(field.name().to_owned(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}
