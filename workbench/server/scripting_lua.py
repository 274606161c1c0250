"""The Lua side of scripting: one Lua 5.1 state per node (``lupa.lua51``, the Lua
Valkey embeds), its sandbox, the ``redis`` table, and the conversions between Lua
values and replies, rule for rule as Valkey converts them.

Theory of operation. Every script and function library is compiled into the same Lua
state with one shared global environment, ``env``. ``env`` itself stays empty: reading
a global goes through its ``__index`` to the *API table in force* -- the full one
while a script or function runs, a small one (``redis.register_function``,
``redis.log``, the library tables) while a function library's code is being loaded,
exactly as Valkey swaps them. Writing a global, or into ``redis``/``string``/... fails
with Valkey's "Attempt to modify a readonly table"; reading an unknown one fails with
"Script attempted to access nonexistent global variable". ``os``, ``io``, ``print``,
``dofile``, ``loadfile``, ``debug``, ``require`` are not there at all.

``redis.call`` and ``redis.pcall`` reach Python through one callback that returns
``(is_error, value)``; ``redis.call`` raises the error table itself so that the error
handler sees the user's line. Errors leave a script as Valkey 8 / Redis 7 write them:
``<error> script: <sha or function>, on @user_script:<line>.``

Limits: an instruction hook, every ``_HOOK_EVERY`` instructions, ends a script that runs
longer than ``busy-reply-threshold`` (the node's one event loop cannot serve SCRIPT KILL
from another client while a script runs, so the threshold kills it instead), or whose
state grew past ``LUA_MAX_MEMORY`` (a runaway script fails with an error instead of
eating the machine). It is a soft limit: lupa's hard ``max_memory`` is not used, because
a Lua state that hits it inside lupa's own calls aborts the whole process (seen with
lupa 2.8), and one huge allocation between two hook calls can overshoot it.
"""

from __future__ import annotations

import hashlib
import math
import time

from lupa import lua51

from ..resp import NULL_ARRAY, Double, Map, ReplyError, SetReply, Simple, Verbatim
from .scripting_libs import bit_library, cjson_library

LUA_MAX_MEMORY = 256 * 2**20
VERSION = "7.2.4"                 # what the node reports (commands_conn.VERSION)
VERSION_NUM = 0x070204
_HOOK_EVERY = 100_000             # instructions between two looks at the clock
_MAX_DEPTH = 1000                 # nesting of a reply table (a table may contain itself)
_INT_MIN = -2**63

