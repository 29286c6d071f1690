"""Load driver: N simulated participants, C at a time, through a psiturk-async (or psiTurk 3) server.

Each participant is one browser with its own cookies and keep-alive connections, and does what the example
task does through psiturk.js:

    GET /ad -> GET /consent -> GET /exp (allocation; sets the participant-secret cookie)
    -> GET /sync/<id> (the client loads its state) -> instruction records -> save + POST /inexp together
    -> T trials of about B bytes each, a save every K trials (focus events now and then)
    -> questionnaire rows and answers -> final save -> GET /compute_bonus -> GET /complete
    -> GET /ad again -> GET /worker_submitted (the ad page inside MTurk's frame; not in debug mode)

Saves are either `full` (PUT /sync with the whole model, as psiTurk 3's Backbone client sends it, the reply's
keys merged back into the model) or `delta` (POST /sync/<id>/delta with only what is new, as client/psiturk.js
does by default). Afterwards every participant's record is read back with that participant's cookies and
compared with what the server acknowledged; any difference counts as lost data.

    python benchmarks/participants.py --base-url http://127.0.0.1:23401 -n 400 -c 50 -t 100 -k 10 -b 200

The server's CPU is read from /proc for the processes listening on the URL's port (or --server-pid) and
their children, before and after the load phase. Only loopback targets are accepted; every loop is bounded
and the load and read-back phases have wall-clock caps.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import resource
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servercpu import CpuMeter, backend_pids, postmaster_pid, server_pids, with_descendants  # noqa: E402

USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
INSTRUCTION_PAGES = ["instructions/instruct-1.html", "instructions/instruct-2.html",
                     "instructions/instruct-3.html", "instructions/instruct-ready.html"]
COLORS = ["red", "green", "blue"]
WORDS = ["RED", "GREEN", "BLUE", "SHIP", "MONKEY", "ZAMBONI"]
LOG_KEYS = ("data", "eventdata", "questiondata")
PAGE_VARIABLE = re.compile(r'var\s+(uniqueId|condition|counterbalance)\s*=\s*("[^"]*"|-?\d+|null)')
ERROR_PAGE_MARK = b'id="container-error"'
SAVE_ROUTES = ("sync_put", "sync_delta")
GAP_RETRIES = 3
FOCUS_EVERY = 25
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.error_examples: dict[str, str] = {}
        self.cells: Counter[str] = Counter()
        self.aborted: Counter[str] = Counter()
        self.bytes_up = 0
        self.bytes_up_saves = 0
        self.bytes_down = 0
        self.requests = 0

    def error(self, kind: str, example: str = "") -> None:
        self.errors[kind] += 1
        if example:
            self.error_examples.setdefault(kind, example[:300])


class Abort(Exception):
    """A step the rest of the flow depends on failed; the participant stops there."""


class Participant:
    """One simulated browser tab running the task, holding the client's model as psiturk.js would."""

    def __init__(self, index: int, options: argparse.Namespace, stats: Stats, rng: random.Random,
                 prefix: str) -> None:
        self.options, self.stats, self.rng = options, stats, rng
        debug = "debug" if options.mode == "debug" else ""
        self.worker, self.assignment, self.hit = f"{debug}{prefix}W{index}", f"{debug}{prefix}A{index}", \
            f"{debug}{prefix}HIT"
        self.uid = f"{self.worker}:{self.assignment}"
        self.model: dict[str, Any] = {}
        self.cookie_header = ""
        self.saves_sent = 0
        # full saves: the last body the server acknowledged; delta saves: what the server is known to hold.
        self.acked_body: bytes | None = None
        self.ack_data = self.ack_events = 0
        self.ack_questions: dict[str, bytes] = {}
        self.ack_attributes: dict[str, bytes] = {}
        self.finished = False
        self.had_error = False

    async def call(self, http: aiohttp.ClientSession, route: str, method: str, path: str, *,
                   query: dict[str, str] | None = None, body: bytes | None = None,
                   content_type: str | None = None) -> tuple[int | None, bytes]:
        """One request, timed and counted; (None, b"") when it never got an answer."""
        url = self.options.base_url + path + ("?" + urlencode(query) if query else "")
        headers = {"Content-Type": content_type} if content_type else None
        stats = self.stats
        if body is not None:
            stats.bytes_up += len(body)
            if route in SAVE_ROUTES:
                stats.bytes_up_saves += len(body)
        stats.requests += 1
        started = time.perf_counter()
        try:
            async with http.request(method, url, data=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError:
            stats.latency[route].append(time.perf_counter() - started)
            stats.error(f"timeout:{route}")
            self.had_error = True
            return None, b""
        except aiohttp.ClientError as exc:
            stats.latency[route].append(time.perf_counter() - started)
            stats.error(f"connection:{route}:{type(exc).__name__}", str(exc))
            self.had_error = True
            return None, b""
        stats.latency[route].append(time.perf_counter() - started)
        stats.bytes_down += len(raw)
        if status >= 400:
            stats.error(f"http{status}:{route}", raw.decode(errors="replace"))
            self.had_error = True
        elif ERROR_PAGE_MARK in raw:
            stats.error(f"error_page:{route}", raw.decode(errors="replace"))
            self.had_error = True
            status = 599
        return status, raw

    async def must(self, http: aiohttp.ClientSession, route: str, path: str, query: dict[str, str]) -> bytes:
        status, raw = await self.call(http, route, "GET", path, query=query)
        if status is None or status >= 400:
            raise Abort(route)
        return raw

    # ---- the client's model

    def add_event(self, eventtype: str, value: Any) -> None:
        events = self.model["eventdata"]
        now = int(time.time() * 1000)
        events.append({"eventtype": eventtype, "value": value, "timestamp": now,
                       "interval": now - events[-1]["timestamp"] if events else 0})

    def add_trial(self, trialdata: dict[str, Any]) -> None:
        model = self.model
        model["data"].append({"uniqueid": self.uid, "current_trial": model["currenttrial"],
                              "dateTime": int(time.time() * 1000), "trialdata": trialdata})
        model["currenttrial"] += 1

    def stroop_trial(self) -> dict[str, Any]:
        word, color, response = self.rng.choice(WORDS), self.rng.choice(COLORS), self.rng.choice(COLORS)
        trial = {"phase": "TEST", "word": word, "color": color,
                 "relation": "congruent" if word.lower() == color else
                 ("incongruent" if word.lower() in COLORS else "unrelated"),
                 "response": response, "hit": response == color, "rt": self.rng.randint(300, 1500)}
        # Pad the trial to about B bytes of JSON, as a task that records more per trial would.
        missing = self.options.trial_bytes - len(orjson.dumps(trial)) - len(',"pad":""')
        if missing > 0:
            trial["pad"] = "x" * missing
        return trial

    def start_model(self, stored: Any) -> None:
        """psiturk.js's TaskData defaults, with the state GET /sync returned laid over them."""
        self.model = {"condition": 0, "counterbalance": 0, "assignmentId": 0, "workerId": 0, "hitId": 0,
                      "currenttrial": 0, "bonus": 0, "data": [], "questiondata": {}, "eventdata": [],
                      "useragent": USER_AGENT, "mode": self.options.mode, "id": self.uid}
        if isinstance(stored, dict):
            for key, value in stored.items():
                if key in ("data", "eventdata") and not isinstance(value, list):
                    continue
                if key == "questiondata" and not isinstance(value, dict):
                    continue
                self.model[key] = value
        self.add_event("initialized", None)
        self.add_event("window_resize", [1280, 800])

    # ---- saving

    def pending_delta(self) -> dict[str, Any] | None:
        model = self.model
        data, events = model["data"][self.ack_data:], model["eventdata"][self.ack_events:]
        questions = {key: value for key, value in model["questiondata"].items()
                     if self.ack_questions.get(key) != orjson.dumps(value)}
        attributes = {key: value for key, value in model.items()
                      if key not in LOG_KEYS and self.ack_attributes.get(key) != orjson.dumps(value)}
        if not (data or events or questions or attributes):
            return None
        return {"data_from": self.ack_data, "data": data, "eventdata_from": self.ack_events, "eventdata": events,
                "questiondata": questions, "attributes": attributes}

    async def save(self, http: aiohttp.ClientSession) -> None:
        self.saves_sent += 1
        if self.options.saves == "full":
            body = orjson.dumps(self.model)
            status, raw = await self.call(http, "sync_put", "PUT", f"/sync/{self.uid}", body=body,
                                          content_type=JSON)
            if status is not None and status < 400:
                self.acked_body = body
                # Backbone sets the reply's keys on the model, so they ride along in every later save.
                reply = orjson.loads(raw)
                self.model.update({key: value for key, value in reply.items() if key not in LOG_KEYS})
            return
        for _attempt in range(GAP_RETRIES + 1):
            delta = self.pending_delta()
            if delta is None:
                return
            status, raw = await self.call(http, "sync_delta", "POST", f"/sync/{self.uid}/delta",
                                          body=orjson.dumps(delta), content_type=JSON)
            if status is not None and status < 400:
                self.ack_data = delta["data_from"] + len(delta["data"])
                self.ack_events = delta["eventdata_from"] + len(delta["eventdata"])
                self.ack_questions.update({k: orjson.dumps(v) for k, v in delta["questiondata"].items()})
                self.ack_attributes.update({k: orjson.dumps(v) for k, v in delta["attributes"].items()})
                return
            if status != 409:
                return
            reply = orjson.loads(raw)
            if reply.get("error") != "gap":
                return
            # The server holds less than we believed: resend from its lengths, every field again.
            self.ack_data = min(self.ack_data, int(reply.get("data_length") or 0))
            self.ack_events = min(self.ack_events, int(reply.get("eventdata_length") or 0))
            self.ack_questions, self.ack_attributes = {}, {}

    def acknowledged(self) -> dict[str, Any] | None:
        """What the server said it holds for this participant (None if it never acknowledged a save)."""
        if self.options.saves == "full":
            return orjson.loads(self.acked_body) if self.acked_body is not None else None
        if not self.ack_attributes:
            return None
        record = {key: orjson.loads(value) for key, value in self.ack_attributes.items()}
        record["data"] = self.model["data"][:self.ack_data]
        record["eventdata"] = self.model["eventdata"][:self.ack_events]
        record["questiondata"] = {key: orjson.loads(value) for key, value in self.ack_questions.items()}
        return record

    # ---- the flow

    async def run(self, http: aiohttp.ClientSession, jar: aiohttp.CookieJar) -> None:
        options = self.options
        ids = {"assignmentId": self.assignment, "hitId": self.hit, "workerId": self.worker, "mode": options.mode}
        await self.must(http, "ad", "/ad", ids)
        await self.must(http, "consent", "/consent", ids)
        page = (await self.must(http, "exp", "/exp", ids)).decode(errors="replace")
        found = {name: orjson.loads(value) for name, value in PAGE_VARIABLE.findall(page)}
        if found.get("uniqueId") != self.uid:
            self.stats.error("exp:unexpected_uniqueId", str(found.get("uniqueId")))
        self.stats.cells[f"{found.get('condition')}/{found.get('counterbalance')}"] += 1
        cookies = {cookie.key: cookie.value for cookie in jar}
        if not any(name.startswith("psiturk_secret_") for name in cookies):
            self.stats.error("exp:no_secret_cookie")
        self.cookie_header = "; ".join(f"{name}={value}" for name, value in cookies.items())

        stored = orjson.loads(await self.must(http, "sync_get", f"/sync/{self.uid}", {}))
        self.start_model(stored)
        self.add_trial({"phase": "INSTRUCTIONS", "templates": INSTRUCTION_PAGES, "action": "Begin"})
        for index, template in enumerate(INSTRUCTION_PAGES):
            last = index == len(INSTRUCTION_PAGES) - 1
            self.add_trial({"phase": "INSTRUCTIONS", "template": template, "indexOf": index,
                            "action": "FinishInstructions" if last else "NextPage",
                            "viewTime": self.rng.randint(2000, 9000)})
        # startTask(): a save and POST /inexp go out together.
        await asyncio.gather(
            self.save(http),
            self.call(http, "inexp", "POST", "/inexp", body=urlencode({"uniqueId": self.uid}).encode(),
                      content_type=FORM))

        for trial in range(options.trials):
            self.add_trial(self.stroop_trial())
            if (trial + 1) % FOCUS_EVERY == 0:
                self.add_event("focus", "off")
                self.add_event("focus", "on")
            if options.think_ms:
                await asyncio.sleep(options.think_ms / 1000)
            if (trial + 1) % options.save_every == 0:
                await self.save(http)

        self.add_trial({"phase": "postquestionnaire", "status": "begin"})
        for field, value in (("engagement", "5"), ("difficulty", "3"), ("comments", "benchmark participant")):
            self.model["questiondata"][field] = value
        self.add_trial({"phase": "postquestionnaire", "status": "submit"})
        await self.save(http)

        if options.bonus_route:
            await self.call(http, "compute_bonus", "GET", "/" + options.bonus_route, query={"uniqueId": self.uid})
        await self.call(http, "complete", "GET", "/complete", query={"uniqueId": self.uid, "mode": options.mode})
        if options.mode != "debug":
            # closepopup.html reloads the ad in MTurk's frame: the thanks page, which calls /worker_submitted.
            await self.call(http, "ad_return", "GET", "/ad", query=ids)
            await self.call(http, "worker_submitted", "GET", "/worker_submitted", query={"uniqueId": self.uid})
        self.finished = True


async def run_flows(options: argparse.Namespace, stats: Stats, participants: list[Participant]) -> int:
    """Run every participant, C at a time; returns how many were cut off by the time cap."""
    gate = asyncio.Semaphore(options.concurrency)
    timeout = aiohttp.ClientTimeout(total=options.timeout_s)

    async def one(participant: Participant) -> None:
        async with gate:
            # A browser on http://127.0.0.1: accept cookies from an IP host (aiohttp refuses them by default).
            jar = aiohttp.CookieJar(unsafe=True)
            headers = {"User-Agent": USER_AGENT, "Accept-Language": "en-US,en;q=0.9"}
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2), cookie_jar=jar,
                                             timeout=timeout, headers=headers) as http:
                try:
                    await participant.run(http, jar)
                except Abort as stop:
                    # The failed request is counted among the errors already; this says where flows stopped.
                    stats.aborted[stop.args[0]] += 1
                    participant.had_error = True
                except Exception as exc:  # noqa: BLE001 - a driver bug must show up in the counts, not hang
                    stats.error(f"driver:{type(exc).__name__}", repr(exc))
                    participant.had_error = True

    tasks = [asyncio.create_task(one(participant)) for participant in participants]
    _done, pending = await asyncio.wait(tasks, timeout=options.max_run_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=10)
    return len(pending)


