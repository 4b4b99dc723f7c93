//! `t[k] = v` for rule files that remove keys from tables. piccolo 0.3.3
//! panics when a table from which a string (table, function) key was
//! removed grows later ("all keys must be live when table is grown": its
//! map-doubling path hashes the dead key), where Lua simply grows the
//! table. The front end sends such a file's index assignments here (see
//! `front::setindex`): the set is tried as the VM does it; when the table
//! cannot grow for a dead key, it is rebuilt with its live entries only (a
//! hashbrown table whose hasher panics is left as it was) and the set tried
//! again. Anything that is not a plain table set (a metatable's
//! `__newindex` for a new key, a value that is not a table) goes to the
//! prelude's `__setindex_slow`, which is `t[k] = v` in Lua.

use piccolo::table::{NextValue, RawTable};
use piccolo::{Callback, CallbackReturn, Context, Table, Value};
use std::cell::Cell;
use std::panic::AssertUnwindSafe;

/// The prelude's `t[k] = v`, for the cases the VM must handle itself.
const SLOW: &str = "__setindex_slow";

thread_local! {
    /// Set while a set that may hit the dead-key panic runs: the panic is
    /// expected and handled, so the panic hook stays quiet.
    static EXPECTED: Cell<bool> = const { Cell::new(false) };
}

/// Makes the process's panic hook skip the panics this module expects
/// (once per process; every other panic is reported as before).
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPECTED.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// The `__setindex(t, k, v)` helper.
pub(super) fn callback<'gc>(ctx: Context<'gc>) -> Callback<'gc> {
    quiet_expected_panics();
    Callback::from_fn(&ctx, |ctx, _, mut stack| {
        let (target, key, value) = (stack.get(0), stack.get(1), stack.get(2));
        let Value::Table(table) = target else {
            return slow(ctx);
        };
        if let Some(meta) = table.metatable()
            && !meta.get(ctx, "__newindex").is_nil()
            && table.get_value(key).is_nil()
        {
            return slow(ctx);
        }
        EXPECTED.with(|e| e.set(true));
        let tried =
            std::panic::catch_unwind(AssertUnwindSafe(|| table.set_value(&ctx, key, value)));
        EXPECTED.with(|e| e.set(false));
        match tried {
            Ok(set) => {
                set?;
            }
            Err(_) => {
                compact(ctx, table);
                table.set_value(&ctx, key, value)?;
            }
        }
        stack.clear();
        Ok(CallbackReturn::Return)
    })
}

fn slow<'gc>(ctx: Context<'gc>) -> Result<CallbackReturn<'gc>, piccolo::Error<'gc>> {
    super::env::prelude_call(ctx, SLOW)
        .ok_or_else(|| super::args::error(ctx, format!("{SLOW} is missing")))
}

/// Rebuilds `table` with its live entries only (no dead keys left).
fn compact<'gc>(ctx: Context<'gc>, table: Table<'gc>) {
    let mut fresh = RawTable::new(&ctx);
    let mut key = Value::Nil;
    while let NextValue::Found { key: k, value } = table.next(key) {
        // Every key came out of a table: none is invalid.
        let _ = fresh.set(k, value);
        key = k;
    }
    table.into_inner().borrow_mut(&ctx).raw_table = fresh;
}
