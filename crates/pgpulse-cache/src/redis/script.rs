//! The two Lua scripts pgpulse runs in Redis, and how they are called: by
//! `EVALSHA` (one round trip); when Redis does not know the script (first
//! use, after a restart) by `SCRIPT LOAD` + `EVAL` in one pipeline, which
//! also teaches us its SHA-1 (the `redis` crate's own `Script` would need
//! its `script` feature and a SHA-1 crate).
//!
//! Generations that do not exist yet (first use, or the hash was lost: a
//! Redis restart, `FLUSHALL`, eviction under an `allkeys-*` policy) start
//! at Redis's clock in microseconds, not at 0. A counter that reappears
//! thus restarts far above where it was (a counter is bumped by one per
//! invalidation; matching an old value would need exactly one bump per
//! microsecond since it was created), so entries stored against the lost
//! counter are never served again.

use std::sync::Mutex;

use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisResult, ServerErrorKind, Value};

/// Shared prelude: `fresh()` is the clock-based initial value.
macro_rules! prelude {
    () => {
        r#"
if redis.replicate_commands then redis.replicate_commands() end
local stamp
local function fresh()
  if not stamp then
    local t = redis.call('TIME')
    stamp = string.format('%.0f', t[1] * 1000000 + t[2])
  end
  return stamp
end
"#
    };
}

/// `KEYS`: entry, database generation hash, global epoch. `ARGV`: the hash
/// fields (`*` then `f:{family}`...). Returns `{entry or nil, {global
/// epoch, field values...}}`, creating missing generations.
pub(super) const LOOKUP: &str = concat!(
    prelude!(),
    r#"
local entry = redis.call('GET', KEYS[1])
local g = redis.call('GET', KEYS[3])
if not g then
  g = fresh()
  redis.call('SET', KEYS[3], g)
end
local gens = {g}
local h = redis.call('HMGET', KEYS[2], unpack(ARGV))
for i = 1, #ARGV do
  local v = h[i]
  if not v then
    v = fresh()
    redis.call('HSET', KEYS[2], ARGV[i], v)
  end
  gens[i + 1] = v
end
return {entry, gens}
"#
);

/// `KEYS`: database generation hash, sequence, global epoch. `ARGV`:
/// channel, origin prefix, message body, then the hash fields to bump
/// (none: bump the global epoch). Bumps, then `INCR`s the sequence, then
/// publishes `{origin} {seq} {body}`; returns the sequence number. One
/// script, so the generations are bumped before anyone hears of it and
/// messages leave in sequence order.
pub(super) const INVALIDATE: &str = concat!(
    prelude!(),
    r#"
if #ARGV <= 3 then
  if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], fresh()) end
  redis.call('INCR', KEYS[3])
else
  for i = 4, #ARGV do
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
      redis.call('HSET', KEYS[1], ARGV[i], fresh())
    end
    redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
  end
end
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. string.format('%.0f', seq) .. ' ' .. ARGV[3])
return seq
"#
);

/// `KEYS[1]` a coverage hash, `ARGV[1]` an LSN (decimal): numbers the
/// record (`n`) and stores the LSN with it, atomically; returns the number.
pub(super) const RECORD_COVERAGE: &str = concat!(
    "local n = redis.call('HINCRBY', KEYS[1], 'n', 1)\n",
    "redis.call('HSET', KEYS[1], 'lsn', ARGV[1])\n",
    "return n\n",
);

/// A script and its SHA-1 once Redis told us.
#[derive(Debug)]
pub(super) struct Lua {
    src: &'static str,
    sha: Mutex<Option<String>>,
}

impl Lua {
    pub const fn new(src: &'static str) -> Lua {
        Lua {
            src,
            sha: Mutex::new(None),
        }
    }

    /// Runs the script. The caller bounds the time.
    pub async fn run(
        &self,
        conn: &mut ConnectionManager,
        keys: &[&str],
        args: &[&[u8]],
    ) -> RedisResult<Value> {
        let sha = self.sha.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sha) = sha {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(&sha);
            push(&mut cmd, keys, args);
            match cmd.query_async::<Value>(conn).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {}
                other => return other,
            }
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SCRIPT").arg("LOAD").arg(self.src);
        let mut eval = redis::cmd("EVAL");
        eval.arg(self.src);
        push(&mut eval, keys, args);
        pipe.add_command(eval);
        let (sha, value): (String, Value) = pipe.query_async(conn).await?;
        *self.sha.lock().unwrap_or_else(|p| p.into_inner()) = Some(sha);
        Ok(value)
    }
}

fn push(cmd: &mut redis::Cmd, keys: &[&str], args: &[&[u8]]) {
    cmd.arg(keys.len());
    for k in keys {
        cmd.arg(*k);
    }
    for a in args {
        cmd.arg(*a);
    }
}