def rows_missing(expected: list[Any], stored: Any) -> int:
    if not isinstance(stored, list):
        return len(expected)
    return sum(1 for index, row in enumerate(expected) if index >= len(stored) or stored[index] != row)


async def read_back(options: argparse.Namespace, stats: Stats, participants: list[Participant]) -> dict[str, Any]:
    """GET /sync/<id> for every participant, as that participant, and compare with what was acknowledged."""
    result: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    gate = asyncio.Semaphore(min(options.concurrency, 32))
    timeout = aiohttp.ClientTimeout(total=options.timeout_s)

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout,
                                     headers={"User-Agent": USER_AGENT}) as http:
        async def one(participant: Participant) -> None:
            expected = participant.acknowledged()
            if expected is None:
                result["never_acknowledged"] += 1
                return
            async with gate:
                started = time.perf_counter()
                try:
                    async with http.get(f"{options.base_url}/sync/{participant.uid}",
                                        headers={"Cookie": participant.cookie_header}) as response:
                        raw, status = await response.read(), response.status
                except (TimeoutError, aiohttp.ClientError) as exc:
                    result[f"read_failed:{type(exc).__name__}"] += 1
                    result["lost_records"] += 1
                    return
                stats.latency["read_back"].append(time.perf_counter() - started)
            result["checked"] += 1
            stored = orjson.loads(raw) if status == 200 else None
            if stored == expected:
                result["intact"] += 1
                return
            result["lost_records"] += 1
            result["lost_trials"] += rows_missing(expected["data"], (stored or {}).get("data"))
            result["lost_events"] += rows_missing(expected["eventdata"], (stored or {}).get("eventdata"))
            if len(examples) < 3:
                differing = sorted(key for key in set(expected) | set(stored or {})
                                   if (stored or {}).get(key) != expected.get(key))
                examples.append({"uid": participant.uid, "status": status, "differing_keys": differing})

        tasks = [asyncio.create_task(one(participant)) for participant in participants]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=options.verify_timeout_s)
            for task in pending:
                task.cancel()
            result["not_read_in_time"] += len(pending)
    summary = {key: result.get(key, 0) for key in
               ("checked", "intact", "lost_records", "lost_trials", "lost_events", "never_acknowledged",
                "not_read_in_time")}
    summary.update({key: value for key, value in result.items() if key.startswith("read_failed")})
    if examples:
        summary["examples"] = examples
    return summary


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 100))))
    return round(ordered[rank - 1] * 1000, 2)


