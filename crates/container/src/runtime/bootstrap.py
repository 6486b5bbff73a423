"""ContainerPub bootstrap for Python functions (SPEC section 4, runtime "python").

The platform supplies this file; the function supplies main.py with handler(request).

One-shot mode (no arguments): the working directory is the invocation directory. It holds
request.json {method, path, headers, query, body, raw} and optionally .env.config and
.env.secret (KEY=VALUE lines, loaded into os.environ). The bootstrap imports main from the
function directory, calls handler(request) and writes result.json {statusCode, headers, body}
and logs.json {error: [], debug: [], info: []}. It exits 0 on success. When the handler (or
the import of main) raises, it records the error's type and message - never the traceback -
in logs.json and in a 500 result.json whose body is {"error": {"type", "message"}}, and
exits 1.

Persistent mode (--serve): one process serves many invocations. It first writes one line
{"ready": true|false, "error"?: {type, message}} to stdout, then reads one JSON object per
line from stdin, {"id": any, "request": {...}, "env"?: {NAME: value}, "dir"?: path}, and
answers each with one line {"id", "ok": bool, "result": {statusCode, headers, body},
"logs": {error, debug, info}, "error": {type, message} | null}. "env" is added to
os.environ before the call; "dir", when given, is the working directory during the call.
A line that is not such an object gets {"id": null, "ok": false, "error": {"type":
"ProtocolError", ...}}. The protocol owns the process's real stdout and stdin: file
descriptor 1 is pointed at stderr and 0 at /dev/null, so nothing the function does can
corrupt it. End of input ends the process with status 0.

Requests: body is parsed from JSON when the content type is JSON (application/json or
*+json), and is otherwise the body as a string; raw is always the body as a string. A
returned dict holding "statusCode" is the response (optional "headers" and "body"); any
other JSON-serializable value is a 200 response with that body. print() output and
sys.stderr become info and error entries; the logging module's records become debug, info
(INFO and WARNING) or error (ERROR and above) entries. The root logger's level is INFO
unless CONTAINERPUB_LOG_LEVEL says otherwise.
"""

import datetime
import io
import json
import logging
import os
import sys

FUNCTION_DIR = os.environ.get("CONTAINERPUB_FUNCTION_DIR", "/function")
PACKAGES_DIR = os.environ.get("CONTAINERPUB_PACKAGES_DIR", "/opt/containerpub/packages")
# Characters of log messages kept per invocation; the platform caps them again.
LOG_LIMIT = 256 * 1024
JSON_ERROR = {"content-type": "application/json"}


