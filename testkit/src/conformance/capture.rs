//! A minimal tracing subscriber that keeps every event's fields as one line, for tests that check what
//! the driver logs (transcript lines, and that no secret is among them).
//!
//! It is the process's global subscriber, and keeps only the events of threads inside [`capture`]. A
//! subscriber set for one thread (`with_default`) would race with the other tests' threads: a callsite
//! first hit where no subscriber is set may cache "never" for every thread, and the transcript goes
//! missing (seen: an empty capture now and then while 90 tests ran side by side).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

thread_local! {
    /// The lines of this thread's capture, while one runs.
    static LINES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

struct Capture {
    next_span: AtomicU64,
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

fn capturing() -> bool {
    LINES.with(|lines| lines.borrow().is_some())
}

impl Subscriber for Capture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Asked again on every event: only the capturing threads want it.
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        capturing()
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        LINES.with(|lines| {
            if let Some(lines) = lines.borrow_mut().as_mut() {
                lines.push(line.0);
            }
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `f` on this thread with every tracing event (all levels) of this thread captured; returns `f`'s
/// result and the lines. Installs the capturing subscriber as the global default the first time; where
/// another global subscriber was set first, nothing is captured.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Capture { next_span: AtomicU64::new(0) });
    });
    LINES.with(|lines| *lines.borrow_mut() = Some(Vec::new()));
    let out = f();
    let lines = LINES.with(|lines| lines.borrow_mut().take()).unwrap_or_default();
    (out, lines)
}