def summarise(options: argparse.Namespace, stats: Stats, participants: list[Participant], wall: float,
              cut_off: int, server: dict[str, Any] | None, database: dict[str, Any] | None,
              driver_cpu: float, readback: dict[str, Any] | None, preloaded: dict[str, Any] | None,
              load: tuple[float, float, float]) -> dict[str, Any]:
    finished = sum(1 for participant in participants if participant.finished)
    saves = sum(len(stats.latency.get(route, [])) for route in SAVE_ROUTES)
    routes = {route: {"n": len(values), "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95),
                      "p99_ms": percentile(values, 99), "max_ms": round(max(values) * 1000, 2)}
              for route, values in sorted(stats.latency.items())}
    save_values = [value for route in SAVE_ROUTES for value in stats.latency.get(route, [])]
    if save_values:
        routes["save (all)"] = {"n": len(save_values), "p50_ms": percentile(save_values, 50),
                                "p95_ms": percentile(save_values, 95), "p99_ms": percentile(save_values, 99),
                                "max_ms": round(max(save_values) * 1000, 2)}
    cells = list(stats.cells.values())

    def per_flow(cpu_s: float) -> float | None:
        return round(cpu_s * 1000 / finished, 2) if finished else None

    summary: dict[str, Any] = {
        "label": options.label,
        "base_url": options.base_url,
        "params": {"participants": options.participants, "concurrency": options.concurrency,
                   "trials": options.trials, "save_every": options.save_every, "trial_bytes": options.trial_bytes,
                   "mode": options.mode, "saves": options.saves, "bonus_route": options.bonus_route,
                   "think_ms": options.think_ms, "preload": options.preload},
        "load_average_before": list(load),
        "preloaded": preloaded,
        "wall_s": round(wall, 2),
        "participants_finished": finished,
        "participants_clean": sum(1 for p in participants if p.finished and not p.had_error),
        "participants_cut_off_by_time_cap": cut_off,
        "flows_per_s": round(finished / wall, 2) if wall else None,
        "saves": saves,
        "saves_per_s": round(saves / wall, 1) if wall else None,
        "requests": stats.requests,
        "requests_per_s": round(stats.requests / wall, 1) if wall else None,
        "errors_total": sum(stats.errors.values()),
        "errors": dict(sorted(stats.errors.items())),
        "flows_aborted_at": dict(stats.aborted),
        "error_examples": stats.error_examples,
        "bytes_uploaded": stats.bytes_up,
        "bytes_uploaded_in_saves": stats.bytes_up_saves,
        "bytes_uploaded_per_flow": round(stats.bytes_up / finished) if finished else None,
        "bytes_downloaded": stats.bytes_down,
        "latency_ms": routes,
        "condition_cells": dict(sorted(stats.cells.items())),
        "condition_spread": (max(cells) - min(cells)) if cells else None,
        "driver_cpu_s": round(driver_cpu, 2),
        "read_back": readback,
    }
    if server is not None:
        summary["server_cpu"] = {**server, "ms_per_flow": per_flow(server["cpu_s"])}
    if database is not None:
        summary["database_cpu"] = {**database, "ms_per_flow": per_flow(database["cpu_s"])}
    return summary