def now():
    stamp = datetime.datetime.now(datetime.timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Logs:
    """The log entries of one invocation, in the logs.json shape."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.entries = {"error": [], "debug": [], "info": []}
        self.size = 0
        self.truncated = False

    def add(self, level, message, metadata=None):
        if self.truncated:
            return
        self.size += len(message)
        if self.size > LOG_LIMIT:
            self.truncated = True
            level, message, metadata = "error", "log output truncated", {"truncated": True}
        entry = {"message": message, "timestamp": now()}
        if metadata:
            entry["metadata"] = metadata
        self.entries[level].append(entry)


LOGS = Logs()


class Capture(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr: every line becomes a log entry."""

    def __init__(self, level, stream):
        super().__init__()
        self.level = level
        self.stream = stream
        self.pending = ""

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not " + type(text).__name__)
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            LOGS.add(self.level, line, {"stream": self.stream})
        return len(text)

    def drain(self):
        if self.pending:
            LOGS.add(self.level, self.pending, {"stream": self.stream})
            self.pending = ""


class LogHandler(logging.Handler):
    """Sends the logging module's records to LOGS."""

    def emit(self, record):
        try:
            message = self.format(record)
        except Exception:  # a bad format string must not fail the invocation
            message = str(record.msg)
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.INFO:
            level = "info"
        else:
            level = "debug"
        LOGS.add(level, message, {"level": record.levelname, "logger": record.name})


STDOUT = Capture("info", "stdout")
STDERR = Capture("error", "stderr")


def install_capture():
    sys.stdout = STDOUT
    sys.stderr = STDERR
    root = logging.getLogger()
    root.addHandler(LogHandler())
    level = os.environ.get("CONTAINERPUB_LOG_LEVEL", "INFO").upper()
    root.setLevel(getattr(logging, level, logging.INFO))


def drain_capture():
    STDOUT.drain()
    STDERR.drain()


def load_env(directory):
    for name in (".env.config", ".env.secret"):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as env_file:
            for line in env_file:
                line = line.rstrip("\r\n")
                if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
                    continue
                key, value = line.split("=", 1)
                os.environ[key.strip()] = value


def load_handler():
    sys.dont_write_bytecode = True
    for path in (PACKAGES_DIR, FUNCTION_DIR):
        if path not in sys.path:
            sys.path.insert(0, path)
    import main  # noqa: E402 - the function's module

    handler = getattr(main, "handler", None)
    if not callable(handler):
        raise TypeError("main.py must define a function handler(request)")
    return handler


def text_map(value):
    if not isinstance(value, dict):
        return {}
    return {
        str(k): ", ".join(map(str, v)) if isinstance(v, list) else str(v)
        for k, v in value.items()
    }


def is_json(headers):
    for key, value in headers.items():
        if key.lower() == "content-type":
            mime = value.split(";", 1)[0].strip().lower()
            return mime == "application/json" or mime.endswith("+json")
    return False


def build_request(data):
    if not isinstance(data, dict):
        raise TypeError("the request must be a JSON object")
    headers = text_map(data.get("headers"))
    body = data.get("body")
    raw = data.get("raw")
    if not isinstance(raw, str):
        if isinstance(body, str):
            raw = body
        elif body is None:
            raw = ""
        else:
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if body is None and raw:
        body = raw
    if isinstance(body, str) and is_json(headers):
        try:
            body = json.loads(body)
        except ValueError:
            pass
    return {
        "method": str(data.get("method") or "POST"),
        "path": str(data.get("path") or "/"),
        "headers": headers,
        "query": text_map(data.get("query")),
        "body": body,
        "raw": raw,
    }


def to_result(value):
    if isinstance(value, dict) and "statusCode" in value:
        status = value["statusCode"]
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("statusCode must be an integer from 100 to 599, not %r" % (status,))
        headers = value.get("headers") or {}
        if not isinstance(headers, dict):
            raise TypeError("headers must be a dict, not " + type(headers).__name__)
        headers = {str(k): str(v) for k, v in headers.items()}
        body = value.get("body")
    else:
        status, headers, body = 200, {}, value
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8")
    result = {"statusCode": status, "headers": headers, "body": body}
    # Fails here, inside the invocation, when the body is not JSON-serializable.
    json.dumps(result, allow_nan=False)
    return result


def describe(error):
    kind = type(error)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = kind.__module__ + "." + name
    return {"type": name, "message": str(error)}


def invoke(handler, data):
    """Runs one invocation: (ok, result, error)."""
    try:
        if isinstance(handler, BaseException):
            raise handler.with_traceback(None)
        value = handler(build_request(data))
        if hasattr(value, "__await__"):
            import asyncio

            value = asyncio.run(value)
        return True, to_result(value), None
    except (Exception, SystemExit) as error:
        described = describe(error)
        LOGS.add(
            "error",
            "%s: %s" % (described["type"], described["message"]),
            {"type": described["type"]},
        )
        return False, {"statusCode": 500, "headers": dict(JSON_ERROR), "body": {"error": described}}, described
    finally:
        drain_capture()


def load():
    """The handler, or the exception that loading it raised (reported per invocation)."""
    try:
        return load_handler()
    except (Exception, SystemExit) as error:
        return error


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as out:
        json.dump(value, out, ensure_ascii=False, allow_nan=False)


def run_once():
    install_capture()
    directory = os.getcwd()
    try:
        load_env(directory)
        with open(os.path.join(directory, "request.json"), encoding="utf-8") as request_file:
            data = json.load(request_file)
    except (OSError, ValueError) as error:
        data = error
    handler = data if isinstance(data, BaseException) else load()
    ok, result, _ = invoke(handler, data)
    write_json(os.path.join(directory, "result.json"), result)
    write_json(os.path.join(directory, "logs.json"), LOGS.entries)
    return 0 if ok else 1


def serve():
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    install_capture()
    home = os.getcwd()

    def reply(message):
        replies.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n")
        replies.flush()

    load_env(home)
    handler = load()
    drain_capture()
    # Whatever loading logged belongs to the first invocation.
    hello = {"ready": not isinstance(handler, BaseException)}
    if isinstance(handler, BaseException):
        hello["error"] = describe(handler)
    reply(hello)

    for line in requests:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
            if not isinstance(message, dict) or not isinstance(message.get("request"), dict):
                raise ValueError('expected an object with a "request" object')
        except ValueError as error:
            reply({"id": None, "ok": False, "error": {"type": "ProtocolError", "message": str(error)}})
            continue
        env = message.get("env")
        if isinstance(env, dict):
            os.environ.update({str(k): str(v) for k, v in env.items()})
        directory = message.get("dir")
        try:
            if directory:
                os.chdir(directory)
            ok, result, error = invoke(handler, message["request"])
        except OSError as failure:
            ok, result, error = False, None, describe(failure)
        finally:
            os.chdir(home)
        reply({"id": message.get("id"), "ok": ok, "result": result, "logs": LOGS.entries, "error": error})
        LOGS.reset()
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else run_once())
