"""Workloads: concurrent real clients that record every operation in a History.

Each client is a thread with its own ``redis-py`` connection to whatever node is the
primary *now*, as an application behind a discovery service would: after a
``READONLY`` reply or a lost connection it asks the cluster again and records that it
moved (the op's ``node``). Every operation is recorded as Jepsen does: ``invoke`` before
sending, then ``ok`` (the server said it happened), ``fail`` (the server said it did
not) or ``info`` (nobody knows: a timeout, a dropped connection, a reply replaced by an
error after the command ran). After an ``info`` the client continues under a fresh
process id, because its old operation may still take effect.

Workloads:

* ``register``     -- ``SET``/``GET`` of unique values on a few keys;
* ``cas-register`` -- reads, writes and compare-and-sets on a few keys (Knossos'
  ``cas-register``). A cas is ``WATCH k``, ``GET k``, and if the value is the expected
  one ``MULTI``/``SET k new``/``EXEC``; a different value, or an ``EXEC`` that the server
  aborted because ``k`` changed after ``WATCH``, is a definite ``fail``;
* ``set``          -- ``SADD`` of unique elements to a few sets (Jepsen's 2013 Redis test);
* ``counter``      -- ``INCR`` of a few counters.

A set read is recorded as a sorted tuple of its members whose strings are the very ones
the adds recorded, and a read equal to the key's previous one shares its tuple: a run's
reads see the whole set again and again, and frozensets of fresh strings made a 20 s
shootout grow past 2 GB.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .model import ADD, CAS, FINAL_READ, INCR, READ, WRITE, History

# Errors that prove the command was refused before it ran: a definite failure.
DEFINITE_ERRORS = ("READONLY", "NOREPLICAS", "WRONGTYPE", "EXECABORT", "NOAUTH", "LOADING",
                   "MASTERDOWN", "CLUSTERDOWN", "NOTLEADER", "ERR")
WORKLOADS = ("register", "cas-register", "set", "counter")
REGISTERS = ("register", "cas-register")


class CasRefused(Exception):
    """The server showed that a cas did not happen: the register held another value, or
    ``EXEC`` was aborted because the key changed after ``WATCH``. ``current`` is the value
    the client saw, if any."""

    def __init__(self, message: str, current=None):
        super().__init__(message)
        self.current = current


class Recorder:
    """A History shared by client threads; appends are serialized."""

    def __init__(self):
        self.history = History()
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._elements: dict[str, str] = {}         # one string object per set element
        self._last_members: dict[str, tuple] = {}   # the last set read of each key

    def new_process(self) -> int:
        return next(self._ids)

    def invoke(self, process, f, key, value=None, node=None):
        with self._lock:
            if f == ADD:
                value = self._elements.setdefault(value, value)
            self.history.invoke(process, f, key, value, time=time.monotonic(), node=node)

    def members(self, key: str, members) -> tuple:
        """A set read as the checkers need it: a sorted tuple of shared element strings."""
        ordered = sorted(members)
        with self._lock:
            read = tuple(map(self._elements.setdefault, ordered, ordered))
            last = self._last_members.get(key)
            if last == read:
                return last
            self._last_members[key] = read
            return read

    def complete(self, process, outcome, value=None, error=None, node=None):
        with self._lock:
            now = time.monotonic()
            if outcome == "ok":
                self.history.ok(process, value, time=now, node=node)
            elif outcome == "fail":
                self.history.fail(process, time=now, error=error, node=node)
            else:
                self.history.info(process, time=now, error=error, node=node)


def classify(error: Exception) -> str:
    """``fail`` when the server definitely did not run the command, else ``info``."""
    if isinstance(error, redis.ResponseError):
        text = str(error)
        if "outcome unknown" in text:
            return "info"  # sync: NOREPLICAS for a held write that timed out after it ran
        prefix = text.split(" ", 1)[0]
        # redis-py strips the prefix of the errors it has a class for
        if (isinstance(error, (redis.ReadOnlyError, redis.exceptions.ClusterDownError))
                or prefix in DEFINITE_ERRORS):
            return "fail"
    return "info"          # timeouts, dropped connections, MISCONF for a held write...


class Client(threading.Thread):
    """One application client: a loop of random operations until ``stop`` is set."""

    def __init__(self, cluster, recorder: Recorder, workload: str, keys: list[str],
                 rng: random.Random, stop: threading.Event, values: itertools.count,
                 timeout: float = 1.0, wait_replicas: int = 0):
        super().__init__(daemon=True)
        self.cluster, self.recorder, self.workload = cluster, recorder, workload
        self.keys, self.rng, self.stop, self.values = keys, rng, stop, values
        self.timeout = timeout
        self.wait_replicas = wait_replicas     # confirm each update with WAIT n before "ok"
        self.process = recorder.new_process()
        self.conn: redis.Redis | None = None
        self.node: str | None = None
        self.moves = 0
        self.last_seen: dict[str, str | None] = {}   # cas-register: what to expect per key

    def _connect(self) -> bool:
        try:
            primary = self.cluster.current_primary()
        except Exception:
            primary = None
        if primary is None:
            return False
        if primary.name != self.node:
            self.moves += self.node is not None
            self.node = primary.name
        self._open(primary.port)
        return True

    def _open(self, port: int) -> None:
        """A connection that fails fast and never retries: every attempt is one history op."""
        self.conn = redis.Redis(host="127.0.0.1", port=port, socket_timeout=self.timeout,
                                password=getattr(self.cluster, "password", None),
                                socket_connect_timeout=self.timeout, retry=Retry(NoBackoff(), 0),
                                decode_responses=True, protocol=2)

    def run(self) -> None:
        while not self.stop.is_set():
            if self.conn is None and not self._connect():
                self.stop.wait(0.05)            # no primary right now: ask again shortly
                continue
            self._one_operation()

    def _one_operation(self) -> None:
        key = self.rng.choice(self.keys)
        f, value = self._choose(key)
        self.recorder.invoke(self.process, f, key, value, node=self.node)
        try:
            result = self._send(f, key, value)
        except CasRefused as refused:
            self.last_seen[key] = refused.current
            self.recorder.complete(self.process, "fail", error=str(refused), node=self.node)
            return
        except redis.RedisError as err:
            outcome = classify(err)
            self.recorder.complete(self.process, outcome, error=str(err), node=self.node)
            if outcome == "info":
                self.process = self.recorder.new_process()
            self.conn = None                     # rediscover the primary
            return
        if self.workload == "cas-register":
            self.last_seen[key] = result[1] if f == CAS else result
        self.recorder.complete(self.process, "ok", result, node=self.node)

    def _choose(self, key: str):
        if self.workload == "register":
            if self.rng.random() < 0.5:
                return READ, None
            return WRITE, f"v{next(self.values)}"
        if self.workload == "cas-register":
            r = self.rng.random()
            if r < 0.4:
                return READ, None
            if r < 0.6:
                return WRITE, f"v{next(self.values)}"
            return CAS, (self.last_seen.get(key), f"v{next(self.values)}")
        if self.workload == "set":
            if self.rng.random() < 0.1:
                return READ, None
            return ADD, f"e{next(self.values)}"
        return (READ, None) if self.rng.random() < 0.2 else (INCR, 1)

    def _send(self, f, key, value):
        result = self._send_command(f, key, value)
        if self.wait_replicas and f not in (READ, FINAL_READ):
            acked = self.conn.wait(self.wait_replicas, int(self.timeout * 1000))
            if acked < self.wait_replicas:
                # it ran on the primary but was not confirmed: its fate is unknown
                raise redis.TimeoutError(f"WAIT {self.wait_replicas}: only {acked} acked")
        return result

    def _send_command(self, f, key, value):
        """Run one operation: a read returns what it saw, an update the value it sent."""
        if f == READ:
            return _read(self.conn, self.recorder, self.workload, key)
        if f == CAS:
            return self._compare_and_set(key, *value)
        {WRITE: self.conn.set, ADD: self.conn.sadd, INCR: self.conn.incr}[f](key, value)
        return value

    def _compare_and_set(self, key, expected, new):
        """WATCH, GET, compare; then MULTI, SET, EXEC, which the server aborts (a nil
        reply, redis-py's WatchError) if another client changed the key since WATCH."""
        with self.conn.pipeline(transaction=True) as pipe:
            pipe.watch(key)
            current = pipe.get(key)
            if current != expected:
                raise CasRefused(f"the register holds {current!r}, not {expected!r}", current)
            pipe.multi()
            pipe.set(key, new)
            try:
                pipe.execute()
            except redis.WatchError as err:
                if err.__context__ is not None:   # redis-py's word for a lost connection
                    raise err.__context__ from None
                raise CasRefused("EXEC aborted: the key changed after WATCH") from None
        return expected, new


class NodeReader(Client):
    """A client that only reads, always from one node, whatever its role -- as an
    application bound to the node it found first would. It sees what a node that
    believes it leads (or a follower serving READONLY reads) answers; refused reads are
    definite failures and cost nothing."""

    def __init__(self, node_name: str, *args, **kwargs):
        super().__init__(*args, timeout=0.25, **kwargs)   # a held read: give up, read again
        self.home = node_name

    def _connect(self) -> bool:
        try:
            node = self.cluster.node(self.home)
        except KeyError:
            return False
        if not node.alive:
            return False
        self.node = node.name
        self._open(node.port)
        return True

    def _choose(self, key: str):
        return READ, None


def _read(conn, recorder: Recorder, workload: str, key: str):
    """A read of ``key`` as the history records it: a register's value (None: empty), a
    set's members (see :meth:`Recorder.members`), a counter's value (0: missing)."""
    if workload in REGISTERS:
        return conn.get(key)
    if workload == "set":
        return recorder.members(key, conn.smembers(key))
    return int(conn.get(key) or 0)


def final_reads(cluster, recorder: Recorder, workload: str, keys: list[str],
                timeout: float = 10.0) -> dict:
    """After healing: read every key from the primary the cluster settled on."""
    primary = cluster.primary(timeout=timeout)
    conn = cluster.client(primary, protocol=2)
    final = {}
    process = recorder.new_process()
    for key in keys:
        recorder.invoke(process, FINAL_READ, key, node=primary.name)
        read = _read(conn, recorder, workload, key)
        recorder.complete(process, "ok", read, node=primary.name)
        final[key] = frozenset(read) if workload == "set" else read
    return final


def run_clients(cluster, workload: str, *, duration: float, clients: int = 4, keys: int = 3,
                seed: int = 0, during=None, wait_replicas: int = 0, node_readers: int = 0):
    """Run ``clients`` threads for ``duration`` seconds; ``during(elapsed)`` is called
    every 50 ms from this thread (the nemesis hooks in there). ``node_readers`` more
    threads per node only read, each from its own node (:class:`NodeReader`).
    Returns the Recorder."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; accepted: {', '.join(WORKLOADS)}")
    rng = random.Random(seed)
    recorder = Recorder()
    # a fresh run of keys: a second run on the same cluster must not read the first's values
    run_id = os.urandom(3).hex()
    key_names = [f"{workload}:{run_id}:{i}" for i in range(keys)]
    stop = threading.Event()
    values = itertools.count()
    threads = [Client(cluster, recorder, workload, key_names, random.Random(rng.random()), stop,
                      values, wait_replicas=wait_replicas) for _ in range(clients)]
    threads += [NodeReader(name, cluster, recorder, workload, key_names,
                           random.Random(rng.random()), stop, values)
                for name in list(cluster.names) for _ in range(node_readers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        while (elapsed := time.monotonic() - started) < duration:
            if during is not None:
                during(elapsed)
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    recorder.keys = key_names
    recorder.moves = sum(t.moves for t in threads)
    return recorder
