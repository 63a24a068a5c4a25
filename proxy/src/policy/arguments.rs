//! The argument control: a `[[tool]]` entry's `arguments.NAME = { ... }` constraints (one of a
//! list, a pattern, inside a directory; see [`super::catalog::ArgCheck`]) on every call of the
//! tools it names.

use super::control::{ready, Call, Control, ControlKind, Denial, Step, StepFuture};
use super::{Gateway, Runtime};

/// Refuses a call whose arguments break a constraint; the reason names the argument, never
/// its value.
pub struct ArgumentsStep;

impl Control for ArgumentsStep {
    fn kind(&self) -> ControlKind {
        ControlKind::Arguments
    }

    fn check<'a>(
        &'a self,
        _g: &'a Gateway,
        _rt: &'a Runtime,
        call: &'a Call<'a>,
    ) -> StepFuture<'a> {
        let Some(tool) = call.tool() else {
            return ready(Step::Pass);
        };
        let why = call
            .policies
            .iter()
            .flat_map(|p| &p.arguments)
            .find_map(|check| check.violation(call.arguments()));
        ready(match why {
            Some(why) => Step::Deny(Denial::new(self.kind(), format!("tool `{tool}`: {why}"))),
            None => Step::Pass,
        })
    }
}