_BOOT = r"""
local py = ...
local BOOT = '=workbench'
local real_pcall, real_xpcall, real_rawset = pcall, xpcall, rawset
local real_setmetatable, real_loadstring, real_load = setmetatable, loadstring, load
local real_setfenv, sethook, getinfo = setfenv, debug.sethook, debug.getinfo
local select, type, tostring, error, unpack = select, type, tostring, error, unpack

local api, load_api = {}, {}
local current = api
local readonly = real_setmetatable({}, {__mode = 'k'})
local real_of = real_setmetatable({}, {__mode = 'k'})   -- a read-only view -> what it shows
local KILLED = {err = 'ERR Script killed: it ran longer than busy-reply-threshold'}
local TOO_BIG = {err = 'ERR not enough memory: the script went past the Lua memory limit'}
local limit_kb = py.memory_limit_kb
local killed = false

local function refuse_write() error('Attempt to modify a readonly table', 2) end
local function protect(real)
  local view = real_setmetatable({}, {__index = real, __newindex = refuse_write,
                                       __metatable = false})
  readonly[view], real_of[view] = true, real
  return view
end
local function missing(name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 3)
end
local function strict(real)      -- read-only, and a missing field is an error (load API)
  local view = real_setmetatable({}, {
    __index = function(_, k) local v = real[k]; if v == nil then missing(k) end; return v end,
    __newindex = refuse_write, __metatable = false})
  readonly[view] = true
  return view
end

local env = real_setmetatable({}, {
  __index = function(_, k) local v = current[k]; if v == nil then missing(k) end; return v end,
  __newindex = refuse_write, __metatable = false})
readonly[env], real_of[env] = true, api

local function pack(...) return {n = select('#', ...), ...} end

-- Valkey's pcall hands a redis.call error over as its string, not the table
local function user_pcall(f, ...)
  local r = pack(real_pcall(f, ...))
  if killed then error(KILLED, 0) end
  if not r[1] then
    local raised = py.pending()           -- an error redis.call (Python) raised
    if raised ~= nil then r[2] = raised end
    if type(r[2]) == 'table' and type(r[2].err) == 'string' then r[2] = r[2].err end
  end
  return unpack(r, 1, r.n)
end
local function user_xpcall(f, handler)
  local r = pack(real_xpcall(f, function(e)
    local raised = py.pending()
    if raised ~= nil then e = {err = raised.err} end
    return handler(e)
  end))
  if killed then error(KILLED, 0) end
  return unpack(r, 1, r.n)
end
local function user_rawset(t, k, v)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return real_rawset(t, k, v)
end
local function user_setmetatable(t, mt)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return real_setmetatable(t, mt)
end
local function user_loadstring(s, name)
  local f, e = real_loadstring(s, name)
  if f then real_setfenv(f, env) end
  return f, e
end
local function user_load(fn, name)
  local f, e = real_load(fn, name)
  if f then real_setfenv(f, env) end
  return f, e
end

-- error tables: "-CODE message" or "message" (code ERR), as luaPushErrorBuff reads them
local function error_table(s)
  local code, msg = 'ERR', s
  if s:sub(1, 1) == '-' then
    local space = s:find(' ', 1, true)
    if space then code, msg = s:sub(2, space - 1), s:sub(space + 1) else msg = s:sub(2) end
  end
  msg = msg:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end

local redis = {
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
  REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num,
}
redis.call, redis.pcall = py.call, py.pcall          -- C functions: frames stay intact
redis.sha1hex, redis.log, redis.setresp = py.sha1hex, py.log, py.setresp
redis.set_repl, redis.acl_check_cmd = py.set_repl, py.acl_check_cmd
function redis.error_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  if s:sub(1, 1) ~= '-' then s = '-' .. s end
  return error_table(s)
end
function redis.status_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = s}
end
function redis.replicate_commands() return true end
function redis.breakpoint() return false end
function redis.debug() end

local libraries = {string = string, math = math, table = table, coroutine = coroutine,
                   bit = py.bit, cjson = py.cjson}
for name, lib in pairs(libraries) do
  local view = protect(lib)
  api[name] = view
  load_api[name] = view
end
for _, name in ipairs({'assert', 'collectgarbage', 'error', 'gcinfo', 'getmetatable', 'ipairs',
                       'next', 'pairs', 'rawequal', 'rawget', 'select', 'tonumber', 'tostring',
                       'type', 'unpack'}) do
  api[name] = _G[name]
end
api.pcall, api.xpcall, api.rawset = user_pcall, user_xpcall, user_rawset
api.pairs = function(t) return pairs(real_of[t] or t) end
api.next = function(t, k) return next(real_of[t] or t, k) end
api.setmetatable, api.loadstring, api.load = user_setmetatable, user_loadstring, user_load
api._G, api._VERSION, api.redis = env, _VERSION, protect(redis)

-- what register_function leaves behind while a library loads
local registering = nil
local FLAGS = {['no-writes'] = true, ['allow-oom'] = true, ['allow-stale'] = true,
               ['no-cluster'] = true, ['allow-cross-slot-keys'] = true}
local function reg_error(text) error({err = 'ERR ' .. text}, 0) end
local function register_function(...)
  local n, first, second = select('#', ...), ...
  local name, callback, flags, description
  if n == 1 and type(first) == 'table' then
    for k, v in pairs(first) do
      if k == 'function_name' then name = v
      elseif k == 'callback' then callback = v
      elseif k == 'flags' then flags = v
      elseif k == 'description' then description = v
      else reg_error('unknown argument given to redis.register_function') end
    end
    if name == nil then reg_error('redis.register_function must get a function name argument') end
    if callback == nil then reg_error('redis.register_function must get a callback argument') end
  elseif n == 2 then
    name, callback = first, second
  else
    reg_error('wrong number of arguments to redis.register_function')
  end
  if type(name) ~= 'string' then reg_error('function_name argument given to redis.register_function must be a string') end
  if type(callback) ~= 'function' then reg_error('second argument to redis.register_function must be a function') end
  if description ~= nil and type(description) ~= 'string' then
    reg_error('description argument given to redis.register_function must be a string')
  end
  local flag_list = {}
  if flags ~= nil then
    if type(flags) ~= 'table' then reg_error('flags argument to redis.register_function must be a table representing function flags') end
    for _, f in ipairs(flags) do
      if not FLAGS[f] then reg_error('unknown flag given') end
      flag_list[#flag_list + 1] = f
    end
  end
  if not name:match('^[%w_]+$') then
    reg_error('Library names can only contain letters, numbers, or underscores(_) and must be at least one character long')
  end
  for _, f in ipairs(registering) do
    if f.name == name then reg_error('Function already exists in the library') end
  end
  registering[#registering + 1] = {name = name, callback = callback, flags = flag_list,
                                   description = description}
end
load_api.redis = strict({register_function = register_function, log = redis.log,
                         LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
                         REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num,
                         setresp = redis.setresp})

-- the message handler: where the error happened (the first frame of user code)
local function handler(err)
  if err == KILLED or err == TOO_BIG then err = {err = err.err} end
  local raised = py.pending()
  if raised ~= nil then return raised end   -- it knows where it happened
  local level, info = 2, nil
  while true do
    info = getinfo(level, 'Sl')
    if info == nil or (info.what ~= 'C' and info.source ~= BOOT) then break end
    level = level + 1
  end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if info ~= nil then err.source, err.line = info.source, info.currentline end
  return err
end
local function hook()
  if killed or py.overtime() then killed = true; error(KILLED, 0) end
  if collectgarbage('count') > limit_kb then
    collectgarbage()
    if collectgarbage('count') > limit_kb then error(TOO_BIG, 0) end
  end
end

local M = {}
function M.where()            -- the user's frame that called into Python
  local level = 2
  while true do
    local info = getinfo(level, 'Sl')
    if info == nil then return nil end
    if info.what ~= 'C' and info.source ~= BOOT then return info.source, info.currentline end
    level = level + 1
  end
end
function M.compile(body, chunkname)
  local f, e = real_loadstring(body, chunkname)
  if f == nil then return nil, e end
  real_setfenv(f, env)
  return f, false
end
function M.run(fn, keys, argv, as_function)
  killed = false
  local call = fn
  if as_function then call = function() return fn(keys, argv) end
  else api.KEYS, api.ARGV = keys, argv end
  sethook(hook, '', py.hook_every)
  local ok, reply = real_xpcall(call, handler)
  sethook()
  return ok, reply
end
function M.load_library(fn)
  registering, current, killed = {}, load_api, false
  sethook(hook, '', py.hook_every)
  local ok, err = real_xpcall(fn, function(e)
    if e == KILLED or e == TOO_BIG then return e.err end
    local raised = py.pending()
    if raised ~= nil then e = raised end
    if type(e) == 'table' and type(e.err) == 'string' then return e.err end
    return 'ERR ' .. tostring(e)
  end)
  sethook()
  local found = registering
  registering, current = nil, api
  if not ok then return nil, err end
  return found, false
end
function M.collect() collectgarbage() collectgarbage() end
function M.memory_kb() return collectgarbage('count') end
return M
"""


