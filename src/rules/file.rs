//! One rule file in its own VM: its handlers, and what they decide.

use super::tables::{metric_table, notification_table};
use crate::collectd::{Metric, Notification};
use crate::lua::{CallError, LuaValue, Vm, VmLimits};
use piccolo::{StashedFunction, Value};
use std::path::{Path, PathBuf};

/// Which event a handler is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandlerKind {
    Metric,
    Notification,
}

impl HandlerKind {
    fn as_str(self) -> &'static str {
        match self {
            HandlerKind::Metric => "metric",
            HandlerKind::Notification => "notification",
        }
    }
}

struct Handler {
    /// `None` for a bare function.
    name: Option<String>,
    function: StashedFunction,
}

/// A handler asked for a recovery command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    /// `<file>::metric::<name>` (COMPAT.md §2: the result notification's type).
    pub handler: String,
    pub service: String,
    pub command: String,
}

/// A handler failed or returned something that is not a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerError {
    pub handler: String,
    pub reason: String,
}

/// A loaded rule file.
pub struct RuleFile {
    path: PathBuf,
    vm: Vm,
    metric: Vec<Handler>,
    notification: Vec<Handler>,
}

impl RuleFile {
    /// Reads and runs the file; fails with a message naming the file.
    pub fn load(path: &Path, limits: VmLimits) -> Result<RuleFile, String> {
        let source = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_source(path, &source, limits)
    }

    /// Runs `source` as the file `path`.
    pub fn from_source(path: &Path, source: &[u8], limits: VmLimits) -> Result<RuleFile, String> {
        let label = path.display().to_string();
        let mut vm = Vm::new(limits).map_err(|e| e.located(&label))?;
        let returned = vm
            .run_chunk(&label, source)
            .map_err(|e| e.located(&label))?;
        let mut file = RuleFile {
            path: path.to_path_buf(),
            vm,
            metric: Vec::new(),
            notification: Vec::new(),
        };
        file.metric = handlers(returned.first(), &label, "first (metric handlers)")?;
        file.notification = handlers(returned.get(1), &label, "second (notification handlers)")?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Handler labels of one kind, as they appear in result notifications.
    pub fn handler_names(&self, kind: HandlerKind) -> Vec<String> {
        self.list(kind)
            .iter()
            .map(|h| self.label(kind, h))
            .collect()
    }

    fn list(&self, kind: HandlerKind) -> &[Handler] {
        match kind {
            HandlerKind::Metric => &self.metric,
            HandlerKind::Notification => &self.notification,
        }
    }

    fn label(&self, kind: HandlerKind, h: &Handler) -> String {
        match &h.name {
            Some(name) => format!("{}::{}::{name}", self.path.display(), kind.as_str()),
            None => format!("{}::{}", self.path.display(), kind.as_str()),
        }
    }

    /// Offers a value list to every metric handler, in name order.
    pub fn on_metric(&mut self, metric: &Metric) -> (Vec<Fired>, Vec<HandlerError>) {
        self.offer(HandlerKind::Metric, &|ctx| {
            Ok(vec![Value::Table(metric_table(ctx, metric)?)])
        })
    }

    /// Offers a notification to every notification handler.
    pub fn on_notification(&mut self, n: &Notification) -> (Vec<Fired>, Vec<HandlerError>) {
        self.offer(HandlerKind::Notification, &|ctx| {
            Ok(vec![Value::Table(notification_table(ctx, n)?)])
        })
    }

    /// Lines the file's code printed since the last call.
    pub fn take_printed(&mut self) -> Vec<String> {
        self.vm.take_printed()
    }

    fn offer(
        &mut self,
        kind: HandlerKind,
        args: &dyn for<'gc> Fn(
            piccolo::Context<'gc>,
        ) -> Result<Vec<Value<'gc>>, piccolo::Error<'gc>>,
    ) -> (Vec<Fired>, Vec<HandlerError>) {
        let mut fired = Vec::new();
        let mut errors = Vec::new();
        let count = self.list(kind).len();
        for i in 0..count {
            let (label, function) = {
                let h = &self.list(kind)[i];
                (self.label(kind, h), h.function.clone())
            };
            match self
                .vm
                .call(&function, args)
                .map_err(describe)
                .and_then(|r| decision(&r))
            {
                Ok(Some((service, command))) => fired.push(Fired {
                    handler: label,
                    service,
                    command,
                }),
                Ok(None) => {}
                Err(reason) => errors.push(HandlerError {
                    handler: label,
                    reason,
                }),
            }
        }
        (fired, errors)
    }
}

fn describe(e: CallError) -> String {
    e.to_string()
}

/// Reads one of the chunk's return values as handlers.
fn handlers(value: Option<&LuaValue>, file: &str, which: &str) -> Result<Vec<Handler>, String> {
    match value {
        None | Some(LuaValue::Nil) => Ok(Vec::new()),
        Some(LuaValue::Function(f)) => Ok(vec![Handler {
            name: None,
            function: f.clone(),
        }]),
        Some(LuaValue::Table(_, fields)) => {
            let mut list = Vec::new();
            for (name, value) in fields {
                match value {
                    LuaValue::Function(f) => list.push(Handler {
                        name: Some(name.clone()),
                        function: f.clone(),
                    }),
                    other => {
                        return Err(format!(
                            "{file}: the {which} return value has `{name}` = a {}, not a function",
                            other.type_name()
                        ));
                    }
                }
            }
            Ok(list)
        }
        Some(other) => Err(format!(
            "{file}: the {which} return value must be a function, a table of functions or nil, not a {}",
            other.type_name()
        )),
    }
}

/// What a handler's return values mean: nil/false/nothing is "no action",
/// `{service = "...", command = "..."}` a request.
fn decision(returned: &[LuaValue]) -> Result<Option<(String, String)>, String> {
    match returned.first() {
        None | Some(LuaValue::Nil) | Some(LuaValue::Bool(false)) => Ok(None),
        Some(LuaValue::Table(_, fields)) => match (fields.get("service"), fields.get("command")) {
            (Some(LuaValue::Str(service)), Some(LuaValue::Str(command))) => {
                Ok(Some((service.clone(), command.clone())))
            }
            _ => Err("returned a table without string fields `service` and `command`".into()),
        },
        Some(other) => Err(format!(
            "returned a {}; expected nil or {{service = \"...\", command = \"...\"}}",
            other.type_name()
        )),
    }
}