def report(summary: dict[str, Any]) -> str:
    lines = [f"{summary['label'] or 'run'}: {summary['params']}",
             f"load average before: {summary['load_average_before']}",
             f"finished {summary['participants_finished']}/{summary['params']['participants']} in "
             f"{summary['wall_s']} s: {summary['flows_per_s']} flows/s, {summary['saves_per_s']} saves/s, "
             f"{summary['requests_per_s']} requests/s"]
    lines.append(f"{'route':<18}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for route, row in summary["latency_ms"].items():
        lines.append(f"{route:<18}{row['n']:>7}{row['p50_ms']:>10}{row['p95_ms']:>10}{row['p99_ms']:>10}"
                     f"{row['max_ms']:>10}")
    lines.append(f"errors: {summary['errors_total']} {summary['errors'] or ''}"
                 + (f" flows aborted at {summary['flows_aborted_at']}" if summary["flows_aborted_at"] else ""))
    readback = summary["read_back"]
    if readback is not None:
        lines.append(f"read back: {readback['checked']} checked, {readback['intact']} intact, "
                     f"lost records {readback['lost_records']} (trials {readback['lost_trials']}, events "
                     f"{readback['lost_events']}), never acknowledged {readback['never_acknowledged']}")
    lines.append(f"condition cells: {summary['condition_cells']} (spread {summary['condition_spread']})")
    lines.append(f"bytes uploaded: {summary['bytes_uploaded']} ({summary['bytes_uploaded_in_saves']} in saves, "
                 f"{summary['bytes_uploaded_per_flow']} per flow)")
    for part in ("server_cpu", "database_cpu"):
        if part in summary:
            cpu = summary[part]
            exited = f", {cpu['exited_pids']} exited during the run" if cpu["exited_pids"] else ""
            lines.append(f"{part.replace('_', ' ')}: {cpu['cpu_s']} s, {cpu['ms_per_flow']} ms per flow "
                         f"({len(cpu['pids'])} processes{exited})")
    lines.append(f"driver cpu: {summary['driver_cpu_s']} s")
    return "\n".join(lines)


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:22362")
    parser.add_argument("-n", "--participants", type=int, default=400)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("-t", "--trials", type=int, default=100)
    parser.add_argument("-k", "--save-every", type=int, default=10, help="a save after every K trials")
    parser.add_argument("-b", "--trial-bytes", type=int, default=200, help="JSON size of each trial's trialdata")
    parser.add_argument("--mode", default="live", choices=["live", "sandbox", "debug"])
    parser.add_argument("--saves", default="full", choices=["full", "delta"],
                        help="full: PUT /sync with the whole model (psiTurk 3); delta: POST /sync/<id>/delta")
    parser.add_argument("--bonus-route", default="compute_bonus", help="the example's custom route; '' to skip")
    parser.add_argument("--think-ms", type=float, default=0.0, help="pause per trial (0: as fast as possible)")
    parser.add_argument("--preload", type=int, default=0,
                        help="first insert this many finished participants through SQL (needs --project)")
    parser.add_argument("--project", default="", help="the server's project folder (for --preload, and to "
                                                      "find the PostgreSQL database whose backends to measure)")
    parser.add_argument("--server-pid", default="", help="comma-separated server pids (default: by port)")
    parser.add_argument("--pg-database", default="", help="measure PostgreSQL backends of this database too")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="per-request timeout")
    parser.add_argument("--max-run-s", type=float, default=900.0, help="cap on the load phase")
    parser.add_argument("--verify-timeout-s", type=float, default=300.0, help="cap on the read-back phase")
    parser.add_argument("--no-read-back", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", default="", help="write the JSON summary here too")
    options = parser.parse_args(argv)
    options.base_url = options.base_url.rstrip("/")
    host = urlparse(options.base_url).hostname or ""
    if not (host == "localhost" or host == "::1" or host.startswith("127.")):
        parser.error("only loopback targets (127.0.0.0/8, ::1, localhost)")
    if not 1 <= options.participants <= 100_000 or not 0 <= options.trials <= 100_000:
        parser.error("-n must be 1..100000 and -t 0..100000")
    if options.concurrency < 1 or options.save_every < 1 or options.trial_bytes < 0:
        parser.error("-c and -k must be at least 1, -b at least 0")
    if options.preload and not options.project:
        parser.error("--preload needs --project (the server's project folder, for its database settings)")
    return options


def database_name(options: argparse.Namespace) -> str:
    if options.pg_database or not options.project:
        return options.pg_database
    from psiturk_async.settings import load_settings

    url = load_settings(options.project).database_url
    return urlparse(url).path.lstrip("/") if url.startswith("postgres") else ""


async def main_async(options: argparse.Namespace) -> dict[str, Any]:
    preloaded = None
    if options.preload:
        from preload import preload

        preloaded = await preload(options.project, count=options.preload, mode=options.mode, seed=options.seed)
    pids = [int(pid) for pid in options.server_pid.split(",") if pid.strip()]
    port = urlparse(options.base_url).port or 80
    server = CpuMeter(lambda: with_descendants(pids) if pids else server_pids(port))
    pg_name = database_name(options)
    postmaster = postmaster_pid() if pg_name else None
    # Backends come and go with the server's pool, so they are sampled through the run.
    database = CpuMeter(lambda: backend_pids(pg_name, postmaster), sample_every=0.1) if pg_name else None
    if not server.snapshot():
        print(f"warning: no server process found for port {port}; server CPU not measured", file=sys.stderr)
        server = None  # type: ignore[assignment]

    prefix = options.label.replace(" ", "")[:8] + uuid.uuid4().hex[:8]
    seeds = random.Random(options.seed)
    stats = Stats()
    participants = [Participant(index, options, stats, random.Random(seeds.random()), prefix)
                    for index in range(options.participants)]
    load = _load_average()
    for meter in (server, database):
        if meter is not None:
            meter.start()
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    cut_off = await run_flows(options, stats, participants)
    wall = time.perf_counter() - started
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = server.stop() if server is not None else None
    database_cpu = database.stop() if database is not None else None
    driver_cpu = (own_after.ru_utime - own_before.ru_utime) + (own_after.ru_stime - own_before.ru_stime)
    readback = None if options.no_read_back else await read_back(options, stats, participants)
    return summarise(options, stats, participants, wall, cut_off, server_cpu, database_cpu, driver_cpu,
                     readback, preloaded, load)


def _load_average() -> tuple[float, float, float]:
    with open("/proc/loadavg") as file:
        one, five, fifteen = file.read().split()[:3]
    return float(one), float(five), float(fifteen)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    summary = asyncio.run(main_async(options))
    print(report(summary))
    if options.out:
        Path(options.out).parent.mkdir(parents=True, exist_ok=True)
        Path(options.out).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    clean = not summary["errors_total"] and not (summary["read_back"] or {}).get("lost_records")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