class LuaEngine:
    """One node's Lua state. ``run`` executes a compiled script or function with a
    Python ``caller(argv) -> reply`` serving its ``redis.call``/``redis.pcall``."""

    def __init__(self, log, busy_ms):
        self.lua = lua51.LuaRuntime(encoding=None, register_eval=False, register_builtins=False,
                                    unpack_returned_tuples=True)
        self.log = log
        self.busy_ms = busy_ms                    # () -> the busy threshold in ms
        self.caller = None
        self.resp = 2
        self.deadline = 0.0
        self.table = self.lua.table_from
        self.pending_error = None             # what a Python-raised Lua error carries
        callbacks = self.table({
            b"call": self._call, b"pcall": self._pcall, b"pending": self._take_pending,
            b"sha1hex": self._sha1hex, b"log": self._log, b"setresp": self._setresp,
            b"set_repl": self._set_repl, b"acl_check_cmd": self._acl_check_cmd,
            b"overtime": self._overtime, b"version": VERSION.encode(),
            b"version_num": VERSION_NUM, b"hook_every": _HOOK_EVERY,
            b"memory_limit_kb": scripting_limit() // 1024,
            b"bit": bit_library(self.table), b"cjson": cjson_library(self.table)})
        self.api = self.lua.execute(_BOOT, callbacks, name=b"=workbench")

    # -- compiling and running -------------------------------------------------------
    def compile(self, body: bytes, chunkname: bytes):
        """A Lua function of ``body``, or the compiler's message (a ``str``)."""
        fn, error = self._guard(lambda: self.api.compile(body, chunkname))
        return fn if fn is not None else error.decode(errors="replace")

    def run(self, fn, keys: list, args: list, caller, name: str, as_function: bool = False):
        """Run ``fn``; its reply converted, or a ReplyError in Valkey's words."""
        self.caller, self.resp, self.pending_error = caller, 2, None
        self.deadline = time.monotonic() + self.busy_ms() / 1000
        try:
            ok, reply = self._guard(lambda: self.api.run(fn, self.table(keys), self.table(args),
                                                          as_function))
        finally:
            self.caller = None
        if ok:
            return self.from_lua(reply)
        return script_error(reply, name)

    def load_library(self, fn):
        """Run a library's code with the load-time API: ``[(name, callback, flags,
        description)]`` it registered, or an error message (``str``)."""
        self.deadline = time.monotonic() + self.busy_ms() / 1000
        found, error = self._guard(lambda: self.api.load_library(fn))
        if found is None:
            return error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        functions = []
        for i in range(1, len(found) + 1):
            f = found[i]
            flags = f[b"flags"]
            functions.append((f[b"name"], f[b"callback"],
                              [flags[j] for j in range(1, len(flags) + 1)], f[b"description"]))
        return functions

    def _guard(self, thunk):
        """Call into Lua; then give back what a big script left behind."""
        result = thunk()
        if self.api.memory_kb() > scripting_limit() // 2048:
            self.api.collect()
        return result

    # -- callbacks from Lua ----------------------------------------------------------
    # They are Python (C, to Lua) functions on purpose: a Lua wrapper called in tail
    # position (``return redis.call(..)``) would lose the user's frame, and with it the
    # line Valkey names in the error. An error is raised as a Python exception; the
    # error table it stands for waits in ``pending_error`` for the handler or pcall.
    def _raise(self, text: bytes):
        source, line = self.api.where()
        self.pending_error = self.table({b"err": text, b"source": source, b"line": line})
        raise ScriptCallError(text.decode("utf-8", "replace"))

    def _take_pending(self):
        pending, self.pending_error = self.pending_error, None
        return pending

    def _call(self, *args):
        reply = self.caller(args)
        if isinstance(reply, ReplyError):
            self._raise(reply.text.encode("utf-8", "replace"))
        return self.to_lua(reply)

    def _pcall(self, *args):
        return self.to_lua(self.caller(args))

    def _sha1hex(self, *args):
        if len(args) != 1:
            self._raise(b"ERR wrong number of arguments")
        value = args[0]
        text = value if type(value) is bytes else lua_argument(value) or str(value).encode()
        return hashlib.sha1(text).hexdigest().encode()

    def _log(self, *args):
        if len(args) < 2:
            self._raise(b"ERR redis.log() requires two arguments or more.")
        level = args[0]
        if type(level) not in (int, float):
            self._raise(b"ERR First argument must be a number")
        if not 0 <= level <= 3:
            self._raise(b"ERR Invalid debug level.")
        words = [a if type(a) is bytes else (lua_argument(a) or str(a).encode()) for a in args[1:]]
        self.log(f"<lua> {['debug', 'verbose', 'notice', 'warning'][int(level)]}: "
                 f"{b' '.join(words).decode(errors='replace')}")

    def _setresp(self, *args):
        if len(args) != 1:
            self._raise(b"ERR redis.setresp() requires one argument.")
        if args[0] not in (2, 3):
            self._raise(b"ERR RESP version must be 2 or 3.")
        self.resp = int(args[0])

    def _set_repl(self, *args):
        """Always effects replication here: every write is propagated, whatever it asks."""
        if len(args) != 1:
            self._raise(b"ERR redis.set_repl() requires one argument.")

    def _acl_check_cmd(self, *args):
        from ..store import lookup
        if not args or type(args[0]) is not bytes or lookup(args[0]) is None:
            self._raise(b"ERR Invalid command passed to redis.acl_check_cmd()")
        return True

    def _overtime(self):
        return time.monotonic() > self.deadline

    # -- conversions --------------------------------------------------------------------
    def to_lua(self, value):
        """A reply as the script sees it (RESP2 or RESP3 rules, per ``redis.setresp``)."""
        t = type(value)
        if t is bytes or t is int:
            return value
        resp3 = self.resp == 3
        if value is None or value is NULL_ARRAY:
            return None if resp3 else False
        if t is bool:
            return value if resp3 else int(value)
        if t is Simple:
            return self.table({b"ok": value.text.encode()})
        if isinstance(value, ReplyError):
            return self.table({b"err": value.text.encode("utf-8", "replace")})
        if t is Map or t is dict:
            if resp3:
                return self.table({b"map": self.table(
                    {self.to_lua(k): self.to_lua(v) for k, v in value.items()})})
            return self.table([self.to_lua(x) for kv in value.items() for x in kv])
        if t is SetReply and resp3:
            return self.table({b"set": self.table({self.to_lua(m): True for m in value})})
        if t is Double or t is float:
            if resp3:
                return self.table({b"double": float(value)})
            return _double_bytes(value)
        if t is Verbatim:
            return bytes(value)
        if t is str:
            return value.encode()
        if isinstance(value, (list, tuple)):
            return self.table([self.to_lua(v) for v in value])
        return None

    def from_lua(self, value, depth: int = 0):
        """A script's return value as a reply (Valkey's Lua-to-RESP rules)."""
        t = type(value)
        if t is bytes:
            return value
        if t is bool:
            return 1 if value else None
        if t is int:
            return value if _INT_MIN <= value < 2**63 else _INT_MIN
        if t is float:
            if math.isnan(value) or math.isinf(value) or not _INT_MIN <= value < 2**63:
                return _INT_MIN                  # what the C cast gives on x86-64
            return int(value)
        if value is None or lua51.lua_type(value) != "table":
            return None
        if depth > _MAX_DEPTH:
            return ReplyError("ERR reached lua stack limit")
        err = value[b"err"]
        if type(err) is bytes:
            return ReplyError(err.decode("utf-8", "replace"))
        ok = value[b"ok"]
        if type(ok) is bytes:
            return Simple(ok.decode("utf-8", "replace").translate(_NO_CRLF))
        double = value[b"double"]
        if type(double) in (int, float):
            return Double(double)
        big = value[b"big_number"]
        if type(big) is bytes:
            return big
        mapping = value[b"map"]
        if mapping is not None and lua51.lua_type(mapping) == "table":
            return Map({self.from_lua(k, depth + 1): self.from_lua(v, depth + 1)
                        for k, v in mapping.items()})
        members = value[b"set"]
        if members is not None and lua51.lua_type(members) == "table":
            return SetReply([self.from_lua(k, depth + 1) for k in members.keys()])
        items, i = [], 1
        while True:
            item = value[i]
            if item is None:
                return items
            items.append(self.from_lua(item, depth + 1))
            i += 1


