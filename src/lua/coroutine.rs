//! `coroutine.resume` with Lua's bound on nesting: a coroutine resuming a
//! coroutine resuming ... stops at [`MAX_NESTING`] with Lua's "C stack
//! overflow" instead of growing until the memory limit ends the run.

use gc_arena::{Collect, Rootable};
use piccolo::{
    BoxSequence, Callback, CallbackReturn, Context, Execution, Sequence, SequencePoll, Stack,
    Thread,
};
use std::cell::Cell;

/// Lua 5.4's `LUAI_MAXCCALLS`: how deep resumes may nest.
const MAX_NESTING: u32 = 200;

/// How many resumes are under way in this VM.
#[derive(Default, Collect)]
#[collect(require_static)]
struct Nesting(Cell<u32>);

fn nesting<'gc>(ctx: Context<'gc>) -> &'gc Nesting {
    ctx.singleton::<Rootable![Nesting]>()
}

/// Forgets resumes a stopped run left counted (a run ended by a limit
/// never returns through their handlers); called as each run starts.
pub(super) fn reset(ctx: Context<'_>) {
    nesting(ctx).0.set(0);
}

/// Replaces piccolo's `coroutine.resume` (before the prelude wraps it).
pub(super) fn install<'gc>(ctx: Context<'gc>) -> Result<(), piccolo::Error<'gc>> {
    let piccolo::Value::Table(coroutine) = ctx.get_global("coroutine") else {
        return Ok(());
    };
    coroutine.set(ctx, "resume", resume_callback(ctx))?;
    Ok(())
}

fn resume_callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let thread: Thread = stack.from_front(ctx)?;
        let depth = &nesting(ctx).0;
        if depth.get() >= MAX_NESTING {
            stack.replace(ctx, (false, "C stack overflow"));
            return Ok(CallbackReturn::Return);
        }
        depth.set(depth.get() + 1);
        Ok(CallbackReturn::Resume {
            thread,
            then: Some(BoxSequence::new(&ctx, Resumed)),
        })
    })
}

/// What `resume` returns once the coroutine yields, returns or fails:
/// `true, ...` or `false, error`, one nesting level fewer.
#[derive(Collect)]
#[collect(require_static)]
struct Resumed;

impl<'gc> Sequence<'gc> for Resumed {
    fn poll(
        &mut self,
        ctx: Context<'gc>,
        _exec: Execution<'gc, '_>,
        mut stack: Stack<'gc, '_>,
    ) -> Result<SequencePoll<'gc>, piccolo::Error<'gc>> {
        leave(ctx);
        stack.into_front(ctx, true);
        Ok(SequencePoll::Return)
    }

    fn error(
        &mut self,
        ctx: Context<'gc>,
        _exec: Execution<'gc, '_>,
        error: piccolo::Error<'gc>,
        mut stack: Stack<'gc, '_>,
    ) -> Result<SequencePoll<'gc>, piccolo::Error<'gc>> {
        leave(ctx);
        stack.replace(ctx, (false, error.to_value(ctx)));
        Ok(SequencePoll::Return)
    }
}

fn leave(ctx: Context<'_>) {
    let depth = &nesting(ctx).0;
    depth.set(depth.get().saturating_sub(1));
}