_NO_CRLF = str.maketrans("\r\n", "  ")


def scripting_limit() -> int:
    return LUA_MAX_MEMORY


class ScriptCallError(Exception):
    """Raised through Lua by a ``redis.*`` function; the Lua error it carries waits in
    ``LuaEngine.pending_error``."""


def _double_bytes(value: float) -> bytes:
    if value != value:
        return b"nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return ("%.17g" % value).encode()


def script_error(raised, name: str) -> ReplyError:
    """The reply to a script that raised ``raised`` (its error table, from the handler):
    ``<error> script: <name>, on <source>:<line>.``"""
    if lua51.lua_type(raised) == "table":
        err, source, line = raised[b"err"], raised[b"source"], raised[b"line"]
    else:                                        # out of memory: no handler ran
        err, source, line = b"ERR " + bytes(raised or b"unknown error"), None, None
    text = err.decode("utf-8", "replace") if type(err) is bytes else "ERR unknown error"
    if source is not None and line is not None:
        return ReplyError(f"{text} script: {name}, on {source.decode(errors='replace')}:{int(line)}.")
    return ReplyError(f"{text} script: {name}.")


def lua_argument(value) -> bytes | None:
    """A ``redis.call`` argument as the command sees it: strings as they are, numbers as
    Lua prints them (``%.14g``); anything else is refused (``None``)."""
    t = type(value)
    if t is bytes:
        return value
    if t is int:
        return b"%d" % value
    if t is float:
        if value == int(value) and abs(value) < 1e15:
            return b"%d" % int(value)
        return (b"%.14g" % value)
    return None
